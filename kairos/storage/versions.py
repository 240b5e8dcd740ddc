"""Per-metric write counters: how the writer tells every worker's query cache what changed.

``<data_dir>/write-versions`` is an array of 65,536 little-endian uint64 counters, indexed by
the CRC-32 of a metric name modulo the array's length.  The writer memory-maps it read-write and
bumps a metric's counter after each apply or delete that touched it; the HTTP workers map it
read-only and compare a cache entry's counter with the current one.  A collision only costs a
needless cache miss.
"""

from __future__ import annotations

import mmap
import os
import zlib

import numpy as np

__all__ = ["WriteVersions"]

SLOTS = 1 << 16
FILE = "write-versions"


class WriteVersions:
    """Per-metric write counters shared by the writer (bumps) and the workers (reads)."""

    def __init__(self, data_dir: str, *, writer: bool = False) -> None:
        self.path = os.path.join(data_dir, FILE)
        self.writer = writer
        self._map: mmap.mmap | None = None
        self._arr: np.ndarray | None = None
        if writer:
            self._open(create=True)

    def _open(self, create: bool = False) -> bool:
        if self._arr is not None:
            return True
        size = SLOTS * 8
        try:
            fd = os.open(self.path, (os.O_RDWR | os.O_CREAT) if create else os.O_RDONLY, 0o644)
        except FileNotFoundError:
            return False
        try:
            if create:
                if os.fstat(fd).st_size != size:
                    os.ftruncate(fd, size)
                # Allocate every block now: a store to a mapped hole on a full disk is SIGBUS.
                os.posix_fallocate(fd, 0, size)
            if os.fstat(fd).st_size != size:
                return False
            access = mmap.ACCESS_WRITE if create else mmap.ACCESS_READ
            self._map = mmap.mmap(fd, size, access=access)
        finally:
            os.close(fd)
        self._arr = np.frombuffer(self._map, np.uint64)
        return True

    @staticmethod
    def slot(metric: str) -> int:
        return zlib.crc32(metric.encode("utf-8", "surrogatepass")) % SLOTS

    def bump(self, metrics: set[str]) -> None:
        """Writer: the datastore now holds new writes or deletes of ``metrics``."""
        assert self._arr is not None
        for m in metrics:
            self._arr[self.slot(m)] += 1

    def get(self, metric: str) -> int:
        """The counter of ``metric``'s slot (0 while the writer has not created the file)."""
        if self._arr is None and not self._open():
            return 0
        assert self._arr is not None  # _open() returned True: the file is mapped
        return int(self._arr[self.slot(metric)])

    def close(self) -> None:
        self._arr = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # an array view is still alive; the GC will unmap it
                pass
            self._map = None
