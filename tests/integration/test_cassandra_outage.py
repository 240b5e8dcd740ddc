"""Cassandra outage: killed during ingest, ingest keeps answering 204 from the WAL, and once
Cassandra is back every acknowledged point is readable."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

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
