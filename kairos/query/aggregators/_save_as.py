"""``save_as``: the group's points are published as a new series; the group passes on."""

from __future__ import annotations

import numpy as np

from kairos.model.batch import DOUBLE, LONG, STRING, BatchBuilder
from kairos.model.java import java_sorted_tags
from kairos.query.aggregators._context import Context, refuse_gaps
from kairos.query.spec import SaveAsAgg
from kairos.query.stream import Stream

__all__ = ["save_as"]


def save_as(agg: SaveAsAgg, s: Stream, ctx: Context) -> Stream:
    refuse_gaps(s)
    if ctx.publish is None or not len(s):
        return s
    tags = dict(agg.tags)
    if agg.add_saved_from:
        tags["saved_from"] = ctx.metric.name
    if ctx.tag_group_by is not None:
        for t in ctx.tag_group_by.tags:
            vals = ctx.tagsets.get(t, set())
            if len(vals) == 1:
                tags[t] = next(iter(vals))
    b = BatchBuilder()
    sorted_tags = java_sorted_tags(tags)
    live = ~s.null if s.null is not None else np.ones(len(s), bool)
    if s.gtype == "number":
        assert s.f is not None and s.is_long is not None  # a number group has both
        for kind, mask in ((LONG, s.is_long & live), (DOUBLE, ~s.is_long & live)):
            if mask.any():
                sid = b.series_id(agg.metric_name, sorted_tags, kind, agg.ttl)
                if kind == LONG:
                    assert s.i is not None  # some points are longs: their values are in i
                    words = s.i[mask]
                else:
                    words = s.f[mask].view(np.int64)
                b.add(np.full(int(mask.sum()), sid, np.int32), s.ts[mask], words)
    elif s.gtype == "text":
        assert s.objs is not None  # a text group has objs
        sid = b.series_id(agg.metric_name, sorted_tags, STRING, agg.ttl)
        idx = np.flatnonzero(live)
        words = np.array([b.add_object(s.objs[j]) for j in idx.tolist()], np.int64)
        b.add(np.full(len(idx), sid, np.int32), s.ts[idx], words)
    ctx.publish(b.build())
    return s
