"""The query cache: raw datastore results reused for ``cache_time`` seconds (spec §3.5).

KairosDB keys its cache on the query's time fields *as written* (a relative start is the text
``5 days``, not the instant it resolves to), the metric name and the tag filter; a query with
``cache_time > 0`` reuses raw data cached less than ``cache_time`` seconds ago and re-runs its
aggregators on it.  Every query stores its raw data (so a later query may reuse it).  Kairos
keeps the cache in memory, per HTTP worker, bounded in bytes (least recently used first out),
and switched off by ``KAIROSDB_CACHE_ENABLE=false``.

Unlike KairosDB, an entry is also dropped as soon as the writer applies a write or a delete
to its metric: the writer counts the writes per metric in ``<data_dir>/write-versions``
(:class:`~kairos.storage.versions.WriteVersions`, a shared memory-mapped array of counters indexed by a hash of the
metric name), and an entry remembers the counter it was filled at.  A hash collision only
costs a needless miss.  A query service that does not share the ingest service's data
directory (Cassandra deployments) has no counters to watch: there ``cache_time`` alone bounds
how stale a cached answer may be, as in KairosDB.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from kairos.storage.protocol import SeriesData, SeriesInfo
from kairos.storage.versions import WriteVersions

__all__ = ["QueryCache"]


@dataclass(slots=True)
class _Entry:
    stored: float
    version: int
    selected: list[SeriesInfo]
    data: list[SeriesData]
    size: int


def _size(data: list[SeriesData]) -> int:
    n = 0
    for d in data:
        n += d.ts.nbytes + 200
        if isinstance(d.values, np.ndarray):
            n += d.values.nbytes
        else:
            n += sum(len(v) for v in d.values) + 56 * len(d.values)
    return n


class QueryCache:
    """Raw results per (time fields, metric, tag filter), bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int, versions: WriteVersions | None = None) -> None:
        self.max_bytes = max_bytes
        self.versions = versions
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def _version(self, metric: str) -> int:
        return self.versions.get(metric) if self.versions is not None else 0

    def get(
        self, key: tuple, metric: str, cache_time: int
    ) -> tuple[list[SeriesInfo], list[SeriesData]] | None:
        """The cached raw data for ``key`` if younger than ``cache_time`` seconds and no write
        to ``metric`` was applied since; None otherwise (a miss)."""
        if cache_time <= 0:
            return None
        with self._lock:
            e = self._entries.get(key)
            if (
                e is None
                or time.monotonic() - e.stored >= cache_time
                or e.version != self._version(metric)
            ):
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return e.selected, e.data

    def version(self, metric: str) -> int:
        """Read before the datastore: an entry filled with it is at least this fresh."""
        return self._version(metric)

    def put(
        self,
        key: tuple,
        version: int,
        selected: list[SeriesInfo],
        data: list[SeriesData],
    ) -> None:
        size = _size(data)
        if size > self.max_bytes:
            return
        for d in data:  # shared by later queries: nothing may modify them in place
            d.ts.flags.writeable = False
            if isinstance(d.values, np.ndarray):
                d.values.flags.writeable = False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = _Entry(time.monotonic(), version, selected, data, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, e = self._entries.popitem(last=False)
                self._bytes -= e.size
                self.evictions += 1

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
