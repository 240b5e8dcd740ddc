"""The histogram data type: explicit-bucket histograms with sum, min and max.

Model
-----
A :class:`Histogram` has ``n`` finite, strictly increasing ``boundaries`` (float64) and
``n + 1`` non-negative ``counts`` (int64) in the OpenTelemetry explicit-bucket convention::

    bucket 0      (-inf,   b[0]]
    bucket i      (b[i-1], b[i]]        0 < i < n
    bucket n      (b[n-1], +inf)        the overflow bucket

plus ``sum``, ``min`` and ``max`` of the samples (each NaN when unknown; ``min <= max`` when both
are known).  Objects are immutable values: the arrays are read-only copies, NaN is stored as the
canonical quiet NaN and -0.0 as 0.0, so two histograms are ``==`` exactly when their
:meth:`Histogram.to_bytes` are equal.  The total count fits in an int64.

Merging two histograms puts each source bucket's whole count into the bucket of the union
boundaries that ends at that source bucket's upper bound, so the cumulative count at every
source boundary is preserved exactly (the overflow bucket goes to the overflow bucket).
Percentiles interpolate linearly inside the bucket where the cumulative count reaches
``q * total_count``, using ``min`` as bucket 0's lower edge and ``max`` as the overflow bucket's
upper edge, and are clamped into ``[min, max]``.

The loops are Cython kernels in ``kairos._native.histogram``; their plain references are in
``kairos.model._histogram_reference``.

JSON forms accepted by :meth:`Histogram.from_json`
--------------------------------------------------
a) direct (what :meth:`Histogram.to_json` writes)::

       {"boundaries": [1, 2], "counts": [0, 3, 1], "total_count": 4, "sum": 6.5,
        "min": 1.5, "max": 2.5}

   ``counts`` has ``len(boundaries) + 1`` entries, or exactly ``len(boundaries)`` meaning an
   empty overflow bucket.  ``total_count``, ``sum``, ``min`` and ``max`` are optional.
b) Prometheus, cumulative counts by upper bound ``le`` (a number or a string, ``"+Inf"``)::

       {"buckets": [{"le": 1, "count": 0}, {"le": "2", "count": 3}, {"le": "+Inf", "count": 4}],
        "count": 4, "sum": 6.5}

c) Grafana/ArpNetworking (kairosdb-histograms), sparse bins keyed by the bucket's lower bound
   with the mantissa truncated to ``precision`` bits (default 7, 1..52)::

       {"bins": {"1.5": 3, "2.5": 1}, "precision": 7, "min": 1.5, "max": 2.5, "sum": 6.5,
        "count": 4}

   A key ``k > 0`` covers ``[k, k + w)`` with ``w = 2**(floor(log2(k)) - precision)``, a key
   ``k < 0`` covers ``(k - w, k]`` with ``w`` computed from ``|k|``, and key 0 covers ``[0, 0]``.
   Both edges of every bin become boundaries and the bin's count goes to the bucket ending at
   its upper edge (the bins above: boundaries ``[1.5, 1.5078125, 2.5, 2.515625]``, counts
   ``[0, 3, 0, 1, 0]``).

In every form ``sum``, ``min`` and ``max`` are optional numbers (``null`` or absent: unknown) and
unknown keys are ignored.  Anything inconsistent raises :class:`kairos.errors.InvalidHistogram`
whose message names the field and the problem.

Binary encoding, version 1
--------------------------
Little-endian, no padding, no alignment; ``n`` is the number of boundaries::

    offset      size     type       field
    0           1        uint8      version, 1
    1           4        uint32     n
    5           8 * n    float64    boundaries[0] .. boundaries[n-1]
    5 + 8 * n   c        varint     counts[0] .. counts[n], n + 1 unsigned LEB128 varints
    5 + 8n + c  8        float64    sum (NaN when unknown)
    13 + 8n + c 8        float64    min (NaN when unknown)
    21 + 8n + c 8        float64    max (NaN when unknown)
                                    total size 29 + 8n + c bytes

A varint stores 7 bits a byte, least significant group first, with the high bit set on every
byte except the last; it is canonical (a multi-byte varint never ends in 0x00) and below
2**63, so each count takes 1 to 9 bytes.  NaN is written as ``00 00 00 00 00 00 f8 7f``.
Example: ``Histogram([1.0], [2, 300], sum=7.0, min=0.5, max=5.0)`` encodes as the 40 bytes::

    01  01 00 00 00  00 00 00 00 00 00 f0 3f  02  ac 02
    00 00 00 00 00 00 1c 40  00 00 00 00 00 00 e0 3f  00 00 00 00 00 00 14 40

:meth:`Histogram.from_bytes` checks every length, the version, the varints, the trailing size
and the same invariants as the constructor, and raises ``InvalidHistogram`` for anything else.
"""

from __future__ import annotations

import math
import numbers
import re
import struct
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from kairos._native import histogram as _kernels
from kairos.errors import InvalidHistogram
from kairos.model.java import LONG_MAX

__all__ = ["DEFAULT_PRECISION", "FORMAT_VERSION", "Histogram", "merge_all", "percentiles"]

FORMAT_VERSION = 1
"""The version byte :meth:`Histogram.to_bytes` writes and :meth:`Histogram.from_bytes` reads."""

DEFAULT_PRECISION = 7
"""Mantissa bits of a Grafana/ArpNetworking ``bins`` histogram without ``precision``."""

_HEADER = struct.Struct("<BI")
_TRAILER = struct.Struct("<3d")
_MAX_VARINT = 9
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INF_WORDS = frozenset({"inf", "+inf", "infinity", "+infinity"})
_BAD_LE_WORDS = frozenset({"-inf", "-infinity", "nan", "+nan", "-nan"})
_VARINT_ERRORS = {
    -1: "ends inside",
    -2: "passes 2**63 - 1 in",
    -3: "has a non-canonical varint for",
}


# --------------------------------------------------------------------------- value checks


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Number):
        return "a number"
    return type(value).__name__


def _canon(x: float) -> float:
    """NaN as the canonical quiet NaN, -0.0 as 0.0."""
    return math.nan if x != x else float(x) + 0.0


def _real(value: object, what: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidHistogram(f"{what} is not a number: {_show(value)}")
    try:
        return float(value)
    except OverflowError:
        raise InvalidHistogram(f"{what} is out of the float64 range: {_show(value)}") from None


def _count(value: object, what: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidHistogram(f"{what} is not a number: {_show(value)}")
    if isinstance(value, numbers.Integral):
        count = int(value)
    else:
        f = float(value)
        if not f.is_integer():
            raise InvalidHistogram(f"{what} is not an integer: {_show(value)}")
        count = int(f)
    if count < 0:
        raise InvalidHistogram(f"{what} is negative: {_show(value)}")
    if count > LONG_MAX:
        raise InvalidHistogram(f"{what} is larger than 2**63 - 1: {_show(value)}")
    return count


def _optional_stat(obj: Mapping[str, Any], key: str) -> float:
    value = obj.get(key)
    return math.nan if value is None else _real(value, f"histogram {key}")


def _as_boundaries(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """A read-only float64 copy of valid boundaries, or InvalidHistogram."""
    try:
        arr = np.asarray(values)
        if arr.dtype.kind not in "iuf":
            if arr.dtype.kind != "O":
                raise ValueError
            arr = np.array([_real(v, "histogram boundary") for v in arr.ravel()]).reshape(arr.shape)
        arr = np.array(arr, dtype=np.float64, copy=True)
    except (ValueError, TypeError, OverflowError):
        raise InvalidHistogram(
            f"histogram boundaries must be a list of numbers, got {_show(values)}"
        ) from None
    if arr.ndim != 1:
        raise InvalidHistogram(f"histogram boundaries must be one-dimensional, got {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise InvalidHistogram(f"histogram boundaries[{i}] is not finite: {float(arr[i])!r}")
    bad = np.flatnonzero(arr[1:] <= arr[:-1])
    if bad.size:
        i = int(bad[0]) + 1
        cur, prev = float(arr[i]), float(arr[i - 1])
        raise InvalidHistogram(
            "histogram boundaries are not strictly increasing: "
            f"boundaries[{i}] = {cur!r} follows boundaries[{i - 1}] = {prev!r}"
        )
    arr += 0.0
    arr.flags.writeable = False
    return arr


def _as_counts(values: npt.ArrayLike, n: int) -> npt.NDArray[np.int64]:
    """A read-only int64 copy of valid counts for ``n`` boundaries, or InvalidHistogram."""
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        raise InvalidHistogram(
            f"histogram counts must be a list of integers, got {_show(values)}"
        ) from None
    if arr.ndim != 1:
        raise InvalidHistogram(f"histogram counts must be one-dimensional, got {arr.shape}")
    if arr.shape[0] != n + 1:
        raise InvalidHistogram(
            f"histogram counts has {arr.shape[0]} entries but boundaries has {n} (expected {n + 1})"
        )
    kind = arr.dtype.kind
    if kind in "iu" and arr.size and arr.min() >= 0 and arr.max() <= LONG_MAX:
        out = arr.astype(np.int64, copy=True)
    elif kind in "iufO":
        out = np.array(
            [_count(v, f"histogram counts[{i}]") for i, v in enumerate(arr.tolist())],
            dtype=np.int64,
        )
    else:
        raise InvalidHistogram(f"histogram counts must be a list of integers, got {_show(values)}")
    out.flags.writeable = False
    return out


def _total(counts: npt.NDArray[np.int64]) -> int:
    """Exact sum of non-negative counts, or InvalidHistogram when it passes 2**63 - 1."""
    if int(counts.max()) <= LONG_MAX // counts.shape[0]:
        return int(counts.sum())
    total = sum(counts.tolist())
    if total > LONG_MAX:
        raise InvalidHistogram(f"histogram total count {total} is larger than 2**63 - 1")
    return total


def _check_extremes(vmin: float, vmax: float) -> None:
    if vmin > vmax:
        raise InvalidHistogram(f"histogram min {vmin!r} is greater than max {vmax!r}")


def _merged_total(histograms: list[Histogram]) -> int:
    total = sum(h._total for h in histograms)
    if total > LONG_MAX:
        raise InvalidHistogram(f"merged histogram total count {total} is larger than 2**63 - 1")
    return total


def _merged_stats(histograms: list[Histogram]) -> tuple[float, float, float]:
    """Sum, min and max of the non-empty histograms (of all of them if every one is empty)."""
    live = [h for h in histograms if h._total > 0] or histograms
    total = 0.0
    for h in live:
        total += h._sum
    mins = [h._min for h in live]
    maxs = [h._max for h in live]
    vmin = math.nan if any(math.isnan(x) for x in mins) else min(mins)
    vmax = math.nan if any(math.isnan(x) for x in maxs) else max(maxs)
    return _canon(total), vmin, vmax


# --------------------------------------------------------------------------- JSON forms


def _parse_direct(obj: Mapping[str, Any]) -> Histogram:
    for key, other in (("boundaries", "counts"), ("counts", "boundaries")):
        if other not in obj:
            raise InvalidHistogram(f"histogram has '{key}' but no '{other}'")
    raw_bounds, raw_counts = obj["boundaries"], obj["counts"]
    for key, raw in (("boundaries", raw_bounds), ("counts", raw_counts)):
        if not isinstance(raw, list | tuple):
            raise InvalidHistogram(f"histogram {key} must be a list, got {_kind(raw)}")
    boundaries = [_real(v, f"histogram boundaries[{i}]") for i, v in enumerate(raw_bounds)]
    counts = [_count(v, f"histogram counts[{i}]") for i, v in enumerate(raw_counts)]
    n = len(boundaries)
    if len(counts) == n:
        counts.append(0)
    elif len(counts) != n + 1:
        raise InvalidHistogram(
            f"histogram counts has {len(counts)} entries but boundaries has {n} (expected {n + 1})"
        )
    if obj.get("total_count") is not None:
        declared = _count(obj["total_count"], "histogram total_count")
        if declared != sum(counts):
            raise InvalidHistogram(
                f"histogram total_count {declared} does not equal the sum of counts {sum(counts)}"
            )
    return Histogram(
        boundaries,
        counts,
        sum=_optional_stat(obj, "sum"),
        min=_optional_stat(obj, "min"),
        max=_optional_stat(obj, "max"),
    )


def _parse_le(value: object, what: str) -> float:
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _INF_WORDS:
            return math.inf
        if text.lower() in _BAD_LE_WORDS:
            raise InvalidHistogram(f"{what} must be a finite number or '+Inf', got {_show(value)}")
        if not _DECIMAL.fullmatch(text):
            raise InvalidHistogram(f"{what} is not a number: {_show(value)}")
        le = float(text)
    else:
        le = _real(value, what)
    if math.isnan(le) or le == -math.inf:
        raise InvalidHistogram(f"{what} must be a finite number or '+Inf', got {_show(value)}")
    if le == math.inf and isinstance(value, str):
        raise InvalidHistogram(f"{what} is out of the float64 range: {_show(value)}")
    return le


def _parse_prometheus(obj: Mapping[str, Any]) -> Histogram:
    raw = obj["buckets"]
    if not isinstance(raw, list | tuple):
        raise InvalidHistogram(f"histogram buckets must be a list, got {_kind(raw)}")
    parsed: list[tuple[float, int, int]] = []
    for i, bucket in enumerate(raw):
        if not isinstance(bucket, Mapping):
            raise InvalidHistogram(
                f"histogram buckets[{i}] must be an object with 'le' and 'count', "
                f"got {_kind(bucket)}"
            )
        for key in ("le", "count"):
            if key not in bucket:
                raise InvalidHistogram(f"histogram buckets[{i}] has no '{key}'")
        le = _parse_le(bucket["le"], f"histogram buckets[{i}].le")
        parsed.append((le, _count(bucket["count"], f"histogram buckets[{i}].count"), i))
    parsed.sort(key=lambda entry: entry[0])
    for (le0, c0, i0), (le1, c1, i1) in pairwise(parsed):
        if le0 == le1:
            raise InvalidHistogram(
                f"histogram buckets[{i0}] and buckets[{i1}] have the same le {le0!r}"
            )
        if c1 < c0:
            raise InvalidHistogram(
                f"histogram buckets are not cumulative: count {c1} at le={le1!r} is less than "
                f"count {c0} at le={le0!r}"
            )
    finite = [(le, c) for le, c, _ in parsed if le != math.inf]
    last_le, last = finite[-1] if finite else (None, 0)
    declared = None if obj.get("count") is None else _count(obj["count"], "histogram count")
    total = last
    if parsed and parsed[-1][0] == math.inf:
        total = parsed[-1][1]
        if declared is not None and declared != total:
            raise InvalidHistogram(
                f"histogram +Inf bucket count {total} does not equal count {declared}"
            )
    elif declared is not None:
        if declared < last:
            raise InvalidHistogram(
                f"histogram count {declared} is less than the cumulative count {last} "
                f"at le={last_le!r}"
            )
        total = declared
    cumulative = [c for _, c in finite]
    counts = [b - a for a, b in zip([0, *cumulative], cumulative, strict=False)]
    counts.append(total - last)
    return Histogram(
        [le for le, _ in finite],
        counts,
        sum=_optional_stat(obj, "sum"),
        min=_optional_stat(obj, "min"),
        max=_optional_stat(obj, "max"),
    )


def _bin_edges(key: float, precision: int) -> tuple[float, float, float]:
    """``(lower, upper, end)``: the bin's edges and the upper edge of the bucket it counts in."""
    if key == 0.0:
        return 0.0, 0.0, 0.0
    width = math.ldexp(1.0, math.frexp(abs(key))[1] - 1 - precision)
    if key > 0.0:
        return key, key + width, key + width
    return key - width, key, key


def _parse_bins(obj: Mapping[str, Any]) -> Histogram:
    raw = obj["bins"]
    if not isinstance(raw, Mapping):
        raise InvalidHistogram(
            f"histogram bins must be an object mapping bucket to count, got {_kind(raw)}"
        )
    raw_precision = obj.get("precision")
    if raw_precision is None:
        precision = DEFAULT_PRECISION
    else:
        try:
            precision = _count(raw_precision, "histogram precision")
        except InvalidHistogram:
            precision = -1
        if not 1 <= precision <= 52:
            raise InvalidHistogram(
                f"histogram precision must be an integer in [1, 52], got {_show(raw_precision)}"
            )
    # (key, lower edge, upper edge, upper edge of the bucket counted in, count, raw key)
    entries: list[tuple[float, float, float, float, int, object]] = []
    for raw_key, raw_count in raw.items():
        what = f"histogram bins[{_show(raw_key)}]"
        if isinstance(raw_key, str):
            if not _DECIMAL.fullmatch(raw_key.strip()):
                raise InvalidHistogram(
                    f"histogram bins key {_show(raw_key)} is not a decimal number"
                )
            key = float(raw_key)
        else:
            key = _real(raw_key, f"histogram bins key {_show(raw_key)}")
        if not math.isfinite(key):
            raise InvalidHistogram(f"histogram bins key {_show(raw_key)} is not finite")
        lower, upper, end = _bin_edges(key, precision)
        if not (math.isfinite(lower) and math.isfinite(upper)):
            raise InvalidHistogram(
                f"histogram bins key {_show(raw_key)} is too large: its bucket at precision "
                f"{precision} reaches past the float64 range"
            )
        entries.append((key + 0.0, lower, upper, end, _count(raw_count, what), raw_key))
    entries.sort(key=lambda entry: entry[0])
    for prev, cur in pairwise(entries):
        if prev[0] == cur[0]:
            raise InvalidHistogram(
                f"histogram bins {_show(prev[5])} and {_show(cur[5])} are the same bucket"
            )
        if cur[1] < prev[2]:
            raise InvalidHistogram(
                f"histogram bins {_show(prev[5])} and {_show(cur[5])} overlap at precision "
                f"{precision}"
            )
    bin_total = sum(entry[4] for entry in entries)
    if obj.get("count") is not None:
        declared = _count(obj["count"], "histogram count")
        if declared != bin_total:
            raise InvalidHistogram(
                f"histogram count {declared} does not equal the sum of bin counts {bin_total}"
            )
    boundaries = sorted({edge for entry in entries for edge in entry[1:3]})
    index = {b: i for i, b in enumerate(boundaries)}
    counts = [0] * (len(boundaries) + 1)
    for entry in entries:
        counts[index[entry[3]]] += entry[4]
    return Histogram(
        boundaries,
        counts,
        sum=_optional_stat(obj, "sum"),
        min=_optional_stat(obj, "min"),
        max=_optional_stat(obj, "max"),
    )


# --------------------------------------------------------------------------- the type


class Histogram:
    """An explicit-bucket histogram with sum, min and max (see the module docstring).

    Parameters
    ----------
    boundaries : array_like of float, shape (n,)
        Finite, strictly increasing bucket upper bounds; stored as read-only float64.
    counts : array_like of int, shape (n + 1,)
        Non-negative sample counts per bucket (integral floats are accepted); stored as
        read-only int64.  The total must fit in an int64.
    sum : float, optional
        Sum of the samples; NaN (the default) when unknown.
    min, max : float, optional
        Smallest and largest sample; NaN (the default) when unknown.

    Raises
    ------
    kairos.errors.InvalidHistogram
        Any of the above does not hold, or ``min > max``.
    """

    __slots__ = ("_boundaries", "_counts", "_max", "_min", "_sum", "_total")

    _boundaries: npt.NDArray[np.float64]
    _counts: npt.NDArray[np.int64]
    _sum: float
    _min: float
    _max: float
    _total: int

    def __init__(
        self,
        boundaries: npt.ArrayLike,
        counts: npt.ArrayLike,
        sum: float = math.nan,
        min: float = math.nan,
        max: float = math.nan,
    ) -> None:
        b = _as_boundaries(boundaries)
        c = _as_counts(counts, b.shape[0])
        stats = [
            math.nan if value is None else _canon(_real(value, f"histogram {name}"))
            for name, value in (("sum", sum), ("min", min), ("max", max))
        ]
        _check_extremes(stats[1], stats[2])
        self._set(b, c, stats[0], stats[1], stats[2], _total(c))

    def _set(
        self,
        boundaries: npt.NDArray[np.float64],
        counts: npt.NDArray[np.int64],
        total_sum: float,
        vmin: float,
        vmax: float,
        total: int,
    ) -> None:
        self._boundaries = boundaries
        self._counts = counts
        self._sum = total_sum
        self._min = vmin
        self._max = vmax
        self._total = total

    @classmethod
    def _trusted(
        cls,
        boundaries: npt.NDArray[np.float64],
        counts: npt.NDArray[np.int64],
        total_sum: float,
        vmin: float,
        vmax: float,
        total: int,
    ) -> Histogram:
        """Wrap arrays that already satisfy every invariant (no checks, no copies)."""
        boundaries.flags.writeable = False
        counts.flags.writeable = False
        self = cls.__new__(cls)
        self._set(boundaries, counts, total_sum, vmin, vmax, total)
        return self

    # ----------------------------------------------------------------------- fields

    @property
    def boundaries(self) -> npt.NDArray[np.float64]:
        """Read-only float64 array, shape (n,): finite, strictly increasing upper bounds."""
        return self._boundaries

    @property
    def counts(self) -> npt.NDArray[np.int64]:
        """Read-only int64 array, shape (n + 1,): non-negative count per bucket."""
        return self._counts

    @property
    def sum(self) -> float:
        """Sum of the samples, NaN when unknown."""
        return self._sum

    @property
    def min(self) -> float:
        """Smallest sample, NaN when unknown."""
        return self._min

    @property
    def max(self) -> float:
        """Largest sample, NaN when unknown."""
        return self._max

    @property
    def total_count(self) -> int:
        """Number of samples, ``counts.sum()`` (exact, at most 2**63 - 1)."""
        return self._total

    # ----------------------------------------------------------------------- statistics

    def percentile(self, q: float) -> float:
        """The q-quantile, interpolated linearly inside its bucket.

        Parameters
        ----------
        q : float
            In [0, 1]; 0.5 is the median.

        Returns
        -------
        float
            NaN for an empty histogram.  Bucket 0's lower edge is ``min`` and the overflow
            bucket's upper edge is ``max`` (the outermost boundary when those are unknown); the
            result is clamped into ``[min, max]``.

        Raises
        ------
        ValueError
            ``q`` is not a number in [0, 1].
        """
        if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0.0 <= q <= 1.0:
            raise ValueError(f"percentile q must be a number in [0, 1], got {_show(q)}")
        return float(
            _kernels.percentile(self._boundaries, self._counts, self._min, self._max, float(q))
        )

    def mean(self) -> float:
        """``sum / total_count``; NaN when the histogram is empty or its sum unknown."""
        return self._sum / self._total if self._total else math.nan

    def merge(self, other: Histogram) -> Histogram:
        """A new histogram holding the samples of both.

        The boundaries are the union of both sets; every source bucket's count lands in the
        union bucket ending at its upper bound.  ``sum`` adds up, ``min``/``max`` take the
        extremes; an empty histogram contributes no statistics.

        Raises
        ------
        kairos.errors.InvalidHistogram
            The merged total count would pass 2**63 - 1.
        """
        if not isinstance(other, Histogram):
            raise TypeError(f"can only merge a Histogram, not {type(other).__name__}")
        total = _merged_total([self, other])
        if np.array_equal(self._boundaries, other._boundaries):
            union = self._boundaries
        else:
            union = np.union1d(self._boundaries, other._boundaries)
        out = np.zeros(union.shape[0] + 1, dtype=np.int64)
        for h in (self, other):
            # Cannot fail: union holds every boundary and the total fits in an int64.
            if _kernels.remap_counts(h._boundaries, h._counts, union, out) >= 0:
                raise AssertionError("histogram remap failed")
        return Histogram._trusted(union, out, *_merged_stats([self, other]), total)

    # ----------------------------------------------------------------------- constructors

    @classmethod
    def from_samples(cls, values: npt.ArrayLike, boundaries: npt.ArrayLike) -> Histogram:
        """Count samples into the buckets of ``boundaries``.

        Parameters
        ----------
        values : array_like of float, shape (m,)
            The samples; NaN samples are skipped.
        boundaries : array_like of float, shape (n,)
            Finite, strictly increasing.

        Returns
        -------
        Histogram
            ``sum``/``min``/``max`` are those of the non-NaN samples (``sum`` 0.0 and
            ``min``/``max`` NaN when there are none).
        """
        b = _as_boundaries(boundaries)
        samples = np.ascontiguousarray(values, dtype=np.float64)
        if samples.ndim != 1:
            raise ValueError(f"samples must be one-dimensional, got shape {samples.shape}")
        counts = np.zeros(b.shape[0] + 1, dtype=np.int64)
        stats = np.array([0.0, math.inf, -math.inf])
        skipped = _kernels.bucket_samples(b, samples, counts, stats)
        total = samples.shape[0] - skipped
        if total == 0:
            return cls._trusted(b, counts, 0.0, math.nan, math.nan, 0)
        return cls._trusted(b, counts, _canon(stats[0]), _canon(stats[1]), _canon(stats[2]), total)

    # ----------------------------------------------------------------------- JSON

    @staticmethod
    def looks_like(obj: object) -> bool:
        """Whether ``obj`` is a dict with the keys of a histogram form.

        True for ``boundaries`` and ``counts`` (direct), ``buckets`` (Prometheus) or ``bins``
        (Grafana/ArpNetworking); the values are not checked.
        """
        return isinstance(obj, Mapping) and (
            ("boundaries" in obj and "counts" in obj) or "buckets" in obj or "bins" in obj
        )

    @classmethod
    def from_json(cls, obj: object) -> Histogram:
        """Parse a decoded JSON histogram in any of the three forms of the module docstring.

        Raises
        ------
        kairos.errors.InvalidHistogram
            ``obj`` is not an object, has no or several forms' keys, or is inconsistent; the
            message names the offending field.
        """
        if not isinstance(obj, Mapping):
            raise InvalidHistogram(f"histogram must be a JSON object, got {_kind(obj)}")
        forms = [
            name
            for name, present in (
                ("'boundaries'/'counts'", "boundaries" in obj or "counts" in obj),
                ("'buckets'", "buckets" in obj),
                ("'bins'", "bins" in obj),
            )
            if present
        ]
        if "boundaries" in obj and "counts" in obj and "bins" in obj and "buckets" not in obj:
            # Kairos's own query output carries both the exact buckets and the Grafana bins;
            # posting it back keeps the exact form.
            obj = {k: v for k, v in obj.items() if k not in ("bins", "precision", "count")}
            forms = forms[:1]
        if len(forms) > 1:
            raise InvalidHistogram(f"histogram mixes the keys of several forms: {', '.join(forms)}")
        if not forms:
            keys = ", ".join(repr(k) for k in list(obj)[:8]) or "none"
            raise InvalidHistogram(
                "histogram needs 'boundaries' and 'counts', 'buckets' (Prometheus) or 'bins' "
                f"(Grafana); got keys: {keys}"
            )
        if "buckets" in obj:
            return _parse_prometheus(obj)
        if "bins" in obj:
            return _parse_bins(obj)
        return _parse_direct(obj)

    def to_json(self) -> dict[str, Any]:
        """The direct JSON form.

        Returns
        -------
        dict
            ``boundaries`` (list of float), ``counts`` (list of int), ``total_count`` and, when
            finite, ``sum``, ``min`` and ``max`` (JSON has no NaN or infinity).
        """
        out: dict[str, Any] = {
            "boundaries": self._boundaries.tolist(),
            "counts": self._counts.tolist(),
            "total_count": self._total,
        }
        for key, value in (("sum", self._sum), ("min", self._min), ("max", self._max)):
            if math.isfinite(value):
                out[key] = value
        return out

    # ----------------------------------------------------------------------- bytes

    def to_bytes(self) -> bytes:
        """The version-1 binary encoding of the module docstring."""
        n = self._boundaries.shape[0]
        if n > 0xFFFFFFFF:
            raise ValueError(f"a histogram with {n} boundaries is too large to encode")
        varints = np.empty(_MAX_VARINT * (n + 1), dtype=np.uint8)
        size = _kernels.encode_varints(self._counts, varints)
        return b"".join(
            (
                _HEADER.pack(FORMAT_VERSION, n),
                self._boundaries.astype("<f8", copy=False).tobytes(),
                varints[:size].tobytes(),
                _TRAILER.pack(self._sum, self._min, self._max),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Histogram:
        """Decode :meth:`to_bytes` output.

        Raises
        ------
        kairos.errors.InvalidHistogram
            ``data`` is not a complete, valid version-1 encoding.
        TypeError
            ``data`` is not bytes-like.
        """
        try:
            raw = memoryview(data).tobytes()
        except TypeError:
            raise TypeError(
                f"histogram bytes must be bytes-like, not {type(data).__name__}"
            ) from None
        size = len(raw)
        if size < _HEADER.size:
            raise InvalidHistogram(
                f"histogram encoding is {size} bytes, shorter than its {_HEADER.size}-byte header"
            )
        version, n = _HEADER.unpack_from(raw)
        if version != FORMAT_VERSION:
            raise InvalidHistogram(
                f"unsupported histogram encoding version {version} (expected {FORMAT_VERSION})"
            )
        smallest = _HEADER.size + 8 * n + (n + 1) + _TRAILER.size
        if size < smallest:
            raise InvalidHistogram(
                f"histogram encoding is {size} bytes, too short for {n} boundaries "
                f"(at least {smallest})"
            )
        boundaries = np.frombuffer(raw, dtype="<f8", count=n, offset=_HEADER.size)
        counts = np.empty(n + 1, dtype=np.int64)
        where = np.zeros(1, dtype=np.int64)
        end = _kernels.decode_varints(
            np.frombuffer(raw, dtype=np.uint8), _HEADER.size + 8 * n, counts, where
        )
        if end < 0:
            raise InvalidHistogram(
                f"histogram encoding {_VARINT_ERRORS[end]} counts[{int(where[0])}]"
            )
        if size - end != _TRAILER.size:
            raise InvalidHistogram(
                f"histogram encoding has {size - end} bytes after its counts "
                f"(expected {_TRAILER.size})"
            )
        total_sum, vmin, vmax = _TRAILER.unpack_from(raw, end)
        return cls(boundaries, counts, sum=total_sum, min=vmin, max=vmax)

    # ----------------------------------------------------------------------- protocol

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (
            self._total == other._total
            and np.array_equal(self._boundaries, other._boundaries)
            and np.array_equal(self._counts, other._counts)
            and all(
                a == b or (a != a and b != b)
                for a, b in (
                    (self._sum, other._sum),
                    (self._min, other._min),
                    (self._max, other._max),
                )
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (Histogram.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        def show(arr: np.ndarray) -> str:
            if arr.shape[0] <= 16:
                return repr(arr.tolist())
            head = ", ".join(map(repr, arr[:4].tolist()))
            tail = ", ".join(map(repr, arr[-4:].tolist()))
            return f"[{head}, ..., {tail}]"

        return (
            f"Histogram(boundaries={show(self._boundaries)}, counts={show(self._counts)}, "
            f"sum={self._sum!r}, min={self._min!r}, max={self._max!r})"
        )


# --------------------------------------------------------------------------- batches


def _pack(
    histograms: list[Histogram],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Boundaries, offsets and counts of histograms stored back to back (kernel layout)."""
    offsets = np.zeros(len(histograms) + 1, dtype=np.int64)
    np.cumsum([h._boundaries.shape[0] for h in histograms], out=offsets[1:])
    boundaries = np.concatenate([h._boundaries for h in histograms])
    counts = np.concatenate([h._counts for h in histograms])
    return boundaries, offsets, counts


def merge_all(histograms: Iterable[Histogram]) -> Histogram:
    """Merge any number of histograms at once; equal to folding :meth:`Histogram.merge`.

    Parameters
    ----------
    histograms : iterable of Histogram
        At least one.

    Raises
    ------
    ValueError
        No histograms.
    kairos.errors.InvalidHistogram
        The merged total count would pass 2**63 - 1.
    """
    hs = list(histograms)
    if not hs:
        raise ValueError("merge_all needs at least one histogram")
    for h in hs:
        if not isinstance(h, Histogram):
            raise TypeError(f"can only merge a Histogram, not {type(h).__name__}")
    if len(hs) == 1:
        return hs[0]
    total = _merged_total(hs)
    boundaries, offsets, counts = _pack(hs)
    first = hs[0]._boundaries
    if all(np.array_equal(h._boundaries, first) for h in hs[1:]):
        union = first
    else:
        union = np.unique(boundaries)
    out = np.zeros(union.shape[0] + 1, dtype=np.int64)
    # Cannot fail: union holds every boundary and the total fits in an int64.
    if _kernels.remap_counts_batch(boundaries, offsets, counts, union, out) >= 0:
        raise AssertionError("histogram remap failed")
    return Histogram._trusted(union, out, *_merged_stats(hs), total)


def percentiles(histograms: Iterable[Histogram], q: float) -> npt.NDArray[np.float64]:
    """:meth:`Histogram.percentile` of many histograms in one kernel call.

    Returns
    -------
    float64 ndarray, shape (k,)
    """
    if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile q must be a number in [0, 1], got {_show(q)}")
    hs = list(histograms)
    out = np.empty(len(hs), dtype=np.float64)
    if not hs:
        return out
    boundaries, offsets, counts = _pack(hs)
    mins = np.array([h._min for h in hs], dtype=np.float64)
    maxs = np.array([h._max for h in hs], dtype=np.float64)
    _kernels.percentile_batch(boundaries, offsets, counts, mins, maxs, float(q), out)
    return out
