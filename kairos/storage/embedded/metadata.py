"""The embedded datastore's metadata (KairosDB's ``ServiceKeyStore``): one crash-safe file.

``<data_dir>/metadata/`` is shared by every HTTP worker process::

    metadata.json      one CRC frame (kairos.storage._frame) holding
                       {"version": 1, "entries": [[service, service_key, key, value, mtime_ms]]}
    metadata.lock      flock()ed exclusively by a writer for read-modify-write
    metadata.json.tmp  the next version while it is written (a crash leaves at most this)

A writer takes the lock, re-reads the current file, applies its change, writes the temp file,
fsyncs it, renames it over ``metadata.json`` and fsyncs the directory: a reader (who never
locks) sees the old or the new file, whole.  Files are never modified in place, so a reader
keeps the file it parsed open and re-parses only when the path names another inode (the open
descriptor pins the inode number, so a new file can never look like the cached one).  A file
that fails its CRC or framing raises :class:`~kairos.errors.CorruptFile` naming it.

Result shapes follow H2 (KairosDB's embedded store; see :mod:`kairos.storage.metadata`):
``list_service_keys`` gives one entry per stored ``(service_key, key)`` row ordered by key (ties
by service key), a service key with no keys left is gone; ``list_keys`` is ascending by code
point, a prefix ``p`` selecting ``[p, p + U+FFFF)``.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import BinaryIO

import orjson

from kairos.errors import CorruptFile
from kairos.model.java import CHAR_MAX
from kairos.storage._frame import FrameStatus, encode_frame, iter_frames
from kairos.storage._fs import fsync_dir

__all__ = ["EmbeddedMetadata"]

_Entries = dict[tuple[str, str], dict[str, tuple[str, int]]]


class EmbeddedMetadata:
    """The metadata of an embedded datastore: one crash-safe file (see the module docstring)."""

    FILE = "metadata.json"
    LOCK = "metadata.lock"

    def __init__(self, data_dir: str) -> None:
        self.dir = os.path.join(data_dir, "metadata")
        os.makedirs(self.dir, exist_ok=True)
        self.path = os.path.join(self.dir, self.FILE)
        self.lock_path = os.path.join(self.dir, self.LOCK)
        self._mutex = threading.Lock()  # worker threads of one process
        self._file: BinaryIO | None = (
            None  # the open file the cache was parsed from (pins its inode)
        )
        self._entries: _Entries = {}

    # -- reading ------------------------------------------------------------------------------

    def _current(self) -> _Entries:
        """The entries of the file now at ``self.path`` (parsed again only if it changed)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._forget()
            return self._entries
        if self._file is not None:
            own = os.fstat(self._file.fileno())
            if (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino):
                return self._entries
        try:
            f = open(self.path, "rb")  # noqa: SIM115 -- kept open to pin the inode
        except FileNotFoundError:
            self._forget()
            return self._entries
        try:
            entries = self._parse(f.read())
        except BaseException:
            f.close()
            raise
        self._forget()
        self._file, self._entries = f, entries
        return entries

    def _forget(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._entries = None, {}

    def _parse(self, buf: bytes) -> _Entries:
        frames = list(iter_frames(buf))
        if len(frames) != 1 or frames[0][0] != FrameStatus.OK or frames[0][1] != len(buf):
            raise CorruptFile(self.path, "metadata file failed its CRC / framing check")
        try:
            doc = orjson.loads(frames[0][2])
            if doc.get("version") != 1:
                raise ValueError(f"unknown version {doc.get('version')!r}")
            entries: _Entries = {}
            for service, service_key, key, value, mtime in doc["entries"]:
                entries.setdefault((service, service_key), {})[key] = (value, int(mtime))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise CorruptFile(self.path, f"unreadable metadata: {e}") from None
        return entries

    # -- writing ------------------------------------------------------------------------------

    def _update(self, change) -> None:
        """Apply ``change(entries) -> bool`` to the newest file, under the writers' lock."""
        with self._mutex, open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entries = {k: dict(v) for k, v in self._current().items()}
                if change(entries):
                    self._write(entries)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, entries: _Entries) -> None:
        rows = [
            [service, service_key, key, value, mtime]
            for (service, service_key), keys in sorted(entries.items())
            for key, (value, mtime) in sorted(keys.items())
        ]
        data = encode_frame(orjson.dumps({"version": 1, "entries": rows}))
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        fsync_dir(self.dir)
        self._current()  # cache what was just written

    # -- MetadataStore ------------------------------------------------------------------------

    def set_value(self, service: str, service_key: str, key: str, value: str) -> None:
        mtime = _millis()

        def change(entries: _Entries) -> bool:
            entries.setdefault((service, service_key), {})[key] = (value, mtime)
            return True

        self._update(change)

    def get_value(self, service: str, service_key: str, key: str) -> str | None:
        with self._mutex:
            hit = self._current().get((service, service_key), {}).get(key)
        return None if hit is None else hit[0]

    def list_service_keys(self, service: str) -> list[str]:
        with self._mutex:
            rows = [
                (key, service_key)
                for (s, service_key), keys in self._current().items()
                if s == service
                for key in keys
            ]
        return [service_key for _, service_key in sorted(rows)]

    def list_keys(
        self, service: str, service_key: str, starts_with: str | None = None
    ) -> list[str]:
        with self._mutex:
            keys = sorted(self._current().get((service, service_key), {}))
        if starts_with:
            end = starts_with + CHAR_MAX
            keys = [k for k in keys if starts_with <= k < end]
        return keys

    def delete_key(self, service: str, service_key: str, key: str) -> None:
        def change(entries: _Entries) -> bool:
            keys = entries.get((service, service_key))
            if keys is None or key not in keys:
                return False
            del keys[key]
            if not keys:
                del entries[(service, service_key)]
            return True

        self._update(change)

    def close(self) -> None:
        with self._mutex:
            self._forget()


def _millis() -> int:
    return time.time_ns() // 1_000_000
