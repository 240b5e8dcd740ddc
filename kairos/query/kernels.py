"""Array kernels of the aggregator chain: bucketing, segment reductions and SMA (spec §4.2, §4.5).

Data flow for a range aggregator over one time-ordered stream ``(ts, values)``::

    k      = bucket_fixed(ts, origin, width)      int64[n]  bucket number of each point
    starts = segment_starts(k)                    int64[m]  where a run of equal k begins
    out    = segment_reduce("avg", values, starts)          float64[m], one value per bucket

Segments are the sorted-by-segment layout of ``kairos._native.reduce``: segment ``i`` is
``values[starts[i]:starts[i + 1]]`` (the last one ends at ``n``), every segment non-empty,
``starts[0] == 0``.  This module validates arguments, allocates outputs and calls the Cython
kernels; the arithmetic (and its bit-exact KairosDB compatibility) is documented there.  The
plain references live in ``kairos.query._kernels_reference``.

Semantics worth knowing (all mirror KairosDB to the bit unless stated):

* ``sum``/``avg`` add left to right from ``0.0``; ``min``/``max`` fold ``Math.min``/``Math.max``
  from ``±Double.MAX_VALUE`` (NaN propagates; an all-``+inf`` bucket's min is ``MAX_VALUE``).
* ``dev`` is StdAggregator's running-mean-of-squares formula; NaN results (one point, NaN or
  overflowing input, a rounded negative variance) become ``0.0``.
* percentiles are exact (KairosDB samples 1028 values per bucket above that size); NaN sorts
  last, -0.0 before 0.0 (``Arrays.sort``).
* least squares is commons-math ``SimpleRegression``: NaN for 1-point segments and for
  segments whose timestamps are all equal.
* ``sma`` is exact for windows up to :data:`SMA_EXACT_MAX_SIZE` and an O(n) running sum above.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Literal, TypeGuard, cast

import numpy as np
import numpy.typing as npt

from kairos._native import merge as _m
from kairos._native import reduce as _k
from kairos.model.java import LONG_MAX, LONG_MIN

__all__ = [
    "ALIGNED_MIN_K",
    "SMA_EXACT_MAX_SIZE",
    "Scratch",
    "bucket_fixed",
    "bucket_runs",
    "merge_sorted",
    "segment_dev_mean",
    "segment_least_squares",
    "segment_percentile",
    "segment_reduce",
    "segment_starts",
    "sma",
]

ReduceOp = Literal["sum", "min", "max", "avg", "count", "dev"]

SMA_EXACT_MAX_SIZE = 256
"""Largest ``size`` for which :func:`sma` sums every window afresh by default (bit-identical
to KairosDB, O(n * size)); larger windows use the O(n) running sum."""

_UINT64_MAX = 2**64 - 1

_FLOAT_KERNELS = {
    "sum": _k.segment_sum,
    "min": _k.segment_min,
    "max": _k.segment_max,
    "avg": _k.segment_mean,
}


def _float_array(values: npt.ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _ready(a: object, dtype: type) -> TypeGuard[np.ndarray]:
    """Already a 1-D C-contiguous array of ``dtype`` (no conversion to make)."""
    return type(a) is np.ndarray and a.dtype == dtype and a.ndim == 1 and a.flags.c_contiguous


def _int_array(values: npt.ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0 and a.dtype.kind == "f":
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.dtype == np.uint64 and a.size and int(a.max()) > LONG_MAX:
        i = int(np.argmax(a > LONG_MAX))
        raise ValueError(f"{name}[{i}] = {int(a[i])} does not fit in int64")
    return np.ascontiguousarray(a, dtype=np.int64)


def _check_starts(starts: np.ndarray, n: int) -> None:
    """Raise ``ValueError`` naming the first offset that breaks the segment layout."""
    m = starts.shape[0]
    if m == 0:
        if n:
            raise ValueError(f"starts is empty but there are {n} values")
        return
    if starts[0] != 0:
        raise ValueError(f"starts[0] must be 0, got {int(starts[0])}")
    step = np.diff(starts)
    if m > 1 and not (step > 0).all():
        i = int(np.argmax(step <= 0)) + 1
        raise ValueError(
            f"starts must be strictly increasing: starts[{i}] = {int(starts[i])} "
            f"after starts[{i - 1}] = {int(starts[i - 1])}"
        )
    if starts[-1] >= n:
        raise ValueError(
            f"starts[{m - 1}] = {int(starts[-1])} leaves an empty last segment (n = {n})"
        )


def _segments(values: npt.ArrayLike, starts: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    v = _float_array(values, "values")
    s = _int_array(starts, "starts")
    _check_starts(s, v.shape[0])
    return v, s


def _done(status: int, what: str) -> None:
    if status >= 0:
        # The facade validated the layout, so this is a bug in it or in the kernel.
        raise RuntimeError(f"{what} kernel rejected segment {status}")


def segment_reduce(op: ReduceOp, values: npt.ArrayLike, starts: npt.ArrayLike) -> np.ndarray:
    """Reduce every segment with one of KairosDB's range sub-aggregators.

    Parameters
    ----------
    op : {"sum", "min", "max", "avg", "count", "dev"}
        ``dev`` is the sample standard deviation (StdAggregator's ``return_type: value``).
    values : array_like, shape (n,)
        Converted to float64 (longs become doubles, as ``getDoubleValue`` does).
    starts : array_like of int, shape (m,)
        Segment offsets: ``starts[0] == 0`` when ``m > 0``, strictly increasing, below ``n``.

    Returns
    -------
    numpy.ndarray, shape (m,)
        float64, or int64 for ``count``.

    Raises
    ------
    ValueError
        Unknown ``op``, or ``starts`` not a valid layout for ``n`` values.
    TypeError
        Non-numeric ``values`` or non-integer ``starts``.
    """
    if op not in ("sum", "min", "max", "avg", "count", "dev"):
        raise ValueError(f"unknown segment reduction {op!r}")
    v, s = _segments(values, starts)
    m = s.shape[0]
    if op == "count":
        counts = np.empty(m, dtype=np.int64)
        _done(_k.segment_count(s, v.shape[0], counts), op)
        return counts
    out = np.empty(m, dtype=np.float64)
    if op == "dev":
        _done(_k.segment_dev(v, s, out, np.empty(m, dtype=np.float64)), op)
    else:
        _done(_FLOAT_KERNELS[op](v, s, out), op)
    return out


def segment_dev_mean(values: npt.ArrayLike, starts: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment deviation and StdAggregator's own running mean.

    ``return_type`` pos_sd / neg_sd in KairosDB are ``mean ± dev_count * dev`` with this
    running mean (``mean += (x - mean) / count``), which can differ in the last bits from
    ``segment_reduce("avg", ...)``.

    Parameters
    ----------
    values : array_like, shape (n,)
    starts : array_like of int, shape (m,)

    Returns
    -------
    dev, mean : numpy.ndarray of float64, shape (m,)
    """
    v, s = _segments(values, starts)
    m = s.shape[0]
    dev = np.empty(m, dtype=np.float64)
    mean = np.empty(m, dtype=np.float64)
    _done(_k.segment_dev(v, s, dev, mean), "dev")
    return dev, mean


def segment_percentile(values: npt.ArrayLike, starts: npt.ArrayLike, p: float) -> np.ndarray:
    """Exact per-segment percentile with KairosDB's interpolation.

    Parameters
    ----------
    values : array_like, shape (n,)
    starts : array_like of int, shape (m,)
    p : float
        In [0, 1]; ``p * (count + 1)`` is the 1-based rank, interpolated linearly.

    Returns
    -------
    numpy.ndarray of float64, shape (m,)

    Raises
    ------
    ValueError
        ``p`` outside [0, 1] or NaN (KairosDB: ``<p> is not in [0..1]``), or a bad layout.
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{p!r} is not in [0..1]")
    v, s = _segments(values, starts)
    m = s.shape[0]
    out = np.empty(m, dtype=np.float64)
    longest = int(np.diff(s, append=v.shape[0]).max()) if m else 0
    scratch = np.empty(longest, dtype=np.int64)
    _done(_k.segment_percentile(v, s, p, scratch, out), "percentile")
    return out


def segment_least_squares(
    ts: npt.ArrayLike, values: npt.ArrayLike, starts: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """The OLS line of each segment evaluated at its first and last timestamps.

    Parameters
    ----------
    ts : array_like of int, shape (n,)
        Timestamps in ms; converted to double as Java's ``addData(long, double)`` does.
    values : array_like, shape (n,)
    starts : array_like of int, shape (m,)

    Returns
    -------
    first, last : numpy.ndarray of float64, shape (m,)
        NaN for segments of one point or whose timestamps are all equal (SimpleRegression's
        NaN slope); the engine only uses segments of 3 or more points.
    """
    v, s = _segments(values, starts)
    t = _int_array(ts, "ts")
    if t.shape[0] != v.shape[0]:
        raise ValueError(f"ts has {t.shape[0]} entries but values has {v.shape[0]}")
    m = s.shape[0]
    first = np.empty(m, dtype=np.float64)
    last = np.empty(m, dtype=np.float64)
    _done(_k.segment_least_squares(t, v, s, first, last), "least_squares")
    return first, last


def _bucket_args(ts: npt.ArrayLike, origin: int, width: int) -> tuple[int, int, np.ndarray]:
    origin = int(origin)
    width = int(width)
    if width <= 0:
        raise ValueError(f"bucket width must be positive, got {width}")
    if not LONG_MIN <= origin <= LONG_MAX:
        raise ValueError(f"origin {origin} does not fit in int64")
    return origin, width, _int_array(ts, "ts")


def bucket_fixed(ts: npt.ArrayLike, origin: int, width: int) -> np.ndarray:
    """Fixed-width bucket number of each timestamp, Java's truncating ``(ts - origin) / width``.

    Points less than one width before ``origin`` fall into bucket 0 with those just after it
    (KairosDB's quirk); earlier ones get negative numbers.

    Parameters
    ----------
    ts : array_like of int, shape (n,)
        Timestamps in ms, any order.
    origin : int
        Bucket origin in ms, an int64.
    width : int
        Bucket width in ms, > 0 (any size: widths past int64 give exact results).

    Returns
    -------
    numpy.ndarray of int64, shape (n,)

    Raises
    ------
    ValueError
        ``width <= 0`` or ``origin`` outside int64.
    OverflowError
        ``ts[i] - origin`` overflows int64 (KairosDB fails the query there too).
    """
    origin, width, t = _bucket_args(ts, origin, width)
    out = np.empty(t.shape[0], dtype=np.int64)
    bad = _k.bucket_fixed(t, origin, min(width, _UINT64_MAX), out)
    if bad >= 0:
        raise OverflowError(f"ts[{bad}] - origin overflows int64: {int(t[bad])} - {origin}")
    return out


def bucket_runs(ts: npt.ArrayLike, origin: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``segment_starts(k)`` and ``k[starts]`` for ``k = bucket_fixed(ts, origin, width)``,
    without materialising ``k`` (sorted timestamps cost a comparison per point).

    Returns
    -------
    (starts, keys) : int64 arrays, shape (r,)
        The run offsets, suitable for the segment reductions, and each run's bucket number.

    Raises
    ------
    ValueError, OverflowError
        As :func:`bucket_fixed`.
    """
    origin, width, t = _bucket_args(ts, origin, width)
    n = t.shape[0]
    w = min(width, _UINT64_MAX)
    # Sorted timestamps make at most span / width + 2 runs: try that size first.
    cap = n if n < 2 else min(n, max(0, (int(t[-1]) - int(t[0])) // w) + 2)
    while True:
        starts = np.empty(cap, dtype=np.int64)
        keys = np.empty(cap, dtype=np.int64)
        r = _k.bucket_runs(t, origin, w, starts, keys)
        if r != -1 or cap == n:
            break
        cap = n  # unsorted input: room for a run per point
    if r <= -2:
        bad = -2 - r
        raise OverflowError(f"ts[{bad}] - origin overflows int64: {int(t[bad])} - {origin}")
    if r < 0:
        raise RuntimeError("bucket_runs: no room for the runs")
    if r < cap // 2:  # don't pin a much larger buffer behind the result
        return starts[:r].copy(), keys[:r].copy()
    return starts[:r], keys[:r]


def segment_starts(keys: npt.ArrayLike) -> np.ndarray:
    """Start offsets of the runs of equal neighbouring keys (0 first; empty for no keys).

    Parameters
    ----------
    keys : array_like of int, shape (n,)
        Usually the non-decreasing output of :func:`bucket_fixed`; any order works.

    Returns
    -------
    numpy.ndarray of int64, shape (r,)
        Suitable as ``starts`` for the segment reductions.
    """
    k = _int_array(keys, "keys")
    n = k.shape[0]
    out = np.empty(n + 1, dtype=np.int64)
    r = _k.segment_starts(k, out)
    # Don't pin an n-sized buffer behind a much shorter result.
    return out[:r].copy() if r < n // 2 else out[:r]


def sma(values: npt.ArrayLike, size: int, *, exact: bool | None = None) -> np.ndarray:
    """Simple moving average over the last ``size`` values (SmaAggregator).

    Parameters
    ----------
    values : array_like, shape (n,)
    size : int
        Window length, >= 1.
    exact : bool, optional
        True: sum every window afresh, bit-identical to KairosDB, O(n * size).  False: O(n)
        running sum, resynchronised to the exact sum every ``size`` outputs and wherever the
        window holds a non-finite value (error below ~``2 * size * eps * max|x|``).  Default:
        exact when ``size <= SMA_EXACT_MAX_SIZE``.

    Returns
    -------
    numpy.ndarray of float64, shape (max(n - size + 1, 0),)
        ``out[k]`` averages ``values[k:k + size]`` (the point ``k + size - 1``'s window).

    Raises
    ------
    ValueError
        ``size < 1``.
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"sma size must be at least 1, got {size}")
    v = _float_array(values, "values")
    if size > v.shape[0]:
        return np.empty(0, dtype=np.float64)
    out = np.empty(v.shape[0] - size + 1, dtype=np.float64)
    if exact is None:
        exact = size <= SMA_EXACT_MAX_SIZE
    _done((_k.sma if exact else _k.sma_running)(v, size, out), "sma")
    return out


class Scratch:
    """Buffers handed from one merge to the next (within a query): a fresh array costs its page
    faults, which for merged groups of ~100,000 points cost as much as sorting them.

    A buffer is handed out again only when nothing references it any more -- no array, view
    or stream built on an earlier merge survives -- else a new one replaces it.
    """

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def take(self, name: str, n: int, dtype: type) -> np.ndarray:
        """A writable 1-D array of ``n`` elements of ``dtype`` (contents undefined)."""
        buf = self._bufs.get(name)
        # References when unused: the dict's, ``buf``'s and getrefcount's argument.
        if buf is None or buf.shape[0] < n or buf.dtype != dtype or sys.getrefcount(buf) > 3:
            buf = self._bufs[name] = np.empty(n, dtype=dtype)
        return buf[:n]


ALIGNED_MIN_K = 4
"""Fewest series for the aligned path of :func:`merge_sorted` (below it the loser tree is as
fast)."""


def shared_timestamps(ts_list: Sequence[npt.ArrayLike]) -> bool:
    """Whether there are several arrays and all hold the same int64 timestamps (then any merge
    of their series has each timestamp ``len(ts_list)`` times in a row)."""
    return len(ts_list) > 1 and bool(_m.shared_timestamps(list(ts_list)))


def merge_sorted(
    ts_list: Sequence[npt.ArrayLike],
    f_list: Sequence[npt.ArrayLike],
    *,
    perm: bool = True,
    aligned_min_k: int = ALIGNED_MIN_K,
    scratch: Scratch | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Merge time-sorted series into one stream, as KairosDB's tournament merge (spec §3.4).

    ``ts_list[j]`` (ascending int64 timestamps) and ``f_list[j]`` (float64 values) are series
    ``j``.  Returns ``(ts, f, perm)``: the merged points ordered by timestamp, then value (NaN
    last, ``-0.0`` equal to ``0.0``), then series position -- ``np.lexsort((f, ts))`` of the
    concatenation -- and each point's index in that concatenation (None when ``perm`` is
    False: the caller needs only the values, which may then be computed faster).

    Series with different timestamps go through a loser tree, O(n log k).  When at least
    ``aligned_min_k`` series share all their timestamps (aligned collection) the values form
    a (timestamps x series) matrix whose rows numpy sorts: a SIMD sort when only the values
    are wanted and none is NaN or ``-0.0`` (ties are then bit-identical, so their order is
    invisible), else a stable argsort. With ``scratch`` the aligned path's ``ts`` and ``f``
    may be views of its reused buffers.
    """
    if len(ts_list) != len(f_list):
        raise ValueError(f"{len(ts_list)} timestamp arrays but {len(f_list)} value arrays")
    ts_in, f_in = list(ts_list), list(f_list)
    if _m.ready_pairs(ts_in, f_in):  # nothing to convert or check
        # ready_pairs saw plain 1-D int64 and float64 ndarrays, pairwise of one length.
        ts_arrays = cast("list[np.ndarray]", ts_in)
        f_arrays = cast("list[np.ndarray]", f_in)
    else:
        ts_arrays = [
            t if _ready(t, np.int64) else _int_array(t, f"ts_list[{j}]")
            for j, t in enumerate(ts_in)
        ]
        f_arrays = [
            f if _ready(f, np.float64) else _float_array(f, f"f_list[{j}]")
            for j, f in enumerate(f_in)
        ]
        for j, (t, f) in enumerate(zip(ts_arrays, f_arrays, strict=True)):
            if t.shape != f.shape:
                raise ValueError(f"series {j}: {t.shape[0]} timestamps but {f.shape[0]} values")
    k = len(ts_arrays)
    aligned = k >= max(2, aligned_min_k) and _m.shared_timestamps(ts_arrays)
    for j, t in enumerate(ts_arrays[:1] if aligned else ts_arrays):
        if t.shape[0] > 1 and not (t[1:] > t[:-1]).all():
            raise ValueError(f"series {j}: timestamps are not strictly ascending")
    if aligned:
        return _merge_aligned(ts_arrays[0], f_arrays, perm, scratch)
    ts, f, p = _m.merge_sorted(ts_arrays, f_arrays)
    return ts, f, (p if perm else None)


def _merge_aligned(
    ts: np.ndarray, f_arrays: list[np.ndarray], perm: bool, scratch: Scratch | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    n, k = ts.shape[0], len(f_arrays)
    if scratch is None:
        mat = np.empty((n, k), dtype=np.float64)
        ts_out = np.repeat(ts, k)
    else:
        mat = scratch.take("f", n * k, np.float64).reshape(n, k)
        ts_out = scratch.take("ts", n * k, np.int64)
        ts_out.reshape(n, k)[:] = ts[:, None]
    plain = _m.stack_columns(f_arrays, mat)
    if plain and not perm:
        mat.sort(axis=1)
        return ts_out, mat.reshape(-1), None
    order = np.argsort(mat, axis=1, kind="stable")
    f = np.take_along_axis(mat, order, axis=1).reshape(-1)
    # Series j's i-th point is number j * n + i of the concatenation.
    p = (order * n + np.arange(n, dtype=np.int64)[:, None]).reshape(-1)
    return ts_out, f, (p if perm else None)
