"""Block files of the embedded engine (v2): compressed chunks per series plus an offset index.

A block holds points of many series, sorted by (series, ts), one point per (series, ts).  Each
series' points are cut into chunks of at most :data:`CHUNK_POINTS` points; a chunk is encoded by
:mod:`kairos.storage.embedded.chunks` (delta-of-delta timestamps, compressed values).  The
index at the end of the file lists every chunk with its series id, point count, time range,
offset, length and CRC-32, sorted by (series, min_ts), so a reader finds a series' chunks with a
binary search and reads (and checks) only their bytes.

Layout (little-endian)::

    header   "KBK2" | u32 version = 2
    chunks   chunk records, back to back
    index    n_chunks x INDEX_DTYPE (40 bytes each)
    footer   u64 index_offset | u32 n_chunks | u32 crc32(index) | u64 n_points | "KBKF"

A chunk record::

    u8 kind (0 long, 1 double, 2 string, 3 histogram) | u8 flags (bit 0: expiry section)
    u32 n | n bytes: chunks.encode_chunk(ts, values)
        values: the long / the double / for strings and histograms the byte length of each
    [strings and histograms]  u32 m | m bytes: the objects' bytes, back to back
    [flags bit 0]             u32 e | e bytes: chunks.encode_chunk(ts, expires)  (ms, 0 = never)

Blocks are written once (fsync of the file and its directory before a manifest names them)
and never modified.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from kairos._native import crc
from kairos.errors import CorruptFile
from kairos.model.batch import DOUBLE, HISTOGRAM, LONG, STRING
from kairos.model.java import LONG_MAX, LONG_MIN
from kairos.storage._fs import fsync_dir, remove_quietly
from kairos.storage.embedded import chunks

__all__ = ["CHUNK_POINTS", "INDEX_DTYPE", "Block", "Points", "write_block"]

MAGIC = b"KBK2"
FOOTER_MAGIC = b"KBKF"
VERSION = 2
HEADER = struct.Struct("<4sI")
FOOTER = struct.Struct("<QIIQ4s")
RECORD = struct.Struct("<BBI")
U32 = struct.Struct("<I")
CHUNK_POINTS = 4096
"""Most points in one chunk: big enough that the per-chunk overhead (index entry, headers) is
a small fraction of a byte per point, small enough that a short query decodes little."""

INDEX_DTYPE = np.dtype(
    [
        ("series", "<u4"),
        ("count", "<u4"),
        ("min_ts", "<i8"),
        ("max_ts", "<i8"),
        ("offset", "<u8"),
        ("length", "<u4"),
        ("crc", "<u4"),
    ]
)
_HAS_EXPIRY = 1


@dataclass(slots=True)
class Points:
    """Decoded points of one series: ``values`` is int64 (the long, or the double's bits, as in
    a batch), ``objs`` the bytes of strings/histograms (else None), ``expires`` ms (0 = never)."""

    ts: np.ndarray
    values: np.ndarray
    expires: np.ndarray
    objs: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, idx: np.ndarray | slice) -> Points:
        objs = None
        if self.objs is not None:
            if isinstance(idx, slice):
                objs = self.objs[idx]
            else:
                objs = [self.objs[i] for i in np.asarray(idx).tolist()]
        return Points(self.ts[idx], self.values[idx], self.expires[idx], objs)

    @staticmethod
    def concat(parts: list[Points]) -> Points:
        if len(parts) == 1:
            return parts[0]
        objs: list[bytes] | None = None
        if parts[0].objs is not None:
            objs = []
            for p in parts:
                assert p.objs is not None  # the parts of one series are all of its kind
                objs.extend(p.objs)
        return Points(
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.expires for p in parts]),
            objs,
        )


def _encode_record(kind: int, pts: Points) -> bytes:
    ts = np.ascontiguousarray(pts.ts, np.int64)
    flags = _HAS_EXPIRY if pts.expires.any() else 0
    out = []
    if kind == DOUBLE:
        main = chunks.encode_chunk(ts, pts.values.view(np.float64))
    elif kind == LONG:
        main = chunks.encode_chunk(ts, np.ascontiguousarray(pts.values, np.int64))
    else:
        assert pts.objs is not None  # strings and histograms carry their bytes
        lengths = np.fromiter((len(o) for o in pts.objs), np.int64, len(pts.objs))
        main = chunks.encode_chunk(ts, lengths)
    out.append(RECORD.pack(kind, flags, len(main)))
    out.append(main)
    if kind in (STRING, HISTOGRAM):
        assert pts.objs is not None
        blob = b"".join(pts.objs)
        out.append(U32.pack(len(blob)))
        out.append(blob)
    if flags & _HAS_EXPIRY:
        exp = chunks.encode_chunk(ts, np.ascontiguousarray(pts.expires, np.int64))
        out.append(U32.pack(len(exp)))
        out.append(exp)
    return b"".join(out)


def _decode_record(buf: memoryview, path: str) -> tuple[int, Points]:
    try:
        kind, flags, n = RECORD.unpack_from(buf, 0)
        pos = RECORD.size
        ts, vals = chunks.decode_chunk(buf[pos : pos + n])
        pos += n
        objs = None
        if kind in (STRING, HISTOGRAM):
            (m,) = U32.unpack_from(buf, pos)
            pos += 4
            blob = bytes(buf[pos : pos + m])
            pos += m
            ends = np.cumsum(vals)
            if len(ends) and int(ends[-1]) != m:
                raise ValueError("object lengths do not add up")
            starts = ends - vals
            objs = [blob[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
            vals = np.zeros(len(ts), np.int64)
        elif kind == DOUBLE:
            vals = vals.view(np.int64)
        if flags & _HAS_EXPIRY:
            (e,) = U32.unpack_from(buf, pos)
            pos += 4
            _, exp = chunks.decode_chunk(buf[pos : pos + e])
        else:
            exp = np.zeros(len(ts), np.int64)
    except (ValueError, struct.error) as e:
        raise CorruptFile(path, f"undecodable chunk: {e}") from None
    return kind, Points(ts, vals, exp, objs)


def write_block(path: str, kinds: np.ndarray, items: Iterable[tuple[int, Points]]) -> dict:
    """Write ``items`` - (series id, its points sorted by ts, unique), in ascending series id -
    as a block at ``path`` (written, fsynced, and its directory fsynced).  A block is not
    visible until a manifest names it, so it needs no temp file: one a crash left half-written
    is not named and is deleted when the writer starts.

    ``kinds[sid]`` is each series' kind.  Returns the block's manifest entry fields.
    """
    index = []
    offset = HEADER.size
    points = 0
    min_ts, max_ts = None, None
    try:
        with open(path, "wb") as f:
            f.write(HEADER.pack(MAGIC, VERSION))
            for sid, pts in items:
                kind = int(kinds[sid])
                n = len(pts)
                points += n
                first, last = int(pts.ts[0]), int(pts.ts[-1])
                min_ts = first if min_ts is None else min(min_ts, first)
                max_ts = last if max_ts is None else max(max_ts, last)
                for lo in range(0, n, CHUNK_POINTS):
                    hi = min(lo + CHUNK_POINTS, n)
                    rec = _encode_record(kind, pts.take(slice(lo, hi)))
                    f.write(rec)
                    index.append(
                        (
                            sid,
                            hi - lo,
                            int(pts.ts[lo]),
                            int(pts.ts[hi - 1]),
                            offset,
                            len(rec),
                            zlib.crc32(rec),
                        )
                    )
                    offset += len(rec)
            raw = np.array(index, INDEX_DTYPE).tobytes()
            f.write(raw)
            f.write(FOOTER.pack(offset, len(index), zlib.crc32(raw), points, FOOTER_MAGIC))
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
    except BaseException:
        # A full disk (or anything else): leave no half-written block taking the space.
        remove_quietly(path)
        raise
    fsync_dir(os.path.dirname(path))
    return {
        "rows": points,
        "min_ts": min_ts if min_ts is not None else 0,
        "max_ts": max_ts if max_ts is not None else -1,
        "size": size,
        "chunks": len(index),
    }


_ZEROS = np.zeros(CHUNK_POINTS, np.int64)
_ZEROS.flags.writeable = False


def _zeros(n: int) -> np.ndarray:
    """``n`` zero expiry times (a read-only view: nothing writes them)."""
    return _ZEROS[:n] if n <= CHUNK_POINTS else np.zeros(n, np.int64)


class Block:
    """A block file, memory-mapped read-only; the index is checked when opened, each chunk's
    CRC when it is read."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < HEADER.size + FOOTER.size:
                    raise CorruptFile(path, f"block of {size} bytes is truncated")
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise CorruptFile(path, "block named by the manifest is missing") from None
        buf = memoryview(self._map)
        self.buf = buf
        magic, version = HEADER.unpack_from(buf, 0)
        index_offset, n_chunks, index_crc, n_points, fmagic = FOOTER.unpack_from(
            buf, size - FOOTER.size
        )
        if magic != MAGIC or fmagic != FOOTER_MAGIC or version != VERSION:
            raise CorruptFile(path, "not a Kairos block (bad magic or version)")
        end = index_offset + n_chunks * INDEX_DTYPE.itemsize
        if end != size - FOOTER.size:
            raise CorruptFile(path, "block index does not end at the footer (truncated?)")
        raw = buf[index_offset:end]
        if zlib.crc32(raw) != index_crc:
            raise CorruptFile(path, "block index failed its CRC check")
        self.index = np.frombuffer(raw, INDEX_DTYPE).copy()
        self.series = self.index["series"]
        self.rows = int(n_points)
        self.data_end = index_offset

    def locate(self, sids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index rows ``[lo, hi)`` of each series id in ``sids`` (uint32-comparable)."""
        keys = sids.astype(np.uint32)
        return (
            np.searchsorted(self.series, keys, "left"),
            np.searchsorted(self.series, keys, "right"),
        )

    def select(self, sids: np.ndarray, start: int, end: int) -> np.ndarray:
        """Index entries (in index order) of the series in ``sids`` whose chunks overlap
        ``[start, end]``."""
        lo, hi = self.locate(sids)
        lengths = hi - lo
        has = lengths > 0
        if not has.any():
            return self.index[:0]
        lo, lengths = lo[has], lengths[has]
        # Every index row of the requested series, then those overlapping the range.
        first = np.repeat(lo - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        idx = self.index[first + np.arange(int(lengths.sum()))]
        return idx[(idx["max_ts"] >= start) & (idx["min_ts"] <= end)]

    def kinds(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each entry's record kind and flags (its first two bytes)."""
        off = idx["offset"].astype(np.int64)
        if len(idx) and int((off + idx["length"]).max()) > self.data_end:
            raise CorruptFile(self.path, "a chunk runs past the chunk area")
        head = np.frombuffer(self.buf, np.uint8, count=self.data_end)
        return head[off], head[off + 1]

    def payloads(self, idx: np.ndarray) -> list[memoryview]:
        """The CRC-checked chunk bytes (after the record header) of numeric entries without
        expiry times, for :func:`chunks.decode_chunks`."""
        off = idx["offset"].astype(np.int64)
        length = idx["length"].astype(np.int64)
        chunk_area = self.buf[: self.data_end]
        bad = crc.check_records(chunk_area, off, length, np.ascontiguousarray(idx["crc"]))
        if bad >= 0:
            raise CorruptFile(self.path, f"chunk at offset {int(off[bad])} failed its CRC check")
        buf = self.buf
        bufs = [
            buf[o + RECORD.size : o + n] for o, n in zip(off.tolist(), length.tolist(), strict=True)
        ]
        return bufs

    def read_many(self, sids: np.ndarray, start: int, end: int) -> dict[int, Points]:
        """Points with start <= ts <= end of each series in ``sids``, decoded together: the
        numeric chunks without expiry times (the common case) of all these series go to one
        kernel call per kind; other chunks are decoded one by one."""
        idx = self.select(sids, start, end)
        if not len(idx):
            return {}
        kinds, flags = self.kinds(idx)
        fast = ((kinds == LONG) | (kinds == DOUBLE)) & (flags == 0)
        out: dict[int, list[Points]] = {}
        for kind in (LONG, DOUBLE):
            sel = np.flatnonzero(fast & (kinds == kind))
            if not len(sel):
                continue
            try:
                ts, vals = chunks.decode_chunks(self.payloads(idx[sel]), LONG_MIN, LONG_MAX)
            except ValueError as e:
                raise CorruptFile(self.path, f"undecodable chunk: {e}") from None
            counts = idx["count"][sel].astype(np.int64)
            if len(ts) != int(counts.sum()):
                raise CorruptFile(self.path, "chunks hold other point counts than the index")
            words = vals.view(np.int64)
            ends = np.cumsum(counts).tolist()
            begin = 0
            for j, stop in zip(sel.tolist(), ends, strict=True):
                pts = Points(ts[begin:stop], words[begin:stop], _zeros(stop - begin))
                out.setdefault(int(idx["series"][j]), []).append(pts)
                begin = stop
        for j in np.flatnonzero(~fast).tolist():
            out.setdefault(int(idx["series"][j]), []).append(self._chunk(idx[j]))
        result = {}
        for sid, parts in out.items():
            if len(parts) > 1:
                parts.sort(key=lambda p: int(p.ts[0]))
            pts = Points.concat(parts)
            if pts.ts[0] < start or pts.ts[-1] > end:
                a = int(np.searchsorted(pts.ts, start, "left"))
                b = int(np.searchsorted(pts.ts, end, "right"))
                pts = pts.take(slice(a, b))
            if len(pts):
                result[sid] = pts
        return result

    def _chunk(self, row) -> Points:
        off, length = int(row["offset"]), int(row["length"])
        if off + length > self.data_end:
            raise CorruptFile(self.path, f"chunk at {off} runs past the chunk area")
        rec = self.buf[off : off + length]
        if zlib.crc32(rec) != int(row["crc"]):
            raise CorruptFile(self.path, f"chunk at offset {off} failed its CRC check")
        _, pts = _decode_record(rec, self.path)
        if len(pts) != int(row["count"]):
            raise CorruptFile(
                self.path,
                f"chunk at offset {off} holds {len(pts)} points, index says {int(row['count'])}",
            )
        return pts

    def close(self) -> None:
        try:
            self.buf.release()
            self._map.close()
        except BufferError:  # a chunk view is still alive; the GC unmaps it
            pass
