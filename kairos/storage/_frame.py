"""CRC-checked record frames, shared by the WAL, the series log and the manifest.

A frame is ``magic u32 | length u32 | crc32 u32 | payload`` (little-endian); ``crc32`` is
zlib's CRC-32 of the payload.  A reader that meets a short or bad frame stops there: at the end
of a file that is still being written that is simply "not yet", anywhere else it is a torn or
corrupt tail (see ``docs/storage-format.md``).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

__all__ = ["HEADER", "FrameStatus", "encode_frame", "iter_frames"]

HEADER = struct.Struct("<III")
MAGIC = 0x4B52_4346  # "FCRK" on disk


class FrameStatus:
    OK = 0
    SHORT = 1  # the file ends inside a frame
    BAD = 2  # wrong magic or CRC mismatch


def encode_frame(payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def iter_frames(buf: bytes | memoryview, offset: int = 0) -> Iterator[tuple[int, int, memoryview]]:
    """Yield ``(status, end_offset, payload)``; stops after the first non-OK status.

    For a non-OK status ``end_offset`` is the offset of the bad frame.
    """
    mv = memoryview(buf)
    n = len(mv)
    pos = offset
    while pos < n:
        if n - pos < HEADER.size:
            yield FrameStatus.SHORT, pos, mv[0:0]
            return
        magic, length, crc = HEADER.unpack_from(mv, pos)
        if magic != MAGIC:
            yield FrameStatus.BAD, pos, mv[0:0]
            return
        end = pos + HEADER.size + length
        if end > n:
            yield FrameStatus.SHORT, pos, mv[0:0]
            return
        payload = mv[pos + HEADER.size : end]
        if zlib.crc32(payload) != crc:
            yield FrameStatus.BAD, pos, mv[0:0]
            return
        yield FrameStatus.OK, end, payload
        pos = end
