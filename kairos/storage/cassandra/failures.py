"""Driver failures as :class:`~kairos.errors.DatastoreUnavailable` (503 + ``Retry-After``).

The client reads what failed in words it can act on (no host answered, a timeout at a
consistency level, a statement Cassandra refused); the driver's exception stays the
``__cause__`` and its class and text go to the log, never to the client::

    try:
        ...
    except driver_errors() as e:
        raise unavailable(e) from e

Only the driver's own exceptions are translated: anything else is a bug in Kairos and
reaches the HTTP edge as it is (a 500 with its traceback in the log).
"""

from __future__ import annotations

import functools
import logging
import re

from kairos.errors import DatastoreUnavailable

__all__ = ["describe", "driver_errors", "unavailable"]

log = logging.getLogger("kairos.cassandra")

RETRY = "; the request can be retried"


@functools.cache
def driver_errors() -> tuple[type[BaseException], ...]:
    """The exception classes the driver raises for a failed request or connection.

    Imported on first use: an ``except`` clause evaluates its expression only when an
    exception reaches it, so the driver is not imported before it is used.
    """
    from cassandra import DriverException
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionBusy, ConnectionException, ProtocolError
    from cassandra.protocol import ErrorMessage

    return (
        DriverException,
        NoHostAvailable,
        ConnectionException,
        ConnectionBusy,
        ProtocolError,
        ErrorMessage,
    )


def unavailable(e: BaseException) -> DatastoreUnavailable:
    """The client-facing error for the driver exception ``e`` (logged here with its details;
    raise it ``from e``)."""
    message = describe(e)
    log.warning("%s [driver: %s: %s]", message, type(e).__name__, e)
    return DatastoreUnavailable(message)


def describe(e: BaseException) -> str:
    """What failed, for a user: no driver class names, hosts named where they help."""
    from cassandra import (
        AuthenticationFailed,
        ConsistencyLevel,
        CoordinationFailure,
        OperationTimedOut,
        ReadFailure,
        ReadTimeout,
        RequestValidationException,
        Timeout,
        Unauthorized,
        UnresolvableContactPoints,
        WriteFailure,
        WriteTimeout,
    )
    from cassandra import Unavailable as ReplicasUnavailable
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionBusy, ConnectionException
    from cassandra.protocol import (
        ErrorMessage,
        IsBootstrappingErrorMessage,
        OverloadedErrorMessage,
        UnauthorizedErrorMessage,
    )
    from cassandra.protocol import RequestValidationException as RefusedMessage

    def level(value: object) -> str:
        return ConsistencyLevel.value_to_name.get(value, str(value))

    login = (
        "Cassandra refused the login: check cassandra.username and cassandra.password "
        "(KAIROSDB_CASSANDRA_USERNAME / _PASSWORD)"
    )
    if isinstance(e, NoHostAvailable):
        errors = e.errors or {}
        if errors and all(isinstance(x, AuthenticationFailed) for x in errors.values()):
            return login
        hosts = ", ".join(sorted({str(h) for h in errors}))
        tried = f" (tried {hosts})" if hosts else ""
        return f"Cassandra is unavailable: no host answered{tried}{RETRY}"
    if isinstance(e, AuthenticationFailed):
        return login
    if isinstance(e, UnresolvableContactPoints):
        return (
            "Cassandra is unavailable: no contact point resolves to an address "
            "(check cassandra.contact_points)"
        )
    if isinstance(e, OperationTimedOut):
        host = f" from {e.last_host}" if e.last_host else ""
        return (
            f"Cassandra did not answer in time (no reply{host} within the request timeout){RETRY}"
        )
    if isinstance(e, Timeout):
        kind = (
            "read" if isinstance(e, ReadTimeout) else "write" if isinstance(e, WriteTimeout) else ""
        )
        replicas = (
            f": {e.received_responses} of {e.required_responses} replicas answered"
            if e.received_responses is not None and e.required_responses is not None
            else ""
        )
        return (
            f"Cassandra did not answer in time ({kind + ' ' if kind else ''}timeout at "
            f"consistency {level(e.consistency)}{replicas}){RETRY}"
        )
    if isinstance(e, ReplicasUnavailable):
        alive = (
            f" ({e.alive_replicas} alive, {e.required_replicas} required)"
            if e.alive_replicas is not None and e.required_replicas is not None
            else ""
        )
        return (
            "Cassandra is unavailable: too few replicas alive for consistency "
            f"{level(e.consistency)}{alive}{RETRY}"
        )
    if isinstance(e, CoordinationFailure):
        kind = (
            "read"
            if isinstance(e, ReadFailure)
            else "write"
            if isinstance(e, WriteFailure)
            else "request"
        )
        return (
            f"Cassandra replicas failed the {kind} at consistency {level(e.consistency)} "
            f"({e.failures} failed){RETRY}"
        )
    if isinstance(e, OverloadedErrorMessage):
        return f"Cassandra is overloaded (the coordinator node refused the request){RETRY}"
    if isinstance(e, IsBootstrappingErrorMessage):
        return f"Cassandra is still starting (the coordinator node is bootstrapping){RETRY}"
    if isinstance(e, Unauthorized | UnauthorizedErrorMessage):
        return f"Cassandra refused a statement: permission denied ({_server_text(e)})"
    if isinstance(e, RequestValidationException | RefusedMessage):
        return f"Cassandra refused a statement: {_server_text(e)}"
    if isinstance(e, ConnectionBusy):
        return f"Cassandra is busy: every connection has its most requests in flight{RETRY}"
    if isinstance(e, ConnectionException):
        host = f" to {e.endpoint}" if e.endpoint is not None else ""
        return f"Cassandra is unavailable: the connection{host} was lost{RETRY}"
    if isinstance(e, ErrorMessage):
        return f"Cassandra failed the request: {e.summary}: {e.message}"
    return "Cassandra failed the request (the server log has the driver's details)"


_SERVER_MESSAGE = re.compile(r'message="(.*)"', re.S)


def _server_text(e: BaseException) -> str:
    """Cassandra's own words for a refused statement (the driver wraps them in a summary)."""
    text = getattr(e, "message", None)
    if isinstance(text, str) and text:
        return text
    m = _SERVER_MESSAGE.search(str(e))
    return m.group(1) if m else str(e)
