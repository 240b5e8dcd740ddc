"""The embedded datastore, version 2: compressed blocks, a series log, postings, a manifest.

Files under ``<data_dir>``::

    MANIFEST             one CRC frame holding JSON: version, generation, series_count, blocks,
                         tombstones, dead series, and the WAL positions applied (the writer's
                         checkpoint)
    series.log           CRC frames, one per series, in series-id order: [metric, tags, kind]
    segments/<n>.kblk    immutable blocks (:mod:`kairos.storage.embedded.blocks`): each series'
                         points in compressed chunks (delta-of-delta timestamps, compressed
                         values), an offset index with per-chunk time ranges and CRCs
    wal/                 see ``kairos.storage.wal``

Head and blocks.  Every writer apply cuts a small level-0 block from the WAL batches it read
(the on-disk head: it is what makes new points visible to the other processes within the
apply interval); ``fanout`` blocks of one level are compacted into one block of the next level
in the writer, between applies.  Newer blocks win on equal (series, ts): that is how
overwrites work.

Index.  Every process keeps the series table in memory, loaded incrementally from series.log:
series ids, metric -> tag name -> tag value -> sorted series ids (postings), intersected for tag
filters, so a lookup by tags costs the same whatever the time range; metric names and the tag
names and values of each metric come from the same maps.

Only the writer process mutates.  It writes a block (temp file, fsync, rename), appends new
series to the log (fsync), then replaces MANIFEST (write temp, fsync, rename, fsync dir): a
crash at any point leaves the previous manifest, whose WAL positions make the writer re-apply
the rest; blocks the manifest does not name are deleted at the writer's start.  Readers (every
HTTP worker) memory-map the blocks named by the manifest they last read; files are never
modified in place, and a compacted block is unlinked only after the manifest stops naming it,
so an open reader keeps a consistent view.

Deletes are tombstones in the manifest: ``{"series": [ids], "start", "end", "horizon"}`` hides
the points of those series in ``[start, end]`` held by blocks numbered below ``horizon`` (the
blocks that existed when the delete was applied; later writes are not affected).  Compaction
drops hidden, expired (per-point TTL) and retention-expired points and forgets tombstones no
live block is old enough to need.  Series left without points by a delete are listed in
``dead_series`` and disappear from metric names, tag lookups and queries until new points
arrive for them.

A version-1 store (Arrow segments) is converted to blocks when the writer opens it.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator

import numpy as np
import orjson

from kairos.errors import CorruptFile
from kairos.model.batch import DOUBLE, HISTOGRAM, LONG, STRING, Batch
from kairos.model.java import java_key
from kairos.storage._frame import FrameStatus, encode_frame, iter_frames
from kairos.storage._fs import fsync_dir
from kairos.storage.embedded import chunks
from kairos.storage.embedded.blocks import Block, Points, write_block
from kairos.storage.protocol import SeriesData, SeriesInfo

__all__ = ["EmbeddedStore"]

log = logging.getLogger("kairos.store")

VERSION = 2
BLOCK_SUFFIX = ".kblk"
COMPACTION_SERIES = 65536
"""Series merged at a time by a compaction: bounds its memory whatever the block sizes."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _seg_number(seg: dict) -> int:
    return int(seg["name"].split(".", 1)[0])


def _merge_parts(parts: list[tuple[Points, int]]) -> tuple[Points, np.ndarray]:
    """One series' points from several blocks (oldest first): sorted, one per timestamp, the
    newest block's point winning; also each point's block number (a scalar for one block)."""
    if len(parts) == 1:
        return parts[0][0], np.int64(parts[0][1])  # one block: its number broadcasts
    pts = Points.concat([p for p, _ in parts])
    numbers = np.concatenate([np.full(len(p), n, np.int64) for p, n in parts])
    if len(parts) > 1:
        # Disjoint and in order (data written in time order): nothing to sort.
        ordered = all(parts[k][0].ts[-1] < parts[k + 1][0].ts[0] for k in range(len(parts) - 1))
        if not ordered:
            order = np.argsort(pts.ts, kind="stable")
            pts, numbers = pts.take(order), numbers[order]
            keep = np.ones(len(pts), bool)
            keep[:-1] = pts.ts[1:] != pts.ts[:-1]  # the last of equal timestamps is the newest
            pts, numbers = pts.take(keep), numbers[keep]
    return pts, numbers


class EmbeddedStore:
    """The embedded backend (see the module docstring for the files).

    Parameters
    ----------
    data_dir : str
        Directory of the store; created if missing.
    writer : bool
        True in the writer process only: allows writes, deletes and compaction.
    default_ttl : int
        Seconds applied to points ingested with ttl 0 (0 = keep forever).
    fanout : int
        Size-tiered compaction: new blocks are level 0; ``fanout`` blocks of one level merge
        into one block of the next level, so each point is rewritten about
        log_fanout(total / apply) times.
    retention : int
        Seconds: points with a timestamp older than now - retention are hidden from queries and
        dropped by compaction (0 = keep forever).
    """

    def __init__(
        self,
        data_dir: str,
        writer: bool = False,
        default_ttl: int = 0,
        fanout: int = 8,
        retention: int = 0,
    ) -> None:
        self.dir = data_dir
        self.seg_dir = os.path.join(data_dir, "segments")
        os.makedirs(self.seg_dir, exist_ok=True)
        self.is_writer = writer
        self.default_ttl = default_ttl
        self.fanout = max(2, fanout)
        self.retention_ms = retention * 1000
        self.manifest_path = os.path.join(data_dir, "MANIFEST")
        self.series_path = os.path.join(data_dir, "series.log")
        self._manifest: dict = {
            "version": VERSION,
            "generation": 0,
            "series_count": 0,
            "segments": [],
            "wal": {},
            "next_segment": 1,
            "tombstones": [],
            "dead_series": [],
        }
        self._manifest_bytes: bytes | None = None
        self._series: list[SeriesInfo] = []
        self._kinds = np.zeros(0, np.uint8)
        self._series_key: dict[tuple, int] = {}
        self._by_metric: dict[str, list[int]] = {}
        self._postings: dict[str, dict[str, dict[str, list[int]]]] = {}
        self._series_offset = 0
        self._blocks: dict[str, Block] = {}
        self._metric_names: list[str] | None = None
        self._dead: set[int] = set()
        self._lock = threading.RLock()
        if writer:
            self._recover()
        self.refresh()

    # -- reading state ---------------------------------------------------------------------

    def _load_manifest(self) -> dict | None:
        try:
            with open(self.manifest_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return self._parse_manifest(data)

    def _parse_manifest(self, data: bytes) -> dict:
        frames = list(iter_frames(data))
        if not frames or frames[0][0] != FrameStatus.OK:
            raise CorruptFile(self.manifest_path, "manifest failed its CRC check")
        return orjson.loads(bytes(frames[0][2]))

    def refresh(self) -> None:
        """Pick up a newer manifest written by the writer process (cheap when unchanged).

        Thread-safe: queries run in executor threads while the event loop refreshes.
        """
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        # The manifest is small; its bytes (not its stat) say whether it changed: a rename can
        # reuse the inode number within one timestamp tick.  Every block it names is opened
        # (mapped) before the new view is taken, so a later compaction that unlinks one cannot
        # pull it away from a query; a block already gone means a newer manifest exists.
        for _ in range(100):
            try:
                with open(self.manifest_path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                return
            if data == self._manifest_bytes:
                return
            m = self._parse_manifest(data)
            if m.get("version", 1) != VERSION and not self.is_writer:
                return  # the writer is converting a version-1 store; keep the last view
            if m.get("version", 1) == VERSION:
                try:
                    for seg in m["segments"]:
                        self._block(seg["name"])
                except CorruptFile as e:
                    if os.path.exists(e.path):
                        raise
                    continue  # compacted away meanwhile: read the newer manifest
            self._manifest = m
            self._manifest_bytes = data
            self._dead = set(m.get("dead_series", ()))
            self._load_series(m["series_count"])
            live = {s["name"] for s in m["segments"]}
            for name in list(self._blocks):
                if name not in live:
                    self._blocks.pop(name).close()
            self._metric_names = None
            return
        raise CorruptFile(self.manifest_path, "kept naming blocks that do not exist")

    def _load_series(self, count: int) -> None:
        if len(self._series) >= count:
            return
        with open(self.series_path, "rb") as f:
            f.seek(self._series_offset)
            data = f.read()
        base = self._series_offset
        for status, end, payload in iter_frames(data):
            if status != FrameStatus.OK or len(self._series) >= count:
                break
            metric, flat, kind = orjson.loads(bytes(payload))
            self._add_series(metric, tuple(zip(flat[0::2], flat[1::2], strict=True)), kind)
            self._series_offset = base + end
        if len(self._series) < count:
            raise CorruptFile(
                self.series_path, f"holds {len(self._series)} series, manifest says {count}"
            )

    def _add_series(self, metric: str, tags: tuple, kind: int) -> int:
        sid = len(self._series)
        self._series.append(SeriesInfo(sid, metric, tags, kind))
        self._series_key[(metric, tags, kind)] = sid
        self._by_metric.setdefault(metric, []).append(sid)
        post = self._postings.setdefault(metric, {})
        for k, v in tags:
            post.setdefault(k, {}).setdefault(v, []).append(sid)  # ascending: ids only grow
        if sid >= len(self._kinds):
            grown = np.zeros(max(1024, 2 * len(self._kinds)), np.uint8)
            grown[: len(self._kinds)] = self._kinds
            self._kinds = grown
        self._kinds[sid] = kind
        return sid

    def _block(self, name: str) -> Block:
        b = self._blocks.get(name)
        if b is None:
            b = Block(os.path.join(self.seg_dir, name))
            self._blocks[name] = b
        return b

    def _live_segments(self, start: int, end: int) -> Iterator[tuple[dict, Block]]:
        for seg in self._manifest["segments"]:
            if seg["rows"] and seg["max_ts"] >= start and seg["min_ts"] <= end:
                yield seg, self._block(seg["name"])

    # -- Datastore: names and series -------------------------------------------------------

    def metric_names(self, prefix: str | None = None) -> list[str]:
        if self._metric_names is None:
            live = (
                m for m, sids in self._by_metric.items() if any(s not in self._dead for s in sids)
            )
            self._metric_names = sorted(live, key=java_key)
        if not prefix:
            return list(self._metric_names)
        return [m for m in self._metric_names if m.startswith(prefix)]

    def tag_names(self) -> list[str]:
        """Every tag name of the live series, in Java ``String`` order (KairosDB 1.2 API)."""
        names = {k for s in self._series if s.sid not in self._dead for k, _ in s.tags}
        return sorted(names, key=java_key)

    def tag_values(self) -> list[str]:
        """Every tag value of the live series, in Java ``String`` order (KairosDB 1.2 API)."""
        values = {v for s in self._series if s.sid not in self._dead for _, v in s.tags}
        return sorted(values, key=java_key)

    def find_series(
        self, metric: str, tags: dict[str, list[str]], start: int = 0, end: int = 0
    ) -> list[SeriesInfo]:
        """Series of ``metric`` having, for every tag name given, one of the values: the union
        of each tag's postings, intersected across tags (the time range is not needed)."""
        sids = None
        post = self._postings.get(metric, {})
        for k, values in tags.items():
            lists = [post.get(k, {}).get(v, ()) for v in values]
            ids = (
                np.unique(np.concatenate([np.asarray(x, np.int64) for x in lists]))
                if lists
                else np.zeros(0, np.int64)
            )
            sids = ids if sids is None else np.intersect1d(sids, ids, assume_unique=True)
            if not len(sids):
                return []
        ids = self._by_metric.get(metric, ()) if sids is None else sids.tolist()
        return [self._series[s] for s in ids if s not in self._dead]

    def count(self, series: list[SeriesInfo], start: int, end: int) -> int:
        """Points of the chunks lying wholly inside [start, end]: from the index only, nothing
        decoded.  A lower bound of what :meth:`read` reads (partial chunks at the range's edges
        are not counted) except for overwritten, deleted or expired points."""
        total = 0
        sids = np.array([i.sid for i in series], np.int64)
        if not len(sids):
            return 0
        for _, blk in self._live_segments(start, end):
            idx = blk.index
            inside = (idx["min_ts"] >= start) & (idx["max_ts"] <= end)
            csum = np.concatenate(([0], np.cumsum(idx["count"] * inside, dtype=np.int64)))
            lo, hi = blk.locate(sids)
            total += int((csum[hi] - csum[lo]).sum())
        return total

    # -- Datastore: points -----------------------------------------------------------------

    def read(
        self, series: list[SeriesInfo], start: int, end: int, limit: int = 0, order: str = "asc"
    ) -> list[SeriesData]:
        """``limit``/``order`` are hints the engine applies itself."""
        try:
            return self._read(series, start, end)
        except CorruptFile as e:
            # A compaction may have replaced a block after we read the manifest.
            if os.path.exists(e.path):
                raise
            with self._lock:
                self._manifest_bytes = None
                self._refresh()
            return self._read(series, start, end)

    def _parts(self, sids: np.ndarray, start: int, end: int) -> dict[int, list[tuple[Points, int]]]:
        per_sid: dict[int, list[tuple[Points, int]]] = {}
        with self._lock:
            segments = list(self._live_segments(start, end))
        for seg, blk in segments:
            number = _seg_number(seg)
            for sid, pts in blk.read_many(sids, start, end).items():
                per_sid.setdefault(sid, []).append((pts, number))
        return per_sid

    def _visible(self, sid: int, pts: Points, numbers: np.ndarray, now: int) -> Points:
        """Drop points hidden by tombstones, expired by TTL or past the retention."""
        if not self.retention_ms and not self._manifest.get("tombstones") and not pts.expires.any():
            return pts
        keep = (pts.expires == 0) | (pts.expires > now)
        if self.retention_ms:
            keep &= pts.ts >= now - self.retention_ms
        hidden = self._hidden(sid, pts.ts, numbers)
        if hidden is not None:
            keep &= ~hidden
        return pts if keep.all() else pts.take(np.flatnonzero(keep))

    def _read(self, series: list[SeriesInfo], start: int, end: int) -> list[SeriesData]:
        """Every chunk the query needs, from every block, is selected through the indexes and
        sorted by (series, time). The numeric chunks without expiry times of the series whose
        chunks do not overlap one another (data written in time order: nearly always) are
        decoded by one kernel call per kind, and each such series is a slice of that output:
        no copy, no merge. Other series take :meth:`_read_merged`."""
        now = _now_ms()
        if self.retention_ms:
            start = max(start, now - self.retention_ms)
        if not series or start > end:
            return []
        sids = np.unique(np.array([i.sid for i in series], np.int64))
        with self._lock:
            segments = list(self._live_segments(start, end))
        picked = []
        for seg, blk in segments:
            idx = blk.select(sids, start, end)
            if len(idx):
                kinds, flags = blk.kinds(idx)
                picked.append((blk, _seg_number(seg), idx, kinds, flags))
        if not picked:
            return []
        idx = np.concatenate([p[2] for p in picked])
        kinds = np.concatenate([p[3] for p in picked])
        flags = np.concatenate([p[4] for p in picked])
        numbers = np.concatenate([np.full(len(p[2]), p[1], np.int64) for p in picked])
        order = np.lexsort((numbers, idx["min_ts"], idx["series"]))
        idx, kinds, flags, numbers = idx[order], kinds[order], flags[order], numbers[order]
        sid_of = idx["series"].astype(np.int64)
        first = np.flatnonzero(np.concatenate(([True], sid_of[1:] != sid_of[:-1])))
        # A series is fast when its chunks are all numeric without expiry and disjoint.
        slow_row = ~(((kinds == LONG) | (kinds == DOUBLE)) & (flags == 0))
        overlap = np.zeros(len(idx), bool)
        overlap[1:] = (sid_of[1:] == sid_of[:-1]) & (idx["min_ts"][1:] <= idx["max_ts"][:-1])
        slow_sid = np.add.reduceat((slow_row | overlap).astype(np.int64), first) > 0
        fast_row = ~np.repeat(slow_sid, np.diff(np.append(first, len(idx))))
        got: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for kind in (LONG, DOUBLE):
            rows = np.flatnonzero(fast_row & (kinds == kind))
            if len(rows):
                self._decode_fast(picked, order, rows, idx, numbers, start, end, got)
        slow = sid_of[first[slow_sid]]
        merged = self._read_merged(slow, start, end, now) if len(slow) else {}
        out = []
        for info in series:
            hit = got.get(info.sid)
            if hit is not None:  # decoded as float64 or int64 already
                out.append(SeriesData(info, hit[0], hit[1]))
                continue
            if info.sid not in merged:
                continue
            ts, values = merged[info.sid]
            if info.kind == STRING:
                values = [o.decode("utf-8", "surrogatepass") for o in values]
            elif info.kind == DOUBLE:
                values = values.view(np.float64)
            out.append(SeriesData(info, ts, values))
        return out

    def _decode_fast(
        self,
        picked: list,
        order: np.ndarray,
        rows: np.ndarray,
        idx: np.ndarray,
        numbers: np.ndarray,
        start: int,
        end: int,
        got: dict,
    ) -> None:
        """Decode ``rows`` (sorted entries of one kind, whole series) in one kernel call and
        put each series' visible points in ``got``."""
        # Payloads are gathered block by block, then put in the sorted order.
        where = np.concatenate([np.full(len(p[2]), b, np.int64) for b, p in enumerate(picked)])
        offsets = np.concatenate(([0], np.cumsum([len(p[2]) for p in picked])))
        src = order[rows]  # positions in the concatenation of the blocks' selections
        blk_of = where[src]
        bufs: list = [None] * len(rows)
        for b, (blk, _, bidx, _, _) in enumerate(picked):
            mine = np.flatnonzero(blk_of == b)
            if len(mine):
                pays = blk.payloads(bidx[src[mine] - offsets[b]])
                for j, p in zip(mine.tolist(), pays, strict=True):
                    bufs[j] = p
        sel = idx[rows]
        counts = sel["count"].astype(np.int64)
        sid_of = sel["series"].astype(np.int64)
        first = np.flatnonzero(np.concatenate(([True], sid_of[1:] != sid_of[:-1])))
        last = np.append(first[1:], len(rows)) - 1
        try:
            ts_of, vals, bounds = chunks.decode_series(bufs, first)
            if int(bounds[-1]) != int(counts.sum()):
                raise ValueError("chunks hold other point counts than the index")
        except ValueError as e:
            # Name the block: decode block by block, which raises CorruptFile with its path.
            sids = np.unique(sel["series"]).astype(np.int64)
            for blk, *_ in picked:
                blk.read_many(sids, start, end)
            raise CorruptFile(self.dir, f"undecodable chunk: {e}") from None
        cut_lo = sel["min_ts"][first] < start
        cut_hi = sel["max_ts"][last] > end
        tombed = self._tombstoned()
        cut = (cut_lo | cut_hi).tolist()
        for k, (sid, a, b) in enumerate(
            zip(sid_of[first].tolist(), bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)
        ):
            t, v = ts_of[k], vals[a:b]
            if not cut[k] and sid not in tombed:  # the common case: the series' whole chunks
                got[sid] = (t, v)
                continue
            i0, i1 = 0, len(t)
            if cut_lo[k]:
                i0 = int(np.searchsorted(t, start, "left"))
            if cut_hi[k]:
                i1 = int(np.searchsorted(t, end, "right"))
            t, v = t[i0:i1], v[i0:i1]
            if sid in tombed and len(t):
                r0, r1 = int(first[k]), int(last[k]) + 1
                per_point = np.repeat(numbers[rows[r0:r1]], counts[r0:r1])[i0:i1]
                hidden = self._hidden(sid, t, per_point)
                if hidden is not None and hidden.any():
                    keep = np.flatnonzero(~hidden)
                    t, v = t[keep], v[keep]
            if len(t):
                got[sid] = (t, v)

    def _tombstoned(self) -> set[int]:
        """Series touched by some tombstone."""
        return {s for tomb in self._manifest.get("tombstones", ()) for s in tomb["series"]}

    def _read_merged(
        self, sids: np.ndarray, start: int, end: int, now: int
    ) -> dict[int, tuple[np.ndarray, np.ndarray | list]]:
        """Series whose chunks overlap (rewritten points: the newest block wins) or carry
        expiry times or objects, merged part by part."""
        per_sid = self._parts(sids, start, end)
        out: dict[int, tuple[np.ndarray, np.ndarray | list]] = {}
        for sid, parts in per_sid.items():
            pts, numbers = _merge_parts(parts)
            pts = self._visible(sid, pts, numbers, now)
            if len(pts):
                out[sid] = (pts.ts, pts.objs if pts.objs is not None else pts.values)
        return out

    def _hidden(self, sid: int, ts: np.ndarray, numbers: np.ndarray) -> np.ndarray | None:
        """Points hidden by tombstones (None when no tombstone touches ``sid``)."""
        mask = None
        for tomb in self._manifest.get("tombstones", ()):
            if sid not in tomb["series"]:
                continue
            m = (numbers < tomb["horizon"]) & (ts >= tomb["start"]) & (ts <= tomb["end"])
            mask = m if mask is None else (mask | m)
        return mask

    def _has_rows(self, sid: int) -> bool:
        lo_ts, hi_ts = -(1 << 63), (1 << 63) - 1
        parts = self._parts(np.array([sid], np.int64), lo_ts, hi_ts).get(sid)
        if not parts:
            return False
        pts, numbers = _merge_parts(parts)
        return bool(len(self._visible(sid, pts, numbers, _now_ms())))

    # -- writer side -------------------------------------------------------------------------
    def delete(
        self, metric: str, tag_filter, start: int, end: int, *, tag_filtered: bool = True
    ) -> int:
        """Tombstone the points of ``metric``'s series matching ``tag_filter`` in [start, end].

        ``tag_filter(tags: dict) -> bool`` selects series.  Returns the number of series
        touched.  Series left without points become dead (hidden from names and lookups).
        """
        if not self.is_writer:
            raise RuntimeError("only the writer process deletes from the embedded store")
        self.refresh()
        sids = [s.sid for s in self.find_series(metric, {}) if tag_filter(dict(s.tags))]
        if not sids:
            return 0
        m = dict(self._manifest)
        tomb = {"series": sids, "start": int(start), "end": int(end), "horizon": m["next_segment"]}
        m["tombstones"] = [*m.get("tombstones", []), tomb]
        self._manifest = m  # _has_rows must see the new tombstone
        dead = set(m.get("dead_series", ())) | {sid for sid in sids if not self._has_rows(sid)}
        m["dead_series"] = sorted(dead)
        m["generation"] += 1
        self._dead = dead
        self._write_manifest(m)
        log.info("deleted %s: %d series in [%d, %d]", metric, len(sids), start, end)
        return len(sids)

    @property
    def wal_positions(self) -> dict[str, int]:
        return dict(self._manifest.get("wal", {}))

    def _recover(self) -> None:
        """Writer start-up: check the files the manifest names and drop orphans."""
        m = self._load_manifest()
        live = set()
        if m is not None:
            for seg in m["segments"]:
                path = os.path.join(self.seg_dir, seg["name"])
                try:
                    size = os.path.getsize(path)
                except FileNotFoundError:
                    raise CorruptFile(path, "block named by the manifest is missing") from None
                if size != seg["size"]:
                    raise CorruptFile(path, f"block of {size} bytes, manifest says {seg['size']}")
                if m.get("version", 1) == VERSION:
                    Block(path).close()  # footer and index CRC; chunks are checked when read
                live.add(seg["name"])
        for name in os.listdir(self.seg_dir):
            if name not in live:
                log.warning("removing orphan segment %s left by an interrupted write", name)
                os.unlink(os.path.join(self.seg_dir, name))
        if m is not None:
            # Truncate series appended after the last manifest: their ids will be reassigned.
            count = m["series_count"]
            if os.path.exists(self.series_path):
                with open(self.series_path, "rb") as f:
                    data = f.read()
                end = 0
                n = 0
                for status, e, _ in iter_frames(data):
                    if status != FrameStatus.OK or n >= count:
                        break
                    end, n = e, n + 1
                if n < count:
                    raise CorruptFile(self.series_path, f"holds {n} series, manifest says {count}")
                if end < len(data):
                    log.warning(
                        "series.log: dropping %d bytes past the checkpoint", len(data) - end
                    )
                    os.truncate(self.series_path, end)
        elif os.path.exists(self.series_path):
            os.truncate(self.series_path, 0)
        if m is not None and m.get("version", 1) != VERSION:
            self._convert_v1(m)

    def write(self, batch: Batch, wal_positions: dict[str, int] | None = None) -> None:
        self.write_many([batch], wal_positions)

    def write_many(self, batches: list[Batch], wal_positions: dict[str, int] | None = None) -> None:
        """Apply batches as one new segment and checkpoint ``wal_positions`` atomically."""
        if not self.is_writer:
            raise RuntimeError("only the writer process writes to the embedded store")
        self.refresh()
        new_series: list[bytes] = []
        sids_parts, ts_parts, val_parts, exp_parts, obj_parts = [], [], [], [], []
        now = _now_ms()
        for b in batches:
            if not len(b):
                continue
            local = np.empty(b.n_series, np.int64)
            for i in range(b.n_series):
                key = (b.metrics[i], b.tags[i], int(b.kinds[i]))
                sid = self._series_key.get(key)
                if sid is None:
                    sid = self._add_series(*key)
                    flat = [x for kv in b.tags[i] for x in kv]
                    new_series.append(encode_frame(orjson.dumps([b.metrics[i], flat, key[2]])))
                local[i] = sid
            if self._dead:
                self._dead.difference_update(local.tolist())
            ttl = b.ttls.astype(np.int64)
            ttl = np.where(ttl > 0, ttl, self.default_ttl)
            exp_series = np.where(ttl > 0, now + ttl * 1000, 0)
            sids_parts.append(local[b.series])
            ts_parts.append(b.ts)
            val_parts.append(b.values)
            exp_parts.append(exp_series[b.series])
            if b.objects:
                kinds = b.kinds[b.series]
                objmask = (kinds == STRING) | (kinds == HISTOGRAM)
                objs: list = [None] * len(b)
                for i in np.nonzero(objmask)[0]:
                    o = b.objects[b.values[i]]
                    objs[i] = o.encode("utf-8", "surrogatepass") if isinstance(o, str) else o
                obj_parts.append(objs)
            else:
                obj_parts.append(None)
        if new_series:
            with open(self.series_path, "ab") as f:
                f.write(b"".join(new_series))
                f.flush()
                os.fsync(f.fileno())
        segments = list(self._manifest["segments"])
        next_seg = self._manifest["next_segment"]
        if sids_parts:
            obj_col = None
            if any(p is not None for p in obj_parts):
                obj_col = []
                for p, t in zip(obj_parts, ts_parts, strict=True):
                    obj_col.extend(p if p is not None else [None] * len(t))
            seg = self._write_sorted(
                next_seg,
                np.concatenate(sids_parts),
                np.concatenate(ts_parts),
                np.concatenate(val_parts),
                np.concatenate(exp_parts),
                obj_col,
            )
            seg["level"] = 0
            segments.append(seg)
            next_seg += 1
        m = dict(self._manifest)
        m["segments"] = segments
        m["next_segment"] = next_seg
        m["series_count"] = len(self._series)
        m["generation"] = m["generation"] + 1
        m["dead_series"] = sorted(self._dead)
        if wal_positions is not None:
            m["wal"] = wal_positions
        self._write_manifest(m)
        self._maybe_compact()

    def _write_sorted(self, number, sids, ts, vals, exp, objs) -> dict:
        """A level-0 block of one apply's points; on equal (series, ts) the later point wins."""
        n = len(ts)
        order = np.lexsort((np.arange(n), ts, sids))
        sids, ts, vals, exp = sids[order], ts[order], vals[order], exp[order]
        keep = np.ones(n, bool)
        if n > 1:
            keep[:-1] = (sids[1:] != sids[:-1]) | (ts[1:] != ts[:-1])
        sids, ts, vals, exp = sids[keep], ts[keep], vals[keep], exp[keep]
        sel_objs = None
        if objs is not None:
            sel_objs = [objs[i] for i in order[keep].tolist()]
        return self._write_block(number, _runs(sids, Points(ts, vals, exp, sel_objs)))

    def _write_block(self, number: int, items) -> dict:
        name = f"{number:012d}{BLOCK_SUFFIX}"
        info = write_block(os.path.join(self.seg_dir, name), self._kinds, items)
        return {"name": name, **info}

    def _write_manifest(self, m: dict) -> None:
        tmp = self.manifest_path + ".tmp"
        data = encode_frame(orjson.dumps(m))
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.manifest_path)
        fsync_dir(self.dir)
        self._manifest = m
        self._manifest_bytes = data
        self._metric_names = None

    def _maybe_compact(self) -> None:
        while True:
            segs = self._manifest["segments"]
            by_level: dict[int, list[int]] = {}
            for i, seg in enumerate(segs):
                by_level.setdefault(seg.get("level", 0), []).append(i)
            full = [lvl for lvl, idx in by_level.items() if len(idx) >= self.fanout]
            if not full:
                return
            lvl = min(full)
            idx = by_level[lvl]
            self.compact(idx[0], idx[-1] + 1, lvl + 1)

    def compact(self, lo: int = 0, hi: int | None = None, level: int | None = None) -> None:
        """Merge the manifest's blocks ``lo:hi`` (a contiguous run; newer points win) into one.

        Expired (TTL, retention) and deleted points are dropped.  Series are merged
        :data:`COMPACTION_SERIES` at a time, so memory stays bounded by that many series'
        points.  The new block takes the run's place in the manifest, then the old files are
        unlinked.
        """
        segs = list(self._manifest["segments"])
        hi = len(segs) if hi is None else hi
        old = segs[lo:hi]
        if len(old) < 2:
            return
        blocks = [(self._block(s["name"]), _seg_number(s)) for s in old]
        now = _now_ms()
        number = self._manifest["next_segment"]

        def merged() -> Iterator[tuple[int, Points]]:
            top = max((int(b.series[-1]) for b, _ in blocks if len(b.series)), default=-1)
            for first in range(0, top + 1, COMPACTION_SERIES):
                last = first + COMPACTION_SERIES
                per_sid: dict[int, list[tuple[Points, int]]] = {}
                for blk, num in blocks:
                    a = int(np.searchsorted(blk.series, np.uint32(first), "left"))
                    b = int(np.searchsorted(blk.series, np.uint32(last), "left"))
                    sids = np.unique(blk.series[a:b]).astype(np.int64)
                    for sid, pts in blk.read_many(sids, -(1 << 63), (1 << 63) - 1).items():
                        per_sid.setdefault(sid, []).append((pts, num))
                for sid in sorted(per_sid):
                    pts, numbers = _merge_parts(per_sid[sid])
                    pts = self._visible(sid, pts, numbers, now)
                    if len(pts):
                        yield sid, pts

        seg = self._write_block(number, merged())
        seg["level"] = max(s.get("level", 0) for s in old) + 1 if level is None else level
        m = dict(self._manifest)
        m["segments"] = [*segs[:lo], seg, *segs[hi:]]
        m["next_segment"] = number + 1
        m["generation"] += 1
        # A tombstone is needed while some live block is older than its horizon.
        oldest = min(_seg_number(x) for x in m["segments"])
        m["tombstones"] = [t for t in m.get("tombstones", []) if t["horizon"] > oldest]
        self._write_manifest(m)
        for s in old:
            blk = self._blocks.pop(s["name"], None)
            if blk is not None:
                blk.close()
            try:
                os.unlink(os.path.join(self.seg_dir, s["name"]))
            except FileNotFoundError:
                pass
        log.info("compacted %d blocks (%d points) into %s", len(old), seg["rows"], seg["name"])

    def _convert_v1(self, m: dict) -> None:
        """Rewrite a version-1 store's Arrow segments as blocks (writer start-up, once)."""
        import pyarrow as pa

        self._manifest = m
        self._load_series(m["series_count"])
        segments = []
        number = m["next_segment"]
        for seg in m["segments"]:
            path = os.path.join(self.seg_dir, seg["name"])
            t = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
            sids = t.column("series").to_numpy().astype(np.int64)
            objs = t.column("obj").to_pylist()
            pts = Points(
                t.column("ts").to_numpy(),
                t.column("value").to_numpy(),
                t.column("expires").to_numpy(),
                objs if any(o is not None for o in objs) else None,
            )
            new = self._write_block(_seg_number(seg), _runs(sids, pts, keep_objs=True))
            new["level"] = seg.get("level", 0)
            segments.append(new)
            number = max(number, _seg_number(seg) + 1)
        m = dict(m, version=VERSION, segments=segments, next_segment=number)
        m["generation"] += 1
        self._write_manifest(m)
        for seg in self._manifest_segments_v1(segments):
            os.unlink(os.path.join(self.seg_dir, seg))
        log.info("converted the version-1 store in %s to version %d", self.dir, VERSION)

    def _manifest_segments_v1(self, segments: list[dict]) -> list[str]:
        live = {s["name"] for s in segments}
        return [n for n in os.listdir(self.seg_dir) if n.endswith(".arrow") and n not in live]

    def close(self) -> None:
        for b in self._blocks.values():
            b.close()
        self._blocks.clear()


def _runs(sids: np.ndarray, pts: Points, keep_objs: bool = True) -> Iterator[tuple[int, Points]]:
    """(sid, points) per run of equal series ids in sorted ``sids``."""
    n = len(sids)
    if not n:
        return
    cut = np.flatnonzero(sids[1:] != sids[:-1]) + 1
    bounds = np.concatenate(([0], cut, [n])).tolist()
    for a, b in itertools.pairwise(bounds):
        part = pts.take(slice(a, b))
        if part.objs is not None and all(o is None for o in part.objs):
            part = Points(part.ts, part.values, part.expires, None)
        yield int(sids[a]), part
