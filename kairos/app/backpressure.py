"""Ingest admission: 503 with ``Retry-After`` instead of growing without bound.

Two limits, checked before a request body is parsed:

* ``KAIROSDB_MAX_MEMORY_MB`` - the resident memory of this HTTP worker process.  Request
  bodies, decoded batches and payloads waiting for their WAL fsync all live here; past the
  limit, ingest is refused until the memory is freed.  The check runs before the body is read
  (:mod:`kairos.app.bodies`) and counts the announced ``Content-Length`` when other bodies are
  in flight, so a body that would take the worker past the limit is refused unread (a body
  alone is refused only when the worker is over the limit already).
* ``KAIROSDB_WAL_MAX_BACKLOG_MB`` - the WAL bytes the writer has not applied yet (the disk
  quota of the durable queue).  It grows when the writer falls behind or the datastore is down
  (Cassandra outage); past the quota, ingest is refused until the writer catches up.

* ``KAIROSDB_DISK_MIN_FREE_MB`` - the free space of the data directory's file system (the
  reserve).  Below it, ingest, deletes and metadata writes answer 507 Insufficient Storage with
  ``Retry-After`` (:class:`~kairos.errors.InsufficientStorage`) until space is freed, so the
  writer and compaction keep room to finish their work; a WAL append that still meets a full
  disk answers the same (:class:`~kairos.storage.wal.WalWriter` leaves nothing of it behind).

All are sampled at most every ``SAMPLE_SECONDS`` so a refusal costs no more than a counter.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import time

import pyarrow as pa

from kairos.app.process import rss_bytes
from kairos.errors import InsufficientStorage, Unavailable
from kairos.storage._fs import free_bytes
from kairos.storage.wal import DISK_FULL_RETRY_AFTER, backlog_bytes

__all__ = ["Admission"]

log = logging.getLogger("kairos.app")

MB = 1024 * 1024
SAMPLE_SECONDS = 0.1
RETRY_AFTER_SECONDS = 1
TRIM_SECONDS = 1.0


def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Hand freed memory back to the OS: Python's garbage, Arrow's pool and glibc's heap
    (freed but retained memory would otherwise keep the worker over its limit)."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)


class Admission:
    """Per-worker admission control for the ingest endpoints."""

    def __init__(
        self,
        max_memory_mb: int,
        wal_max_backlog_mb: float,
        data_dir: str = ".",
        min_free_mb: float = 0.0,
    ) -> None:
        self.max_rss = max_memory_mb * MB
        self.max_backlog = int(wal_max_backlog_mb * MB)
        self.data_dir = data_dir
        self.min_free = int(min_free_mb * MB)
        self._sampled = 0.0
        self._disk_sampled = 0.0
        self._trimmed = 0.0
        self.rss = 0
        self.backlog = 0
        self.free: int | None = None
        """Free bytes of the data directory at the last sample (None: not known)."""
        self.refused = 0
        self.disk_refused = 0
        self._disk_refusing = False

    def check(self, state, incoming: int = 0) -> None:
        """Raise :class:`Unavailable` (503, ``Retry-After``) when a limit is passed or when
        ``incoming`` more bytes would pass the memory limit, and
        :class:`InsufficientStorage` (507) when the disk is below its reserve."""
        now = time.monotonic()
        self.check_disk(now)
        if now - self._sampled >= SAMPLE_SECONDS:
            self._sampled = now
            self.rss = rss_bytes() or 0
            self.backlog = backlog_bytes(state.wal.dir, state.store.wal_positions)
        if self.rss + incoming > self.max_rss and now - self._trimmed >= TRIM_SECONDS:
            self._trimmed = now
            release_memory()
            self.rss = rss_bytes() or 0
        if self.rss + incoming > self.max_rss:
            self.refused += 1
            body = f" and this request's body needs {incoming / MB:.1f} MB" if incoming else ""
            raise Unavailable(
                f"Ingest paused: this worker uses {self.rss // MB} MB{body}, more than "
                f"KAIROSDB_MAX_MEMORY_MB={self.max_rss // MB}; retry later",
                retry_after=RETRY_AFTER_SECONDS,
            )
        if self.backlog > self.max_backlog:
            self.refused += 1
            raise Unavailable(
                f"Ingest paused: {self.backlog // MB} MB of the WAL wait for the datastore, "
                f"more than KAIROSDB_WAL_MAX_BACKLOG_MB={self.max_backlog / MB:g}; retry later",
                retry_after=RETRY_AFTER_SECONDS,
            )

    def check_disk(self, now: float | None = None) -> None:
        """Raise :class:`InsufficientStorage` while the data directory has less free space than
        the reserve (the only check of deletes, metadata writes and the line protocols)."""
        now = time.monotonic() if now is None else now
        if now - self._disk_sampled >= SAMPLE_SECONDS:
            self._disk_sampled = now
            self.sample_disk()
        if self._disk_refusing:
            self.refused += 1
            self.disk_refused += 1
            raise InsufficientStorage(self.disk_message(), retry_after=DISK_FULL_RETRY_AFTER)

    def sample_disk(self) -> bool:
        """Measure the free space now; True when writes are refused.  Logs the changes."""
        try:
            self.free = free_bytes(self.data_dir)
        except OSError:
            self.free = None  # cannot tell: let the writes find out
        refusing = self.free is not None and self.free < max(self.min_free, 1)
        if refusing != self._disk_refusing:
            self._disk_refusing = refusing
            if refusing:
                log.warning("ingest refused (507): %s", self.disk_message())
            else:
                log.info(
                    "ingest accepted again: %d MB free in the data directory",
                    (self.free or 0) // MB,
                )
        return refusing

    @property
    def disk_refusing(self) -> bool:
        return self._disk_refusing

    def disk_message(self) -> str:
        free = self.free or 0
        if free < max(self.min_free, 1) and self.min_free:
            return (
                f"Disk full: {free / MB:.1f} MB free in the data directory, below "
                f"KAIROSDB_DISK_MIN_FREE_MB={self.min_free / MB:g}; nothing was stored; "
                "retry once space is freed"
            )
        return (
            "Disk full: no space left in the data directory; nothing was stored; "
            "retry once space is freed"
        )
