"""One keyspace through one driver session: connect, prepared statements, concurrent execution.

Every statement of the store goes through :meth:`Keyspace.execute` with one of two execution
profiles, ``read`` and ``write``, carrying KairosDB's two consistency levels (spec §6.5).  Driver
failures leave here as :class:`~kairos.errors.DatastoreUnavailable` (see ``failures``).

Connecting never fails a start-up.  :class:`Keyspace` tries once when it is made; if Cassandra
does not answer (or, for a reader, the keyspace's tables do not exist yet) a daemon thread tries
again from 0.25 s, doubling up to ``cassandra.reconnect_max_seconds``, until it succeeds::

    not connected --connect--> connected --tables exist (reader) / created (writer)--> ready
          ^   |                    |
          +---+ retry, backoff     +-- retry, backoff (same session)

Until ready, every statement (:meth:`Keyspace.ready_session`) raises the last failure at once
(a 503 with ``Retry-After``): a request never waits for a connection.  A connected reader whose
tables were missing also looks again on use (one quick query), so it serves as soon as the
writer has created them.  Once ready the driver keeps the session alive itself (its
reconnection policy has the same bound), and the session is never replaced, so prepared
statements stay valid.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import NoReturn

from kairos.config import Config, cassandra_contact_points
from kairos.errors import DatastoreStarting, DatastoreUnavailable
from kairos.storage.cassandra.failures import RETRY, describe, driver_errors, unavailable
from kairos.storage.cassandra.schema import ClusterSpec, create_schema, missing_tables, read_spec

__all__ = ["READ", "WRITE", "Keyspace", "connect", "millis"]

log = logging.getLogger("kairos.cassandra")

READ = "read"
WRITE = "write"
FIRST_RETRY_SECONDS = 0.25


def millis() -> int:
    """Now in milliseconds: the driver's client timestamps and the writer's write times."""
    return time.time_ns() // 1_000_000


def connect(config: Config):
    """A driver ``Cluster`` and ``Session`` for ``config``: token-aware routing, KairosDB's
    consistency levels, tuple rows, and millisecond client timestamps (spec §6.5).

    Raises the driver's exception when no contact point answers (the cluster is shut down)."""
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.connection import DefaultEndPoint
    from cassandra.policies import (
        DCAwareRoundRobinPolicy,
        ExponentialReconnectionPolicy,
        TokenAwarePolicy,
    )
    from cassandra.query import tuple_factory

    points = [DefaultEndPoint(h, p) for h, p in cassandra_contact_points(config)]
    level = ConsistencyLevel.name_to_value

    def profile(consistency: str) -> ExecutionProfile:
        return ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
            consistency_level=level[consistency.upper()],
            row_factory=tuple_factory,
            request_timeout=30,
        )

    auth = None
    if config.cassandra_username:
        auth = PlainTextAuthProvider(config.cassandra_username, config.cassandra_password)
    longest = config.cassandra_reconnect_max_seconds
    cluster = Cluster(
        contact_points=points,
        auth_provider=auth,
        execution_profiles={
            EXEC_PROFILE_DEFAULT: profile(config.cassandra_read_consistency),
            READ: profile(config.cassandra_read_consistency),
            WRITE: profile(config.cassandra_write_consistency),
        },
        timestamp_generator=millis,
        # Back within seconds of an outage's end (the driver's default waits up to 10 min).
        reconnection_policy=ExponentialReconnectionPolicy(min(0.5, longest), longest),
        connect_timeout=config.cassandra_connect_timeout_seconds,
        **_connection_class(),
    )
    try:
        return cluster, cluster.connect()
    except BaseException:
        cluster.shutdown()  # its threads would outlive every retry of the caller
        raise


def _connection_class() -> dict:
    """The asyncio reactor: the default asyncore one warns (deprecated) on Python 3.11."""
    try:
        from cassandra.io.libevreactor import LibevConnection

        return {"connection_class": LibevConnection}
    except ImportError:  # pragma: no cover - depends on the driver build
        from cassandra.io.asyncioreactor import AsyncioConnection

        return {"connection_class": AsyncioConnection}


class Keyspace:
    """KairosDB's keyspace ``config.cassandra_keyspace``, connected now or as soon as it can be.

    ``create`` (the writer) creates the keyspace and tables if absent and settles the cluster
    spec once connected; a reader is ready once the tables exist and reads the spec when first
    needed.  See the module docstring for the connection states.
    """

    def __init__(self, config: Config, *, create: bool = False) -> None:
        self.name = config.cassandra_keyspace
        self.config = config
        self.create = create
        self.cluster = None
        self._session = None
        self._ready = False
        self._prepared: dict[str, object] = {}
        self._spec: ClusterSpec | None = None
        self._lock = threading.Lock()
        self._attempting = threading.Lock()  # one attempt at a time
        self._closed = threading.Event()
        self._failure: tuple[type[DatastoreUnavailable], str, BaseException | None] = (
            DatastoreUnavailable,
            f"Cassandra is unavailable: not connected yet{RETRY}",
            None,
        )
        self.attempts = 0
        if not self._attempt():
            threading.Thread(
                target=self._retry, name="kairos-cassandra-connect", daemon=True
            ).start()

    @property
    def ready(self) -> bool:
        """Connected, and the tables exist (a reader) or were created (the writer)."""
        return self._ready

    @property
    def session(self):
        """The driver session once connected, whether or not the tables exist (tests and
        tools); :class:`DatastoreUnavailable` before."""
        session = self._session
        if session is None:
            self._raise()
        return session

    def ready_session(self):
        """The driver session for Kairos's own statements: :class:`DatastoreUnavailable` (or
        :class:`DatastoreStarting` while the tables do not exist yet) until :attr:`ready`."""
        if not self._ready:
            # Connected but the tables were missing: look again now (one quick query), so a
            # worker serves as soon as the writer has created them.  Never a connection attempt
            # here: that may take the connect timeout, and this may run on the event loop.
            if self._session is not None and self._attempting.acquire(blocking=False):
                try:
                    self._attempt()
                finally:
                    self._attempting.release()
            if not self._ready:
                self._raise()
        return self._session

    def _raise(self) -> NoReturn:
        kind, message, cause = self._failure
        raise kind(message) from cause

    def _retry(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while not self._closed.wait(delay):
            connected = self._session is not None
            with self._attempting:
                if self._ready or self._attempt():
                    return
            # Just connected (the tables are next, moments away for a new keyspace): start the
            # backoff again.
            fresh = not connected and self._session is not None
            delay = (
                FIRST_RETRY_SECONDS
                if fresh
                else min(delay * 2, self.config.cassandra_reconnect_max_seconds)
            )

    def _attempt(self) -> bool:
        """One step towards ready; False (and the failure remembered) when it did not get
        there."""
        self.attempts += 1
        try:
            session = self._session
            if session is None:
                cluster, session = connect(self.config)
                with self._lock:
                    if self._closed.is_set():
                        cluster.shutdown()
                        return False
                    self.cluster, self._session = cluster, session
            if self.create:
                self._spec = create_schema(
                    session,
                    self.name,
                    self.config.cassandra_replication,
                    self.config.cassandra_row_time_unit,
                    self.config.cassandra_row_width,
                )
            else:
                missing = missing_tables(session, self.name)
                if missing:
                    self._fail(
                        DatastoreStarting,
                        f"Cassandra keyspace {self.name} is not created yet (tables missing): "
                        f"the writer of an ingest service creates it when it connects{RETRY}",
                        None,
                    )
                    return False
        except driver_errors() as e:
            self._fail(DatastoreUnavailable, describe(e), e)
            return False
        with self._lock:
            if self._closed.is_set():
                return False
            self._ready = True
        if self.attempts > 1:
            log.info("Cassandra keyspace %s ready after %d attempts", self.name, self.attempts)
        return True

    def _fail(
        self, kind: type[DatastoreUnavailable], message: str, cause: BaseException | None
    ) -> None:
        if message != self._failure[1] or self.attempts == 1:
            detail = f" [driver: {type(cause).__name__}: {cause}]" if cause is not None else ""
            log.warning(
                "%s%s; trying again (every %g s at most)",
                message,
                detail,
                self.config.cassandra_reconnect_max_seconds,
            )
        self._failure = (kind, message, cause)

    @property
    def spec(self) -> ClusterSpec:
        """The keyspace's row width and unit (read clusters without a spec row assume the
        defaults, as KairosDB does; a reader retries until the writer has created it)."""
        if self._spec is None:
            try:
                spec = read_spec(self.ready_session(), self.name)
            except driver_errors() as e:
                raise unavailable(e) from e
            if spec is None:
                return ClusterSpec()
            self._spec = spec
        return self._spec

    def stmt(self, cql: str):
        """The prepared statement of ``cql`` (``{ks}`` stands for the keyspace), cached."""
        stmt = self._prepared.get(cql)
        if stmt is None:
            try:
                stmt = self.ready_session().prepare(cql.format(ks=self.name))
            except driver_errors() as e:
                raise unavailable(e) from e
            self._prepared[cql] = stmt
        return stmt

    def execute(self, items: Iterable[tuple], concurrency: int, profile: str) -> list:
        """Run (statement, params) pairs with ``concurrency`` in flight; results in order."""
        from cassandra.concurrent import execute_concurrent

        try:
            results = execute_concurrent(
                self.ready_session(),
                items,
                concurrency=concurrency,
                raise_on_first_error=True,
                execution_profile=profile,
            )
        except driver_errors() as e:
            raise unavailable(e) from e
        return [r.result_or_exc for r in results]

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._ready = False
            cluster, self.cluster, self._session = self.cluster, None, None
            self._failure = (DatastoreUnavailable, "the Cassandra session is closed", None)
        if cluster is not None:
            cluster.shutdown()
