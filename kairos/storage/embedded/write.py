"""The write path: what the writer applies, batches as one level-0 block, deletes as
tombstones; each returns the next manifest, which the store then writes.

    batches --(series ids: SeriesIndex, new ones appended to series.log)-->
    sids, ts, values, expiry, objects --(lexsort by (series, ts); the later point wins)-->
    segments/<next_segment>.kblk, level 0
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator

import numpy as np

from kairos.model.batch import HISTOGRAM, STRING, Batch
from kairos.storage.embedded.blocks import Points, write_block
from kairos.storage.embedded.index import SeriesIndex
from kairos.storage.embedded.manifest import block_name

__all__ = ["BatchWriter", "runs", "tombstone", "write_segment"]


def write_segment(seg_dir: str, number: int, kinds: np.ndarray, items: Iterable) -> dict:
    """Write block ``number`` from (sid, Points) in series order; returns its manifest entry
    (without ``level``)."""
    name = block_name(number)
    info = write_block(os.path.join(seg_dir, name), kinds, items)
    return {"name": name, **info}


def runs(sids: np.ndarray, pts: Points) -> Iterator[tuple[int, Points]]:
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


def tombstone(manifest: dict, sids: list[int], start: int, end: int) -> dict:
    """``manifest`` plus a tombstone hiding ``sids``' points in [start, end] held by the blocks
    that exist now (numbered below ``next_segment``)."""
    m = dict(manifest)
    tomb = {"series": sids, "start": int(start), "end": int(end), "horizon": m["next_segment"]}
    m["tombstones"] = [*m.get("tombstones", []), tomb]
    return m


class BatchWriter:
    """Turns the batches of one writer apply into one level-0 block.

    Parameters
    ----------
    index : SeriesIndex
        Gives (and records in series.log) the series ids.
    seg_dir : str
        Where blocks are written.
    default_ttl : int
        Seconds applied to points ingested with ttl 0 (0 = keep forever).
    """

    def __init__(self, index: SeriesIndex, seg_dir: str, default_ttl: int) -> None:
        self.index = index
        self.seg_dir = seg_dir
        self.default_ttl = default_ttl

    def apply(
        self, batches: list[Batch], manifest: dict, wal_positions: dict | None, now: int
    ) -> dict:
        """Append the batches' new series to series.log (fsync), write their points as the
        next block; returns the manifest naming it and checkpointing ``wal_positions``."""
        index = self.index
        new_series: list[bytes] = []
        sids_parts: list[np.ndarray] = []
        ts_parts: list[np.ndarray] = []
        val_parts: list[np.ndarray] = []
        exp_parts: list[np.ndarray] = []
        obj_parts: list[list | None] = []
        for b in batches:
            if not len(b):
                continue
            local = np.empty(b.n_series, np.int64)
            for i in range(b.n_series):
                key = (b.metrics[i], b.tags[i], int(b.kinds[i]))
                sid = index.key.get(key)
                if sid is None:
                    sid = index.add(*key)
                    new_series.append(index.record(*key))
                local[i] = sid
            index.revive(local)
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
                for j in np.nonzero(objmask)[0]:
                    o = b.objects[b.values[j]]
                    objs[j] = o.encode("utf-8", "surrogatepass") if isinstance(o, str) else o
                obj_parts.append(objs)
            else:
                obj_parts.append(None)
        if new_series:
            index.append(new_series)
        segments = list(manifest["segments"])
        next_seg = manifest["next_segment"]
        if sids_parts:
            obj_col: list | None = None
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
        m = dict(manifest)
        m["segments"] = segments
        m["next_segment"] = next_seg
        m["series_count"] = len(index.series)
        m["generation"] = m["generation"] + 1
        m["dead_series"] = sorted(index.dead)
        if wal_positions is not None:
            m["wal"] = wal_positions
        return m

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
        points = Points(ts, vals, exp, sel_objs)
        return write_segment(self.seg_dir, number, self.index.kinds, runs(sids, points))
