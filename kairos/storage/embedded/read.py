"""The read path: chunk selection across blocks, decoding, and the points a read must hide.

A read selects, through every live block's index, the chunks of its series and time range and
sorts them by (series, min_ts, block).  Then::

    numeric chunks, no expiry times,       -> one kernel call per kind (chunks.decode_series);
    chunks of a series disjoint in time       each series is a slice of its output, no copy
    (data written in time order: nearly all)

    overlapping chunks (rewritten points),  -> read block by block and merged per series
    expiry times, strings, histograms          (merge_parts: the newest block wins)

Hidden points: a tombstone hides its series' points in [start, end] held by blocks numbered
below its horizon; a point whose expiry time (per-point TTL) has passed, or older than now -
retention, is hidden too.  Compaction drops what a read hides (:meth:`Reader.visible`).
"""

from __future__ import annotations

import numpy as np

from kairos.errors import CorruptFile
from kairos.model.batch import DOUBLE, LONG, STRING
from kairos.model.java import LONG_MAX, LONG_MIN
from kairos.storage.embedded import chunks
from kairos.storage.embedded.blocks import Points
from kairos.storage.embedded.manifest import seg_number
from kairos.storage.embedded.view import View
from kairos.storage.protocol import SeriesData, SeriesInfo

__all__ = ["Reader", "merge_parts"]

MIN_TS, MAX_TS = LONG_MIN, LONG_MAX


def merge_parts(parts: list[tuple[Points, int]]) -> tuple[Points, np.ndarray | np.int64]:
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


class Reader:
    """Reads points from the blocks of ``view``.

    Parameters
    ----------
    view : View
        The manifest and mapped blocks in force (shared with the store, which refreshes it).
    retention_ms : int
        Points older than now - retention_ms are hidden (0 = keep forever).
    where : str
        The data directory, named by the error of an undecodable chunk.
    """

    def __init__(self, view: View, retention_ms: int, where: str) -> None:
        self.view = view
        self.retention_ms = retention_ms
        self.where = where

    def count(self, series: list[SeriesInfo], start: int, end: int) -> int:
        """Points of the chunks lying wholly inside [start, end], from the indexes only."""
        total = 0
        sids = np.array([i.sid for i in series], np.int64)
        if not len(sids):
            return 0
        for _, blk in self.view.live(start, end):
            idx = blk.index
            inside = (idx["min_ts"] >= start) & (idx["max_ts"] <= end)
            csum = np.concatenate(([0], np.cumsum(idx["count"] * inside, dtype=np.int64)))
            lo, hi = blk.locate(sids)
            total += int((csum[hi] - csum[lo]).sum())
        return total

    def read(self, series: list[SeriesInfo], start: int, end: int, now: int) -> list[SeriesData]:
        """Every chunk the query needs, from every block, is selected through the indexes and
        sorted by (series, time). The numeric chunks without expiry times of the series whose
        chunks do not overlap one another (data written in time order: nearly always) are
        decoded by one kernel call per kind, and each such series is a slice of that output:
        no copy, no merge. Other series take :meth:`read_merged`."""
        if self.retention_ms:
            start = max(start, now - self.retention_ms)
        if not series or start > end:
            return []
        sids = np.unique(np.array([i.sid for i in series], np.int64))
        segments = self.view.live(start, end)
        picked = []
        for seg, blk in segments:
            idx = blk.select(sids, start, end)
            if len(idx):
                kinds, flags = blk.kinds(idx)
                picked.append((blk, seg_number(seg), idx, kinds, flags))
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
        merged = self.read_merged(slow, start, end, now) if len(slow) else {}
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
                assert isinstance(values, np.ndarray)  # numbers merge as int64 words
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
            raise CorruptFile(self.where, f"undecodable chunk: {e}") from None
        cut_lo = sel["min_ts"][first] < start
        cut_hi = sel["max_ts"][last] > end
        tombed = self.tombstoned()
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
                hidden = self.hidden(sid, t, per_point)
                if hidden is not None and hidden.any():
                    keep = np.flatnonzero(~hidden)
                    t, v = t[keep], v[keep]
            if len(t):
                got[sid] = (t, v)

    def parts(self, sids: np.ndarray, start: int, end: int) -> dict[int, list[tuple[Points, int]]]:
        """Each series' points in [start, end], block by block (oldest first), with the
        block's number."""
        per_sid: dict[int, list[tuple[Points, int]]] = {}
        for seg, blk in self.view.live(start, end):
            number = seg_number(seg)
            for sid, pts in blk.read_many(sids, start, end).items():
                per_sid.setdefault(sid, []).append((pts, number))
        return per_sid

    def read_merged(
        self, sids: np.ndarray, start: int, end: int, now: int
    ) -> dict[int, tuple[np.ndarray, np.ndarray | list]]:
        """Series whose chunks overlap (rewritten points: the newest block wins) or carry
        expiry times or objects, merged part by part."""
        per_sid = self.parts(sids, start, end)
        out: dict[int, tuple[np.ndarray, np.ndarray | list]] = {}
        for sid, parts in per_sid.items():
            pts, numbers = merge_parts(parts)
            pts = self.visible(sid, pts, numbers, now)
            if len(pts):
                out[sid] = (pts.ts, pts.objs if pts.objs is not None else pts.values)
        return out

    def has_points(self, sid: int, now: int) -> bool:
        """Whether series ``sid`` has a visible point at any time."""
        parts = self.parts(np.array([sid], np.int64), MIN_TS, MAX_TS).get(sid)
        if not parts:
            return False
        pts, numbers = merge_parts(parts)
        return bool(len(self.visible(sid, pts, numbers, now)))

    # -- hidden points ---------------------------------------------------------------------

    def visible(self, sid: int, pts: Points, numbers: np.ndarray | np.int64, now: int) -> Points:
        """Drop points hidden by tombstones, expired by TTL or past the retention."""
        tombstones = self.view.manifest.get("tombstones")
        if not self.retention_ms and not tombstones and not pts.expires.any():
            return pts
        keep = (pts.expires == 0) | (pts.expires > now)
        if self.retention_ms:
            keep &= pts.ts >= now - self.retention_ms
        hidden = self.hidden(sid, pts.ts, numbers)
        if hidden is not None:
            keep &= ~hidden
        return pts if keep.all() else pts.take(np.flatnonzero(keep))

    def hidden(self, sid: int, ts: np.ndarray, numbers: np.ndarray | np.int64) -> np.ndarray | None:
        """Points hidden by tombstones (None when no tombstone touches ``sid``)."""
        mask = None
        for tomb in self.view.manifest.get("tombstones", ()):
            if sid not in tomb["series"]:
                continue
            m = (numbers < tomb["horizon"]) & (ts >= tomb["start"]) & (ts <= tomb["end"])
            mask = m if mask is None else (mask | m)
        return mask

    def tombstoned(self) -> set[int]:
        """Series touched by some tombstone."""
        return {s for tomb in self.view.manifest.get("tombstones", ()) for s in tomb["series"]}
