"""The writer stage: one process that tails the WAL and applies it to the datastore.

Loop: read every new complete WAL frame (``WalReader.poll``), decode the batches, apply them as
one write together with the WAL positions they reach (the checkpoint), then delete WAL files
that are finished and fully applied.  A crash anywhere in between re-applies from the last
checkpoint; re-applying a batch is idempotent (same series, same timestamps, same values).

Progress is published in ``<data_dir>/writer.status`` (JSON, replaced atomically) for the
health endpoints: applied points, WAL backlog bytes and the time of the last apply.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time

import orjson

from kairos._hist import LATENCY_BOUNDS, Hist
from kairos.config import Config
from kairos.model.batch import Batch
from kairos.storage import open_store
from kairos.storage.records import decode_record
from kairos.storage.versions import WriteVersions
from kairos.storage.wal import MIN_READ_BYTES, WalReader

__all__ = ["Writer", "apply_budget_bytes", "read_status", "run_writer"]

log = logging.getLogger("kairos.writer")

STATUS_HEARTBEAT_SECONDS = 1.0
SUMMARY_SECONDS = 10.0


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
    try:
        with open(_status_path(data_dir), "rb") as f:
            return orjson.loads(f.read())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


class Writer:
    """Applies the WAL under ``config.data_dir`` to the configured datastore."""

    def __init__(self, config: Config) -> None:
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
        self._status_written: tuple | None = None
        self._status_time = 0.0

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

    def write_status(self, state: str = "running", error: str | None = None) -> None:
        status = {
            "state": state,
            "error": error,
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
        tmp = _status_path(self.data_dir) + f".{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(status | {"updated": time.time()}))
        os.replace(tmp, _status_path(self.data_dir))
        self._status_written = key
        self._status_time = now


def run_writer(config: Config) -> None:
    """Entry point of the writer process (run by Sanic's worker manager)."""
    from kairos.logs import setup_logging

    setup_logging(config.log_level, config.log_format)
    data_dir, interval_ms = config.data_dir, config.writer_interval_ms
    stop = threading.Event()

    def _stop(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    writer = _open_writer(config, stop)
    if writer is None:
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
    while not stop.is_set():
        try:
            n = writer.step()
        except Exception as e:
            log.error("writer step failed (%s: %s); retrying", type(e).__name__, e)
            log.debug("writer step failure", exc_info=True)
            writer.retries += 1
            writer.write_status("retrying", error=f"{type(e).__name__}: {e}")
            stop.wait(1.0)
            continue
        writer.write_status()
        summary.maybe_log()
        if not n:
            stop.wait(interval)
    try:
        # Bounded, so the server stops within its drain timeout whatever the backlog.
        writer.drain(time.monotonic() + config.shutdown_drain_timeout_seconds)
    except Exception:
        log.exception("writer could not apply the rest of the WAL; it stays for the next start")
    writer.write_status("stopped")
    writer.store.close()
    log.info("writer stopped after applying %d points", writer.applied_points)


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
    """The writer, retrying while the datastore cannot be opened (Cassandra not up yet): the
    WAL keeps every acknowledged point meanwhile."""
    while True:
        try:
            return Writer(config)
        except Exception as e:
            if config.datastore == "embedded":
                raise
            log.error("cannot open the %s datastore (%s); retrying", config.datastore, e)
            if stop.wait(2.0):
                return None
