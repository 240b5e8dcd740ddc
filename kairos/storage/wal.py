"""The write-ahead log: the durable queue between HTTP workers and the writer process.

Layout: ``<data_dir>/wal/<ns-timestamp>-<pid>-<n>.wal``.  Every HTTP worker appends to a file of
its own, created fresh at start and rotated past ``segment_bytes``; it holds an exclusive
``flock`` on the file it writes.  The writer process tails every file; a file whose lock it can
take is finished (rotated away, or its worker died) and may be deleted once fully applied.

Each file is ``b"KAIROSW1"`` followed by CRC frames (``kairos.storage._frame``) whose payload is
a :class:`~kairos.model.batch.Batch` in Arrow IPC.  A torn tail -- a short or bad frame at the
end of a finished file, left by kill -9 or a power cut -- is detected by the CRC, logged and
truncated.  A file whose 8-byte header is not ``KAIROSW1`` is different: nothing in it can be
trusted (it is not known to be a Kairos WAL at all), so once it is finished the reader moves it
aside into ``wal/quarantine/`` with a ``<name>.reason`` text file, logs it, and goes on with the
other files (a file shorter than its header is a torn creation and holds no record: it is
removed like a torn tail).  An operator inspects and deletes quarantined files.

Durability: ``append(..., sync=True)`` returns after ``fdatasync``; otherwise the worker's group
commit task fsyncs dirty files every ``fsync_interval`` seconds.  Data written without sync
survives a process crash (it is in the page cache) but not a power cut within that interval.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time

from kairos.errors import InsufficientStorage
from kairos.storage._frame import HEADER, MAGIC, FrameStatus, encode_frame, iter_frames
from kairos.storage._fs import disk_full, fsync_dir, remove_quietly, write_all

__all__ = [
    "DISK_FULL_RETRY_AFTER",
    "FILE_MAGIC",
    "WalReader",
    "WalWriter",
    "backlog_bytes",
    "quarantine_dir",
    "quarantined_files",
    "wal_dir",
]

log = logging.getLogger("kairos.wal")

FILE_MAGIC = b"KAIROSW1"
DISK_FULL_RETRY_AFTER = 5
"""``Retry-After`` seconds of a refusal for a full disk (space rarely returns within one)."""
DEFAULT_POLL_BYTES = 64 << 20
"""Payload bytes one writer apply reads at most by default (the writer passes its own budget,
derived from ``writer.max_memory_mb``)."""
MIN_READ_BYTES = 1 << 20
_counter = 0
_counter_lock = threading.Lock()


def wal_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "wal")


TMP_SUFFIX = ".tmp"
"""A WAL file being created: locked and given its header before it is renamed to ``*.wal``."""


def _abandoned(tmp: str) -> bool:
    """A WAL file whose creator died before renaming it (its name carries the creator's pid;
    one in creation is still unlocked, so the lock alone cannot tell)."""
    try:
        pid = int(os.path.basename(tmp).split("-")[1])
        os.kill(pid, 0)
    except (IndexError, ValueError, ProcessLookupError):
        return True
    except PermissionError:
        return False
    try:  # a live pid may be another process that reused it: old files go too
        return time.time() - os.stat(tmp).st_mtime > TMP_MAX_AGE_SECONDS
    except FileNotFoundError:
        return False


TMP_MAX_AGE_SECONDS = 600
QUARANTINE = "quarantine"


def quarantine_dir(directory: str) -> str:
    """Where the reader of the WAL directory ``directory`` moves files it cannot trust."""
    return os.path.join(directory, QUARANTINE)


def quarantined_files(directory: str) -> list[dict[str, str]]:
    """The quarantined files of the WAL directory ``directory``: name and reason, by name."""
    qdir = quarantine_dir(directory)
    try:
        names = sorted(n for n in os.listdir(qdir) if n.endswith(".wal"))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        try:
            with open(os.path.join(qdir, name + ".reason"), encoding="utf-8") as f:
                reason = f.read().strip()
        except OSError:
            reason = "unknown"
        out.append({"name": name, "reason": reason})
    return out


def _new_name() -> str:
    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
    return f"{time.time_ns():020d}-{os.getpid()}-{n}.wal"


class WalWriter:
    """Appends frames to this process's WAL file (thread-safe).

    A full disk never leaves a partial frame behind nor stops the process: an append that
    cannot be written is cut back off the file and raises
    :class:`~kairos.errors.InsufficientStorage`; a WAL file that cannot be created (at start
    on a full disk, or at rotation) is created by the next append that finds room.
    """

    def __init__(self, data_dir: str, segment_bytes: int = 64 << 20) -> None:
        self.dir = wal_dir(data_dir)
        os.makedirs(self.dir, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._dirty = False
        self.path = ""
        self.bytes_written = 0
        self.appends = 0
        self.synced_appends = 0
        try:
            self._open_new()
        except OSError as e:
            if not disk_full(e):
                raise
            log.warning(
                "WAL: cannot create a file in %s (%s); ingest is refused until space is freed",
                self.dir,
                e.strerror,
            )

    def _open_new(self) -> None:
        # Made under a temporary name and renamed once locked and headed: the writer lists
        # only ``*.wal`` files, so it never sees a new file before its flock says "in use"
        # (it would take an unlocked, empty file for a finished one and delete it).
        path = os.path.join(self.dir, _new_name())
        tmp = path + TMP_SUFFIX
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            write_all(fd, FILE_MAGIC)
            os.fsync(fd)
            os.rename(tmp, path)
            fsync_dir(self.dir)
        except BaseException:
            os.close(fd)
            remove_quietly(tmp)
            remove_quietly(path)
            raise
        old = self._fd
        self._fd, self._size, self.path = fd, len(FILE_MAGIC), path
        if old >= 0:
            os.fdatasync(old)
            os.close(old)  # releases the flock: the writer may now finish and delete it

    def append(self, payload: bytes, sync: bool = False) -> tuple[str, int]:
        """Append one record; returns (file name, offset just past it) for waiting on it.

        Raises :class:`~kairos.errors.InsufficientStorage` when the disk is full: then nothing
        of the record is in the file (with ``sync``, a record written whose fdatasync failed
        may be applied, and its retry applied again: re-applying points is idempotent).
        """
        frame = encode_frame(payload)
        with self._lock:
            try:
                if self._fd < 0 or (
                    self._size + len(frame) > self.segment_bytes and self._size > len(FILE_MAGIC)
                ):
                    self._open_new()
                self._write(frame)
                self._size += len(frame)
                self.bytes_written += len(frame)
                self._dirty = True
                if sync:
                    os.fdatasync(self._fd)
            except OSError as e:
                if disk_full(e):
                    raise InsufficientStorage(
                        f"Disk full: the write-ahead log could not be written ({e.strerror}); "
                        "nothing of this request was stored; retry later",
                        retry_after=DISK_FULL_RETRY_AFTER,
                    ) from e
                raise
            self.appends += 1
            if sync:
                self._dirty = False
                self.synced_appends += 1
            return os.path.basename(self.path), self._size

    def _write(self, frame: bytes) -> None:
        """Write ``frame`` whole, or cut what was written of it back off the file: a torn frame
        in a live file would stop the writer there, and a full disk needs the space back."""
        try:
            write_all(self._fd, frame)
        except BaseException:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                # The file keeps a torn tail: finish it (the writer repairs finished files)
                # and let the next append start a new one.
                log.exception("WAL %s: cannot cut back a failed append", self.path)
                os.close(self._fd)
                self._fd = -1
            raise

    def flush(self) -> None:
        """fdatasync if anything was appended since the last sync (group commit)."""
        with self._lock:
            if self._dirty and self._fd >= 0:
                os.fdatasync(self._fd)
                self._dirty = False

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.fdatasync(self._fd)
                os.close(self._fd)
                self._fd = -1


def _read(path: str, start: int, limit: int | None) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes (None: all) of ``path`` from ``start``, and whether they reach the
    end of the file as it was when opened."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(start)
        data = f.read() if limit is None else f.read(limit)
    return data, start + len(data) >= size


def _resync(data: bytes, start: int) -> int | None:
    """Offset of the next frame with a valid CRC at or after ``start``, if any."""
    magic = HEADER.pack(MAGIC, 0, 0)[:4]
    i = data.find(magic, start)
    while i >= 0:
        status, _, _ = next(iter_frames(memoryview(data)[i:], 0))
        if status == FrameStatus.OK:
            return i
        i = data.find(magic, i + 1)
    return None


class WalReader:
    """The writer process's view of every WAL file: what is new since ``positions``."""

    def __init__(self, data_dir: str, positions: dict[str, int] | None = None) -> None:
        self.dir = wal_dir(data_dir)
        os.makedirs(self.dir, exist_ok=True)
        self.positions: dict[str, int] = dict(positions or {})
        self.repaired: list[str] = []
        self.quarantined: list[str] = []
        self._damaged_live: set[str] = set()

    def _is_finished(self, path: str) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True

    def files(self) -> list[str]:
        names = os.listdir(self.dir)
        for f in names:
            if f.endswith(TMP_SUFFIX) and _abandoned(os.path.join(self.dir, f)):
                remove_quietly(os.path.join(self.dir, f))
        return sorted(f for f in names if f.endswith(".wal"))

    def poll(
        self, max_bytes: int = DEFAULT_POLL_BYTES
    ) -> tuple[list[bytes], dict[str, int], list[str]]:
        """Read new complete frames, about ``max_bytes`` of payload at most.

        Returns ``(payloads, new_positions, finished_files)``: the positions to checkpoint once
        the payloads are applied, and the files that are finished and fully read (deletable
        after that checkpoint).  Files are read a slice at a time (``max_bytes``, at least
        ``MIN_READ_BYTES``), so what the reader holds stays near ``max_bytes``; a frame larger
        than that, or a corrupt one, is read with the rest of its file.
        """
        payloads: list[bytes] = []
        positions = dict(self.positions)
        finished: list[str] = []
        budget = max_bytes
        for name in self.files():
            if budget <= 0:
                break
            path = os.path.join(self.dir, name)
            # Decide "finished" before reading, so a frame appended after the check is
            # never mistaken for a torn tail.
            done = self._is_finished(path)
            start = positions.get(name, 0)
            try:
                data, eof = _read(path, start, max(budget, MIN_READ_BYTES) + len(FILE_MAGIC))
            except FileNotFoundError:
                continue
            if start == 0:
                if len(data) < len(FILE_MAGIC):
                    if done:
                        self._repair(path, 0, "file shorter than its header")
                        finished.append(name)
                    continue
                if data[: len(FILE_MAGIC)] != FILE_MAGIC:
                    self._damaged(path, done, data[: len(FILE_MAGIC)], start + len(data))
                    continue
            rel = len(FILE_MAGIC) if start == 0 else 0
            got = self._frames(path, data, start, rel, done, eof, budget)
            if got is None:  # a slice without one complete frame: a big frame, or a bad one
                try:
                    data, eof = _read(path, start, None)
                except FileNotFoundError:
                    continue
                got = self._frames(path, data, start, rel, done, True, budget)
                assert got is not None  # the whole rest of the file was read
            frames, pos, size = got
            payloads.extend(frames)
            budget -= sum(len(p) for p in frames)
            positions[name] = pos
            if done and eof and pos >= size and budget > 0:
                finished.append(name)
        return payloads, positions, finished

    def _frames(
        self, path: str, data: bytes, base: int, rel: int, done: bool, eof: bool, budget: int
    ) -> tuple[list[bytes], int, int] | None:
        """The complete frames of ``data`` (read from ``base``; frames start at ``rel``) up to
        ``budget`` payload bytes: ``(payloads, position after the last, size of the file)``.
        In a finished file read to its end, a torn tail is truncated and a corrupt frame
        skipped.  None when ``data`` is a slice (not ``eof``) holding no complete frame."""
        out: list[bytes] = []
        size = base + len(data)
        pos = base + rel
        while True:
            stop = None
            for status, end, payload in iter_frames(data, rel):
                if status != FrameStatus.OK:
                    stop = (status, end)
                    break
                out.append(bytes(payload))
                pos = base + end
                budget -= len(payload)
                if budget <= 0:
                    break
            if stop is None or budget <= 0:
                break
            if not eof:
                if not out:
                    return None
                break  # the next poll reads on from ``pos``
            if not done:
                break
            status, end = stop
            nxt = _resync(data, end + 1)
            if nxt is None:
                what = "torn record" if status == FrameStatus.SHORT else "CRC mismatch"
                self._repair(path, base + end, what)
                size = base + end
                break
            log.error(
                "WAL %s: corrupt record at offset %d; skipping %d bytes to the next valid record",
                path,
                base + end,
                nxt - end,
            )
            self.repaired.append(path)
            rel = nxt
            pos = base + nxt
        return out, pos, size

    def _damaged(self, path: str, done: bool, header: bytes, size: int) -> None:
        """A file whose header is not a Kairos WAL's: quarantined once finished.

        While a worker still holds it (it was damaged under a live worker) it is only skipped,
        so the worker's later appends are not moved under it; it is quarantined when the
        worker rotates away from it or stops.
        """
        name = os.path.basename(path)
        reason = (
            f"bad header {header!r} (expected {FILE_MAGIC!r}); "
            f"{size - len(FILE_MAGIC)} bytes after it not applied"
        )
        if not done:
            if name not in self._damaged_live:
                self._damaged_live.add(name)
                log.error(
                    "WAL %s: %s; skipped until its worker releases it, then quarantined",
                    path,
                    reason,
                )
            return
        self._damaged_live.discard(name)
        qdir = quarantine_dir(self.dir)
        os.makedirs(qdir, exist_ok=True)
        with open(os.path.join(qdir, name + ".reason"), "w", encoding="utf-8") as f:
            f.write(reason + "\n")
        os.replace(path, os.path.join(qdir, name))
        fsync_dir(qdir)
        fsync_dir(self.dir)
        self.positions.pop(name, None)
        self.quarantined.append(name)
        log.error(
            "WAL %s: %s; moved to %s (an operator must inspect it); applying the other files",
            path,
            reason,
            qdir,
            extra={"wal_file": name, "reason": reason},
        )

    def _repair(self, path: str, offset: int, what: str) -> None:
        size = os.path.getsize(path)
        log.warning(
            "WAL %s: %s at offset %d; truncating %d bytes of unacknowledged tail",
            path,
            what,
            offset,
            size - offset,
        )
        os.truncate(path, max(offset, 0))
        self.repaired.append(path)

    def commit(self, positions: dict[str, int], finished: list[str]) -> None:
        """After the checkpoint is durable: forget and delete finished files."""
        self.positions = dict(positions)
        for name in finished:
            self.positions.pop(name, None)
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass

    def backlog_bytes(self) -> int:
        return backlog_bytes(self.dir, self.positions)


def backlog_bytes(directory: str, positions: dict[str, int]) -> int:
    """Bytes appended to the WAL files in ``directory`` past the applied ``positions``."""
    total = 0
    for name in os.listdir(directory):
        if not name.endswith(".wal"):
            continue
        try:
            size = os.path.getsize(os.path.join(directory, name))
        except FileNotFoundError:
            continue
        total += max(size - positions.get(name, len(FILE_MAGIC)), 0)
    return total


def wal_disk_bytes(directory: str) -> int:
    """Bytes of the WAL files in ``directory`` (applied or not)."""
    total = 0
    for name in os.listdir(directory):
        if name.endswith(".wal"):
            try:
                total += os.path.getsize(os.path.join(directory, name))
            except FileNotFoundError:
                continue
    return total
