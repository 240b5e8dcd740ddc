"""Run a :class:`Query` against a ``Datastore`` and build KairosDB's response (spec §3.3-3.4).

Series of a metric matching the tag filter are grouped by data type (``number`` for long and
double, ``text`` for strings, ``histogram``), each group merged into one time-ordered stream.
Results with no values are left out, as KairosDB HEAD does.
"""

from __future__ import annotations

import numpy as np

from kairos.errors import BadRequest
from kairos.ingest.batch import DOUBLE, HISTOGRAM, LONG, STRING, java_key
from kairos.query._format import java_double, values_json
from kairos.query.model import MetricQuery, Query
from kairos.storage.protocol import Datastore, SeriesData

__all__ = ["run_query"]

_GROUP_TYPE = {LONG: "number", DOUBLE: "number", STRING: "text", HISTOGRAM: "histogram"}
_GROUP_ORDER = ("histogram", "number", "text")


def run_query(store: Datastore, query: Query) -> dict:
    """The ``{"queries": [...]}`` response object for ``query``."""
    return {"queries": [_run_metric(store, query, m) for m in query.metrics]}


def _run_metric(store: Datastore, q: Query, m: MetricQuery) -> dict:
    if m.aggregators:
        names = ", ".join(str(a.get("name")) for a in m.aggregators)
        raise BadRequest(f"aggregators are not supported by this Kairos build yet: {names}")
    if m.group_by:
        names = ", ".join(str(g.get("name")) for g in m.group_by)
        raise BadRequest(f"group_by is not supported by this Kairos build yet: {names}")
    candidates = store.find_series(m.name, {})
    series = [s for s in candidates if _tags_match(dict(s.tags), m)]
    data = store.read(series, q.start, q.end)
    if m.limit:
        data = [_limit_series(d, m.limit, m.order) for d in data]
    sample_size = sum(len(d.ts) for d in data)
    groups: dict[str, list[SeriesData]] = {}
    for d in data:
        groups.setdefault(_GROUP_TYPE[d.info.kind], []).append(d)
    results = []
    for gtype in _GROUP_ORDER:
        members = groups.get(gtype)
        if not members:
            continue
        values = _merge(members, m)
        if not values:
            continue
        r: dict = {"name": m.name}
        if m.alias is not None:
            r["alias"] = m.alias
        r["group_by"] = [{"name": "type", "type": gtype}]
        if not m.exclude_tags:
            tagsets: dict[str, set[str]] = {}
            for d in members:
                for k, v in d.info.tags:
                    tagsets.setdefault(k, set()).add(v)
            r["tags"] = {
                k: sorted(vs, key=java_key)
                for k, vs in sorted(tagsets.items(), key=lambda kv: java_key(kv[0]))
            }
        r["values"] = values
        results.append(r)
    return {"sample_size": sample_size, "results": results}


def _tags_match(tags: dict[str, str], m: MetricQuery) -> bool:
    return all(f.matches(tags.get(k)) for k, f in m.tags.items())


def _limit_series(d: SeriesData, limit: int, order: str) -> SeriesData:
    if len(d.ts) <= limit:
        return d
    sl = slice(-limit, None) if order == "desc" else slice(0, limit)
    return SeriesData(d.info, d.ts[sl], d.values[sl])


def _merge(members: list[SeriesData], m: MetricQuery) -> list:
    if len(members) == 1:
        d = members[0]
        kind = d.info.kind
        ts, vals = d.ts, d.values
        out = _typed_values(ts, vals, kind)
    else:
        ts = np.concatenate([d.ts for d in members])
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        kinds = {d.info.kind for d in members}
        if kinds <= {LONG, DOUBLE}:
            pieces = []
            for d in members:
                if d.info.kind == LONG:
                    pieces.extend(d.values.tolist())
                else:
                    pieces.extend(java_double(x) for x in d.values.tolist())
            out = [[t, pieces[i]] for t, i in zip(ts.tolist(), order.tolist(), strict=True)]
        else:
            flat: list = []
            for d in members:
                flat.extend(_render_objects(d.values, d.info.kind))
            out = [[t, flat[i]] for t, i in zip(ts.tolist(), order.tolist(), strict=True)]
    if m.limit and len(out) > m.limit:
        out = out[-m.limit :] if m.order == "desc" else out[: m.limit]
    if m.order == "desc":
        out.reverse()
    return out


def _typed_values(ts: np.ndarray, vals: np.ndarray | list, kind: int) -> list:
    if kind in (LONG, DOUBLE):
        return values_json(ts, vals, kind)  # type: ignore[arg-type]
    return [list(p) for p in zip(ts.tolist(), _render_objects(vals, kind), strict=True)]


def _render_objects(vals: np.ndarray | list, kind: int) -> list:
    if kind == HISTOGRAM:
        from kairos.histogram import Histogram

        return [Histogram.from_bytes(b).to_json() for b in vals]
    return list(vals)
