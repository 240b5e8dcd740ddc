"""The aggregator chain: each typed aggregator of :mod:`kairos.query.spec` -> its implementation.

The engine passes every group (merged, split and limited, as one
:class:`~kairos.query.stream.Stream`) through the metric's aggregators in query order; each step
is one lookup of the spec's type in a registry::

    spec                  implementation                    groups it computes on
    RangeAgg              _range.range_aggregator           numbers; count/first/last/gaps
                            avg count dev first gaps last     any group; histograms for the
                            least_squares max min percentile  plugin's apdex merge avg sum min
                            sum, apdex merge                  max count percentile
    PairAgg               _series.pairwise                  numbers (rate sampler diff)
    DivAgg ScaleAgg       _series.div / scale / score / sma numbers
    ScoreAgg SmaAgg
    FilterAgg             _series.filter_points             numbers, text; histogram bins
    TrimAgg               _series.trim                      any
    SaveAsAgg             _save_as.save_as                  numbers, text (publishes, passes on)
    MovingWindowAgg       _extensions.moving_window_points  any
    PercentRemainingAgg   _extensions.percent_remaining     histograms

An implementation is ``(spec, stream, Context) -> stream``.  As in KairosDB, a group of a type
an aggregator does not take passes through unchanged, and an aggregator that reads values
refuses the null points ``gaps`` inserts (``_context.refuse_gaps``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kairos.errors import QueryFailed
from kairos.query.aggregators._context import Context, Publish
from kairos.query.aggregators._extensions import (
    moving_window_points,
    moving_window_read,
    percent_remaining,
)
from kairos.query.aggregators._range import range_aggregator
from kairos.query.aggregators._save_as import save_as
from kairos.query.aggregators._series import div, filter_points, pairwise, scale, score, sma, trim
from kairos.query.spec import (
    Aggregator,
    DivAgg,
    FilterAgg,
    MovingWindowAgg,
    PairAgg,
    PercentRemainingAgg,
    RangeAgg,
    SaveAsAgg,
    ScaleAgg,
    ScoreAgg,
    SmaAgg,
    TrimAgg,
)
from kairos.query.stream import Stream

__all__ = ["IMPLEMENTATIONS", "Context", "Publish", "apply", "moving_window_read"]

IMPLEMENTATIONS: dict[type, Callable[[Any, Stream, Context], Stream]] = {
    RangeAgg: range_aggregator,
    PairAgg: pairwise,
    DivAgg: div,
    ScaleAgg: scale,
    ScoreAgg: score,
    SmaAgg: sma,
    FilterAgg: filter_points,
    TrimAgg: trim,
    SaveAsAgg: save_as,
    MovingWindowAgg: moving_window_points,
    PercentRemainingAgg: percent_remaining,
}


def apply(agg: Aggregator, s: Stream, ctx: Context) -> Stream:
    """The group ``s`` after the aggregator ``agg``."""
    run = IMPLEMENTATIONS.get(type(agg))
    if run is None:
        raise QueryFailed(f"aggregator {agg.name} is not implemented")
    return run(agg, s, ctx)
