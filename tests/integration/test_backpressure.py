"""Back-pressure: past its memory limit or WAL quota, ingest answers 503 + Retry-After, and
nothing it acknowledged before is lost."""

from __future__ import annotations

import os
import threading
import time

import httpx
import orjson
import pytest

from tests.conftest import start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MB = 1024 * 1024


def _body(metric: str, first: int, n: int) -> bytes:
    return orjson.dumps(
        [{"name": metric, "datapoints": [[first + i, i] for i in range(n)], "tags": {"h": "a"}}]
    )


def _count(client: httpx.Client, metric: str) -> int:
    q = {
        "start_absolute": 0,
        "metrics": [
            {
                "name": metric,
                "aggregators": [{"name": "count", "sampling": {"value": 100, "unit": "years"}}],
            }
        ],
    }
    r = client.post("/api/v1/datapoints/query", json=q)
    assert r.status_code == 200, r.text
    values = r.json()["queries"][0]["results"][0]["values"]
    return sum(v for _, v in values)


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_wal_quota_refuses_ingest_and_keeps_what_it_acknowledged(tmp_path) -> None:
    data = tmp_path / "data"
    # The writer applies once at start, then sleeps: the WAL backlog only grows.
    env = {"KAIROSDB_WAL_MAX_BACKLOG_MB": "0.25", "KAIROSDB_WRITER_INTERVAL_MS": "600000"}
    srv = start_server(data, env=env, workers=1)
    acknowledged = 0
    try:
        with srv.client() as c:
            time.sleep(0.5)  # let the writer take its first (empty) step and go to sleep
            for i in range(100):
                r = c.post("/api/v1/datapoints", content=_body("bp.wal", i * 2000, 2000))
                if r.status_code == 503:
                    break
                assert r.status_code == 204, r.text
                acknowledged += 2000
                time.sleep(0.11)  # past the admission sampling interval
            else:
                pytest.fail("the WAL quota never refused ingest")
            assert r.headers["retry-after"] == "1"
            assert "KAIROSDB_WAL_MAX_BACKLOG_MB=0.25" in r.json()["errors"][0]
            assert acknowledged > 0
            # Queries still work while ingest is paused.
            assert c.get("/api/v1/metricnames").status_code == 200
    finally:
        srv.stop()
    srv = start_server(data, workers=1)
    try:
        srv.wait_applied()
        with srv.client() as c:
            assert _count(c, "bp.wal") == acknowledged
    finally:
        srv.stop()


def test_memory_limit_refuses_ingest_under_overload_and_recovers(tmp_path) -> None:
    data = tmp_path / "data"
    srv = start_server(data, workers=1)
    with srv.client() as c:
        pid = c.get("/health").json()["checks"]["WAL"]["worker_pid"]
        c.post("/api/v1/datapoints", content=_body("bp.warm", 0, 1000))
    baseline = _rss(pid)
    srv.stop()

    # Tight: the body budget and the admission before reading keep four 10 MB uploads at a
    # time within a few tens of MB of the baseline.
    limit_mb = baseline // MB + 24
    env = {
        "KAIROSDB_MAX_MEMORY_MB": str(limit_mb),
        "KAIROSDB_MAX_BATCH_SIZE": "1000000",
        # The RSS limit alone: the body budget (tests/integration/test_body_budget.py) would
        # keep these four uploads under the limit before it is reached.
        "KAIROSDB_MAX_INFLIGHT_BODY_MB": "1024",
    }
    srv = start_server(data, env=env, workers=1)
    statuses: list[int] = []
    acknowledged = 0
    lock = threading.Lock()
    peak = 0
    stop = threading.Event()
    try:
        with srv.client() as c:
            pid = c.get("/health").json()["checks"]["WAL"]["worker_pid"]

        def watch() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _rss(pid))
                time.sleep(0.02)

        def send(k: int) -> None:
            nonlocal acknowledged
            with srv.client() as c:
                for j in range(6):
                    first = (k * 100 + j) * 400_000
                    r = c.post("/api/v1/datapoints", content=_body("bp.mem", first, 400_000))
                    with lock:
                        statuses.append(r.status_code)
                        if r.status_code == 204:
                            acknowledged += 400_000
                        else:
                            assert r.status_code == 503, r.text
                            assert r.headers["retry-after"] == "1"
                            assert "KAIROSDB_MAX_MEMORY_MB" in r.json()["errors"][0]

        watcher = threading.Thread(target=watch)
        watcher.start()
        senders = [threading.Thread(target=send, args=(k,)) for k in range(4)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        stop.set()
        watcher.join()
        assert 503 in statuses, f"never refused: {statuses}, peak {peak // MB} MB"
        # Bounded: the limit plus what the in-flight requests (4 bodies of ~10 MB and their
        # parse) hold; without admission every request would be parsed and appended.
        assert peak < (limit_mb + 400) * MB, f"peak RSS {peak // MB} MB, limit {limit_mb} MB"
        # Once the load is gone the memory is released and ingest is accepted again.
        deadline = time.monotonic() + 20
        with srv.client() as c:
            while True:
                r = c.post("/api/v1/datapoints", content=_body("bp.after", 0, 10))
                if r.status_code == 204 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert r.status_code == 204, f"still refused, RSS {_rss(pid) // MB} MB: {r.text}"
            srv.wait_applied(60)
            assert _count(c, "bp.mem") == acknowledged
    finally:
        stop.set()
        srv.stop()
