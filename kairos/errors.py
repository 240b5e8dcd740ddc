"""Kairos's exception tree: every error Kairos raises on purpose, in one place.

::

    KairosError
     +-- BadRequest (ValueError)             400, rendered as {"errors": [...]}
     |    +-- ValidationErrors               400, several KairosDB validation messages (ingest)
     |    +-- InvalidHistogram               400, an inconsistent histogram value
     |    +-- InvalidQuery                   400, a query that fails KairosDB's validation
     |    +-- QueryTooLarge                  400, a query over ``query_max_points``
     |    +-- ProtobufError                  400, a Prometheus remote-write body that is not one
     +-- PayloadTooLarge (ValueError)        413, body or point count over a limit
     +-- Unavailable (RuntimeError)          503, back-pressure; carries ``retry_after``
     |    +-- QueryTimeout                   503, a query past ``query_timeout_ms``
     |    +-- DatastoreUnavailable           503, the datastore did not answer; ``__cause__`` is
     |    |    |                                  the driver's exception (logged, never sent)
     |    |    +-- DatastoreStarting         503, it answers but its tables do not exist yet
     |    +-- InsufficientStorage            507, the data directory's disk is full or below the
     |                                            free-space reserve (``min_free_mb``)
     |    +-- NotYetVisible                  503, a sync write is durable in the WAL but the writer
     |                                            has not applied it within the timeout
     +-- QueryFailed (RuntimeError)          400, a valid query that cannot be computed on its
     |    |                                       data (KairosDB's message; KairosDB answers 500)
     |    +-- NonFiniteValue                 400, a NaN/Infinity result JSON cannot carry
     |    +-- RegexTimeout                   400, a ``regex:`` tag filter over its time budget
     +-- CorruptFile (OSError)               a store or WAL file failed its CRC / framing check
     +-- ChunkError (ValueError)             an embedded chunk that cannot be encoded or decoded
     +-- CodecError (ValueError)             a Cassandra cell KairosDB could not read or write
     +-- ConfigError (ValueError)            an invalid setting; names the key and the value
     +-- ListenerUnavailable (OSError)       a listener cannot bind its address at start-up;
                                             names it, the address and the setting that moves it

Every subclass carries ``status_code`` and the list of client-facing ``messages``; the HTTP edge
renders them as KairosDB's ``{"errors": [...]}`` body.  A 5xx that is not one of these is
answered with a fixed message and logged with its traceback.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "ChunkError",
    "CodecError",
    "ConfigError",
    "CorruptFile",
    "DatastoreStarting",
    "DatastoreUnavailable",
    "InsufficientStorage",
    "InvalidHistogram",
    "InvalidQuery",
    "KairosError",
    "ListenerUnavailable",
    "NonFiniteValue",
    "NotYetVisible",
    "PayloadTooLarge",
    "ProtobufError",
    "QueryFailed",
    "QueryTimeout",
    "QueryTooLarge",
    "RegexTimeout",
    "Unavailable",
    "ValidationErrors",
]


class KairosError(Exception):
    """Root of every error Kairos raises on purpose."""

    status_code = 500

    def __init__(self, *messages: str) -> None:
        super().__init__(*messages)
        self.messages = list(messages)

    def __str__(self) -> str:
        return "; ".join(self.messages)


class BadRequest(KairosError, ValueError):
    status_code = 400


class ValidationErrors(BadRequest):
    """One or more KairosDB validation messages, in the order they were found."""


class InvalidHistogram(BadRequest):
    """A histogram value that is not self-consistent (the message says why)."""


class InvalidQuery(BadRequest):
    """A query that fails KairosDB's validation.

    KairosDB stops at the first failing item; that item's messages are all reported (usually
    one; a bean with several violated constraints gives several).
    """


class QueryTooLarge(BadRequest):
    """The query would read more points than ``query_max_points``."""


class ProtobufError(BadRequest):
    """The body is not a valid protobuf ``WriteRequest``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid Prometheus remote write request: {reason}")


class PayloadTooLarge(KairosError, ValueError):
    status_code = 413


class Unavailable(KairosError, RuntimeError):
    status_code = 503

    def __init__(self, *messages: str, retry_after: int = 1) -> None:
        super().__init__(*messages)
        self.retry_after = retry_after


class QueryTimeout(Unavailable):
    """The query ran past ``query_timeout_ms``."""


class DatastoreUnavailable(Unavailable):
    """The datastore did not answer (Cassandra down, too few replicas, a timeout).

    The message says what failed in words a user can act on; the driver's exception is the
    ``__cause__`` and goes to the log only.
    """


class DatastoreStarting(DatastoreUnavailable):
    """The datastore answers but is not ready to serve yet: a new Cassandra keyspace whose
    tables the writer has not created yet.  Readiness fails on it even where ingest alone
    would keep a service ready (ingest is not lost, but the service cannot answer queries)."""


class InsufficientStorage(Unavailable):
    """The data directory's file system is full (``ENOSPC``) or has less free space than the
    reserve: nothing was written, the client retries after ``retry_after`` seconds.

    507 Insufficient Storage (RFC 4918): a 5xx, so every ingest client retries it, and one a
    monitoring rule can tell apart from an overload's 503.
    """

    status_code = 507


class NotYetVisible(Unavailable):
    """A ``sync`` write that is durable (fsynced in the WAL) but that the writer did not apply
    within ``ingestion.sync_visible_timeout_ms``: nothing is lost, queries see it later."""


class QueryFailed(KairosError, RuntimeError):
    """A valid query that cannot be computed on the data it selects (a zero sampling, a
    result past the ``double`` or ``long`` range, buckets past the calendar).

    KairosDB answers 500 with the message; Kairos answers 400 with the same message, because
    the query is what has to change: a 5xx is kept for the server's own failures.
    """

    status_code = 400


class NonFiniteValue(QueryFailed):
    """A NaN or infinite result, which KairosDB's JSON cannot carry."""


class RegexTimeout(QueryFailed):
    """A ``regex:`` tag filter that did not finish matching the candidate tag values within
    ``query.regex_timeout_ms`` (catastrophic backtracking, e.g. ``(a|aa)+$``).

    A 400, not a 503: the pattern is the client's to change, and a retry would only burn
    the same CPU again.
    """


class CorruptFile(KairosError, OSError):
    """A file failed its integrity check; ``path`` names it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ChunkError(KairosError, ValueError):
    """A chunk that cannot be encoded (bad arguments) or decoded (corrupt or truncated bytes)."""


class CodecError(KairosError, ValueError):
    """A Cassandra cell that KairosDB could not read, or a value it could not write."""


class ConfigError(KairosError, ValueError):
    """An invalid configuration value; the message names the key and the value."""


class ListenerUnavailable(KairosError, OSError):
    """A listener (HTTP, telnet, Graphite) that cannot bind its address at start-up.

    The message names the listener, the address, the reason and the setting that moves it.
    """

    def __init__(self, listener: str, address: str, reason: str, moved_by: str) -> None:
        super().__init__(f"the {listener} listener cannot bind {address}: {reason}; {moved_by}")
        self.listener = listener
        self.address = address
        self.reason = reason
