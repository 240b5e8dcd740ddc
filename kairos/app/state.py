"""Per-worker state: this worker's WAL writer and its read view of the datastore.

A ``sync`` write is durable *and visible* when it is answered: :meth:`WorkerState.append_synced`
appends and fdatasyncs the record and wakes the writer (:func:`~kairos.storage.writer.wake_writer`);
:meth:`WorkerState.wait_visible` waits in :class:`AppliedWaiter` until the datastore's WAL checkpoint (the embedded
manifest's ``wal`` positions, Cassandra's checkpoint file) covers the record, with this
worker's view refreshed to that checkpoint or a later one.  Every other worker's queries
refresh their view first, so they see it too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass, field
from functools import partial

from kairos.app.backpressure import Admission
from kairos.app.bodies import BodyBudget
from kairos.config import Config
from kairos.errors import NotYetVisible
from kairos.query.cache import QueryCache
from kairos.storage import Datastore, open_store
from kairos.storage.metadata import MetadataStore, open_metadata
from kairos.storage.versions import WriteVersions
from kairos.storage.wal import WalWriter
from kairos.storage.writer import wake_writer

__all__ = ["DRAINING_FLAG", "AppliedWaiter", "WorkerState", "draining_flag_path"]

log = logging.getLogger("kairos.app")

DRAINING_FLAG = "draining"
"""File in the data directory that the main process creates on SIGTERM/SIGINT (see
:mod:`kairos.app.factory`); while it exists every worker's health/readiness answers 503."""


DRAINING_RECHECK_SECONDS = 0.25
"""How often :meth:`WorkerState.keep_alive_allowed` looks for the draining flag (a ``stat``)."""


def draining_flag_path(data_dir: str) -> str:
    return os.path.join(data_dir, DRAINING_FLAG)


APPLIED_POLL_SECONDS = 0.003
"""How often a worker re-reads the checkpoint while a request waits for the writer to apply
its record (only while one waits; one poll serves every waiting request of the worker)."""


class AppliedWaiter:
    """Waits, for any number of requests of one worker at once, until the writer has applied
    WAL records, then leaves the worker's datastore view at least that new.

    A record is applied when the datastore's WAL checkpoint reaches its end, or when its WAL
    file is gone: the writer deletes a file only after a checkpoint covers all of it (that
    checkpoint then no longer names the file, so the view is refreshed once more).
    """

    def __init__(self, store: Datastore, wal_dir: str) -> None:
        self.store = store
        self.wal_dir = wal_dir
        self._waiting: list[tuple[str, int, asyncio.Future[None]]] = []
        self._poller: asyncio.Task | None = None

    def applied(self, name: str, end: int) -> bool:
        """Refresh the view; True when it covers the record ending at ``end`` of ``name``."""
        self.store.refresh()
        if self.store.wal_positions.get(name, 0) >= end:
            return True
        if os.path.exists(os.path.join(self.wal_dir, name)):
            return False
        self.store.refresh()  # the checkpoint that covered the file was written before its unlink
        return True

    async def wait(self, name: str, end: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the record; False if it is still not applied."""
        if self.applied(name, end):
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (name, end, fut)
        self._waiting.append(entry)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll(), name="wal-applied")
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)

    async def _poll(self) -> None:
        """Resolve the waiting requests whose records are applied; ends when none waits."""
        logged = False
        while self._waiting:
            await asyncio.sleep(APPLIED_POLL_SECONDS)
            try:
                done = [e for e in self._waiting if self.applied(e[0], e[1])]
            except Exception:  # a view that cannot be read now: retry; the requests time out
                if not logged:
                    log.exception("cannot refresh the datastore view while waiting for the writer")
                    logged = True
                continue
            for e in done:
                self._waiting.remove(e)
                if not e[2].done():
                    e[2].set_result(None)


@dataclass
class WorkerState:
    config: Config
    wal: WalWriter
    store: Datastore
    admission: Admission
    bodies: BodyBudget
    metadata: MetadataStore | None = None
    cache: QueryCache | None = None
    ingested_points: int = 0
    ingest_requests: int = 0
    tasks: list[asyncio.Task] = field(default_factory=list)
    waiter: AppliedWaiter = field(init=False)

    def __post_init__(self) -> None:
        self.waiter = AppliedWaiter(self.store, self.wal.dir)

    stopping: bool = False
    """Set when this worker starts its shutdown (``before_server_stop``)."""
    _draining_seen: tuple[float, bool] = (-math.inf, False)

    @classmethod
    def open(cls, config: Config) -> WorkerState:
        store = open_store(config)
        return cls(
            config=config,
            wal=WalWriter(config.data_dir),
            store=store,
            metadata=open_metadata(config, store),
            admission=Admission(
                config.max_memory_mb,
                config.wal_max_backlog_mb,
                config.data_dir,
                config.datastore_min_free_mb,
            ),
            bodies=BodyBudget(config.inflight_body_bytes),
            cache=(
                QueryCache(int(config.cache_max_mb * 1024 * 1024), WriteVersions(config.data_dir))
                if config.cache_enable
                else None
            ),
        )

    @property
    def draining(self) -> bool:
        """True once the main process has started a graceful shutdown."""
        return os.path.exists(draining_flag_path(self.config.data_dir))

    async def append_synced(self, payload: bytes) -> tuple[str, int]:
        """Append ``payload`` and fdatasync it (off the event loop), then wake the writer."""
        loop = asyncio.get_running_loop()
        pos = await loop.run_in_executor(None, partial(self.wal.append, payload, True))
        wake_writer(self.config.data_dir)
        return pos

    async def wait_applied(self, pos: tuple[str, int], timeout: float) -> bool:
        """Wait (bounded) until the writer has applied the record ending at ``pos``."""
        return await self.waiter.wait(pos[0], pos[1], timeout)

    async def wait_visible(self, pos: tuple[str, int]) -> None:
        """The end of a ``sync`` write: return once the record ending at ``pos`` is visible to
        every worker's next query.

        Raises :class:`~kairos.errors.NotYetVisible` (503) when the writer has not applied it
        within ``ingestion.sync_visible_timeout_ms``; the record stays in the WAL and is
        applied later.
        """
        ms = self.config.ingestion_sync_visible_timeout_ms
        if not await self.wait_applied(pos, ms / 1000):
            raise NotYetVisible(
                "The data points are stored durably but were not yet visible to queries after "
                f"{ms} ms (KAIROSDB_SYNC_VISIBLE_TIMEOUT_MS); the writer will apply them, "
                "there is no need to send them again",
                retry_after=max(1, -(-ms // 1000)),
            )

    def keep_alive_allowed(self) -> bool:
        """False once the server drains or stops: each response then closes its connection.

        Keep-alive clients that send request after request never leave a connection idle, so
        without this a stop waits for the whole drain timeout; and during the load-balancer
        delay a closed connection lets a client reconnect through the balancer to a server
        that is not going away.
        """
        if self.stopping:
            return False
        now = time.monotonic()
        checked, draining = self._draining_seen
        if now - checked >= DRAINING_RECHECK_SECONDS:
            draining = self.draining
            self._draining_seen = (now, draining)
        return not draining

    async def group_commit(self) -> None:
        """fsync this worker's WAL every ``fsync_interval_ms`` (non-sync ingest)."""
        loop = asyncio.get_running_loop()
        interval = self.config.ingestion_fsync_interval_ms / 1000
        while True:
            try:
                await asyncio.sleep(interval)
            except asyncio.CancelledError:
                return  # the worker is stopping: ``close`` fsyncs (Sanic would log a warning)
            try:
                await loop.run_in_executor(None, self.wal.flush)
            except OSError:
                log.exception("WAL group fsync failed")

    def close(self) -> None:
        self.wal.close()
        log.info("WAL %s fsynced and closed", os.path.basename(self.wal.path))
        if self.metadata is not None:
            self.metadata.close()
        self.store.close()
