"""Telnet (port 4242) and Graphite plaintext (port 2003) listeners in every HTTP worker.

The main process binds each port once (:mod:`kairos.app.listeners`) and every HTTP worker
accepts on its copy of that socket, so only the workers of one server share a port.  The
protocol logic lives in :mod:`kairos.ingest.telnet` and
:mod:`kairos.ingest.graphite`; here each read of a connection becomes at most one WAL append
(non-sync: the group commit fsyncs it), ``version`` replies are written back, and bad lines are
logged with the client address and counted in :class:`LineStats` (``app.ctx.line_stats``).
Nothing else is ever written back, and no bad line closes a connection.

While the data directory is below its free-space reserve or full (where HTTP ingest answers
507), a connection whose read could not be stored holds that read's batch, stops reading
(``pause_reading``: TCP flow control makes the client wait, as a slow server would) and tries
again every ``DISK_RETRY_SECONDS``; once the batch is stored it reads on.  Nothing read is
dropped, unless the connection closes first (logged with the number of points).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, cast

from sanic import Sanic

from kairos.app.listeners import BACKLOG, Listeners
from kairos.config import Config
from kairos.errors import InsufficientStorage
from kairos.ingest.telnet import FeedResult, LineFramer, TelnetSession
from kairos.storage.records import encode_batch

__all__ = ["LineProtocol", "LineStats", "register_line_listeners"]

log = logging.getLogger("kairos.telnet")

DISK_RETRY_SECONDS = 0.2


@dataclass
class LineStats:
    """Per-worker counters of the line protocols."""

    points: int = 0
    bad_lines: int = 0
    dropped_long_lines: int = 0
    unknown_commands: int = 0
    connections: int = 0


class _Session(Protocol):
    """One connection's parser: ``TelnetSession`` or ``GraphiteSession``."""

    framer: LineFramer

    def feed(self, data: bytes) -> FeedResult: ...


@dataclass
class _Listener:
    name: str
    app: Sanic
    session_factory: Callable[[], _Session]
    stats: LineStats
    server: asyncio.AbstractServer | None = None
    transports: set[asyncio.Transport] = field(default_factory=set)


class LineProtocol(asyncio.Protocol):
    """One telnet or Graphite connection."""

    def __init__(self, listener: _Listener) -> None:
        self.listener = listener
        self.session = listener.session_factory()
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.held: list[tuple[bytes, int]] = []
        """Encoded batches read but not stored yet (the disk is full), with their points."""
        self.paused = False
        self.retry_pending = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream server's connections are (read-write) Transports
        self.transport = t = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.listener.transports.add(t)
        self.listener.stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.transports.discard(self.transport)
        if self.held:
            log.warning(
                "%s %s: connection closed while the disk is full; %d points read from it "
                "were not stored",
                self.listener.name,
                self.peer,
                sum(n for _, n in self.held),
            )
            self.held.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self._handle(self.session.feed(data))
        except Exception:
            log.exception("%s %s: failed to process a read", self.listener.name, self.peer)

    def _handle(self, res: FeedResult) -> None:
        lis = self.listener
        stats = lis.stats
        name = lis.name
        if res.batch is not None:
            self.held.append((encode_batch(res.batch), res.n_points))
            self._store_held()
        for msg in res.errors:
            log.warning("%s %s: %s", name, self.peer, msg)
        stats.bad_lines += len(res.errors)
        for msg in res.warnings:
            log.warning("%s %s: %s", name, self.peer, msg)
        stats.unknown_commands += len(res.warnings)
        if res.dropped:
            log.warning(
                "%s %s: dropped %d line(s) longer than %d bytes",
                name,
                self.peer,
                res.dropped,
                self.session.framer.max_line,
            )
            stats.dropped_long_lines += res.dropped
        for reply in res.replies:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(reply)

    def _store_held(self) -> None:
        """Append the held batches to the WAL, in order; on a full disk keep the rest, stop
        reading and try again later."""
        st = self.listener.app.ctx.state
        while self.held:
            payload, n = self.held[0]
            try:
                st.admission.check_disk()
                st.wal.append(payload, False)
            except InsufficientStorage:
                if not self.paused and self.transport is not None:
                    self.paused = True
                    self.transport.pause_reading()
                    log.debug("%s %s: disk full, reading paused", self.listener.name, self.peer)
                if not self.retry_pending:
                    self.retry_pending = True
                    asyncio.get_running_loop().call_later(DISK_RETRY_SECONDS, self._retry)
                return
            self.held.pop(0)
            st.ingested_points += n
            self.listener.stats.points += n
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = False
            self.transport.resume_reading()
            log.debug("%s %s: reading resumed", self.listener.name, self.peer)

    def _retry(self) -> None:
        self.retry_pending = False
        if self.held and self.transport is not None and not self.transport.is_closing():
            self._store_held()


def register_line_listeners(app: Sanic, config: Config, listeners: Listeners | None) -> None:
    """Serve telnet and Graphite in each worker on the sockets ``listeners`` holds (bound by
    the main process); without them (an app not started by ``serve``) each worker binds the
    configured ports itself, which only one worker can do.  A port of 0 disables a listener."""
    from kairos.ingest.graphite import GraphiteSession

    specs: list[tuple[str, int, socket.socket | None, Callable[[], _Session]]] = []
    telnet = graphite = None
    if listeners is not None:
        telnet, graphite = listeners.telnet, listeners.graphite
    if config.telnet_port and (listeners is None or telnet is not None):
        specs.append(("telnet", config.telnet_port, telnet, partial(TelnetSession, config.version)))
    if config.graphite_port and (listeners is None or graphite is not None):
        specs.append(("graphite", config.graphite_port, graphite, GraphiteSession))

    @app.before_server_start
    async def _start_line_listeners(app: Sanic) -> None:
        app.ctx.line_stats = stats = LineStats()
        app.ctx.line_listeners = active = []
        loop = asyncio.get_running_loop()
        for name, port, sock, factory in specs:
            lis = _Listener(name, app, factory, stats)
            protocol = partial(LineProtocol, lis)
            if sock is not None:
                lis.server = await loop.create_server(protocol, sock=sock, backlog=BACKLOG)
            else:
                lis.server = await loop.create_server(protocol, config.host, port, backlog=BACKLOG)
            active.append(lis)
            log.debug("%s listener on %s:%d", name, config.host, port)

    @app.before_server_stop
    async def _stop_line_listeners(app: Sanic) -> None:
        for lis in getattr(app.ctx, "line_listeners", []):
            if lis.server is not None:
                lis.server.close()
            for t in list(lis.transports):
                t.close()
        for lis in getattr(app.ctx, "line_listeners", []):
            if lis.server is not None:
                try:
                    await asyncio.wait_for(lis.server.wait_closed(), 5)
                except TimeoutError:
                    log.warning("%s listener did not close in time", lis.name)
