"""``EmbeddedStore``: the embedded engine behind the ``Datastore`` protocol.

The package docstring (:mod:`kairos.storage.embedded`) draws the files and their invariants.
The store opens the parts, keeps them in step and orders the writer's steps (block, series.log,
then MANIFEST; compacted files unlinked last); each part does one job::

    ManifestFile, recover   manifest.py    MANIFEST: read, parse, atomic replace; writer start-up
    SeriesIndex             index.py       series.log and the in-memory series and postings
    View                    view.py        the manifest in force and the blocks it names, mapped
    Reader                  read.py        chunk selection, decoding, hidden points
    BatchWriter, tombstone  write.py       batches -> level-0 block; deletes -> tombstones
    Compactor, next_run     compaction.py  size-tiered merges
    convert_v1              migrate.py     a version-1 store's Arrow segments -> blocks
"""

from __future__ import annotations

import logging
import os
import time

from kairos.errors import CorruptFile
from kairos.model.batch import Batch
from kairos.storage._fs import disk_full, free_bytes, remove_quietly
from kairos.storage.embedded.compaction import COMPACTION_POINTS, Compactor, next_run
from kairos.storage.embedded.index import SeriesIndex
from kairos.storage.embedded.manifest import VERSION, ManifestFile, recover
from kairos.storage.embedded.migrate import convert_v1, remove_v1_files
from kairos.storage.embedded.read import Reader
from kairos.storage.embedded.view import View
from kairos.storage.embedded.write import BatchWriter, tombstone
from kairos.storage.protocol import SeriesData, SeriesInfo

__all__ = ["EmbeddedStore"]

log = logging.getLogger("kairos.store")


def _now_ms() -> int:
    """The clock of reads (TTL, retention), writes (expiry times) and compactions."""
    return time.time_ns() // 1_000_000


class EmbeddedStore:
    """The embedded backend (see :mod:`kairos.storage.embedded` for the files).

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
    compaction_points : int
        Points a compaction decodes and merges at a time: its memory bound.
    """

    def __init__(
        self,
        data_dir: str,
        writer: bool = False,
        default_ttl: int = 0,
        fanout: int = 8,
        retention: int = 0,
        compaction_points: int = COMPACTION_POINTS,
    ) -> None:
        self.dir = data_dir
        self.seg_dir = os.path.join(data_dir, "segments")
        os.makedirs(self.seg_dir, exist_ok=True)
        self.is_writer = writer
        self.default_ttl = default_ttl
        self.fanout = max(2, fanout)
        self.retention_ms = retention * 1000
        self._manifest_file = ManifestFile(data_dir)
        self.manifest_path = self._manifest_file.path
        self.series_path = os.path.join(data_dir, "series.log")
        self._index = SeriesIndex(self.series_path)
        self._view = View(self._manifest_file, self.seg_dir)
        self._reader = Reader(self._view, self.retention_ms, data_dir)
        self._writer = BatchWriter(self._index, self.seg_dir, default_ttl)
        self._compactor = Compactor(self._reader, self.seg_dir, compaction_points)
        self._compaction_postponed = False
        if writer:
            self._recover()
        self.refresh()

    # -- the view ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Pick up a newer manifest written by the writer process (cheap when unchanged).

        Thread-safe: queries run in executor threads while the event loop refreshes.
        """
        with self._view.lock:
            m = self._view.refresh(self.is_writer)
            if m is not None:
                self._index.set_dead(m.get("dead_series", ()))
                self._index.load(m["series_count"])

    def _commit(self, m: dict) -> None:
        """Write ``m`` as the manifest and make it the view."""
        self._view.take(m, self._manifest_file.write(m))

    # -- Datastore: names and series -------------------------------------------------------

    def metric_names(self, prefix: str | None = None) -> list[str]:
        return self._index.metric_names(prefix)

    def tag_names(self) -> list[str]:
        """Every tag name of the live series, in Java ``String`` order (KairosDB 1.2 API)."""
        return self._index.tag_names()

    def tag_values(self) -> list[str]:
        """Every tag value of the live series, in Java ``String`` order (KairosDB 1.2 API)."""
        return self._index.tag_values()

    def find_series(
        self, metric: str, tags: dict[str, list[str]], start: int = 0, end: int = 0
    ) -> list[SeriesInfo]:
        """Series of ``metric`` having, for every tag name given, one of the values: the union
        of each tag's postings, intersected across tags (the time range is not needed)."""
        return self._index.find(metric, tags)

    def count(self, series: list[SeriesInfo], start: int, end: int) -> int:
        """Points of the chunks lying wholly inside [start, end]: from the index only, nothing
        decoded.  A lower bound of what :meth:`read` reads (partial chunks at the range's edges
        are not counted) except for overwritten, deleted or expired points."""
        return self._reader.count(series, start, end)

    # -- Datastore: points -----------------------------------------------------------------

    def read(
        self, series: list[SeriesInfo], start: int, end: int, limit: int = 0, order: str = "asc"
    ) -> list[SeriesData]:
        """``limit``/``order`` are hints the engine applies itself."""
        try:
            return self._reader.read(series, start, end, _now_ms())
        except CorruptFile as e:
            # A compaction may have replaced a block after we read the manifest.
            if os.path.exists(e.path):
                raise
            with self._view.lock:
                self._view.data = None
                self.refresh()
            return self._reader.read(series, start, end, _now_ms())

    @property
    def wal_positions(self) -> dict[str, int]:
        return dict(self._view.manifest.get("wal", {}))

    # -- writer side -------------------------------------------------------------------------

    def write(self, batch: Batch, wal_positions: dict[str, int] | None = None) -> None:
        self.write_many([batch], wal_positions)

    def write_many(self, batches: list[Batch], wal_positions: dict[str, int] | None = None) -> None:
        """Apply batches as one new segment and checkpoint ``wal_positions`` atomically."""
        if not self.is_writer:
            raise RuntimeError("only the writer process writes to the embedded store")
        self.refresh()
        self._commit(self._writer.apply(batches, self._view.manifest, wal_positions, _now_ms()))
        self._maybe_compact()

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
        sids = [s.sid for s in self._index.find(metric, {}) if tag_filter(dict(s.tags))]
        if not sids:
            return 0
        m = tombstone(self._view.manifest, sids, start, end)
        self._view.manifest = m  # has_points must see the new tombstone
        now = _now_ms()
        emptied = {sid for sid in sids if not self._reader.has_points(sid, now)}
        dead = set(m.get("dead_series", ())) | emptied
        m["dead_series"] = sorted(dead)
        m["generation"] += 1
        self._index.set_dead(dead)
        self._commit(m)
        log.info("deleted %s: %d series in [%d, %d]", metric, len(sids), start, end)
        return len(sids)

    def _maybe_compact(self) -> None:
        """Compact while a run is due.  On a full disk compaction waits (the blocks stay
        readable as they are): a run is not started without room for its output, and one
        that meets ENOSPC is dropped and tried again after a later apply."""
        try:
            while (run := next_run(self._view.manifest["segments"], self.fanout)) is not None:
                lo, hi, _ = run
                need = sum(s["size"] for s in self._view.manifest["segments"][lo:hi])
                if free_bytes(self.seg_dir) < need:
                    self._postpone_compaction(f"{need} bytes needed for its output")
                    return
                self.compact(*run)
        except OSError as e:
            if not disk_full(e):
                raise
            self._postpone_compaction(e.strerror or str(e))
            return
        self._compaction_postponed = False

    def _postpone_compaction(self, why: str) -> None:
        if not self._compaction_postponed:
            log.warning("compaction postponed until the disk has room (%s)", why)
        self._compaction_postponed = True

    def compact(self, lo: int = 0, hi: int | None = None, level: int | None = None) -> None:
        """Merge the manifest's blocks ``lo:hi`` (a contiguous run; newer points win) into one.

        Expired (TTL, retention) and deleted points are dropped.  About
        ``compaction_points`` points are merged at a time (runs of series, a big series in
        time windows), so memory stays bounded whatever the blocks' sizes.  The new block takes the run's place in the
        manifest, then the old files are unlinked.
        """
        done = self._compactor.merge(lo, hi, level, self._index.kinds, _now_ms())
        if done is None:
            return
        m, old = done
        try:
            self._commit(m)
        except BaseException:
            self._drop_unnamed(m["segments"][lo]["name"])
            raise
        self._view.retire(old)
        seg = m["segments"][lo]
        log.info("compacted %d blocks (%d points) into %s", len(old), seg["rows"], seg["name"])

    def _drop_unnamed(self, name: str) -> None:
        """Remove block ``name`` unless the manifest on disk names it (a failed commit)."""
        try:
            on_disk = self._manifest_file.load() or {}
        except (OSError, ValueError):
            return  # unknown: the next start-up's recovery removes it if it is an orphan
        if all(s["name"] != name for s in on_disk.get("segments", ())):
            remove_quietly(os.path.join(self.seg_dir, name))

    def _recover(self) -> None:
        """Writer start-up: check the files the manifest names, drop orphans, and convert a
        version-1 store."""
        m = recover(self._manifest_file, self.seg_dir, self.series_path)
        if m is None or m.get("version", 1) == VERSION:
            return
        self._index.load(m["series_count"])
        v2 = convert_v1(m, self._index.kinds, self.seg_dir)
        self._commit(v2)
        remove_v1_files(self.seg_dir, v2["segments"])
        log.info("converted the version-1 store in %s to version %d", self.dir, VERSION)

    def close(self) -> None:
        self._view.close()
