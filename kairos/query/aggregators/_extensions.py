"""kairosdb-extensions' aggregators: movingWindow (the arithmetic lives in
:mod:`kairos.query.moving_window`) and the histogram plugin's percent_remaining.

Both take gaps' null points in their stride: movingWindow re-emits them, percent_remaining
refuses them (in :func:`kairos.query.histograms.percent_remaining`).
"""

from __future__ import annotations

from dataclasses import replace

from kairos.query import histograms, moving_window
from kairos.query.aggregators._context import Context
from kairos.query.model import MetricQuery, Query
from kairos.query.spec import MovingWindowAgg, PercentRemainingAgg
from kairos.query.stream import Stream

__all__ = ["moving_window_points", "moving_window_read", "percent_remaining"]


def _mw_grid(agg: MovingWindowAgg, q: Query) -> moving_window.Grid:
    start = agg.start_time if agg.start_time is not None else q.start
    tz = agg.time_zone if agg.time_zone is not None else q.time_zone
    return moving_window.grid(agg.sampling.unit, agg.sampling.value, agg.align_sampling, start, tz)


def moving_window_read(q: Query, m: MetricQuery) -> Query:
    """``MovingWindowQueryPreProcessor``: read from one window width before the start."""
    earliest = q.start
    for agg in m.aggregators:
        if isinstance(agg, MovingWindowAgg):
            earliest = min(earliest, moving_window.earliest_start(_mw_grid(agg, q)))
    return q if earliest == q.start else replace(q, start=earliest)


def moving_window_points(agg: MovingWindowAgg, s: Stream, ctx: Context) -> Stream:
    idx, ts = moving_window.moving_window(s.ts, _mw_grid(agg, ctx.query))
    out = s.take(idx)
    out.ts = ts
    return out


def percent_remaining(agg: PercentRemainingAgg, s: Stream, ctx: Context) -> Stream:
    if s.gtype != "histogram":
        return s
    return histograms.percent_remaining(s)
