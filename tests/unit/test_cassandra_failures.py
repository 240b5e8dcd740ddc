"""Driver failures reach the client as DatastoreUnavailable (503 + Retry-After) with a message
naming what failed; the driver's exception is the cause and goes to the log only."""

from __future__ import annotations

import logging

import pytest
from cassandra import (
    AuthenticationFailed,
    ConsistencyLevel,
    OperationTimedOut,
    ReadFailure,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
)
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionShutdown, DefaultEndPoint
from cassandra.protocol import (
    InvalidRequestException,
    OverloadedErrorMessage,
    ServerError,
    SyntaxException,
)

from kairos.errors import DatastoreUnavailable
from kairos.storage.cassandra.failures import describe, driver_errors, unavailable
from kairos.storage.cassandra.metadata import CassandraMetadata

HOST = DefaultEndPoint("127.0.0.1", 9042)
RETRY = "; the request can be retried"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            NoHostAvailable("Unable to connect", {HOST: ConnectionRefusedError(111, "refused")}),
            f"Cassandra is unavailable: no host answered (tried 127.0.0.1:9042){RETRY}",
        ),
        (
            NoHostAvailable("Unable to connect", {}),
            f"Cassandra is unavailable: no host answered{RETRY}",
        ),
        (
            NoHostAvailable("Unable to connect", {HOST: AuthenticationFailed("bad credentials")}),
            "Cassandra refused the login: check cassandra.username and cassandra.password "
            "(KAIROSDB_CASSANDRA_USERNAME / _PASSWORD)",
        ),
        (
            ReadTimeout(
                "Error from server",
                consistency=ConsistencyLevel.ONE,
                required_responses=1,
                received_responses=0,
            ),
            "Cassandra did not answer in time (read timeout at consistency ONE: 0 of 1 replicas "
            f"answered){RETRY}",
        ),
        (
            WriteTimeout(
                "Error from server",
                consistency=ConsistencyLevel.QUORUM,
                required_responses=2,
                received_responses=1,
                write_type=0,
            ),
            "Cassandra did not answer in time (write timeout at consistency QUORUM: 1 of 2 "
            f"replicas answered){RETRY}",
        ),
        (
            Unavailable(
                "Error from server",
                consistency=ConsistencyLevel.QUORUM,
                required_replicas=2,
                alive_replicas=1,
            ),
            "Cassandra is unavailable: too few replicas alive for consistency QUORUM "
            f"(1 alive, 2 required){RETRY}",
        ),
        (
            ReadFailure(
                "Error from server",
                consistency=ConsistencyLevel.ONE,
                required_responses=1,
                received_responses=0,
                failures=1,
            ),
            f"Cassandra replicas failed the read at consistency ONE (1 failed){RETRY}",
        ),
        (
            OperationTimedOut({}, HOST),
            "Cassandra did not answer in time (no reply from 127.0.0.1:9042 within the request "
            f"timeout){RETRY}",
        ),
        (
            InvalidRequestException(
                0x2200, "Keyspace kairosdb does not exist", None
            ).to_exception(),
            "Cassandra refused a statement: Keyspace kairosdb does not exist",
        ),
        (
            SyntaxException(0x2000, "line 1:0 no viable alternative", None),
            "Cassandra refused a statement: line 1:0 no viable alternative",
        ),
        (
            OverloadedErrorMessage(0x1001, "overloaded", None),
            f"Cassandra is overloaded (the coordinator node refused the request){RETRY}",
        ),
        (
            ServerError(0, "java.lang.NullPointerException", None),
            "Cassandra failed the request: Server error: java.lang.NullPointerException",
        ),
        (
            ConnectionShutdown("Connection to 127.0.0.1:9042 was closed", HOST),
            f"Cassandra is unavailable: the connection to 127.0.0.1:9042 was lost{RETRY}",
        ),
    ],
)
def test_driver_errors_become_datastore_unavailable(error, message, caplog) -> None:
    assert isinstance(error, driver_errors())
    assert describe(error) == message
    with caplog.at_level(logging.WARNING, logger="kairos.cassandra"):
        e = unavailable(error)
    assert isinstance(e, DatastoreUnavailable)
    assert (e.status_code, e.retry_after, e.messages) == (503, 1, [message])
    # The driver's class and text are logged, not sent.
    assert type(error).__name__ in caplog.text


class _Session:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def prepare(self, cql: str):
        raise self.error


class _Keyspace:
    """A connected keyspace whose session fails every statement with ``error``."""

    name = "kairosdb"

    def __init__(self, error: Exception) -> None:
        self.session = _Session(error)

    def ready_session(self) -> _Session:
        return self.session


def test_metadata_raises_from_the_driver_error() -> None:
    cause = NoHostAvailable("Unable to complete the operation", {HOST: OSError("refused")})
    md = CassandraMetadata(_Keyspace(cause))
    with pytest.raises(DatastoreUnavailable) as info:
        md.get_value("s", "sk", "k")
    assert str(info.value) == (
        f"Cassandra is unavailable: no host answered (tried 127.0.0.1:9042){RETRY}"
    )
    assert info.value.__cause__ is cause


def test_a_bug_is_not_dressed_as_unavailable() -> None:
    md = CassandraMetadata(_Keyspace(TypeError("bad bind")))
    assert not isinstance(TypeError(), driver_errors())
    with pytest.raises(TypeError, match="bad bind"):
        md.get_value("s", "sk", "k")
