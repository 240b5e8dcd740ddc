"""``sync=true`` ingest is durable *and visible*: when the 204 is sent, every worker's next
query returns the points (issue 15, item 3: the README's two curl lines, back to back).

The servers here apply the WAL only every 2 s (``KAIROSDB_WRITER_INTERVAL_MS=2000``), so a
query that sees a point right after its write proves the writer applied it for the sync write,
not at its interval.  A sync write the writer cannot apply in time (the writer process is
stopped with SIGSTOP) answers 503 + ``Retry-After``, and the points appear once it resumes.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator

import cramjam
import httpx
import pytest

from tests.conftest import Server, start_server
from tests.integration.test_prometheus_remote_write import HEADERS, PATH, _request

pytestmark = pytest.mark.integration

SLOW_WRITER = {"KAIROSDB_WRITER_INTERVAL_MS": "2000"}


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("sync-visible") / "data", env=SLOW_WRITER)
    yield srv
    srv.stop()


def _worker_clients(srv: Server, n: int = 2) -> dict[int, httpx.Client]:
    """One keep-alive client per HTTP worker (the kernel spreads new connections over the
    workers; each client's connection stays with the worker that accepted it)."""
    clients: dict[int, httpx.Client] = {}
    for _ in range(200):
        c = srv.client()
        pid = c.get("/health").json()["checks"]["WAL"]["worker_pid"]
        if pid in clients:
            c.close()
        else:
            clients[pid] = c
        if len(clients) == n:
            return clients
    for c in clients.values():
        c.close()
    raise AssertionError(f"found only {len(clients)} of {n} workers in 200 connections")


def _values(c: httpx.Client, name: str) -> list:
    r = c.post(
        "/api/v1/datapoints/query",
        json={"start_absolute": 0, "metrics": [{"name": name}]},
    )
    assert r.status_code == 200, r.text
    results = r.json()["queries"][0]["results"]
    return [v for res in results for v in res.get("values", [])]


def test_sync_write_is_visible_in_every_worker_at_once(slow: Server) -> None:
    clients = _worker_clients(slow)
    try:
        pids = list(clients)
        for i in range(6):
            writer = clients[pids[i % 2]]
            name = f"sync.visible.{i}"
            r = writer.post(
                "/api/v1/datapoints?sync=true",
                json=[
                    {"name": name, "datapoints": [[1_700_000_000_000 + i, i]], "tags": {"h": "a"}}
                ],
            )
            assert r.status_code == 204, r.text
            # Both workers, the other one first, then each again on a fresh connection.
            for pid in (pids[(i + 1) % 2], pids[i % 2]):
                assert _values(clients[pid], name) == [[1_700_000_000_000 + i, i]], (i, pid)
            with slow.client() as fresh:
                assert _values(fresh, name) == [[1_700_000_000_000 + i, i]], i
    finally:
        for c in clients.values():
            c.close()


@pytest.mark.cassandra
def test_sync_write_is_visible_on_cassandra(
    cassandra_contact_points: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same guarantee when the checkpoint is Cassandra's (``cassandra.checkpoint``)."""
    srv = start_server(
        tmp_path_factory.mktemp("sync-visible-cassandra") / "data",
        env=SLOW_WRITER
        | {
            "KAIROSDB_DATASTORE": "cassandra",
            "KAIROSDB_CASSANDRA_CONTACT_POINTS": cassandra_contact_points,
            "KAIROSDB_CASSANDRA_KEYSPACE": f"kairos_sync_{uuid.uuid4().hex[:8]}",
        },
    )
    try:
        clients = _worker_clients(srv)
        pids = list(clients)
        for i in range(4):
            name = f"sync.cassandra.{i}"
            r = clients[pids[i % 2]].post(
                "/api/v1/datapoints?sync=true",
                json=[{"name": name, "datapoints": [[1000 + i, i]], "tags": {"h": "a"}}],
            )
            assert r.status_code == 204, r.text
            for pid in (pids[(i + 1) % 2], pids[i % 2]):
                assert _values(clients[pid], name) == [[1000 + i, i]], (i, pid)
        for c in clients.values():
            c.close()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def default_sync(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("default-sync") / "data",
        env=SLOW_WRITER | {"KAIROSDB_DEFAULT_SYNC": "true"},
    )
    yield srv
    srv.stop()


def _post_json(c: httpx.Client, name: str, ts: int, value: float) -> httpx.Response:
    return c.post(
        "/api/v1/datapoints", json=[{"name": name, "datapoints": [[ts, value]], "tags": {"h": "a"}}]
    )


def _post_prometheus(c: httpx.Client, name: str, ts: int, value: float) -> httpx.Response:
    return c.post(
        PATH, content=bytes(cramjam.snappy.compress_raw(_request(name, ts, value))), headers=HEADERS
    )


@pytest.mark.parametrize("post", [_post_json, _post_prometheus], ids=["json", "prometheus"])
def test_default_sync_is_visible_too(default_sync: Server, post) -> None:
    """``ingestion.default_sync`` gives the same guarantee, to JSON and Prometheus remote write."""
    clients = _worker_clients(default_sync)
    try:
        pids = list(clients)
        for i in range(4):
            writer, reader = clients[pids[i % 2]], clients[pids[(i + 1) % 2]]
            name = f"default.sync.{post.__name__}.{i}"
            r = post(writer, name, 9, 0.5 + i)
            assert r.status_code in (200, 204), r.text
            assert _values(reader, name) == [[9, 0.5 + i]], i
    finally:
        for c in clients.values():
            c.close()


def test_sync_write_not_applied_in_time_is_503_and_not_lost(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    srv = start_server(
        tmp_path_factory.mktemp("sync-timeout") / "data",
        env=SLOW_WRITER | {"KAIROSDB_SYNC_VISIBLE_TIMEOUT_MS": "300"},
    )
    try:
        writer_pid = json.loads((srv.data_dir / "writer.status").read_text())["pid"]
        os.kill(writer_pid, signal.SIGSTOP)
        try:
            with srv.client() as c:
                r = c.post(
                    "/api/v1/datapoints?sync=true",
                    json=[{"name": "sync.late", "datapoints": [[5, 1]], "tags": {"h": "a"}}],
                )
        finally:
            os.kill(writer_pid, signal.SIGCONT)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "1"
        assert r.json() == {
            "errors": [
                "The data points are stored durably but were not yet visible to queries after "
                "300 ms (KAIROSDB_SYNC_VISIBLE_TIMEOUT_MS); the writer will apply them, "
                "there is no need to send them again"
            ]
        }
        srv.wait_applied()
        with srv.client() as c:
            assert _values(c, "sync.late") == [[5, 1]]
    finally:
        srv.stop()
