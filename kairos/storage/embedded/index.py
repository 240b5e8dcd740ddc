"""The series table: series.log on disk, and in memory the series and their postings.

series.log holds CRC frames whose payload is JSON ``[metric, [name0, value0, ...], kind]``; the
n-th frame defines series id n, and only the first ``series_count`` frames (from the manifest)
are valid.  Every process loads it incrementally into::

    series       sid -> SeriesInfo(sid, metric, tags, kind)
    kinds        sid -> kind (uint8 array, what a block writer needs)
    key          (metric, tags, kind) -> sid
    by_metric    metric -> [sid, ...]                           ascending
    postings     metric -> tag name -> tag value -> [sid, ...]  ascending: ids only grow

so a tag lookup is a union of postings per tag name, intersected across names, whatever the
time range.  ``dead`` holds the series a delete left without points (from the manifest): they
are left out of names and lookups until new points arrive.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

import numpy as np
import orjson

from kairos.errors import CorruptFile
from kairos.model.java import java_key
from kairos.storage._frame import FrameStatus, encode_frame, iter_frames
from kairos.storage._fs import write_all
from kairos.storage.protocol import SeriesInfo

__all__ = ["SeriesIndex", "truncate_log"]

log = logging.getLogger("kairos.store")


class SeriesIndex:
    """The series of one store, loaded from (and, in the writer, appended to) series.log."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.series: list[SeriesInfo] = []
        self.kinds = np.zeros(0, np.uint8)
        self.key: dict[tuple, int] = {}
        self.by_metric: dict[str, list[int]] = {}
        self.postings: dict[str, dict[str, dict[str, list[int]]]] = {}
        self.dead: set[int] = set()
        self._offset = 0
        self._metric_names: list[str] | None = None

    # -- loading and adding ----------------------------------------------------------------

    def load(self, count: int) -> None:
        """Read series.log up to ``count`` series (from where the last load stopped)."""
        if len(self.series) >= count:
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        base = self._offset
        for status, end, payload in iter_frames(data):
            if status != FrameStatus.OK or len(self.series) >= count:
                break
            metric, flat, kind = orjson.loads(bytes(payload))
            self.add(metric, tuple(zip(flat[0::2], flat[1::2], strict=True)), kind)
            self._offset = base + end
        if len(self.series) < count:
            raise CorruptFile(self.path, f"holds {len(self.series)} series, manifest says {count}")

    def add(self, metric: str, tags: tuple, kind: int) -> int:
        """Give the next series id to (metric, tags, kind) in memory; returns it."""
        sid = len(self.series)
        self.series.append(SeriesInfo(sid, metric, tags, kind))
        self.key[(metric, tags, kind)] = sid
        self.by_metric.setdefault(metric, []).append(sid)
        post = self.postings.setdefault(metric, {})
        for k, v in tags:
            post.setdefault(k, {}).setdefault(v, []).append(sid)  # ascending: ids only grow
        if sid >= len(self.kinds):
            grown = np.zeros(max(1024, 2 * len(self.kinds)), np.uint8)
            grown[: len(self.kinds)] = self.kinds
            self.kinds = grown
        self.kinds[sid] = kind
        self._metric_names = None
        return sid

    @staticmethod
    def record(metric: str, tags: tuple, kind: int) -> bytes:
        """The series.log frame of one series."""
        flat = [x for kv in tags for x in kv]
        return encode_frame(orjson.dumps([metric, flat, kind]))

    def append(self, records: list[bytes]) -> None:
        """Append frames made by :meth:`record` to series.log, durably (the writer, before the
        manifest that counts them)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                write_all(fd, b"".join(records))
                os.fsync(fd)
            except BaseException:
                # A full disk: cut the partial records back off (the writer then reopens the
                # store, which forgets the series added in memory).
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)

    # -- dead series -----------------------------------------------------------------------

    def set_dead(self, sids) -> None:
        self.dead = set(sids)
        self._metric_names = None

    def revive(self, sids: np.ndarray) -> None:
        """New points arrived for ``sids``: they are no longer dead."""
        if self.dead:
            self.dead.difference_update(sids.tolist())
            self._metric_names = None

    # -- lookups ---------------------------------------------------------------------------

    def metric_names(self, prefix: str | None = None) -> list[str]:
        if self._metric_names is None:
            dead = self.dead
            live = (m for m, sids in self.by_metric.items() if any(s not in dead for s in sids))
            self._metric_names = sorted(live, key=java_key)
        if not prefix:
            return list(self._metric_names)
        return [m for m in self._metric_names if m.startswith(prefix)]

    def tag_names(self) -> list[str]:
        """Every tag name of the live series, in Java ``String`` order."""
        names = {k for s in self.series if s.sid not in self.dead for k, _ in s.tags}
        return sorted(names, key=java_key)

    def tag_values(self) -> list[str]:
        """Every tag value of the live series, in Java ``String`` order."""
        values = {v for s in self.series if s.sid not in self.dead for _, v in s.tags}
        return sorted(values, key=java_key)

    def find(self, metric: str, tags: dict[str, list[str]]) -> list[SeriesInfo]:
        """Live series of ``metric`` having, for every tag name given, one of the values: the
        union of each tag's postings, intersected across tags."""
        sids = None
        post = self.postings.get(metric, {})
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
        found: Iterable[int] = self.by_metric.get(metric, []) if sids is None else sids.tolist()
        return [self.series[s] for s in found if s not in self.dead]


def truncate_log(path: str, count: int) -> None:
    """Cut series.log after its first ``count`` series (writer start-up: series appended
    after the last manifest are forgotten); fewer than ``count`` is corruption."""
    if not os.path.exists(path):
        return
    with open(path, "rb") as f:
        data = f.read()
    end = 0
    n = 0
    for status, e, _ in iter_frames(data):
        if status != FrameStatus.OK or n >= count:
            break
        end, n = e, n + 1
    if n < count:
        raise CorruptFile(path, f"holds {n} series, manifest says {count}")
    if end < len(data):
        log.warning("series.log: dropping %d bytes past the checkpoint", len(data) - end)
        os.truncate(path, end)
