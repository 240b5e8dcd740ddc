"""Every listening socket of one server, bound once by the main process before anything starts.

``kairos serve`` binds the HTTP, telnet and Graphite ports here, before the workers exist, and
hands the sockets to its HTTP workers (they travel with the app factory to each spawned worker,
as Sanic's own HTTP socket does), so the workers of one server share each port and no other
process can: the sockets are bound without ``SO_REUSEPORT``.  A second server on a taken port
stops at once with :class:`~kairos.errors.ListenerUnavailable`, whose one-line message names
the listener, the address and the setting that moves it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import ip_address

from kairos.config import SETTINGS, Config
from kairos.errors import ListenerUnavailable

__all__ = ["BACKLOG", "Listeners", "bind", "bind_listeners", "format_address"]

BACKLOG = 100
"""Pending connections per listening socket (Sanic's and asyncio's default)."""


def format_address(host: str, port: int) -> str:
    """``host:port``, an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, bound as Sanic binds its own: ``SO_REUSEADDR``
    (a restart need not wait for old connections' TIME_WAIT) but never ``SO_REUSEPORT``.
    A host name that is not an IP address is bound as IPv4, as Sanic does."""
    try:
        family = socket.AF_INET6 if ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class Listeners:
    """The bound sockets of one server; ``None`` for a line listener that is off."""

    host: str
    http: socket.socket
    telnet: socket.socket | None = None
    graphite: socket.socket | None = None

    def describe(self) -> str:
        """``HTTP on http://h:p, telnet on h:p, Graphite off`` (the ports really bound)."""

        def where(sock: socket.socket) -> str:
            return format_address(self.host, sock.getsockname()[1])

        line = [f"HTTP on http://{where(self.http)}"]
        for name, sock in (("telnet", self.telnet), ("Graphite", self.graphite)):
            line.append(f"{name} on {where(sock)}" if sock is not None else f"{name} off")
        return ", ".join(line)

    def close(self) -> None:
        for sock in (self.http, self.telnet, self.graphite):
            if sock is not None:
                sock.close()


def _moved_by(name: str) -> str:
    s = SETTINGS[name]
    return f"{' or '.join(s.env)}{f' or {s.option}' if s.option else ''} moves it"


def bind_listeners(config: Config, http_env: str = "KAIROSDB_BIND_ADDRESS") -> Listeners:
    """Bind every listener ``config`` asks for, or raise ``ListenerUnavailable`` for the first
    that cannot be bound (none stays bound then).  The line listeners are bound only by a
    server that ingests (``kairos query`` has none); ``http_env`` is the variable holding
    this service's HTTP address, named in the error."""
    ingests = "INGEST" in config.api_groups
    specs = [
        ("HTTP", config.port, f"{http_env}=host:port or --host/--port moves it"),
        (
            "telnet",
            config.telnet_port if ingests else 0,
            f"{_moved_by('telnet_port')} (0 disables it)",
        ),
        (
            "Graphite",
            config.graphite_port if ingests else 0,
            f"{_moved_by('graphite_port')} (0 disables it)",
        ),
    ]
    bound: list[socket.socket | None] = []
    try:
        for i, (listener, port, moved_by) in enumerate(specs):
            if port == 0 and i > 0:  # a line listener on port 0 is off; HTTP's 0 picks a port
                bound.append(None)
                continue
            try:
                bound.append(bind(config.host, port))
            except OSError as e:
                reason = (e.strerror or str(e)).lower()
                address = format_address(config.host, port)
                raise ListenerUnavailable(listener, address, reason, moved_by) from None
    except BaseException:
        for sock in bound:
            if sock is not None:
                sock.close()
        raise
    http, telnet, graphite = bound
    assert http is not None
    return Listeners(config.host, http, telnet, graphite)
