"""The embedded datastore's metadata (KairosDB's ``ServiceKeyStore``): one SQLite database.

``<data_dir>/metadata/`` is shared by every HTTP worker process::

    metadata.sqlite        SQLite 3 (the standard library's), journal_mode=WAL, synchronous=FULL,
                           user_version 1, one table:
                             entries(service TEXT, service_key TEXT, key TEXT, value TEXT,
                                     mtime INTEGER)   -- mtime: milliseconds since the epoch
                             UNIQUE (service, service_key, key)
                             INDEX by_key (service, key, service_key)
    metadata.sqlite-wal    SQLite's write-ahead log and its shared-memory index: part of the
    metadata.sqlite-shm    database (never copy the main file alone while a server runs)
    metadata.lock          flock()ed exclusively while a process creates the schema or
                           migrates the legacy file
    metadata.json          the legacy store (version 1, below): migrated into SQLite on the
                           first open, then renamed ``metadata.json.migrated`` (kept, never read)

Each write is one statement in its own transaction, committed with an fsync of the WAL before
the call returns; SQLite's locking lets every worker read and write at once (readers never wait
for the writer; writers queue behind each other for up to ``metadata_busy_timeout_ms``, then
:class:`~kairos.errors.Unavailable`, 503).  A write costs the same however large the other
values are, unlike the legacy file, which every write rewrote whole.  A file that is not a
database, or a damaged one, raises :class:`~kairos.errors.CorruptFile` naming it.

Text is compared by SQLite's BINARY collation (``memcmp`` of UTF-8), which is code point order,
the order of Cassandra's UTF-8 columns and of the legacy store's Python sort.  Result shapes
follow H2 (KairosDB's embedded store; see :mod:`kairos.storage.metadata`):
``list_service_keys`` gives one entry per stored ``(service_key, key)`` row ordered by key (ties
by service key), a service key with no keys left is gone; ``list_keys`` is ascending by code
point, a prefix ``p`` selecting ``[p, p + U+FFFF)``.

The legacy ``metadata.json`` was one CRC frame (:mod:`kairos.storage._frame`) holding
``{"version": 1, "entries": [[service, service_key, key, value, mtime_ms], ...]}``; a damaged
one is a ``CorruptFile`` and stays where it is, unmigrated.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time

import orjson

from kairos.errors import CorruptFile, InsufficientStorage, Unavailable
from kairos.model.java import CHAR_MAX
from kairos.storage._frame import FrameStatus, iter_frames
from kairos.storage._fs import fsync_dir

__all__ = ["EmbeddedMetadata"]

SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entries (
        service TEXT NOT NULL, service_key TEXT NOT NULL, key TEXT NOT NULL,
        value TEXT NOT NULL, mtime INTEGER NOT NULL,
        UNIQUE (service, service_key, key))""",
    "CREATE INDEX IF NOT EXISTS by_key ON entries (service, key, service_key)",
)
_UPSERT = (
    "INSERT INTO entries (service, service_key, key, value, mtime) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (service, service_key, key) DO UPDATE SET value = excluded.value, "
    "mtime = excluded.mtime"
)


class EmbeddedMetadata:
    """The metadata of an embedded datastore: one SQLite database (see the module docstring)."""

    FILE = "metadata.sqlite"
    LEGACY = "metadata.json"
    LOCK = "metadata.lock"

    def __init__(self, data_dir: str, busy_timeout_ms: int = 10_000) -> None:
        self.dir = os.path.join(data_dir, "metadata")
        os.makedirs(self.dir, exist_ok=True)
        self.path = os.path.join(self.dir, self.FILE)
        self.legacy_path = os.path.join(self.dir, self.LEGACY)
        self.lock_path = os.path.join(self.dir, self.LOCK)
        self.busy_timeout = busy_timeout_ms / 1000
        self._mutex = threading.Lock()  # one connection, shared by this process's threads
        self._db: sqlite3.Connection | None = None

    # -- the connection -----------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """The open database, created (and the legacy file migrated) on first use."""
        if self._db is None:
            with open(self.lock_path, "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    db = self._open()
                    try:
                        self._migrate(db)
                    except BaseException:
                        db.close()
                        raise
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
            self._db = db
        return self._db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a 204 means the WAL frame is on disk
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise CorruptFile(self.path, f"unknown metadata schema version {version}")
            if version == 0:
                with db:
                    db.execute("BEGIN IMMEDIATE")
                    for stmt in _SCHEMA:
                        db.execute(stmt)
                    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            db.close()
            self._raise(e)
        except BaseException:
            db.close()
            raise
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Copy a legacy ``metadata.json`` into the database, then rename it aside."""
        try:
            with open(self.legacy_path, "rb") as f:
                buf = f.read()
        except FileNotFoundError:
            return
        rows = _parse_legacy(self.legacy_path, buf)
        try:
            with db:  # one transaction: all of it or nothing (a re-run overwrites the same)
                db.execute("BEGIN IMMEDIATE")
                db.executemany(_UPSERT, rows)
        except sqlite3.DatabaseError as e:
            self._raise(e)
        os.replace(self.legacy_path, self.legacy_path + ".migrated")
        fsync_dir(self.dir)

    def _raise(self, e: sqlite3.Error) -> None:
        """``e`` as Kairos's error: an operational failure (the database stayed locked past
        the busy timeout) is a 503, a full disk a 507; anything else means a damaged file."""
        if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            raise InsufficientStorage(
                f"Disk full: the metadata store in {self.dir} cannot grow; retry later",
                retry_after=5,
            ) from e
        if isinstance(e, sqlite3.OperationalError):
            raise Unavailable(f"The metadata store is unavailable ({e}); retry later") from e
        raise CorruptFile(self.path, f"unreadable metadata database: {e}") from e

    def _run(self, sql: str, args: tuple) -> list[tuple]:
        with self._mutex:
            try:
                return self._conn().execute(sql, args).fetchall()
            except sqlite3.DatabaseError as e:
                self._raise(e)
                raise  # unreachable: _raise always raises

    # -- MetadataStore ------------------------------------------------------------------------

    def set_value(self, service: str, service_key: str, key: str, value: str) -> None:
        self._run(_UPSERT, (service, service_key, key, value, _millis()))

    def get_value(self, service: str, service_key: str, key: str) -> str | None:
        rows = self._run(
            "SELECT value FROM entries WHERE service = ? AND service_key = ? AND key = ?",
            (service, service_key, key),
        )
        return rows[0][0] if rows else None

    def list_service_keys(self, service: str) -> list[str]:
        rows = self._run(
            "SELECT service_key FROM entries WHERE service = ? ORDER BY key, service_key",
            (service,),
        )
        return [r[0] for r in rows]

    def list_keys(
        self, service: str, service_key: str, starts_with: str | None = None
    ) -> list[str]:
        sql = "SELECT key FROM entries WHERE service = ? AND service_key = ?"
        args: tuple = (service, service_key)
        if starts_with:
            sql += " AND key >= ? AND key < ?"
            args += (starts_with, starts_with + CHAR_MAX)
        return [r[0] for r in self._run(sql + " ORDER BY key", args)]

    def delete_key(self, service: str, service_key: str, key: str) -> None:
        self._run(
            "DELETE FROM entries WHERE service = ? AND service_key = ? AND key = ?",
            (service, service_key, key),
        )

    def close(self) -> None:
        with self._mutex:
            if self._db is not None:
                self._db.close()
                self._db = None


def _parse_legacy(path: str, buf: bytes) -> list[tuple[str, str, str, str, int]]:
    """The rows of a legacy ``metadata.json`` (module docstring); ``CorruptFile`` if damaged."""
    frames = list(iter_frames(buf))
    if len(frames) != 1 or frames[0][0] != FrameStatus.OK or frames[0][1] != len(buf):
        raise CorruptFile(path, "metadata file failed its CRC / framing check")
    try:
        doc = orjson.loads(frames[0][2])
        if doc.get("version") != 1:
            raise ValueError(f"unknown version {doc.get('version')!r}")
        return [
            (str(service), str(service_key), str(key), str(value), int(mtime))
            for service, service_key, key, value, mtime in doc["entries"]
        ]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise CorruptFile(path, f"unreadable metadata: {e}") from None


def _millis() -> int:
    return time.time_ns() // 1_000_000
