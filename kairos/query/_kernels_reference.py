"""Plain Python/numpy references for ``kairos.query.kernels`` (used by the tests only).

Same signatures as the facade.  Each function performs the same IEEE-754 double operations, in
the same order, as the Java code KairosDB runs (and as ``kairos._native.reduce``), written as
plain loops over Python floats so the order is obvious; the property tests compare the kernels
against these bit for bit.  Python raises on float division by zero and ``math.sqrt`` of a
negative number, so :func:`_div` and :func:`_sqrt` give the IEEE results instead.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from kairos.model.java import LONG_MAX, LONG_MIN

__all__ = [
    "DBL_MAX",
    "bucket_fixed",
    "bucket_runs",
    "java_sort_key",
    "merge_sorted",
    "segment_dev_mean",
    "segment_least_squares",
    "segment_percentile",
    "segment_reduce",
    "segment_starts",
    "sma",
    "sma_running",
]

DBL_MAX = 1.7976931348623157e308
"""``Double.MAX_VALUE``."""

_MIN_VALUE = 5e-324  # Double.MIN_VALUE, 2**-1074


def _div(a: float, b: float) -> float:
    if b != 0.0:
        return a / b
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _sqrt(x: float) -> float:
    return math.nan if x != x or x < 0.0 else math.sqrt(x)


def _java_min(a: float, b: float) -> float:
    if a != a:
        return a
    if a == 0.0 and b == 0.0 and math.copysign(1.0, b) < 0.0:
        return b
    return a if a <= b else b


def _java_max(a: float, b: float) -> float:
    if a != a:
        return a
    if a == 0.0 and b == 0.0 and math.copysign(1.0, a) < 0.0:
        return b
    return a if a >= b else b


def _segments(values: npt.ArrayLike, starts: npt.ArrayLike) -> list[list[float]]:
    vals = [float(v) for v in np.asarray(values, dtype=np.float64)]
    bounds = [int(s) for s in np.asarray(starts)] + [len(vals)]
    return [vals[lo:hi] for lo, hi in pairwise(bounds)]


def _sum(seg: list[float]) -> float:
    s = 0.0
    for x in seg:
        s += x
    return s


def _dev_mean(seg: list[float]) -> tuple[float, float]:
    """KairosDB's StdAggregator loop, verbatim (including its running mean)."""
    average = 0.0
    pwr_sum_avg = 0.0
    std_dev = 0.0
    for count, x in enumerate(seg, 1):
        average += (x - average) / count
        pwr_sum_avg += (x * x - pwr_sum_avg) / count
        std_dev = _sqrt(_div(pwr_sum_avg * count - count * average * average, float(count - 1)))
    if std_dev != std_dev:
        std_dev = 0.0
    return std_dev, average


def segment_reduce(op: str, values: npt.ArrayLike, starts: npt.ArrayLike) -> np.ndarray:
    """Reference for :func:`kairos.query.kernels.segment_reduce`."""
    segs = _segments(values, starts)
    if op == "count":
        return np.array([len(s) for s in segs], dtype=np.int64)
    out: list[float] = []
    for seg in segs:
        if op == "sum":
            out.append(_sum(seg))
        elif op == "avg":
            out.append(_sum(seg) / len(seg))
        elif op == "min":
            r = DBL_MAX
            for x in seg:
                r = _java_min(r, x)
            out.append(r)
        elif op == "max":
            r = -DBL_MAX
            for x in seg:
                r = _java_max(r, x)
            out.append(r)
        elif op == "dev":
            out.append(_dev_mean(seg)[0])
        else:
            raise ValueError(op)
    return np.array(out, dtype=np.float64)


def segment_dev_mean(values: npt.ArrayLike, starts: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Reference for :func:`kairos.query.kernels.segment_dev_mean`."""
    pairs = [_dev_mean(seg) for seg in _segments(values, starts)]
    return (
        np.array([d for d, _ in pairs], dtype=np.float64),
        np.array([a for _, a in pairs], dtype=np.float64),
    )


def java_sort_key(x: float) -> tuple[int, float, int]:
    """``Double.compare`` order as a sort key: -0.0 before 0.0, every NaN last."""
    if x != x:
        return (1, 0.0, 0)
    return (0, x, 1 if math.copysign(1.0, x) > 0 else 0)


def segment_percentile(values: npt.ArrayLike, starts: npt.ArrayLike, p: float) -> np.ndarray:
    """Reference for :func:`kairos.query.kernels.segment_percentile` (PercentileAggregator)."""
    out = []
    for seg in _segments(values, starts):
        v = sorted(seg, key=java_sort_key)
        n = len(v)
        pos = p * (n + 1)
        if pos < 1:
            out.append(v[0])
        elif pos >= n:
            out.append(v[n - 1])
        else:
            lower = v[int(pos) - 1]
            upper = v[int(pos)]
            out.append(lower + (pos - float(math.floor(pos))) * (upper - lower))
    return np.array(out, dtype=np.float64)


def segment_least_squares(
    ts: npt.ArrayLike, values: npt.ArrayLike, starts: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Reference for :func:`kairos.query.kernels.segment_least_squares` (SimpleRegression)."""
    tss = [float(int(t)) for t in np.asarray(ts, dtype=np.int64)]
    bounds = [int(s) for s in np.asarray(starts)] + [len(tss)]
    vals = [float(v) for v in np.asarray(values, dtype=np.float64)]
    first, last = [], []
    for lo, hi in pairwise(bounds):
        sum_x = sum_y = sum_xx = sum_xy = xbar = ybar = 0.0
        n = 0
        for x, y in zip(tss[lo:hi], vals[lo:hi], strict=True):
            if n == 0:
                xbar = x
                ybar = y
            else:
                fact1 = 1.0 + n
                fact2 = n / (1.0 + n)
                dx = x - xbar
                dy = y - ybar
                sum_xx += dx * dx * fact2
                sum_xy += dx * dy * fact2
                xbar += dx / fact1
                ybar += dy / fact1
            sum_x += x
            sum_y += y
            n += 1
        # getSlope(): NaN with too few points or no variation in x.
        slope = math.nan if n < 2 or abs(sum_xx) < 10 * _MIN_VALUE else _div(sum_xy, sum_xx)
        intercept = (sum_y - slope * sum_x) / n
        first.append(intercept + slope * tss[lo])
        last.append(intercept + slope * tss[hi - 1])
    return np.array(first, dtype=np.float64), np.array(last, dtype=np.float64)


def bucket_fixed(ts: npt.ArrayLike, origin: int, width: int) -> np.ndarray:
    """Reference for :func:`kairos.query.kernels.bucket_fixed`: Java ``(ts - origin) / width``."""
    out = []
    for i, t in enumerate(int(t) for t in np.asarray(ts, dtype=np.int64)):
        d = t - origin
        if not LONG_MIN <= d <= LONG_MAX:
            raise OverflowError(f"ts[{i}] - origin overflows int64: {t} - {origin}")
        q = abs(d) // width
        out.append(q if d >= 0 else -q)
    return np.array(out, dtype=np.int64)


def segment_starts(keys: npt.ArrayLike) -> np.ndarray:
    """Reference for :func:`kairos.query.kernels.segment_starts`."""
    k = [int(x) for x in np.asarray(keys, dtype=np.int64)]
    return np.array([i for i in range(len(k)) if i == 0 or k[i] != k[i - 1]], dtype=np.int64)


def bucket_runs(ts: npt.ArrayLike, origin: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference for :func:`kairos.query.kernels.bucket_runs`."""
    k = bucket_fixed(ts, origin, width)
    starts = segment_starts(k)
    return starts, k[starts]


def sma(values: npt.ArrayLike, size: int) -> np.ndarray:
    """Reference for :func:`kairos.query.kernels.sma` with ``exact=True`` (SmaAggregator)."""
    vals = [float(v) for v in np.asarray(values, dtype=np.float64)]
    return np.array(
        [_sum(vals[k : k + size]) / size for k in range(len(vals) - size + 1)], dtype=np.float64
    )


def sma_running(values: npt.ArrayLike, size: int) -> np.ndarray:
    """Reference for :func:`kairos.query.kernels.sma` with ``exact=False``."""
    vals = [float(v) for v in np.asarray(values, dtype=np.float64)]
    out = []
    s = 0.0
    nonfinite = 0
    for j, x in enumerate(vals):
        if math.isfinite(x):
            s += x
        else:
            nonfinite += 1
        if j >= size:
            y = vals[j - size]
            if math.isfinite(y):
                s -= y
            else:
                nonfinite -= 1
        if j >= size - 1:
            k = j - size + 1
            if nonfinite or k % size == 0 or not math.isfinite(s):
                t = _sum(vals[k : j + 1])
                if not nonfinite:
                    s = t
                out.append(t / size)
            else:
                out.append(s / size)
    return np.array(out, dtype=np.float64)


def merge_sorted(
    ts_list: list[npt.ArrayLike], f_list: list[npt.ArrayLike]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate and sort by (timestamp, value, position): numpy's stable ``lexsort``, whose
    float order puts NaN last and keeps ``-0.0`` and ``0.0`` in input order."""
    ts = np.concatenate([np.asarray(t, np.int64) for t in ts_list] or [np.zeros(0, np.int64)])
    f = np.concatenate([np.asarray(x, np.float64) for x in f_list] or [np.zeros(0)])
    perm = np.lexsort((f, ts)).astype(np.int64)
    return ts[perm], f[perm], perm
