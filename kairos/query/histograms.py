"""Range aggregators over histogram groups, and the JSON a histogram value is printed as.

Data flow (one result group of type ``histogram``, its ``Stream.objs`` the encoded values)::

    objs -> Histogram.from_bytes per point -> windows = aggregators._range._segments (as numbers)
         -> count/sum/min/max/avg   per-point stats columns, numpy ``reduceat`` per window
         -> percentile              merge_all per window, one ``percentiles`` kernel call
         -> merge                   one merged histogram per window (re-encoded)
         -> apdex                   every bucket of every point as columns, ``reduceat``

Semantics (the ArpNetworking ``kairosdb-histograms`` plugin's, where it has one)
------------------------------------------------------------------------------------
* ``count`` is the total sample count of the window, ``sum`` the sum of the histograms' sums,
  ``min``/``max`` the extremes, ``avg`` ``sum / count``.  As in :func:`kairos.model.histogram.merge_all`,
  empty histograms contribute no statistics unless the whole window is empty.
* ``percentile`` is :meth:`Histogram.percentile` of the window's :func:`merge_all`.
* ``merge`` -> one histogram per window.  When every histogram of the window is *bin-shaped*
  (below) the window is merged the plugin's way: each bin key is truncated to
  ``min(precision, every input's precision)`` mantissa bits and equal keys add up (``precision``
  defaults to 52: no truncation), and the result is those bins.  Otherwise the window is the
  exact union-boundary :func:`merge_all` and ``precision`` has no effect (explicit boundaries
  have no mantissa precision to reduce).
* ``apdex`` with target ``T`` (default 1, the plugin's) is ``(S + U / 2) / N``: ``N`` the
  window's total count, ``S`` the samples <= ``T``, ``U`` those in ``(T, 4T]``.  Bucket counts
  are split where ``T`` (or ``4T``) falls inside a bucket, by linear interpolation over the
  bucket's range -- the model :meth:`Histogram.percentile` inverts, with the same edges
  (``min`` as bucket 0's lower edge, ``max`` as the overflow bucket's upper edge, the outermost
  boundary when those are unknown).  So a bucket ``(lo, hi]`` straddling ``T`` counts
  ``(T - lo) / (hi - lo)`` of its samples as satisfied, and the answer is exact whenever ``T``
  and ``4T`` are bucket boundaries.  (The Java plugin counts a bin wholly satisfied when its
  key -- lower edge -- is <= ``T``; the two differ by at most the straddling bins' counts.)
  Each source bucket is classified before any merging, so union-merge cannot move counts.
* A window whose result is unknown (no samples for ``avg``/``percentile``/``apdex``, a ``sum``,
  ``min`` or ``max`` that some non-empty histogram does not know) yields no point, as the
  plugin returns no point for an empty mean or percentile.  Null points (from ``gaps``) are
  skipped, as the plugin skips non-histogram points.

Histogram values in responses (:func:`value_json`)
--------------------------------------------------
Every histogram value, raw or merged, prints in the shape the ArpNetworking Grafana plugin
reads (``bins`` + numeric ``precision`` => heatmap), plus the lossless direct form::

    {"bins": {"1.5": 3, "2.5": 1}, "precision": 7, "min": 1.5, "max": 2.5, "sum": 6.5,
     "count": 4, "boundaries": [...], "counts": [...], "total_count": 4}

``min``/``max``/``sum`` are ``null`` when unknown; ``boundaries``/``counts``/``total_count`` are
:meth:`Histogram.to_json`'s and always describe the value exactly.  ``bins``:

* *bin-shaped* histograms -- every non-empty bucket is exactly one ArpNetworking bin at some
  precision ``p`` (1..52): ``(k, k + w]`` with ``k > 0`` on the ``p``-bit grid and
  ``w = 2**(floor(log2 k) - p)``, ``(k - w, k]`` for ``k < 0``, or a bucket ending at 0 (the
  zero bin).  This is what ingesting the ``bins`` form produces, so bins -> store -> query
  round-trips exactly: the keys are the bins' keys and ``precision`` is ``p`` (the smallest
  one, keys truncated to it, if the buckets mix precisions; 52 if there are no such bins).
* other (explicit-boundary) histograms: one entry per non-empty bucket, keyed by its lower
  edge (bucket 0: ``min``, or the double just below its upper boundary when ``min`` is unknown
  or equal to it, so every bucket keeps its own entry), with ``precision`` 52, i.e. the keys
  are exact.  The plugin draws each
  entry as a cell from the key up to the end of its 52-bit bin, so such histograms show as
  thin lines at their bucket lower edges; the exact buckets are in ``boundaries``/``counts``.

Keys print as Java's ``Double.toString`` (``1.0``, ``0.005``, ``1.0E-4``), as the plugin's
server does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from kairos.errors import BadRequest, InvalidHistogram
from kairos.model.histogram import Histogram, merge_all, percentiles
from kairos.query.spec import RangeAgg
from kairos.query.stream import Stream

__all__ = [
    "AGGREGATORS",
    "HISTOGRAM_ONLY",
    "MAX_PRECISION",
    "aggregate",
    "apdex",
    "bins_of",
    "filter_bins",
    "merge_window",
    "percent_remaining",
    "value_json",
    "values_json",
]

AGGREGATORS = frozenset({"apdex", "avg", "count", "max", "merge", "min", "percentile", "sum"})
"""Range aggregators that accept histogram groups."""

HISTOGRAM_ONLY = frozenset({"apdex", "merge", "percent_remaining"})
"""Aggregators that accept nothing but histogram groups (others pass through them unchanged)."""

MAX_PRECISION = 52
"""Mantissa bits of a float64: a ``precision`` that truncates nothing."""

_TINY = float(np.finfo(np.float64).tiny)


# -- bins ------------------------------------------------------------------------------------


def _truncate(keys: npt.NDArray[np.float64], precision: int) -> npt.NDArray[np.float64]:
    """Java's ``HistogramKeyUtility.truncateToDouble``: keep sign, exponent and ``precision``
    mantissa bits (rounds toward zero)."""
    mask = np.int64(~((1 << (MAX_PRECISION - precision)) - 1))
    return (np.ascontiguousarray(keys, dtype=np.float64).view(np.int64) & mask).view(np.float64)


def bins_of(h: Histogram) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], int] | None:
    """The ArpNetworking bins of a bin-shaped histogram (module docstring), else ``None``.

    Returns
    -------
    keys : float64 ndarray, shape (k,)
        One key per non-empty bucket, increasing.
    counts : int64 ndarray, shape (k,)
    precision : int
        The smallest precision among the bins; :data:`MAX_PRECISION` when there are none
        (an empty histogram, or only the zero bin).
    """
    b, c = h.boundaries, h.counts
    n = b.shape[0]
    nz = np.flatnonzero(c)
    if nz.size and nz[-1] == n:
        return None  # the overflow bucket is never a bin
    hi = b[nz]
    zero = hi == 0.0
    has_lo = nz >= 1
    if not np.all(has_lo | zero):
        return None  # bucket 0 (-inf, b0] is a bin only as the zero bin
    lo = np.where(has_lo, b[np.maximum(nz - 1, 0)], 0.0)
    pos = ~zero & (lo > 0.0)
    neg = ~zero & (hi < 0.0)
    if not np.all(zero | pos | neg):
        return None
    keys = np.where(pos, lo, np.where(neg, hi, 0.0))
    signed = ~zero
    if not signed.any():
        return keys, c[nz], MAX_PRECISION
    k, width = keys[signed], (hi - lo)[signed]
    if np.any(np.abs(k) < _TINY):
        return None  # subnormal keys: Java's bit grid is not frexp's
    wm, we = np.frexp(width)
    _, ke = np.frexp(np.abs(k))
    p = (ke - we).astype(np.int64)
    if np.any(wm != 0.5) or np.any((p < 1) | (p > MAX_PRECISION)):
        return None
    masks = ~((np.int64(1) << (MAX_PRECISION - p)) - 1)
    on_grid = (k.view(np.int64) & masks) == k.view(np.int64)
    if not on_grid.all():
        return None
    exact = np.where(k > 0, k + width == hi[signed], hi[signed] - width == lo[signed])
    if not exact.all():
        return None
    return keys, c[nz], int(p.min())


def _sum_by_key(
    keys: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    uniq, inverse = np.unique(keys + 0.0, return_inverse=True)
    sums = np.zeros(uniq.shape[0], dtype=np.int64)
    np.add.at(sums, inverse.reshape(-1), counts)
    return uniq, sums


def _from_bins(
    keys: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
    precision: int,
    like: Histogram,
) -> Histogram:
    """The histogram of distinct ``precision``-bit bins, with ``like``'s sum, min and max
    (the layout :meth:`Histogram.from_json` builds for the ``bins`` form)."""
    _, e = np.frexp(np.abs(keys))
    width = np.ldexp(1.0, e - 1 - precision)
    zero = keys == 0.0
    lower = np.where(zero, 0.0, np.where(keys > 0, keys, keys - width))
    upper = np.where(zero, 0.0, np.where(keys > 0, keys + width, keys))
    boundaries = np.unique(np.concatenate([lower, upper]))
    out = np.zeros(boundaries.shape[0] + 1, dtype=np.int64)
    np.add.at(out, np.searchsorted(boundaries, upper), counts)
    return Histogram(boundaries, out, sum=like.sum, min=like.min, max=like.max)


def merge_window(histograms: Sequence[Histogram], precision: int = MAX_PRECISION) -> Histogram:
    """One window of ``merge`` (module docstring).

    Raises
    ------
    kairos.errors.InvalidHistogram
        The merged total count would pass 2**63 - 1.
    """
    merged = merge_all(histograms)
    shaped = [bins_of(h) for h in histograms]
    if any(s is None for s in shaped):
        return merged
    found = [s for s in shaped if s is not None]
    q = min([precision, *(s[2] for s in found)])
    keys = np.concatenate([s[0] for s in found])
    counts = np.concatenate([s[1] for s in found])
    keys, counts = _sum_by_key(_truncate(keys, q), counts)
    return _from_bins(keys, counts, q, merged)


def _java_double_str(x: float) -> str:
    """Java's ``Double.toString`` (shortest round-trip digits)."""
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    if 1e-3 <= abs(x) < 1e7:
        return repr(x)  # Python prints this range as Java does: "1.0", "0.005", "1234567.5"
    sign, digits, exp = Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits))
    mantissa = ds[0] + "." + (ds[1:].rstrip("0") or "0")
    return f"{'-' if sign else ''}{mantissa}E{len(ds) + int(exp) - 1}"


def _lower_edges(h: Histogram) -> npt.NDArray[np.float64]:
    """A distinct key for every bucket, shape (n + 1,): bucket ``i > 0`` is keyed by its lower
    edge ``boundaries[i - 1]``; bucket 0, ``(-inf, boundaries[0]]``, by ``min`` when that lies
    below ``boundaries[0]``, else (``min`` unknown, or exactly on the boundary) by the double
    just below ``boundaries[0]``, so it never shares bucket 1's key."""
    b = h.boundaries
    if b.shape[0] == 0:
        first = next((v for v in (h.min, h.max) if math.isfinite(v)), 0.0)
    elif math.isfinite(h.min) and h.min < b[0]:
        first = float(h.min)
    else:
        first = math.nextafter(float(b[0]), -math.inf)
    return np.concatenate([[first], b])


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def value_json(h: Histogram) -> dict[str, Any]:
    """One histogram value as the Grafana plugin reads it (module docstring)."""
    shaped = bins_of(h)
    if shaped is not None:
        keys, counts, precision = shaped
        keys, counts = _sum_by_key(_truncate(keys, precision), counts)
    else:
        nz = np.flatnonzero(h.counts)
        keys, counts = _lower_edges(h)[nz], h.counts[nz]  # distinct, ascending
        precision = MAX_PRECISION
    out: dict[str, Any] = {
        "bins": {
            _java_double_str(k): c for k, c in zip(keys.tolist(), counts.tolist(), strict=True)
        },
        "precision": precision,
        "min": _finite(h.min),
        "max": _finite(h.max),
        "sum": _finite(h.sum),
        "count": h.total_count,
    }
    out.update(h.to_json())
    return out


def values_json(s: Stream) -> list:
    """``[[ts, value], ...]`` of a histogram stream (``None`` stays ``None``: gaps)."""
    assert s.objs is not None
    return [
        [t, None if o is None else value_json(Histogram.from_bytes(o))]
        for t, o in zip(s.ts.tolist(), s.objs, strict=True)
    ]


# -- aggregators -----------------------------------------------------------------------------


def _windows(starts: npt.NDArray[np.int64], n: int) -> list[slice]:
    ends = np.append(starts[1:], n).tolist()
    return [slice(a, b) for a, b in zip(starts.tolist(), ends, strict=True)]


def _stats(
    hs: list[Histogram], starts: npt.NDArray[np.int64]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per window: total count (int64), sum, min, max (float64, NaN when unknown)."""
    total = np.fromiter((h.total_count for h in hs), dtype=np.int64, count=len(hs))
    sums = np.fromiter((h.sum for h in hs), dtype=np.float64, count=len(hs))
    mins = np.fromiter((h.min for h in hs), dtype=np.float64, count=len(hs))
    maxs = np.fromiter((h.max for h in hs), dtype=np.float64, count=len(hs))
    live = total > 0
    sizes = np.diff(np.append(starts, len(hs)))
    window_live = np.add.reduceat(live.astype(np.int64), starts) > 0
    use = live | ~np.repeat(window_live, sizes)
    approx = np.add.reduceat(total.astype(np.float64), starts)
    if np.any(approx >= 2.0**63):
        raise InvalidHistogram(
            f"merged histogram total count {int(approx.max())} is larger than 2**63 - 1"
        )
    counts = np.add.reduceat(total, starts)
    return (
        counts,
        np.add.reduceat(np.where(use, sums, 0.0), starts) + 0.0,
        np.minimum.reduceat(np.where(use, mins, np.inf), starts),
        np.maximum.reduceat(np.where(use, maxs, -np.inf), starts),
    )


def _bucket_columns(
    hs: list[Histogram],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every bucket of every histogram as columns: lower and upper edge (the percentile
    model's, clamped into ``[min, max]``), count, and the first bucket of each histogram."""
    sizes = np.fromiter((h.boundaries.shape[0] + 1 for h in hs), dtype=np.int64, count=len(hs))
    first = np.zeros(len(hs), dtype=np.int64)
    np.cumsum(sizes[:-1], out=first[1:])
    b = np.concatenate([np.concatenate([[np.nan], h.boundaries, [np.nan]]) for h in hs])
    counts = np.concatenate([h.counts for h in hs])
    mins = np.fromiter((h.min for h in hs), dtype=np.float64, count=len(hs))
    maxs = np.fromiter((h.max for h in hs), dtype=np.float64, count=len(hs))
    # In b, histogram j's boundaries sit between two NaN pads, its block starting at
    # first[j] + j: bucket i of j has lower edge b[first[j] + j + i] and upper edge the next.
    owner = np.repeat(np.arange(len(hs)), sizes)
    pos = np.arange(counts.shape[0]) + owner
    lo, hi = b[pos], b[pos + 1]
    vmin, vmax = mins[owner], maxs[owner]
    lo = np.where(np.isnan(lo), np.where(np.isnan(vmin), hi, vmin), lo)
    hi = np.where(np.isnan(hi), np.where(np.isnan(vmax), lo, vmax), hi)
    lo = np.where(np.isnan(lo), hi, lo)  # no boundaries and no min: only max is known
    lo = np.where(np.isnan(vmin), lo, np.maximum(lo, vmin))
    hi = np.where(np.isnan(vmax), hi, np.minimum(hi, vmax))
    return lo, hi, counts, first


def _fraction_at_most(t: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Share of each bucket's samples <= t, uniform over ``(lo, hi]``; a point mass at ``hi``
    when the bucket has no width.  NaN where the edges are unknown."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        spread = np.clip((t - lo) / (hi - lo), 0.0, 1.0)
    return np.where(hi > lo, spread, np.where(np.isnan(hi), np.nan, (t >= hi).astype(float)))


def apdex(
    hs: list[Histogram], starts: npt.NDArray[np.int64], target: float
) -> npt.NDArray[np.float64]:
    """Apdex of each window (module docstring); NaN for a window without samples.

    Parameters
    ----------
    hs : list of Histogram, length m
    starts : int64 ndarray, shape (w,)
        Window starts into ``hs`` (``starts[0] == 0``, increasing).
    target : float
        T >= 0.
    """
    lo, hi, counts, first = _bucket_columns(hs)
    weight = counts.astype(np.float64)
    live = counts > 0
    sat = np.where(live, _fraction_at_most(target, lo, hi), 0.0) * weight
    upto4 = np.where(live, _fraction_at_most(4.0 * target, lo, hi), 0.0) * weight
    bucket_starts = first[starts]
    satisfied = np.add.reduceat(sat, bucket_starts)
    tolerating = np.add.reduceat(upto4, bucket_starts) - satisfied
    total = np.add.reduceat(weight, bucket_starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (satisfied + tolerating / 2.0) / total


def aggregate(
    agg: RangeAgg, s: Stream, starts: npt.NDArray[np.int64], rtime: npt.NDArray[np.int64]
) -> Stream:
    """Apply range aggregator ``agg`` (a name in :data:`AGGREGATORS`) to histogram stream
    ``s``, whose windows begin at ``starts`` and are reported at ``rtime``.

    Returns a ``histogram`` stream for ``merge``, a ``number`` stream otherwise.

    Raises
    ------
    kairos.errors.InvalidHistogram
        A window's total count would pass 2**63 - 1.
    ValueError
        ``percentile`` outside [0, 1].
    """
    assert s.objs is not None
    hs = [Histogram.from_bytes(o) for o in s.objs]
    name = agg.name
    if name == "merge":
        merged = [merge_window(hs[w], agg.precision) for w in _windows(starts, len(hs))]
        out = Stream("histogram", rtime, objs=[h.to_bytes() for h in merged])
        if s.orig is not None:  # the plugin's merge adds up the original counts
            out.orig = np.add.reduceat(s.orig, starts) if len(starts) else s.orig[:0]
        return out
    if name == "percentile":
        merged = [merge_all(hs[w]) for w in _windows(starts, len(hs))]
        values = percentiles(merged, float(agg.percentile or 0.0))
    elif name == "apdex":
        values = apdex(hs, starts, agg.target)
    else:
        count, total, vmin, vmax = _stats(hs, starts)
        if name == "count":
            return Stream.longs(rtime, count)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = {
                "sum": total,
                "min": vmin,
                "max": vmax,
                "avg": np.where(count > 0, total / np.maximum(count, 1), np.nan),
            }[name]
    keep = ~np.isnan(values)
    return Stream.doubles(rtime[keep], values[keep])


# -- percent_remaining and the bin filter (kairosdb-extensions) ----------------------------------


def _original_counts(s: Stream, hs: list[Histogram]) -> npt.NDArray[np.int64]:
    if s.orig is not None:
        return s.orig
    return np.fromiter((h.total_count for h in hs), dtype=np.int64, count=len(hs))


def percent_remaining(s: Stream) -> Stream:
    """``HistogramPercentRemainingAggregator``: each histogram's sample count over the count
    it had before the bin ``filter`` (1.0 unless filtered; -1.0 for an empty original)."""
    if s.null is not None and s.null.any():  # gaps' nulls: Java's IllegalArgumentException (500)
        raise BadRequest("Cannot compute percent remaining of non histogram data point")
    hs = [Histogram.from_bytes(o) for o in s.objs or []]
    counts = np.fromiter((h.total_count for h in hs), dtype=np.int64, count=len(hs))
    orig = _original_counts(s, hs)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(orig > 0, counts / np.maximum(orig, 1), -1.0)
    return Stream.doubles(s.ts, values.astype(np.float64))


_COMPARE = {
    "lte": np.less_equal,
    "lt": np.less,
    "gte": np.greater_equal,
    "gt": np.greater,
}


def _java_bounds(
    keys: npt.NDArray[np.float64], precision: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``HistogramKeyUtility``'s (lower, upper) inclusive bounds of bins ``keys``:
    ``truncateToDouble`` and ``binInclusiveBound`` (the last double of the bin), swapped
    for negative keys."""
    shift = MAX_PRECISION - precision
    bits = _truncate(keys, precision).view(np.int64)
    edge = ((((bits >> shift) + 1) << shift) - 1).view(np.float64)
    key = bits.view(np.float64)
    negative = bits < 0  # the sign bit: -0.0 counts as negative, as in Java
    return np.where(negative, edge, key), np.where(negative, key, edge)


def _discard(
    lower: np.ndarray, upper: np.ndarray, op: str, threshold: float, inclusion: str
) -> np.ndarray:
    """The bin filter's ``shouldDiscard`` per bin: ``op`` names the values removed; a bin
    goes when both bounds are removed (keep) or either is (discard); ``equal`` drops the
    bins containing the threshold (discard) or nothing (keep)."""
    if op == "equal":
        if inclusion == "keep":
            return np.zeros(lower.shape, bool)
        return (threshold >= lower) & (threshold <= upper)
    at_lower = _COMPARE[op](lower, threshold)
    at_upper = _COMPARE[op](upper, threshold)
    return (at_lower & at_upper) if inclusion == "keep" else (at_lower | at_upper)


def _unchanged(h: Histogram, op: str, threshold: float, inclusion: str | None) -> bool:
    """``histNotChangedByThreshold``."""
    lo, hi = h.min, h.max
    return {
        "gt": lambda: threshold >= hi,
        "gte": lambda: threshold > hi,
        "lt": lambda: threshold <= lo,
        "lte": lambda: threshold < lo,
        "equal": lambda: (
            inclusion == "keep" or threshold < lo or (hi < threshold and inclusion == "discard")
        ),
    }[op]()


def _filter_one(h: Histogram, op: str, threshold: float, inclusion: str | None) -> Histogram | None:
    if _unchanged(h, op, threshold, inclusion):
        return h
    if inclusion is None:  # Java: a NullPointerException, or this IllegalStateException (500)
        raise BadRequest("Unsupported FilterIndeterminateInclusion Enum type")
    nz = np.flatnonzero(h.counts)
    bins = bins_of(h)
    if bins is not None:
        keys, counts, precision = bins
        lower, upper = _java_bounds(keys, precision)
    else:  # explicit buckets: the edges, keyed (as printed) by the lower edge
        lo, hi, cs, _ = _bucket_columns([h])
        lower, upper, counts, keys = lo[nz], hi[nz], cs[nz], lo[nz]
        precision = MAX_PRECISION
    gone = _discard(lower, upper, op, threshold, inclusion)
    if gone.all():
        return None
    kept = ~gone
    new_counts = np.zeros_like(h.counts)
    new_counts[nz[kept]] = h.counts[nz[kept]]
    total = float(np.sum(keys[kept] * counts[kept]))
    # minNotChangedByThreshold / maxNotChangedByThreshold: the histogram's own extremes
    # stay unless the filter can have removed them (the first / last bin then decides).
    vmin, vmax = h.min, h.max
    keep_min = {"lt": threshold <= vmin, "lte": threshold < vmin, "equal": not gone[0]}
    keep_max = {"gt": threshold >= vmax, "gte": threshold > vmax, "equal": not gone[-1]}
    if not keep_min.get(op, True):
        vmin = float(np.min(lower[kept]))
    if not keep_max.get(op, True):
        vmax = float(np.max(upper[kept]))
    return Histogram(h.boundaries, new_counts, total, vmin, vmax)


def filter_bins(s: Stream, op: str, threshold: float, inclusion: str | None) -> Stream:
    """The histogram side of the extensions' ``filter`` (``HistogramFilterAggregator``).

    ``op`` names the values removed (as for numbers); each bin is judged by its inclusive
    bounds (:func:`_discard`).  A histogram the threshold cannot change is kept as is; one
    that loses every bin is dropped; otherwise it keeps its buckets' boundaries with the
    discarded counts zeroed, ``sum`` = sum of key * count over the kept bins, and ``min`` /
    ``max`` from the kept bins' bounds where the filter may have cut them.  The original
    count travels on in ``Stream.orig`` for ``percent_remaining``.

    Raises
    ------
    BadRequest
        ``op`` is ``ne``: the plugin's bin filter has no such operation (Java's
        ``IllegalStateException``, a 500 there; the query is at fault, so a 400 here).
    """
    if s.null is not None and s.null.any():
        s = s.take(~s.null)  # the plugin's bin filter skips points that are not histograms
    if op not in _COMPARE and op != "equal" and len(s):
        raise BadRequest("Unsupported FilterOp Enum type")
    hs = [Histogram.from_bytes(o) for o in s.objs or []]
    orig = _original_counts(s, hs)
    keep, objs = [], []
    for j, h in enumerate(hs):
        f = _filter_one(h, op, threshold, inclusion)
        if f is not None:
            keep.append(j)
            objs.append(s.objs[j] if f is h else f.to_bytes())  # type: ignore[index]
    idx = np.asarray(keep, dtype=np.int64)
    return Stream("histogram", s.ts[idx], objs=objs, orig=orig[idx])
