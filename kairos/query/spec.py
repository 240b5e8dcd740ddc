"""Typed, validated forms of a metric's ``aggregators`` and ``group_by`` entries (spec §4).

``kairos.query.parse_aggregators`` builds these from the query JSON (KairosDB's property names
and validation messages); ``kairos.query.aggregators`` executes the aggregators and
``kairos.query.engine`` the group-bys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "RANGE_AGGREGATORS",
    "Aggregator",
    "BinGroupBy",
    "DivAgg",
    "FilterAgg",
    "GroupBy",
    "MovingWindowAgg",
    "PairAgg",
    "PercentRemainingAgg",
    "RangeAgg",
    "Sampling",
    "SaveAsAgg",
    "ScaleAgg",
    "ScoreAgg",
    "SmaAgg",
    "TagGroupBy",
    "TimeGroupBy",
    "TrimAgg",
    "ValueGroupBy",
]


RANGE_AGGREGATORS = (
    "apdex",
    "avg",
    "count",
    "dev",
    "first",
    "gaps",
    "last",
    "least_squares",
    "max",
    "merge",
    "min",
    "percentile",
    "sum",
)


@dataclass(frozen=True, slots=True)
class Sampling:
    """``{"value": n, "unit": "..."}``; ``unit`` is the upper-case enum name of ``TIME_UNITS``."""

    value: int = 1
    unit: str = "MILLISECONDS"


@dataclass(slots=True)
class RangeAgg:
    """avg, count, dev, first, gaps, last, least_squares, max, min, percentile, sum; and the
    histogram-only apdex and merge (``kairos.query.histograms``)."""

    name: str
    sampling: Sampling = field(default_factory=Sampling)
    align_sampling: bool = True
    align_start_time: bool = False
    align_end_time: bool = False
    start_time: int | None = None  # None: the query start
    end_time: int | None = None  # None: the query end (capped at now), gaps only
    time_zone: str | None = None  # None: the query's time_zone (None there: UTC)
    trim: bool = False  # gaps only
    percentile: float | None = None  # percentile only; validated non-zero
    return_type: str = "value"  # dev only: value | pos_sd | neg_sd
    dev_count: int = 1  # dev only
    precision: int = 52  # merge only: mantissa bits kept in bin keys, 1..52 (52: all)
    target: float = 1.0  # apdex only: the target T >= 0 (the plugin's default, 1)


@dataclass(slots=True)
class PairAgg:
    """rate, sampler, diff: one output per consecutive pair of points."""

    name: str
    sampling: Sampling = field(default_factory=Sampling)
    time_zone: str | None = None


@dataclass(slots=True)
class DivAgg:
    divisor: float
    name: str = "div"


@dataclass(slots=True)
class ScaleAgg:
    factor: float = 0.0
    name: str = "scale"


@dataclass(slots=True)
class ScoreAgg:
    thresholds: list[tuple[float, str]]  # (value, "superior" | "inferior")
    order: str = "ascending"
    name: str = "score"


@dataclass(slots=True)
class FilterAgg:
    op: str  # lte, lt, gte, gt, equal, ne
    threshold: float | str = 0.0
    inclusion: str | None = "keep"  # histograms: keep | discard a bin straddling the threshold
    name: str = "filter"


@dataclass(slots=True)
class MovingWindowAgg:
    """kairosdb-extensions' movingWindow: every window of ``sampling`` re-emits its points at
    the window's end (``kairos.query.aggregators._extensions``)."""

    sampling: Sampling = field(default_factory=Sampling)
    align_sampling: bool = False  # the extension's own default (it ignores the other flags)
    start_time: int | None = None  # None: the query start
    time_zone: str | None = None  # None: the query's time_zone (None there: UTC)
    name: str = "movingWindow"


@dataclass(slots=True)
class PercentRemainingAgg:
    """kairosdb-extensions' percent_remaining: each histogram's count / its original count."""

    name: str = "percent_remaining"


@dataclass(slots=True)
class TrimAgg:
    trim: str | None = None  # first, last, both; None = no-op
    name: str = "trim"


@dataclass(slots=True)
class SmaAgg:
    size: int
    name: str = "sma"


@dataclass(slots=True)
class SaveAsAgg:
    metric_name: str
    tags: dict[str, str] = field(default_factory=dict)
    ttl: int = 0
    add_saved_from: bool = True
    name: str = "save_as"


Aggregator = (
    RangeAgg
    | PairAgg
    | DivAgg
    | ScaleAgg
    | ScoreAgg
    | FilterAgg
    | TrimAgg
    | SmaAgg
    | SaveAsAgg
    | MovingWindowAgg
    | PercentRemainingAgg
)


@dataclass(slots=True)
class TagGroupBy:
    tags: list[str]
    name: str = "tag"


@dataclass(slots=True)
class TimeGroupBy:
    range_size: Sampling
    group_count: int
    name: str = "time"
    start_date: int | None = None  # None: the query start (a JSON start_date overrides it)


@dataclass(slots=True)
class ValueGroupBy:
    range_size: int
    name: str = "value"


@dataclass(slots=True)
class BinGroupBy:
    bins: list[float]
    name: str = "bin"


GroupBy = TagGroupBy | TimeGroupBy | ValueGroupBy | BinGroupBy
