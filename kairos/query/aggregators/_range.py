"""The range aggregators (avg, count, dev, first, gaps, last, least_squares, max, min,
percentile, sum; and the histogram plugin's apdex and merge): one value per sampling bucket.

Buckets come from :mod:`kairos.query.timebuckets`; the per-bucket reductions are the kernels
of :mod:`kairos.query.kernels` (numbers) and :mod:`kairos.query.histograms` (histograms).
Histogram groups take ``merge``, ``apdex``, ``percentile``, ``avg``, ``sum``, ``min``, ``max``
and ``count``, windowed by the same ``_segments`` as the numeric range aggregators; the other
number-only ones pass them through unchanged, and ``merge`` and ``apdex`` pass number and text
groups through, as KairosDB skips an aggregator that cannot take a group's type.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from kairos.errors import InvalidHistogram, QueryFailed
from kairos.query import histograms, kernels
from kairos.query.aggregators._context import Context, refuse_gaps
from kairos.query.model import MetricQuery, Query
from kairos.query.spec import RangeAgg
from kairos.query.stream import Stream
from kairos.query.timebuckets import bucket_plan, zone

__all__ = ["range_aggregator"]

_READS_NUMBERS = frozenset({"avg", "dev", "least_squares", "max", "min", "percentile", "sum"})
"""The range aggregators that take number groups only (and refuse gaps' null points)."""


def range_aggregator(agg: RangeAgg, s: Stream, ctx: Context) -> Stream:
    name = agg.name
    if s.gtype == "histogram" and name in histograms.AGGREGATORS:
        return _histogram_range(agg, s, ctx.query, ctx.metric)
    if name in _READS_NUMBERS:
        if s.gtype != "number":
            return s  # KairosDB silently skips aggregators that do not accept the group type
        refuse_gaps(s)
    elif name in histograms.HISTOGRAM_ONLY and s.gtype != "histogram":
        return s
    return _range(agg, s, ctx.query, ctx.metric, ctx.now)


def _segments(agg: RangeAgg, s: Stream, q: Query, m: MetricQuery):
    tz = zone(agg.time_zone if agg.time_zone is not None else q.time_zone)
    start = agg.start_time if agg.start_time is not None else q.start
    plan = bucket_plan(start, agg.sampling, agg.align_sampling, tz)
    n = len(s)
    if m.order == "desc":
        # Every later point is before the first bucket's end: one bucket (KairosDB quirk).
        starts = np.zeros(1 if n else 0, np.int64)
        kfirst = plan.index(s.ts[:1])
    elif s.rep > 1:  # each timestamp rep times in a row: bucket every rep-th
        starts, kfirst = plan.runs(np.ascontiguousarray(s.ts[:: s.rep]))
        starts = starts * s.rep
    else:
        starts, kfirst = plan.runs(s.ts)
    if agg.align_start_time:
        rtime = plan.starts(kfirst)
    elif agg.align_end_time:
        rtime = plan.ends(kfirst)
    else:
        rtime = s.ts[starts]
    return plan, starts, rtime


def _histogram_range(agg: RangeAgg, s: Stream, q: Query, m: MetricQuery) -> Stream:
    if s.null is not None and s.null.any():
        s = s.take(~s.null)  # the plugin's aggregators skip points that are not histograms
    if not len(s):
        return s if agg.name == "merge" else Stream.doubles(s.ts, np.zeros(0))
    if agg.name == "percentile":
        p = float(agg.percentile or 0.0)
        if not 0.0 <= p <= 1.0:
            raise QueryFailed(f"{p!r} is not in [0..1]")
    _, starts, rtime = _segments(agg, s, q, m)
    try:
        return histograms.aggregate(agg, s, starts, rtime)
    except InvalidHistogram as e:  # a window too large to merge: the query fails, not the input
        raise QueryFailed(str(e)) from e


def _range(agg: RangeAgg, s: Stream, q: Query, m: MetricQuery, now: int) -> Stream:
    if agg.name == "gaps":
        return _gaps(agg, s, q, now)
    if not len(s):
        return s
    _, starts, rtime = _segments(agg, s, q, m)
    name = agg.name
    if name == "count":
        ends = np.append(starts[1:], len(s))
        return Stream.longs(rtime, (ends - starts).astype(np.int64))
    if name == "first":
        out = s.take(starts)
        out.ts = rtime
        return out
    if name == "last":
        ends = np.append(starts[1:], len(s))
        out = s.take(ends - 1)
        if agg.align_start_time or agg.align_end_time:
            out.ts = rtime
        return out
    if name in ("avg", "sum", "min", "max"):
        assert s.f is not None  # range_aggregator passes number groups only
        op = cast("kernels.ReduceOp", name)  # one of the four, checked above
        return Stream.doubles(rtime, kernels.segment_reduce(op, s.f, starts))
    if name == "dev":
        assert s.f is not None  # range_aggregator passes number groups only
        sd, mean = kernels.segment_dev_mean(s.f, starts)  # StdAggregator's own running mean
        if agg.return_type == "pos_sd":
            sd = mean + agg.dev_count * sd
        elif agg.return_type == "neg_sd":
            sd = mean - agg.dev_count * sd
        return Stream.doubles(rtime, sd)
    if name == "percentile":
        p = float(agg.percentile or 0.0)
        if not 0.0 <= p <= 1.0:
            raise QueryFailed(f"{p!r} is not in [0..1]")
        assert s.f is not None  # range_aggregator passes number groups only
        return Stream.doubles(rtime, kernels.segment_percentile(s.f, starts, p))
    if name == "least_squares":
        return _least_squares(s, starts)
    raise QueryFailed(f"aggregator {name} is not implemented")


def _least_squares(s: Stream, starts: np.ndarray) -> Stream:
    """1 point: itself; 2 points: both unchanged; 3 or more: the fitted line's two ends."""
    assert s.f is not None  # a number group
    n = len(s)
    ends = np.append(starts[1:], n)
    sizes = ends - starts
    first, last = kernels.segment_least_squares(s.ts, s.f, starts)
    big = sizes >= 3
    two = np.flatnonzero(sizes >= 2)
    a = s.take(starts)
    assert a.f is not None  # take keeps s's columns
    a.f = np.where(big, first, a.f)
    a.is_long = a.is_long & ~big
    b = s.take(np.where(sizes == 2, starts + 1, ends - 1)[two])
    assert b.f is not None  # take keeps s's columns
    b.f = np.where(big[two], last[two], b.f)
    b.is_long = b.is_long & ~big[two]
    # Interleave: segment j's first row, then its second row (if any).
    order = np.argsort(np.concatenate([2 * np.arange(len(starts)), 2 * two + 1]), kind="stable")
    out = _concat(a, b)
    return out.take(order)


def _gaps(agg: RangeAgg, s: Stream, q: Query, now: int) -> Stream:
    tz = zone(agg.time_zone if agg.time_zone is not None else q.time_zone)
    start = agg.start_time if agg.start_time is not None else q.start
    end = min(agg.end_time if agg.end_time is not None else q.end, now)
    plan = bucket_plan(start, agg.sampling, agg.align_sampling, tz)
    if agg.trim:
        if not len(s):
            return s
        lo_t, hi_t = int(s.ts.min()), int(s.ts.max())
    else:
        lo_t, hi_t = start, max(end, int(s.ts.max()) if len(s) else end)
    k_lo, k_hi = (int(x) for x in plan.index(np.array([lo_t, hi_t], np.int64)))
    if k_hi - k_lo > 10_000_000:
        raise QueryFailed("gaps would produce more than 10,000,000 buckets")
    ks = np.arange(k_lo, k_hi + 1, dtype=np.int64)
    have = np.unique(plan.index(s.ts)) if len(s) else np.zeros(0, np.int64)
    empty = ks[~np.isin(ks, have)]
    bstart = plan.starts(empty)
    if not agg.trim:
        bstart = bstart[bstart <= end]
    nulls = Stream(
        s.gtype,
        bstart,
        np.zeros(len(bstart)) if s.gtype == "number" else None,
        np.zeros(len(bstart), np.int64) if s.gtype == "number" else None,
        np.zeros(len(bstart), bool) if s.gtype == "number" else None,
        [None] * len(bstart) if s.gtype != "number" else None,
        np.ones(len(bstart), bool),
    )
    base = (
        s
        if s.null is not None
        else Stream(s.gtype, s.ts, s.f, s.i, s.is_long, s.objs, np.zeros(len(s), bool))
    )
    merged = _concat(base, nulls)
    return merged.take(np.argsort(merged.ts, kind="stable"))


def _concat(a: Stream, b: Stream) -> Stream:
    def cat(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None else np.concatenate([x, y])

    objs = None
    if a.objs is not None:
        assert b.objs is not None  # a and b are of one kind of group
        objs = a.objs + b.objs
    return Stream(
        a.gtype,
        np.concatenate([a.ts, b.ts]),
        cat(a.f, b.f),
        cat(a.i, b.i),
        cat(a.is_long, b.is_long),
        objs,
        cat(a.null, b.null),
    )
