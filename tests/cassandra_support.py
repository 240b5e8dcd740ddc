"""The ``cassandra_contact_points`` fixture: a real Apache Cassandra 5.0 for ``cassandra`` tests.

With ``KAIROSDB_CASSANDRA_CONTACT_POINTS=host:port[,host:port]`` set, tests use that cluster and
nothing is started. Otherwise the first test that asks for the fixture starts the project's own
single node (``scripts/cassandra.py``: jars cached in ``.cache/cassandra/lib``, data in a temporary
directory, CQL and storage on free ports) and the session stops it by pid at the end. A node that
cannot start fails the tests that need it, with the tail of its log: they are never skipped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTACT_POINTS_ENV = "KAIROSDB_CASSANDRA_CONTACT_POINTS"


def _load_runtime():
    # scripts/cassandra.py is a stdlib script, not a package; "cassandra" is the driver's name.
    name = "kairos_cassandra_runtime"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "cassandra.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


runtime = _load_runtime()


def parse_contact_points(value: str) -> list[tuple[str, int]]:
    """``host:port[,host:port]`` (``[v6addr]:port`` too) as (host, port) pairs."""
    points = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{CONTACT_POINTS_ENV}: {item!r} is not host:port")
        points.append((host.strip("[]"), int(port)))
    if not points:
        raise ValueError(f"{CONTACT_POINTS_ENV} is empty")
    return points


def connect(contact_points: str, **kw):
    """A cassandra-driver ``Cluster`` for ``contact_points`` (the caller shuts it down)."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy

    points = parse_contact_points(contact_points)
    # One port per Cluster in this driver: contact points must share it.
    ports = {port for _, port in points}
    if len(ports) != 1:
        raise ValueError(f"{CONTACT_POINTS_ENV}: all contact points need one port, got {ports}")
    # An explicit load-balancing policy: without one the driver warns (an error under pytest).
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=30)
    kw.setdefault("protocol_version", 5)  # Cassandra 4.0 and later; no downgrade dance
    return Cluster(
        contact_points=[host for host, _ in points],
        port=ports.pop(),
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=30,
        **kw,
    )


@pytest.fixture(scope="session")
def cassandra_contact_points(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port[,host:port]`` of a Cassandra 5.0 that answers CQL."""
    configured = os.environ.get(CONTACT_POINTS_ENV, "").strip()
    if configured:
        parse_contact_points(configured)
        yield configured
        return
    run = tmp_path_factory.mktemp("cassandra")
    try:
        state = runtime.start(run, native_port=0, quiet=True)
    except runtime.CassandraError as e:
        pytest.fail(
            f"Cassandra could not start (set {CONTACT_POINTS_ENV} to use one):\n{e}", pytrace=False
        )
    try:
        yield f"127.0.0.1:{state['native_port']}"
    finally:
        runtime.stop(run, quiet=True)
        for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw"):
            shutil.rmtree(run / sub, ignore_errors=True)
