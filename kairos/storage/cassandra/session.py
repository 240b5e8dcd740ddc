"""One keyspace through one driver session: connect, prepared statements, concurrent execution.

Every statement of the store goes through :meth:`Keyspace.execute` with one of two execution
profiles, ``read`` and ``write``, carrying KairosDB's two consistency levels (spec §6.5).  Driver
failures leave here as :class:`~kairos.errors.DatastoreUnavailable` (see ``failures``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from kairos.config import Config, cassandra_contact_points
from kairos.storage.cassandra.failures import driver_errors, unavailable
from kairos.storage.cassandra.schema import ClusterSpec, create_schema, read_spec

__all__ = ["READ", "WRITE", "Keyspace", "connect", "millis"]

READ = "read"
WRITE = "write"


def millis() -> int:
    """Now in milliseconds: the driver's client timestamps and the writer's write times."""
    return time.time_ns() // 1_000_000


def connect(config: Config):
    """A driver ``Cluster`` and ``Session`` for ``config``: token-aware routing, KairosDB's
    consistency levels, tuple rows, and millisecond client timestamps (spec §6.5)."""
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
        reconnection_policy=ExponentialReconnectionPolicy(0.5, 2.0),
        connect_timeout=config.cassandra_connect_timeout_seconds,
        **_connection_class(),
    )
    try:
        return cluster, cluster.connect()
    except driver_errors() as e:
        cluster.shutdown()  # its threads would outlive every retry of the caller
        raise unavailable(e) from e


def _connection_class() -> dict:
    """The asyncio reactor: the default asyncore one warns (deprecated) on Python 3.11."""
    try:
        from cassandra.io.libevreactor import LibevConnection

        return {"connection_class": LibevConnection}
    except ImportError:  # pragma: no cover - depends on the driver build
        from cassandra.io.asyncioreactor import AsyncioConnection

        return {"connection_class": AsyncioConnection}


class Keyspace:
    """KairosDB's keyspace ``config.cassandra_keyspace`` on a connected session.

    ``create`` (the writer) creates the keyspace and tables if absent and settles the cluster
    spec; a reader reads the spec when first needed.
    """

    def __init__(self, config: Config, *, create: bool = False) -> None:
        self.name = config.cassandra_keyspace
        self._prepared: dict[str, object] = {}
        self._spec: ClusterSpec | None = None
        self.cluster, self.session = connect(config)
        if create:
            try:
                self._spec = create_schema(
                    self.session,
                    self.name,
                    config.cassandra_replication,
                    config.cassandra_row_time_unit,
                    config.cassandra_row_width,
                )
            except driver_errors() as e:
                self.cluster.shutdown()
                raise unavailable(e) from e

    @property
    def spec(self) -> ClusterSpec:
        """The keyspace's row width and unit (read clusters without a spec row assume the
        defaults, as KairosDB does; a reader retries until the writer has created it)."""
        if self._spec is None:
            try:
                spec = read_spec(self.session, self.name)
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
                stmt = self.session.prepare(cql.format(ks=self.name))
            except driver_errors() as e:
                raise unavailable(e) from e
            self._prepared[cql] = stmt
        return stmt

    def execute(self, items: Iterable[tuple], concurrency: int, profile: str) -> list:
        """Run (statement, params) pairs with ``concurrency`` in flight; results in order."""
        from cassandra.concurrent import execute_concurrent

        try:
            results = execute_concurrent(
                self.session,
                items,
                concurrency=concurrency,
                raise_on_first_error=True,
                execution_profile=profile,
            )
        except driver_errors() as e:
            raise unavailable(e) from e
        return [r.result_or_exc for r in results]

    def close(self) -> None:
        self.cluster.shutdown()
