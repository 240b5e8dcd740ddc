"""LEB128 varints and zig-zag, in Python: the one copy every Python encoder and reference uses.

An unsigned varint stores 7 bits a byte, least significant group first, with the high bit set
on every byte but the last.  Zig-zag maps signed to unsigned so small magnitudes stay short
(``0, -1, 1, -2`` -> ``0, 1, 2, 3``).  Each format decides for itself what it refuses (a value
past 63 or 64 bits, a non-canonical trailing zero byte); :func:`read_uvarint` only reads.  The
kernels in ``kairos/_native`` have their own ``nogil`` loops, held to these by property tests.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["MASK64", "encode_uvarint", "encode_uvarints", "read_uvarint", "unzigzag", "zigzag"]

MASK64 = (1 << 64) - 1


def zigzag(v: int) -> int:
    """Signed 64-bit ``v`` as the unsigned zig-zag integer."""
    return ((v << 1) ^ (v >> 63)) & MASK64


def unzigzag(u: int) -> int:
    """Inverse of :func:`zigzag`."""
    return (u >> 1) ^ -(u & 1)


def encode_uvarint(u: int) -> bytes:
    """The varint bytes of the non-negative integer ``u``."""
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def encode_uvarints(values: Iterable[int]) -> bytes:
    """The varints of ``values``, back to back."""
    return b"".join(encode_uvarint(int(v)) for v in values)


def read_uvarint(
    buf: bytes | bytearray | memoryview, pos: int, end: int | None = None, max_bytes: int = 0
) -> tuple[int, int]:
    """Read the varint at ``buf[pos]``; returns ``(value, position after it)``.

    ``value`` keeps every bit read (it may pass 64 bits).  Raises ``ValueError("truncated",
    p)`` when the value does not end before ``end`` (default ``len(buf)``), and
    ``ValueError("too long", p)`` when ``max_bytes`` > 0 bytes were read without reaching the
    last one; ``p`` is the position reached.
    """
    if end is None:
        end = len(buf)
    u = shift = n = 0
    while True:
        if pos >= end:
            raise ValueError("truncated", pos)
        b = buf[pos]
        pos += 1
        n += 1
        u |= (b & 0x7F) << shift
        if b < 0x80:
            return u, pos
        if n == max_bytes:
            raise ValueError("too long", pos)
        shift += 7
