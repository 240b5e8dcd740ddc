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

Both are sampled at most every ``SAMPLE_SECONDS`` so a refusal costs no more than a counter.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time

import pyarrow as pa

from kairos.app.process import rss_bytes
from kairos.errors import Unavailable
from kairos.storage.wal import backlog_bytes

__all__ = ["Admission"]

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

    def __init__(self, max_memory_mb: int, wal_max_backlog_mb: float) -> None:
        self.max_rss = max_memory_mb * MB
        self.max_backlog = int(wal_max_backlog_mb * MB)
        self._sampled = 0.0
        self._trimmed = 0.0
        self.rss = 0
        self.backlog = 0
        self.refused = 0

    def check(self, state, incoming: int = 0) -> None:
        """Raise :class:`Unavailable` (503, ``Retry-After``) when a limit is passed, or when
        ``incoming`` more bytes would pass the memory limit."""
        now = time.monotonic()
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
