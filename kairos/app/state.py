"""Per-worker state: this worker's WAL writer and its read view of the datastore."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass, field

from kairos.app.backpressure import Admission
from kairos.config import Config
from kairos.query.cache import QueryCache
from kairos.storage import Datastore, open_store
from kairos.storage.metadata import MetadataStore, open_metadata
from kairos.storage.versions import WriteVersions
from kairos.storage.wal import WalWriter

__all__ = ["DRAINING_FLAG", "WorkerState", "draining_flag_path"]

log = logging.getLogger("kairos.app")

DRAINING_FLAG = "draining"
"""File in the data directory that the main process creates on SIGTERM/SIGINT (see
:mod:`kairos.app.factory`); while it exists every worker's health/readiness answers 503."""


DRAINING_RECHECK_SECONDS = 0.25
"""How often :meth:`WorkerState.keep_alive_allowed` looks for the draining flag (a ``stat``)."""


def draining_flag_path(data_dir: str) -> str:
    return os.path.join(data_dir, DRAINING_FLAG)


@dataclass
class WorkerState:
    config: Config
    wal: WalWriter
    store: Datastore
    admission: Admission
    metadata: MetadataStore | None = None
    cache: QueryCache | None = None
    ingested_points: int = 0
    ingest_requests: int = 0
    tasks: list[asyncio.Task] = field(default_factory=list)
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
            admission=Admission(config.max_memory_mb, config.wal_max_backlog_mb),
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
