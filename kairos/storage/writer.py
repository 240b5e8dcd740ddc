"""The writer stage: one process that tails the WAL and applies it to the datastore.

Loop: read every new complete WAL frame (``WalReader.poll``), decode the batches, apply them as
one write together with the WAL positions they reach (the checkpoint), then delete WAL files
that are finished and fully applied.  A crash anywhere in between re-applies from the last
checkpoint; re-applying a batch is idempotent (same series, same timestamps, same values).

Progress is published in ``<data_dir>/writer.status`` (JSON, replaced atomically) for the
health endpoints: applied points, WAL backlog bytes and the time of the last apply.

Failures never end the process.  A failed step is retried with a growing delay (up to
``MAX_BACKOFF_SECONDS``); the embedded store is reopened first, as at start-up, so a half-done
step (a block, series.log records, a manifest.tmp) is cut back to the last manifest.  On a full
disk (``ENOSPC``) the state is ``disk full`` and the retry comes as soon as the free space grows
(checked every ``DISK_POLL_SECONDS``), so the backlog is applied as soon as there is room.  The
status file is padded to whole blocks so that, when the disk is too full for a new file, it can
still be rewritten in place.

Between applies the writer sleeps ``writer_interval_ms``, or less: an HTTP worker answering a
``sync`` write (which waits until its record is applied) writes a byte to the FIFO
``<data_dir>/writer.wake`` (:func:`wake_writer`), and the writer, which waits on it with
``select``, applies at once.  A worker cannot tell when its wake-up is read, so one byte may
cost one empty step; any number of bytes written during one step cost one.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import select
import signal
import stat
import threading
import time

import orjson

from kairos._hist import LATENCY_BOUNDS, Hist
from kairos.config import Config
from kairos.model.batch import Batch
from kairos.storage import open_store
from kairos.storage._fs import disk_full, free_bytes, remove_quietly
from kairos.storage.records import decode_record
from kairos.storage.versions import WriteVersions
from kairos.storage.wal import MIN_READ_BYTES, WalReader

__all__ = ["WakeFifo", "Writer", "apply_budget_bytes", "read_status", "run_writer", "wake_writer"]

log = logging.getLogger("kairos.writer")

STATUS_HEARTBEAT_SECONDS = 1.0
SUMMARY_SECONDS = 10.0
MIN_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 2.0
DISK_POLL_SECONDS = 0.1
STILL_FAILING_LOG_SECONDS = 60.0
STATUS_BLOCK = 4096
"""The status file is padded with spaces to a multiple of this: a rewrite in place of no more
bytes than the file has needs no new block, so it works on a full disk."""

RUNNING, RETRYING, DISK_FULL, STOPPED = "running", "retrying", "disk full", "stopped"


WRITER_BASE_MB = 96
"""The writer process before it reads anything: the interpreter, numpy, pyarrow, the engine."""
APPLY_SHARE = 8
"""One apply reads at most 1/APPLY_SHARE of what ``writer.max_memory_mb`` leaves above
``WRITER_BASE_MB``: measured (docs/benchmarks.md), the writer's peak grows by about 6.5x the
WAL bytes of its apply (the payloads, decoded batches, their concatenation, the sort and the
encoded block)."""


def apply_budget_bytes(max_memory_mb: int) -> int:
    """WAL payload bytes one apply reads, for a writer limited to ``max_memory_mb``."""
    return max(((max_memory_mb - WRITER_BASE_MB) << 20) // APPLY_SHARE, MIN_READ_BYTES)


def _status_path(data_dir: str) -> str:
    return os.path.join(data_dir, "writer.status")


def read_status(data_dir: str) -> dict | None:
    for _ in range(3):  # an in-place rewrite (full disk only) may be read half done
        try:
            with open(_status_path(data_dir), "rb") as f:
                return orjson.loads(f.read())
        except FileNotFoundError:
            return None
        except orjson.JSONDecodeError:
            continue
    return None


def write_status_file(data_dir: str, status: dict) -> None:
    """Publish ``status`` (atomically; on a full disk in place, see :data:`STATUS_BLOCK`)."""
    data = orjson.dumps(status)
    data += b" " * (-len(data) % STATUS_BLOCK)
    path = _status_path(data_dir)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return
    except OSError as e:
        remove_quietly(tmp)
        if not disk_full(e):
            raise
        full = e
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if len(data) > size:
            raise full
        os.pwrite(fd, data.ljust(size), 0)
    finally:
        os.close(fd)


WAKE_FIFO = "writer.wake"


def _wake_path(data_dir: str) -> str:
    return os.path.join(data_dir, WAKE_FIFO)


def wake_writer(data_dir: str) -> bool:
    """Ask the writer to apply the WAL now instead of at its next interval.

    Never blocks: returns False when there is no writer reading the FIFO (none running, or a
    file system without FIFOs), in which case the writer applies at its interval anyway.
    """
    try:
        fd = os.open(_wake_path(data_dir), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: no reader; ENOENT: no writer has run here yet
        return False
    try:
        os.write(fd, b"w")
    except BlockingIOError:
        pass  # the pipe is full of wake-ups the writer has not read yet: it will wake
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


class WakeFifo:
    """The writer's end of ``<data_dir>/writer.wake``: :meth:`wait` sleeps until a worker
    writes to it (see :func:`wake_writer`), :meth:`set` wakes it from this process (a signal).

    Where a FIFO cannot be made, :meth:`wait` sleeps with ``threading.Event`` instead, and
    workers' wake-ups find no reader.
    """

    def __init__(self, data_dir: str) -> None:
        self.path = _wake_path(data_dir)
        self._event = threading.Event()
        self._r = self._w = -1
        try:
            try:
                os.mkfifo(self.path, 0o600)
            except FileExistsError:
                if not stat.S_ISFIFO(os.lstat(self.path).st_mode):
                    os.unlink(self.path)
                    os.mkfifo(self.path, 0o600)
            self._r = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            # Our own write end: the FIFO never reads as end-of-file when no worker has it
            # open, and a signal handler can wake the select.
            self._w = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            log.warning(
                "cannot use %s (%s); sync writes wait for the writer's interval",
                self.path,
                os.strerror(e.errno or errno.EIO),
            )
            self.close()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True if woken (by a worker or :meth:`set`)."""
        if self._r < 0:
            return self._event.wait(timeout)
        ready, _, _ = select.select([self._r], [], [], timeout)
        if not ready:
            return False
        try:
            while os.read(self._r, 4096):
                pass
        except BlockingIOError:
            pass
        return True

    def set(self) -> None:
        """Wake :meth:`wait` (safe in a signal handler)."""
        self._event.set()
        if self._w >= 0:
            try:
                os.write(self._w, b"s")
            except OSError:
                pass

    def close(self) -> None:
        for fd in (self._r, self._w):
            if fd >= 0:
                os.close(fd)
        self._r = self._w = -1


class Writer:
    """Applies the WAL under ``config.data_dir`` to the configured datastore."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.data_dir = data_dir = config.data_dir
        self.store = open_store(config, writer=True)
        self.versions = WriteVersions(data_dir, writer=True)
        self.wal = WalReader(data_dir, self.store.wal_positions)
        self.poll_bytes = apply_budget_bytes(config.writer_max_memory_mb)
        self.apply_latency = Hist(LATENCY_BOUNDS)
        self.retries = 0
        self.applied_points = 0
        self.applied_batches = 0
        self.last_apply = 0.0
        self.last_error: str | None = None
        self.last_error_time = 0.0
        self.reopen_needed = False
        self._status_written: tuple | None = None
        self._status_time = 0.0
        self._status_failed = False

    def reopen(self) -> None:
        """Reopen the embedded store as at start-up: its recovery cuts whatever a failed step
        left half done back to the manifest, and the WAL is read again from its checkpoint."""
        self.store.close()
        self.store = open_store(self.config, writer=True)
        repaired = self.wal.repaired
        self.wal = WalReader(self.data_dir, self.store.wal_positions)
        self.wal.repaired = repaired
        self.reopen_needed = False

    def step(self) -> int:
        """Apply whatever the WAL has; returns the number of points applied."""
        payloads, positions, finished = self.wal.poll(self.poll_bytes)
        if not payloads and positions == self.wal.positions and not finished:
            return 0
        t0 = time.perf_counter()
        # Records apply in WAL order: the batches before a delete are written before it.
        run: list[Batch] = []
        n = batches = 0
        for p in payloads:
            rec = decode_record(p)
            if isinstance(rec, Batch):
                run.append(rec)
                n += len(rec)
                batches += 1
                continue
            if run:
                self.store.write_many(run)
                self._bump(run)
                run = []
            self.store.delete(
                rec.metric, rec.matcher(), rec.start, rec.end, tag_filtered=bool(rec.tags)
            )
            self.versions.bump({rec.metric})
        self.store.write_many(run, positions)
        self._bump(run)
        self.wal.commit(positions, finished)
        self.apply_latency.observe(time.perf_counter() - t0)
        self.applied_points += n
        self.applied_batches += batches
        self.last_apply = time.time()
        if n:
            log.debug("applied %d batches, %d points", batches, n)
        return n

    def _bump(self, run: list[Batch]) -> None:
        """Tell the workers' query caches which metrics just changed."""
        if run:
            self.versions.bump({m for b in run for m in b.metrics})

    def drain(self, deadline: float = math.inf) -> None:
        """Apply until the WAL has nothing new, or ``time.monotonic()`` passes ``deadline``
        (the rest stays in the WAL for the next start)."""
        while self.step() and time.monotonic() < deadline:
            pass

    def write_status(self, state: str = RUNNING, error: str | None = None) -> None:
        """Publish the writer's state; a failure to do so is logged, never raised (the
        writer's work matters more than its report)."""
        status = {
            "state": state,
            "error": error,
            "last_error": self.last_error,
            "last_error_time": self.last_error_time,
            "pid": os.getpid(),
            "applied_points": self.applied_points,
            "applied_batches": self.applied_batches,
            "wal_backlog_bytes": self.wal.backlog_bytes(),
            "last_apply": self.last_apply,
            "repaired_files": self.wal.repaired,
            "retries": self.retries,
            "apply_latency": self.apply_latency.dump(),
        }
        key = tuple((k, str(v)) for k, v in status.items())
        now = time.time()
        if key == self._status_written and now - self._status_time < STATUS_HEARTBEAT_SECONDS:
            return
        try:
            write_status_file(self.data_dir, status | {"updated": now})
        except OSError as e:
            if not self._status_failed:
                log.warning("cannot write the writer status file (%s)", e)
            self._status_failed = True
            return
        self._status_failed = False
        self._status_written = key
        self._status_time = now


def run_writer(config: Config) -> None:
    """Entry point of the writer process (run by Sanic's worker manager)."""
    from kairos.logs import setup_logging

    setup_logging(config.log_level, config.log_format)
    data_dir, interval_ms = config.data_dir, config.writer_interval_ms
    stop = threading.Event()
    wake = WakeFifo(data_dir)

    def _stop(*_: object) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    writer = _open_writer(config, stop)
    if writer is None:
        wake.close()
        return
    log.info(
        "writer started: data_dir=%s, datastore %s, apply interval %d ms",
        data_dir,
        config.datastore,
        interval_ms,
    )
    writer.write_status()
    interval = max(interval_ms, 1) / 1000
    summary = _Summary(writer)
    failing = _Failures(data_dir)
    while not stop.is_set():
        try:
            if writer.reopen_needed:
                writer.reopen()
            n = writer.step()
        except Exception as e:
            writer.retries += 1
            writer.last_error, writer.last_error_time = f"{type(e).__name__}: {e}", time.time()
            writer.reopen_needed = config.datastore == "embedded"
            state = failing.failed(e)
            writer.write_status(state, error=writer.last_error)
            failing.wait(stop)
            continue
        failing.recovered(writer)
        writer.write_status()
        summary.maybe_log()
        if not n:
            wake.wait(interval)
    try:
        if writer.reopen_needed:
            writer.reopen()
        # Bounded, so the server stops within its drain timeout whatever the backlog.
        writer.drain(time.monotonic() + config.shutdown_drain_timeout_seconds)
    except Exception:
        log.exception("writer could not apply the rest of the WAL; it stays for the next start")
    writer.write_status(STOPPED)
    writer.store.close()
    wake.close()
    log.info("writer stopped after applying %d points", writer.applied_points)


class _Failures:
    """The writer's failed steps: their log lines, state and the wait before the next try.

    The first failure of a streak is logged as an error, a streak's later ones at most every
    ``STILL_FAILING_LOG_SECONDS``, and its end once.  The wait doubles from
    ``MIN_BACKOFF_SECONDS`` to ``MAX_BACKOFF_SECONDS``; on a full disk it ends early as soon as
    the data directory's free space grows.
    """

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.since = 0.0
        self.count = 0
        self.logged = 0.0
        self.backoff = MIN_BACKOFF_SECONDS
        self.free_at_failure: int | None = None

    def failed(self, e: Exception, doing: str = "writer step failed") -> str:
        now = time.monotonic()
        full = disk_full(e)
        what = f"{type(e).__name__}: {e}"
        if not self.count:
            self.since = self.logged = now
            if full:
                log.error(
                    "writer: the disk of %s is full (%s); the WAL is kept and applied as soon "
                    "as space is freed",
                    self.data_dir,
                    e,
                )
            else:
                log.error("%s (%s); retrying", doing, what)
            log.debug("writer step failure", exc_info=True)
        elif now - self.logged >= STILL_FAILING_LOG_SECONDS:
            self.logged = now
            log.error("writer still failing after %.0f s (%s)", now - self.since, what)
        self.count += 1
        self.free_at_failure = self._free() if full else None
        return DISK_FULL if full else RETRYING

    def wait(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF_SECONDS)
        if self.free_at_failure is None:
            stop.wait(max(deadline - time.monotonic(), 0))
            return
        while not stop.wait(DISK_POLL_SECONDS) and time.monotonic() < deadline:
            free = self._free()
            if free is not None and free > self.free_at_failure:
                return

    def recovered(self, writer: Writer) -> None:
        if not self.count:
            return
        log.info(
            "writer recovered after %d failed attempts in %.1f s",
            self.count,
            time.monotonic() - self.since,
        )
        self.count = 0
        self.backoff = MIN_BACKOFF_SECONDS
        self.free_at_failure = None

    def _free(self) -> int | None:
        try:
            return free_bytes(self.data_dir)
        except OSError:
            return None


class _Summary:
    """The writer's INFO line every ``SUMMARY_SECONDS`` while it applies anything."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.t0 = time.monotonic()
        self.points = writer.applied_points
        self.batches = writer.applied_batches

    def maybe_log(self) -> None:
        now = time.monotonic()
        if now - self.t0 < SUMMARY_SECONDS:
            return
        w = self.writer
        points, batches = w.applied_points - self.points, w.applied_batches - self.batches
        if points or batches:
            backlog = w.wal.backlog_bytes()
            log.info(
                "applied %d points in %d batches in the last %.0f s (%.0f points/s); "
                "WAL backlog %d bytes",
                points,
                batches,
                now - self.t0,
                points / (now - self.t0),
                backlog,
                extra={"points": points, "batches": batches, "wal_backlog_bytes": backlog},
            )
        self.t0, self.points, self.batches = now, w.applied_points, w.applied_batches


def _open_writer(config: Config, stop: threading.Event) -> Writer | None:
    """The writer, retrying while the datastore cannot be opened: the WAL keeps every
    acknowledged point meanwhile.  (The Cassandra store opens even while Cassandra is down and
    connects when it answers; until then each step fails and is retried, and the writer's
    status says why.)"""
    failing = _Failures(config.data_dir)
    while True:
        try:
            return Writer(config)
        except Exception as e:
            if config.datastore == "embedded" and not disk_full(e):
                raise
            state = failing.failed(e, f"cannot open the {config.datastore} datastore")
            try:
                write_status_file(
                    config.data_dir,
                    {"state": state, "error": f"{type(e).__name__}: {e}", "pid": os.getpid()}
                    | {"updated": time.time(), "last_error": f"{type(e).__name__}: {e}"},
                )
            except OSError:
                pass  # the health check then reports a writer that has not reported
            failing.wait(stop)
            if stop.is_set():
                return None
