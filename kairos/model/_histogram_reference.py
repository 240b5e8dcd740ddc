"""Plain Python/numpy reference implementations of the histogram kernels and byte encoding.

Written for obviousness, not speed: the property tests in
``tests/property/test_histogram_kernels.py`` check ``kairos._native.histogram`` and
``kairos.model.histogram`` against these.  Nothing on a hot path imports this module.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from itertools import accumulate

import numpy as np

from kairos.model.java import LONG_MAX
from kairos.model.varint import encode_uvarints, read_uvarint

__all__ = [
    "INT64_MAX",
    "bucket_samples_ref",
    "decode_varints_ref",
    "encode_histogram_ref",
    "encode_varints_ref",
    "percentile_ref",
    "remap_counts_ref",
]

INT64_MAX = LONG_MAX


def bucket_samples_ref(
    boundaries: Sequence[float], samples: Sequence[float]
) -> tuple[list[int], int, float, float, float]:
    """Counts per bucket, NaNs skipped, and left-to-right sum, min and max of the rest.

    Returns ``(counts, skipped, sum, min, max)`` with ``len(counts) == len(boundaries) + 1``;
    ``min``/``max`` are ``+inf``/``-inf`` when no sample is counted.
    """
    kept = [float(x) for x in samples if not math.isnan(x)]
    # side="left": the bucket of x is the number of boundaries strictly below x.
    idx = np.searchsorted(np.asarray(boundaries, dtype=np.float64), kept, side="left")
    counts = np.bincount(idx, minlength=len(boundaries) + 1).tolist()
    total = 0.0
    for x in kept:
        total += x
    lo = min(kept, default=math.inf)
    hi = max(kept, default=-math.inf)
    return counts, len(samples) - len(kept), total, lo, hi


def remap_counts_ref(
    src_boundaries: Sequence[float], src_counts: Sequence[int], dst_boundaries: Sequence[float]
) -> list[int]:
    """Target counts of one source histogram on a superset of its boundaries.

    Raises
    ------
    KeyError
        A source boundary is missing from ``dst_boundaries``.
    OverflowError
        A target count would pass 2**63 - 1.
    """
    position = {float(b): j for j, b in enumerate(dst_boundaries)}
    out = [0] * (len(dst_boundaries) + 1)
    for b, c in zip(src_boundaries, src_counts, strict=False):
        out[position[float(b)]] += int(c)
    out[-1] += int(src_counts[len(src_boundaries)])
    if any(c > INT64_MAX for c in out):
        raise OverflowError("count passes 2**63 - 1")
    return out


def percentile_ref(
    boundaries: Sequence[float], counts: Sequence[int], vmin: float, vmax: float, q: float
) -> float:
    """The q-quantile by linear interpolation (see ``kairos._native.histogram.percentile``)."""
    n = len(boundaries)
    total = sum(int(c) for c in counts)
    if total <= 0:
        return math.nan
    rank = q * float(total)
    cumulative = list(accumulate(int(c) for c in counts))
    nonempty = [i for i in range(n + 1) if counts[i] > 0]
    bucket = next((i for i in nonempty if float(cumulative[i]) >= rank), nonempty[-1])
    before = cumulative[bucket] - int(counts[bucket])
    if n == 0:
        lo = vmin if math.isfinite(vmin) else vmax
        hi = vmax if math.isfinite(vmax) else vmin
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return math.nan
    else:
        lo = (
            (vmin if math.isfinite(vmin) else boundaries[0])
            if bucket == 0
            else boundaries[bucket - 1]
        )
        hi = (
            (vmax if math.isfinite(vmax) else boundaries[n - 1])
            if bucket == n
            else boundaries[bucket]
        )
    lo, hi = float(lo), float(hi)
    frac = min(1.0, max(0.0, (rank - float(before)) / float(counts[bucket])))
    value = lo + frac * (hi - lo)
    if not math.isfinite(value):
        value = lo * (1.0 - frac) + hi * frac
    value = min(max(value, lo), hi)
    if not math.isnan(vmin):
        value = max(value, vmin)
    if not math.isnan(vmax):
        value = min(value, vmax)
    return value


def encode_varints_ref(values: Sequence[int]) -> bytes:
    """Unsigned LEB128: 7 bits a byte, least significant group first, high bit = more."""
    return encode_uvarints(values)


def decode_varints_ref(buf: bytes, pos: int, count: int) -> tuple[list[int], int]:
    """Read ``count`` canonical varints; returns ``(values, end)``.

    Raises
    ------
    ValueError
        ``"truncated"``, ``"overflow"`` (past 2**63 - 1) or ``"noncanonical"`` (a multi-byte
        value ending in a zero byte), with the value's index as the second argument.
    """
    values = []
    for i in range(count):
        try:
            value, end = read_uvarint(buf, pos, max_bytes=10)
        except ValueError as e:
            raise ValueError("truncated" if e.args[0] == "truncated" else "overflow", i) from None
        if buf[end - 1] == 0 and end - pos > 1:
            raise ValueError("noncanonical", i)
        if value > INT64_MAX:
            raise ValueError("overflow", i)
        values.append(value)
        pos = end
    return values, pos


def encode_histogram_ref(
    boundaries: Sequence[float], counts: Sequence[int], total: float, vmin: float, vmax: float
) -> bytes:
    """The version-1 byte encoding of ``kairos.model.histogram`` built with ``struct``."""
    return (
        struct.pack("<BI", 1, len(boundaries))
        + struct.pack(f"<{len(boundaries)}d", *boundaries)
        + encode_varints_ref(counts)
        + struct.pack("<3d", total, vmin, vmax)
    )
