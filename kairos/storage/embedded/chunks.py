"""Chunk codec of the embedded engine v2: one series' points, compressed.

Inside an immutable block each series' points are stored as chunks (Prometheus TSDB style).  A
chunk holds one or more points of one kind -- int64 longs or float64 doubles; strings and
histograms are stored elsewhere -- with strictly ascending int64 millisecond timestamps.  It is
self-describing: :func:`decode_chunk` needs only its bytes, and :func:`chunk_info` reads the
count, kind and time range from the header alone.

Byte layout (``uvarint`` is unsigned LEB128, 7 bits a byte, low group first; ``zz(x)`` is the
zig-zag map ``(x << 1) ^ (x >> 63)``; differences are taken modulo 2**64)::

    chunk    = flags:u8  count:uvarint  uvarint(zz(min_ts))  uvarint(max_ts - min_ts)
               ts_len:uvarint  timestamps[ts_len]  values[...to the end of the chunk]

    flags    bit 0      kind: 0 long, 1 double
             bits 1-2   value encoding: 0 LONG (longs), 1 DECIMAL (doubles), 2 XOR (doubles)
             bit 3      timestamp encoding: 0 CONSTANT, 1 DOD
             bits 4-7   k, the DECIMAL exponent (0..9); 0 otherwise

``count >= 1``; ``min_ts`` and ``max_ts`` are the first and last timestamps.

Timestamps.  CONSTANT (every interval equal, and every chunk of 1 or 2 points): the section is
empty (``ts_len = 0``), point i is at ``min_ts + i * (max_ts - min_ts) / (count - 1)``: a
regular series costs 0 bits a point.  DOD: ``uvarint(ts[1] - ts[0])``, then for each later
point the delta of deltas ``dod = (ts[i] - ts[i-1]) - (ts[i-1] - ts[i-2])`` as a bit code, MSB
first, the last byte padded with zero bits (Gorilla's buckets, widened for milliseconds)::

    '0'                     dod = 0
    '10'   + 14 bits        -2**13 <= dod < 2**13   (two's complement)
    '110'  + 17 bits        -2**16 <= dod < 2**16
    '1110' + 20 bits        -2**19 <= dod < 2**19
    '1111' + 64 bits        anything else

Values, LONG: ``uvarint(zz(v[0]))``, then the ``count - 1`` deltas ``v[i] - v[i-1]`` in
blocks of 128 (the last one shorter): ``uvarint(zz(lo))  width:u8  bits`` where ``lo`` is the
block's smallest delta (as int64), ``width`` (0..64) the bit length of the largest
``delta - lo`` and ``bits`` the ``delta - lo`` values packed LSB first, ``ceil(m * width / 8)``
bytes for m deltas.

Values, DECIMAL: doubles that are exactly ``integer / 10**k`` -- ``rint(v * 10**k)`` below
2**53 in magnitude and ``float(integer) / 10**k`` giving back the same 64 bits -- stored as
those integers, except at most ``count // 32`` exceptions (NaN, infinities, -0.0, 0.1 + 0.2,
...); ``k`` is the smallest exponent in 0..9 that leaves few enough exceptions::

    npatch:uvarint  npatch x (uvarint(gap)  bits:8 bytes little-endian)  LONG section

``gap`` is the exception's position minus the previous one's minus 1 (the first: its
position).  The LONG section holds the integers, an exception taking its predecessor's (or,
before the first good value, the first good value's) so that it costs no delta.

Values, XOR (every other double): Gorilla's XOR encoding, MSB first, the last byte padded with
zero bits: the first value's 64 bits, then for each later value ``x = bits ^ previous bits``::

    '0'                                   x = 0
    '10' + (64 - L - T) bits              x >> T fits the previous window (L leading and T
                                          trailing zero bits)
    '11' + L:5 bits + S:6 bits + S bits   a new window: L = min(leading zeros, 31),
                                          S = 64 - L - trailing zeros (64 written as 0)

The codec is lossless for every bit pattern (NaN payloads, infinities, -0.0, denormals, int64
extremes).  The Cython kernels are ``kairos._native.chunks``; ``_chunks_reference`` is a plain
numpy/Python version producing the same bytes (the property tests compare them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kairos._native import chunks as _k
from kairos.errors import ChunkError

__all__ = [
    "DOUBLE_CHUNK",
    "LONG_CHUNK",
    "ChunkError",
    "chunk_info",
    "decode_chunk",
    "decode_chunks",
    "decode_series",
    "encode_chunk",
]

LONG_CHUNK, DOUBLE_CHUNK = 0, 1

Buffer = bytes | bytearray | memoryview


_MESSAGES = {
    -1: "truncated chunk",
    -2: "corrupt chunk header",
    -3: "corrupt chunk timestamps",
    -4: "corrupt chunk values",
    -5: "trailing bytes after the chunk",
}


def _check(rc: int) -> None:
    if rc < 0:
        raise ChunkError(_MESSAGES.get(rc, f"corrupt chunk (status {rc})"))


def encode_chunk(ts: np.ndarray, values: np.ndarray) -> bytes:
    """Encode one chunk.

    Parameters
    ----------
    ts : int64 array, shape (n,), n >= 1
        Strictly ascending millisecond timestamps.
    values : int64 or float64 array, shape (n,)
        The dtype picks the kind: int64 a LONG_CHUNK, float64 a DOUBLE_CHUNK.

    Returns
    -------
    bytes

    Raises
    ------
    ChunkError
        Bad dtypes or shapes, no points, or timestamps not strictly ascending.
    """
    ts = np.asarray(ts)
    values = np.asarray(values)
    if ts.dtype != np.int64:
        raise ChunkError(f"timestamps must be int64, not {ts.dtype}")
    if values.dtype != np.int64 and values.dtype != np.float64:
        raise ChunkError(f"values must be int64 or float64, not {values.dtype}")
    if ts.ndim != 1 or values.shape != ts.shape:
        raise ChunkError(f"shapes {ts.shape} and {values.shape}: want two equal 1-d arrays")
    n = ts.shape[0]
    if n == 0:
        raise ChunkError("a chunk holds at least one point")
    is_double = values.dtype == np.float64
    out = np.empty(_k.max_encoded_size(n), np.uint8)
    size = _k.encode(
        np.ascontiguousarray(ts),
        np.ascontiguousarray(values).view(np.int64),
        is_double,
        out,
        np.empty(2 * n if is_double else 1, np.int64),
    )
    if size <= 0:
        raise ChunkError(f"timestamps not strictly ascending at index {-size}: {int(ts[-size])}")
    return out[:size].tobytes()


def _header(buf: Buffer) -> np.ndarray:
    h = np.empty(6, np.int64)
    _check(_k.header(_as_u8(buf), h))
    return h


def _as_u8(buf: Buffer) -> Buffer:
    if isinstance(buf, memoryview) and (buf.format != "B" or buf.ndim != 1):
        return buf.cast("B")
    return buf


def chunk_info(buf: Buffer) -> tuple[int, int, int, int]:
    """``(count, kind, min_ts, max_ts)`` from the header alone (the rest is not read)."""
    h = _header(buf)
    return int(h[1]), int(h[0]) & 1, int(h[2]), int(h[3])


def _decode_into(buf: Buffer, ts: np.ndarray, values: np.ndarray) -> None:
    _check(_k.decode(_as_u8(buf), ts, values.view(np.int64)))


def decode_chunk(buf: Buffer) -> tuple[np.ndarray, np.ndarray]:
    """Decode one chunk.

    Returns
    -------
    ts : int64 array, shape (count,)
    values : int64 array (LONG_CHUNK) or float64 array (DOUBLE_CHUNK), shape (count,)

    Raises
    ------
    ChunkError
        The bytes are not a whole, valid chunk.
    """
    h = _header(buf)
    n = int(h[1])
    ts = np.empty(n, np.int64)
    values = np.empty(n, np.float64 if int(h[0]) & 1 else np.int64)
    _decode_into(buf, ts, values)
    return ts, values


def decode_chunks(bufs: Sequence[Buffer], start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Points of several chunks of one series with ``start <= ts <= end``.

    Parameters
    ----------
    bufs : the series' chunks, ascending and not overlapping, all of one kind
    start, end : int, inclusive millisecond bounds

    Returns
    -------
    ts : int64 array, shape (m,)
    values : int64 or float64 array, shape (m,)
        float64 when ``bufs`` is empty.

    Raises
    ------
    ChunkError
        A chunk is corrupt, or the chunks mix kinds.
    """
    bufs = [_as_u8(b) for b in bufs]
    h = np.empty((len(bufs), 6), np.int64)
    bad, rc = _k.headers(bufs, h)
    if bad >= 0:
        raise ChunkError(f"chunk {bad}: {_MESSAGES.get(rc, rc)}")
    kinds = h[:, 0] & 1
    if len(bufs) and (kinds != kinds[0]).any():
        raise ChunkError("chunks of one series mix longs and doubles")
    kind = int(kinds[0]) if len(bufs) else DOUBLE_CHUNK
    picked = (h[:, 3] >= start) & (h[:, 2] <= end)
    total = int(h[picked, 1].sum())
    ts = np.empty(total, np.int64)
    values = np.empty(total, np.int64 if kind == LONG_CHUNK else np.float64)
    bad, rc = _k.decode_list(bufs, picked.view(np.uint8), ts, values.view(np.int64))
    if bad >= 0:
        raise ChunkError(f"chunk {bad}: {_MESSAGES.get(rc, rc)}")
    if total and (ts[0] < start or ts[-1] > end):
        lo = int(np.searchsorted(ts, start, "left"))
        hi = int(np.searchsorted(ts, end, "right"))
        return ts[lo:hi], values[lo:hi]
    return ts, values


def decode_series(
    bufs: Sequence[Buffer], first: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Decode the whole chunks of several series back to back, all of one kind.

    Parameters
    ----------
    bufs : each series' chunks in time order, series after series
    first : int64 array, the position in ``bufs`` of each series' first chunk (strictly
        ascending, starting at 0)

    Returns
    -------
    ts : list of int64 arrays, the timestamps of each series
    values : int64 or float64 array, every series' values back to back
    bounds : int64 array, shape (len(first) + 1,): series k's values are
        ``values[bounds[k]:bounds[k + 1]]``

    A series whose chunks all have constant steps gets the very array of an earlier such
    series whose chunks have the same first and last timestamps and counts (their timestamps
    are equal): its own timestamps are not decoded. Series collected at the same instants
    (an aligned scrape) then cost one timestamp array, and a merge of them recognises it by
    its address. The timestamp arrays are read-only.

    Raises
    ------
    ChunkError
        A chunk is corrupt, or the chunks mix kinds.
    """
    bufs = [_as_u8(b) for b in bufs]
    n, m = len(bufs), len(first)
    h = np.empty((n, 6), np.int64)
    bad, rc = _k.headers(bufs, h)
    if bad >= 0:
        raise ChunkError(f"chunk {bad}: {_MESSAGES.get(rc, rc)}")
    kinds = h[:, 0] & 1
    if n and (kinds != kinds[0]).any():
        raise ChunkError("chunks of several series mix longs and doubles")
    kind = int(kinds[0]) if n else DOUBLE_CHUNK
    counts = h[:, 1]
    ends = np.append(first, n)
    bounds = np.concatenate(([0], np.cumsum(counts)))[ends]
    src = np.arange(m)
    nrows = np.diff(ends)
    if m > 1:
        constant = ((h[:, 0] >> 3) & 1) == 0
        all_constant = np.logical_and.reduceat(constant, first)
        for r in np.unique(nrows[all_constant]).tolist():
            cand = np.flatnonzero(all_constant & (nrows == r))
            if len(cand) < 2:
                continue
            # a series' key: (count, min_ts, max_ts) of each of its chunks, as one byte string
            rows = first[cand][:, None] + np.arange(r)
            key = np.ascontiguousarray(h[rows][:, :, 1:4]).reshape(len(cand), 3 * r)
            _, head, inverse = np.unique(
                key.view(np.dtype((np.void, 24 * r))).reshape(-1),
                return_index=True,
                return_inverse=True,
            )
            src[cand] = cand[head[inverse.reshape(-1)]]  # the earliest series with the key
    shared = src != np.arange(m)
    picked = np.ones(n, np.uint8)
    picked[np.repeat(shared, nrows)] = 2
    ts_counts = np.where(picked == 1, counts, 0)
    ts = np.empty(int(ts_counts.sum()), np.int64)
    values = np.empty(int(bounds[-1]), np.int64 if kind == LONG_CHUNK else np.float64)
    bad, rc = _k.decode_list(bufs, picked, ts, values.view(np.int64))
    if bad >= 0:
        raise ChunkError(f"chunk {bad}: {_MESSAGES.get(rc, rc)}")
    ts.flags.writeable = False  # shared between series: nobody may write one in place
    tb = np.concatenate(([0], np.cumsum(ts_counts)))[ends].tolist()
    out: list[np.ndarray] = []
    for k, s in enumerate(src.tolist()):
        out.append(out[s] if s != k else ts[tb[k] : tb[k + 1]])
    return out, values, bounds
