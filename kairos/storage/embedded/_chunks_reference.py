"""Plain Python/numpy reference of the chunk codec (used by the tests and the benchmark only).

Same functions as ``kairos.storage.embedded.chunks`` (``encode_chunk``, ``decode_chunk``,
``chunk_info``), written as loops over Python ints so that the byte layout of the facade's
docstring is easy to follow; ``tests/property/test_chunks.py`` checks that the Cython kernels
produce the same bytes.  Bit streams are built as one Python int.  Inputs are assumed valid
(the facade validates); corrupt input raises ``ChunkError`` or ``IndexError``.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from kairos.errors import ChunkError
from kairos.model.varint import encode_uvarint, read_uvarint, unzigzag, zigzag

__all__ = ["chunk_info", "decode_chunk", "encode_chunk"]

_M64 = (1 << 64) - 1
_BLOCK = 128
_MAX_DECIMALS = 9
_LONG, _DECIMAL, _XOR = 0, 1, 2
_DOD_BUCKETS = ((0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20))


def _s64(u: int) -> int:
    u &= _M64
    return u - (1 << 64) if u >> 63 else u


class _Bits:
    """MSB-first bit stream."""

    def __init__(self) -> None:
        self.value = 0
        self.n = 0

    def put(self, v: int, n: int) -> None:
        self.value = (self.value << n) | (v & ((1 << n) - 1))
        self.n += n

    def tobytes(self) -> bytes:
        pad = -self.n % 8
        return (self.value << pad).to_bytes((self.n + pad) // 8, "big")


def _find_decimal(values: np.ndarray) -> tuple[int, np.ndarray, list[int]] | None:
    """``(k, integers, exception positions)``: the smallest k with at most n // 32 exceptions."""
    n = len(values)
    for k in range(_MAX_DECIMALS + 1):
        p = 10.0**k
        with np.errstate(over="ignore", invalid="ignore"):
            x = values * p
            good = np.abs(x) < 2.0**53
            ints = np.where(good, np.rint(np.where(good, x, 0.0)), 0.0).astype(np.int64)
        good &= (ints.astype(np.float64) / p).view(np.int64) == values.view(np.int64)
        bad = np.flatnonzero(~good).tolist()
        if len(bad) > n // 32:
            continue
        filled = ints.tolist()
        first_good = int(np.argmax(good))
        for i in bad:  # an exception takes its predecessor's integer, or the first good one's
            filled[i] = filled[i - 1] if i > first_good else filled[first_good]
        return k, np.array(filled, np.int64), bad
    return None


def _encode_patches(values: np.ndarray, bad: list[int]) -> bytes:
    out = bytearray(encode_uvarint(len(bad)))
    prev = -1
    for i in bad:
        out += encode_uvarint(i - prev - 1) + values[i : i + 1].tobytes()  # little-endian bits
        prev = i
    return bytes(out)


def _encode_ts(ts: list[int]) -> bytes:
    if len(ts) <= 2 or len({b - a for a, b in pairwise(ts)}) == 1:
        return b""
    prev = ts[1] - ts[0]
    bits = _Bits()
    for a, b in pairwise(ts[1:]):
        d = b - a
        dod = d - prev
        prev = d
        if dod == 0:
            bits.put(0, 1)
            continue
        for code, ncode, width in _DOD_BUCKETS:
            if -(1 << (width - 1)) <= dod < 1 << (width - 1):
                bits.put(code, ncode)
                bits.put(dod, width)
                break
        else:
            bits.put(0b1111, 4)
            bits.put(dod, 64)
    return encode_uvarint(ts[1] - ts[0]) + bits.tobytes()


def _encode_for(values: list[int]) -> bytes:
    out = bytearray(encode_uvarint(zigzag(values[0])))
    deltas = [_s64(b - a) for a, b in pairwise(values)]
    for i in range(0, len(deltas), _BLOCK):
        block = deltas[i : i + _BLOCK]
        lo = min(block)
        offsets = [(d - lo) & _M64 for d in block]
        width = max(offsets).bit_length()
        out += encode_uvarint(zigzag(lo)) + bytes([width])
        packed = 0
        for j, x in enumerate(offsets):
            packed |= x << (j * width)
        out += packed.to_bytes((len(block) * width + 7) // 8, "little")
    return bytes(out)


def _encode_xor(words: list[int]) -> bytes:
    bits = _Bits()
    bits.put(words[0], 64)
    plead = -1
    ptrail = 0
    for a, b in pairwise(words):
        x = a ^ b
        if x == 0:
            bits.put(0, 1)
            continue
        lead = min(64 - x.bit_length(), 31)
        trail = (x & -x).bit_length() - 1
        if plead >= 0 and lead >= plead and trail >= ptrail:
            bits.put(0b10, 2)
            bits.put(x >> ptrail, 64 - plead - ptrail)
        else:
            sig = 64 - lead - trail
            bits.put(0b11, 2)
            bits.put(lead, 5)
            bits.put(sig & 63, 6)
            bits.put(x >> trail, sig)
            plead, ptrail = lead, trail
    return bits.tobytes()


def encode_chunk(ts: np.ndarray, values: np.ndarray) -> bytes:
    """As ``chunks.encode_chunk`` (same bytes)."""
    tsl = [int(t) for t in ts]
    if values.dtype == np.int64:
        kind, k = 0, 0
        venc, section = _LONG, _encode_for([int(v) for v in values])
    else:
        kind = 1
        found = _find_decimal(values)
        if found is not None:
            k, ints, bad = found
            section = _encode_patches(values, bad) + _encode_for([int(v) for v in ints])
            venc = _DECIMAL
        else:
            k = 0
            venc, section = _XOR, _encode_xor([int(w) & _M64 for w in values.view(np.int64)])
    ts_section = _encode_ts(tsl)
    flags = kind | venc << 1 | (1 if ts_section else 0) << 3 | k << 4
    head = (
        bytes([flags])
        + encode_uvarint(len(tsl))
        + encode_uvarint(zigzag(tsl[0]))
        + encode_uvarint(tsl[-1] - tsl[0])
        + encode_uvarint(len(ts_section))
    )
    return head + ts_section + section


class _Reader:
    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def uvarint(self) -> int:
        u, self.pos = read_uvarint(self.buf, self.pos)
        return u


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.left = 8 * len(data)

    def get(self, n: int) -> int:
        if n > self.left:
            raise ChunkError("truncated chunk")
        self.left -= n
        return (self.value >> self.left) & ((1 << n) - 1)


def _header(buf: bytes) -> tuple[int, int, int, int, int, int]:
    r = _Reader(buf, 1)
    count = r.uvarint()
    min_ts = unzigzag(r.uvarint())
    max_ts = _s64(min_ts + r.uvarint())
    ts_len = r.uvarint()
    return buf[0], count, min_ts, max_ts, ts_len, r.pos


def chunk_info(buf: bytes) -> tuple[int, int, int, int]:
    """As ``chunks.chunk_info``."""
    flags, count, min_ts, max_ts, _, _ = _header(bytes(buf))
    return count, flags & 1, min_ts, max_ts


def _decode_ts(section: bytes, n: int, min_ts: int, max_ts: int) -> list[int]:
    if not section:
        d = (max_ts - min_ts) // (n - 1) if n > 1 else 0
        return [_s64(min_ts + i * d) for i in range(n)]
    r = _Reader(section)
    d = r.uvarint()
    ts = [min_ts, _s64(min_ts + d)]
    bits = _BitReader(section[r.pos :])
    for _ in range(n - 2):
        if bits.get(1) == 0:
            dod = 0
        elif bits.get(1) == 0:
            dod = _sext(bits.get(14), 14)
        elif bits.get(1) == 0:
            dod = _sext(bits.get(17), 17)
        elif bits.get(1) == 0:
            dod = _sext(bits.get(20), 20)
        else:
            dod = bits.get(64)
        d = (d + dod) & _M64
        ts.append(_s64(ts[-1] + d))
    return ts


def _sext(v: int, n: int) -> int:
    return v - (1 << n) if v >> (n - 1) else v


def _decode_for(r: _Reader, n: int) -> list[int]:
    values = [unzigzag(r.uvarint())]
    for i in range(1, n, _BLOCK):
        m = min(_BLOCK, n - i)
        lo = unzigzag(r.uvarint())
        width = r.buf[r.pos]
        r.pos += 1
        nbytes = (m * width + 7) // 8
        packed = int.from_bytes(r.buf[r.pos : r.pos + nbytes], "little")
        r.pos += nbytes
        for j in range(m):
            x = (packed >> (j * width)) & ((1 << width) - 1)
            values.append(_s64(values[-1] + x + lo))
    return values


def _decode_xor(section: bytes, n: int) -> list[int]:
    bits = _BitReader(section)
    words = [bits.get(64)]
    plead = ptrail = 0
    for _ in range(n - 1):
        if bits.get(1) == 0:
            words.append(words[-1])
            continue
        if bits.get(1) == 0:
            x = bits.get(64 - plead - ptrail) << ptrail
        else:
            lead = bits.get(5)
            sig = bits.get(6) or 64
            trail = 64 - lead - sig
            x = bits.get(sig) << trail
            plead, ptrail = lead, trail
        words.append(words[-1] ^ x)
    return words


def decode_chunk(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """As ``chunks.decode_chunk`` for a valid chunk."""
    buf = bytes(buf)
    flags, n, min_ts, max_ts, ts_len, pos = _header(buf)
    ts = np.array(_decode_ts(buf[pos : pos + ts_len], n, min_ts, max_ts), np.int64)
    venc = (flags >> 1) & 3
    r = _Reader(buf, pos + ts_len)
    if venc == _XOR:
        words = _decode_xor(buf[r.pos :], n)
        return ts, np.array([_s64(w) for w in words], np.int64).view(np.float64)
    patches = {}
    if venc == _DECIMAL:
        at = -1
        for _ in range(r.uvarint()):
            at += r.uvarint() + 1
            patches[at] = buf[r.pos : r.pos + 8]
            r.pos += 8
    ints = np.array(_decode_for(r, n), np.int64)
    if venc == _LONG:
        return ts, ints
    values = ints.astype(np.float64) / 10.0 ** (flags >> 4)
    for at, raw in patches.items():
        values[at] = np.frombuffer(raw, np.float64)[0]
    return ts, values
