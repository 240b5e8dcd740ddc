"""Cassandra outage: killed during ingest, ingest keeps answering 204 from the WAL, and once
Cassandra is back every acknowledged point is readable."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid

import pytest

from tests.cassandra_support import runtime
from tests.conftest import start_server

pytestmark = [pytest.mark.integration, pytest.mark.cassandra, pytest.mark.slow]


def _count(c, metric: str, timeout: float = 30.0) -> int:
    q = {
        "start_absolute": 0,
        "metrics": [
            {
                "name": metric,
                "aggregators": [{"name": "count", "sampling": {"value": 100, "unit": "years"}}],
            }
        ],
    }
    # A worker's driver session notices Cassandra is back at its next reconnection attempt
    # (at most 2 s apart); until then its queries answer 503.
    deadline = time.monotonic() + timeout
    while True:
        r = c.post("/api/v1/datapoints/query", json=q)
        if r.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    results = r.json()["queries"][0]["results"]
    return sum(v for res in results for _, v in res["values"])


def test_ingest_survives_a_cassandra_outage(tmp_path) -> None:
    # A node of its own: this test kills it.
    run = tmp_path / "cassandra"
    try:
        state = runtime.start(run, native_port=0, quiet=True)
    except runtime.CassandraError as e:
        pytest.fail(f"Cassandra could not start:\n{e}", pytrace=False)
    port = state["native_port"]
    env = {
        "KAIROSDB_DATASTORE": "cassandra",
        "KAIROSDB_CASSANDRA_CONTACT_POINTS": f"127.0.0.1:{port}",
        "KAIROSDB_CASSANDRA_KEYSPACE": "outage",
    }
    srv = start_server(tmp_path / "data", env=env, workers=2)
    acknowledged = 0
    failures: list[str] = []
    stop = threading.Event()

    def ingest() -> None:
        nonlocal acknowledged
        i = 0
        with srv.client() as c:
            while not stop.is_set():
                body = [
                    {
                        "name": "outage.m",
                        "tags": {"h": "a"},
                        "datapoints": [[i * 100 + j + 1, j] for j in range(100)],
                    }
                ]
                r = c.post("/api/v1/datapoints", json=body)
                if r.status_code == 204:
                    acknowledged += 100
                else:
                    failures.append(f"{r.status_code} {r.text}")
                i += 1
                time.sleep(0.01)

    sender = threading.Thread(target=ingest)
    try:
        sender.start()
        time.sleep(2)
        os.kill(state["pid"], signal.SIGKILL)  # a crash, not a clean stop
        before = acknowledged
        time.sleep(4)
        with srv.client() as c:
            ready = c.get("/health/ready")
            assert ready.status_code == 200, ready.text  # ingest still has its WAL
            assert ready.json()["datastore"] != "ok"
            assert ready.json()["wal_backlog_bytes"] > 0
            health = c.get("/health")
            assert health.status_code == 503
            q = {"start_absolute": 0, "metrics": [{"name": "outage.m"}]}
            assert c.post("/api/v1/datapoints/query", json=q).status_code == 503
        assert acknowledged > before, "ingest stopped during the outage"
        runtime.start(run, native_port=port, quiet=True)
        time.sleep(2)
        stop.set()
        sender.join()
        assert failures == []
        srv.wait_applied(timeout=120)
        with srv.client() as c:
            assert _count(c, "outage.m") == acknowledged
            metrics = c.get("/metrics").text
        retries = re.search(r"^kairos_datastore_write_retries_total (\S+)$", metrics, re.M)
        assert retries and float(retries.group(1)) > 0, "the outage shows as writer retries"
    finally:
        stop.set()
        sender.join()
        srv.stop()
        runtime.stop(run, quiet=True)


def _poll(c, method: str, path: str, timeout: float = 60.0, **kw):
    """The first answer that is not a 503 (a worker connects at its next attempt, at most
    ``cassandra.reconnect_max_seconds`` apart), or the last 503."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.request(method, path, **kw)
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_starts_and_takes_ingest_while_cassandra_is_down(tmp_path) -> None:
    # Nothing listens on this port until the node below starts on it.
    port = runtime.free_port()
    env = {
        "KAIROSDB_DATASTORE": "cassandra",
        "KAIROSDB_CASSANDRA_CONTACT_POINTS": f"127.0.0.1:{port}",
        "KAIROSDB_CASSANDRA_KEYSPACE": "down_at_start",
    }
    down = f"Cassandra is unavailable: no host answered (tried 127.0.0.1:{port}); the request can be retried"
    run = tmp_path / "cassandra"
    srv = start_server(tmp_path / "data", env=env, workers=2, wait_for="/health/live")
    servers = [srv]
    try:
        # A query-only service on the same (not yet created) keyspace.
        qsrv = start_server(
            tmp_path / "query",
            env=env | {"KAIROSDB_SERVER_TYPE": "QUERY"},
            workers=1,
            wait_for="/health/live",
        )
        servers.append(qsrv)
        expected: list[list] = []
        with srv.client() as c:
            for i in range(20):
                points = [
                    [i * 50 + j + 1, (i * 50 + j) * 0.5 if j % 2 else i * 50 + j] for j in range(50)
                ]
                body = [{"name": "down.m", "tags": {"h": "a"}, "datapoints": points}]
                r = c.post("/api/v1/datapoints", json=body)
                assert r.status_code == 204, r.text
                expected += points
            ready = c.get("/health/ready")
            assert ready.status_code == 200, ready.text  # ingest goes to the WAL
            assert ready.json()["datastore"] == down
            health = c.get("/health")
            assert health.status_code == 503
            assert health.json()["checks"]["Datastore-Query"] == {"ok": False, "error": down}
            q = {"start_absolute": 0, "metrics": [{"name": "down.m"}]}
            for r in (
                c.post("/api/v1/datapoints/query", json=q),
                c.get("/api/v1/metricnames"),
                c.get("/api/v1/metadata/svc/key/k"),
                c.post("/api/v1/metadata/svc/key/k", content=b"v"),
            ):
                assert r.status_code == 503, r.text
                assert r.headers["Retry-After"] == "1"
                assert r.json() == {"errors": [down]}
        with qsrv.client() as c:
            ready = c.get("/health/ready")
            assert ready.status_code == 503, ready.text
            assert ready.json() == {
                "status": "not ready",
                "datastore": down,
                "wal_backlog_bytes": 0,
                "ingest": "accepted",  # the disk has room (a full one says "read-only: ...")
            }

        runtime.start(run, native_port=port, quiet=True)
        srv.wait_applied(timeout=120)
        for s in servers:
            with s.client() as c:
                r = _poll(c, "GET", "/health/ready")
                assert r.status_code == 200, r.text
                assert r.json()["datastore"] == "ok"
                r = _poll(c, "POST", "/api/v1/datapoints/query", json=q)
                assert r.status_code == 200, r.text
                (result,) = r.json()["queries"][0]["results"]
                assert result["values"] == expected
        with srv.client() as c:
            assert _poll(c, "POST", "/api/v1/metadata/svc/key/k", content=b"v").status_code == 204
            assert c.get("/api/v1/metadata/svc/key/k").text == "v"
    finally:
        for s in servers:
            s.stop()
        runtime.stop(run, quiet=True)


def test_ready_only_once_the_keyspace_exists(cassandra_contact_points, tmp_path) -> None:
    """A query service on a keyspace nobody has created yet is not ready and says why; it is
    ready once an ingest service's writer has created the tables."""
    ks = f"kairos_new_{uuid.uuid4().hex[:8]}"
    env = {
        "KAIROSDB_DATASTORE": "cassandra",
        "KAIROSDB_CASSANDRA_CONTACT_POINTS": cassandra_contact_points,
        "KAIROSDB_CASSANDRA_KEYSPACE": ks,
    }
    starting = (
        f"Cassandra keyspace {ks} is not created yet (tables missing): the writer of an ingest "
        "service creates it when it connects; the request can be retried"
    )
    qsrv = start_server(
        tmp_path / "query",
        env=env | {"KAIROSDB_SERVER_TYPE": "QUERY"},
        workers=1,
        wait_for="/health/live",
    )
    servers = [qsrv]
    try:
        with qsrv.client() as c:
            ready = c.get("/health/ready")
            assert ready.status_code == 503, ready.text
            assert ready.json()["datastore"] == starting
            q = {"start_absolute": 0, "metrics": [{"name": "new.m"}]}
            r = c.post("/api/v1/datapoints/query", json=q)
            assert (r.status_code, r.json()) == (503, {"errors": [starting]})
            assert r.headers["Retry-After"] == "1"
        servers.append(start_server(tmp_path / "data", env=env, workers=1))
        with servers[1].client() as c:
            assert (
                c.post(
                    "/api/v1/datapoints",
                    json=[{"name": "new.m", "tags": {"h": "a"}, "datapoints": [[1, 2]]}],
                ).status_code
                == 204
            )
        servers[1].wait_applied()
        with qsrv.client() as c:
            ready = _poll(c, "GET", "/health/ready")
            assert ready.status_code == 200, ready.text
            r = c.post("/api/v1/datapoints/query", json=q)
            assert r.status_code == 200, r.text
            assert r.json()["queries"][0]["results"][0]["values"] == [[1, 2]]
    finally:
        for s in servers:
            s.stop()
