"""Size-tiered compaction: ``fanout`` blocks of one level merge into one block of the next.

New blocks have level 0 (one per writer apply); the blocks of one level are always contiguous
in the manifest's list, so a merge replaces a run of entries by one.  Each point is rewritten
about log_fanout(total / apply) times.  Merging drops overwritten points (the newest block
wins), and the points a read would hide (tombstones, TTL, retention): :meth:`Reader.visible`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kairos.storage.embedded.blocks import CHUNK_POINTS, Points
from kairos.storage.embedded.manifest import seg_number
from kairos.storage.embedded.read import MAX_TS, MIN_TS, Reader, merge_parts
from kairos.storage.embedded.write import write_segment

__all__ = ["COMPACTION_POINTS", "Compactor", "next_run", "points_for", "steps"]

COMPACTION_POINTS = 2_000_000
"""Points a compaction decodes and merges at a time by default (the writer derives its own from
``writer.max_memory_mb``): bounds its memory whatever the blocks' sizes."""

MERGE_BYTES_PER_POINT = 64
"""Working set of one merged point, measured (docs/benchmarks.md): decoded ts and value words,
the merge's concatenation and sort, the visibility filter and the encoder's copies."""


def points_for(max_bytes: int) -> int:
    """Points a compaction step may hold to stay within ``max_bytes``."""
    return max(max_bytes // MERGE_BYTES_PER_POINT, 10 * CHUNK_POINTS)


Step = tuple[int, int, int, int]
"""Series ids ``[first, last)`` and the time range ``[start, end]`` merged in one go."""


def steps(indexes: list[np.ndarray], max_points: int) -> Iterator[Step]:
    """Cut a merge of blocks (their chunk ``indexes``) into steps of at most about
    ``max_points`` points: runs of whole series, and a series holding more than that alone in
    time windows (cut at chunk starts, so a window may exceed it by a chunk per block)."""
    top = max((int(ix["series"][-1]) for ix in indexes if len(ix)), default=-1)
    if top < 0:
        return
    totals = np.zeros(top + 1, np.int64)
    for ix in indexes:
        np.add.at(totals, ix["series"].astype(np.int64), ix["count"].astype(np.int64))
    cum = np.cumsum(totals)
    first = 0
    while first <= top:
        base = int(cum[first - 1]) if first else 0
        # The most series from ``first`` whose points fit, at least one.
        last = max(int(np.searchsorted(cum, base + max_points, "right")), first + 1)
        if last - first > 1 or int(totals[first]) <= max_points:
            yield first, last, MIN_TS, MAX_TS
        else:
            yield from _windows(indexes, first, max_points)
        first = last


def _windows(indexes: list[np.ndarray], sid: int, max_points: int) -> Iterator[Step]:
    """Time windows of one series, about ``max_points`` points each."""
    parts = [ix[ix["series"] == sid] for ix in indexes]
    chunks_ = np.concatenate([p[["min_ts", "count"]] for p in parts])
    chunks_ = chunks_[np.argsort(chunks_["min_ts"], kind="stable")]
    cum = np.cumsum(chunks_["count"].astype(np.int64))
    start = MIN_TS
    taken = 0
    while taken < cum[-1]:
        i = int(np.searchsorted(cum, taken + max_points, "right"))
        if i >= len(chunks_):
            break
        cut = int(chunks_["min_ts"][i])
        if cut <= start:  # chunks starting at the same instant: take them all together
            i = int(np.searchsorted(chunks_["min_ts"], cut, "right"))
            if i >= len(chunks_):
                break
            cut = int(chunks_["min_ts"][i])
        yield sid, sid + 1, start, cut - 1
        start = cut
        taken = int(cum[i - 1])
    yield sid, sid + 1, start, MAX_TS


def next_run(segments: list[dict], fanout: int) -> tuple[int, int, int] | None:
    """The run ``(lo, hi, level)`` of the manifest's segments to merge next: the lowest level
    holding ``fanout`` blocks, into a block of the level above (None: nothing to do)."""
    by_level: dict[int, list[int]] = {}
    for i, seg in enumerate(segments):
        by_level.setdefault(seg.get("level", 0), []).append(i)
    full = [lvl for lvl, idx in by_level.items() if len(idx) >= fanout]
    if not full:
        return None
    lvl = min(full)
    idx = by_level[lvl]
    return idx[0], idx[-1] + 1, lvl + 1


class Compactor:
    """Merges a run of the view's blocks into one new block.

    Parameters
    ----------
    reader : Reader
        Its view gives the blocks and the manifest; its visibility rules say what to drop.
    seg_dir : str
        Where the new block is written.
    max_points : int
        Points decoded and merged at a time (:func:`steps`): the merge's memory bound.
    """

    def __init__(self, reader: Reader, seg_dir: str, max_points: int = COMPACTION_POINTS) -> None:
        self.reader = reader
        self.seg_dir = seg_dir
        self.max_points = max_points

    def merge(
        self, lo: int, hi: int | None, level: int | None, kinds: np.ndarray, now: int
    ) -> tuple[dict, list[dict]] | None:
        """Write the merge of the manifest's segments ``lo:hi`` (None when fewer than two).

        Returns the next manifest (the new block in the run's place, tombstones no live block
        needs any more forgotten) and the replaced entries, whose files the caller unlinks
        once that manifest is written.
        """
        view = self.reader.view
        segs = list(view.manifest["segments"])
        hi = len(segs) if hi is None else hi
        old = segs[lo:hi]
        if len(old) < 2:
            return None
        blocks = [(view.block(s["name"]), seg_number(s)) for s in old]
        number = view.manifest["next_segment"]
        visible = self.reader.visible

        def merged() -> Iterator[tuple[int, Points]]:
            for first, last, start, end in steps([b.index for b, _ in blocks], self.max_points):
                per_sid: dict[int, list[tuple[Points, int]]] = {}
                for blk, num in blocks:
                    a = int(np.searchsorted(blk.series, np.uint32(first), "left"))
                    b = int(np.searchsorted(blk.series, np.uint32(last), "left"))
                    sids = np.unique(blk.series[a:b]).astype(np.int64)
                    for sid, pts in blk.read_many(sids, start, end).items():
                        per_sid.setdefault(sid, []).append((pts, num))
                for sid in sorted(per_sid):
                    pts, numbers = merge_parts(per_sid[sid])
                    pts = visible(sid, pts, numbers, now)
                    if len(pts):
                        yield sid, pts
                del per_sid

        seg = write_segment(self.seg_dir, number, kinds, merged())
        seg["level"] = max(s.get("level", 0) for s in old) + 1 if level is None else level
        m = dict(view.manifest)
        m["segments"] = [*segs[:lo], seg, *segs[hi:]]
        m["next_segment"] = number + 1
        m["generation"] += 1
        # A tombstone is needed while some live block is older than its horizon.
        oldest = min(seg_number(x) for x in m["segments"])
        m["tombstones"] = [t for t in m.get("tombstones", []) if t["horizon"] > oldest]
        return m, old
