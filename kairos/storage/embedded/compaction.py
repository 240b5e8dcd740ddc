"""Size-tiered compaction: ``fanout`` blocks of one level merge into one block of the next.

New blocks have level 0 (one per writer apply); the blocks of one level are always contiguous
in the manifest's list, so a merge replaces a run of entries by one.  Each point is rewritten
about log_fanout(total / apply) times.  Merging drops overwritten points (the newest block
wins), and the points a read would hide (tombstones, TTL, retention): :meth:`Reader.visible`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kairos.storage.embedded.blocks import Points
from kairos.storage.embedded.manifest import seg_number
from kairos.storage.embedded.read import MAX_TS, MIN_TS, Reader, merge_parts
from kairos.storage.embedded.write import write_segment

__all__ = ["COMPACTION_SERIES", "Compactor", "next_run"]

COMPACTION_SERIES = 65536
"""Series merged at a time by a compaction: bounds its memory whatever the block sizes."""


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
    """

    def __init__(self, reader: Reader, seg_dir: str) -> None:
        self.reader = reader
        self.seg_dir = seg_dir

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
            top = max((int(b.series[-1]) for b, _ in blocks if len(b.series)), default=-1)
            for first in range(0, top + 1, COMPACTION_SERIES):
                last = first + COMPACTION_SERIES
                per_sid: dict[int, list[tuple[Points, int]]] = {}
                for blk, num in blocks:
                    a = int(np.searchsorted(blk.series, np.uint32(first), "left"))
                    b = int(np.searchsorted(blk.series, np.uint32(last), "left"))
                    sids = np.unique(blk.series[a:b]).astype(np.int64)
                    for sid, pts in blk.read_many(sids, MIN_TS, MAX_TS).items():
                        per_sid.setdefault(sid, []).append((pts, num))
                for sid in sorted(per_sid):
                    pts, numbers = merge_parts(per_sid[sid])
                    pts = visible(sid, pts, numbers, now)
                    if len(pts):
                        yield sid, pts

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
