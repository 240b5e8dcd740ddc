"""The aggregators that map a group point by point or pair by pair: rate, sampler and diff;
div, scale, score and sma over numbers; filter and trim over any group."""

from __future__ import annotations

import numpy as np

from kairos.errors import QueryFailed
from kairos.model.java import FIXED_UNIT_MS, java_key
from kairos.query import histograms, kernels
from kairos.query.aggregators._context import Context, numbers_only, refuse_gaps
from kairos.query.spec import DivAgg, FilterAgg, PairAgg, ScaleAgg, ScoreAgg, SmaAgg, TrimAgg
from kairos.query.stream import Stream
from kairos.query.timebuckets import unit_length_ms, zone

__all__ = ["div", "filter_points", "pairwise", "scale", "score", "sma", "trim"]


@numbers_only
def pairwise(agg: PairAgg, s: Stream, ctx: Context) -> Stream:
    """rate, sampler, diff: one value per consecutive pair, at the later point's time."""
    assert s.f is not None  # numbers_only: a number group always has f
    if len(s) < 2:
        return Stream.doubles(s.ts[:0], s.f[:0])
    t0, t1 = s.ts[:-1], s.ts[1:]
    v0, v1 = s.f[:-1], s.f[1:]
    if agg.name == "diff":
        return Stream.doubles(t1, v1 - v0)
    dt = t1 - t0
    if (dt == 0).any():
        raise QueryFailed(
            f"The {agg.name} aggregator cannot compute rate for data points with the same time "
            f"stamp.  You must precede {agg.name} with another aggregator."
        )
    tz = zone(agg.time_zone if agg.time_zone is not None else ctx.query.time_zone)
    if agg.sampling.unit in FIXED_UNIT_MS:
        length = np.full(len(t0), agg.sampling.value * FIXED_UNIT_MS[agg.sampling.unit], np.float64)
    else:
        length = np.array(
            [unit_length_ms(int(t), agg.sampling, tz) for t in t0.tolist()], np.float64
        )
    if agg.name == "rate":
        return Stream.doubles(t1, (v1 - v0) / dt * length)
    return Stream.doubles(t1, v1 / dt * length)  # sampler


@numbers_only
def div(agg: DivAgg, s: Stream, ctx: Context) -> Stream:
    assert s.f is not None  # numbers_only: a number group always has f
    return Stream.doubles(s.ts, s.f / agg.divisor)


@numbers_only
def scale(agg: ScaleAgg, s: Stream, ctx: Context) -> Stream:
    assert s.f is not None  # numbers_only: a number group always has f
    return Stream.doubles(s.ts, s.f * agg.factor)


@numbers_only
def score(agg: ScoreAgg, s: Stream, ctx: Context) -> Stream:
    assert s.f is not None  # numbers_only: a number group always has f
    return Stream.doubles(s.ts, _score(agg, s.f))


@numbers_only
def sma(agg: SmaAgg, s: Stream, ctx: Context) -> Stream:
    assert s.f is not None  # numbers_only: a number group always has f
    if agg.size <= 0:
        raise QueryFailed("/ by zero")
    if len(s) < agg.size:
        return Stream.doubles(s.ts[:0], s.f[:0])
    return Stream.doubles(s.ts[agg.size - 1 :], kernels.sma(s.f, agg.size))


def filter_points(agg: FilterAgg, s: Stream, ctx: Context) -> Stream:
    # The extensions' bin filter takes gaps' null points in its stride (it drops them).
    if s.gtype == "histogram" and not isinstance(agg.threshold, str):
        return histograms.filter_bins(s, agg.op, float(agg.threshold), agg.inclusion)
    refuse_gaps(s)
    return s.take(~_filter_mask(agg, s))


def trim(agg: TrimAgg, s: Stream, ctx: Context) -> Stream:
    n = len(s)
    lo = 1 if agg.trim in ("first", "both") else 0
    hi = n - 1 if agg.trim in ("last", "both") else n
    return s.take(slice(lo, max(hi, lo)))


def _score(agg: ScoreAgg, f: np.ndarray) -> np.ndarray:
    th = sorted(agg.thresholds, key=lambda t: t[0])
    score = np.zeros(len(f))
    still = np.ones(len(f), bool)
    for value, boundary in th:
        passed = (f > value) | ((f == value) & (boundary == "inferior"))
        still &= passed
        score += still
    if agg.order == "descending":
        score = len(th) - score
    return score


def _filter_mask(agg: FilterAgg, s: Stream) -> np.ndarray:
    """True where the point is removed."""
    threshold = agg.threshold
    numeric = not isinstance(threshold, str)
    if s.gtype != ("number" if numeric else "text"):
        return np.ones(len(s), bool)  # type mismatch (a histogram too): removed
    a: np.ndarray
    t: float
    if not isinstance(threshold, str):
        assert s.f is not None  # a number group
        a, t = s.f, float(threshold)
    else:
        keys = [java_key(o) for o in s.objs or []]
        a, t = (
            np.array(
                [
                    0 if k == java_key(threshold) else (1 if k > java_key(threshold) else -1)
                    for k in keys
                ]
            ),
            0,
        )
        a = a.astype(np.float64)
    return {
        "lte": a <= t,
        "lt": a < t,
        "gte": a >= t,
        "gt": a > t,
        "equal": a == t,
        "ne": a != t,
    }[agg.op]
