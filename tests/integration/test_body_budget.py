"""The per-worker budget of request body bytes in flight (``KAIROSDB_MAX_INFLIGHT_BODY_MB``):
bodies are admitted by their ``Content-Length`` (chunked ones as they stream) before they are
read, so many concurrent large uploads cannot take a worker past its memory limit; past the
budget a request gets 503 + ``Retry-After``, and every point acknowledged meanwhile is stored."""

from __future__ import annotations

import os
import socket
import threading
import time

import httpx
import orjson
import pytest

from tests.conftest import start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MB = 1024 * 1024


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _padded_body(metric: str, tag: str, points: int, size: int) -> bytes:
    """A datapoints body of ``size`` bytes holding ``points`` points: the body's size, not its
    point count, is what admission is about, and JSON whitespace keeps the writer's work small."""
    doc = orjson.dumps(
        [{"name": metric, "tags": {"req": tag}, "datapoints": [[1 + i, i] for i in range(points)]}]
    )
    return b"[" + b" " * (size - len(doc)) + doc[1:]


def _count_by_tag(c: httpx.Client, metric: str) -> dict[str, int]:
    q = {
        "start_absolute": 0,
        "metrics": [
            {
                "name": metric,
                "group_by": [{"name": "tag", "tags": ["req"]}],
                "aggregators": [{"name": "count", "sampling": {"value": 100, "unit": "years"}}],
            }
        ],
    }
    r = c.post("/api/v1/datapoints/query", json=q)
    assert r.status_code == 200, r.text
    out = {}
    for res in r.json()["queries"][0]["results"]:
        if res["values"]:
            out[res["tags"]["req"][0]] = sum(v for _, v in res["values"])
    return out


def _worker_pid(srv) -> int:
    with srv.client() as c:
        return c.get("/health").json()["checks"]["WAL"]["worker_pid"]


def test_concurrent_large_bodies_stay_within_the_memory_limit(tmp_path) -> None:
    data = tmp_path / "data"
    srv = start_server(data, workers=1)
    baseline = _rss(_worker_pid(srv))
    srv.stop()

    # The in-flight body budget is left at its default, derived from the memory limit.
    limit_mb = baseline // MB + 64
    srv = start_server(data, env={"KAIROSDB_MAX_MEMORY_MB": str(limit_mb)}, workers=1)
    senders, size, points = 32, 8 * MB, 2000
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    peak = 0
    stop = threading.Event()
    go = threading.Barrier(senders)
    try:
        pid = _worker_pid(srv)

        def watch() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _rss(pid))
                time.sleep(0.005)

        def send(k: int) -> None:
            tag = f"r{k}"
            body = _padded_body("budget.mem", tag, points, size)
            # Half the uploads are chunked: counted as they stream, not by Content-Length.
            content = (body[i : i + MB] for i in range(0, size, MB)) if k % 2 else body
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                go.wait()
                r = c.post("/api/v1/datapoints", content=content)
            del body
            with lock:
                statuses[tag] = r.status_code
            if r.status_code != 204:
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] == "1"
                assert len(r.json()["errors"]) == 1, r.text

        watcher = threading.Thread(target=watch)
        watcher.start()
        threads = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        watcher.join()
        assert len(statuses) == senders, statuses
        refused = [t for t, s in statuses.items() if s == 503]
        stored = {t for t, s in statuses.items() if s == 204}
        # Without admission before reading, the 32 bodies (256 MB) are buffered at once.
        assert peak < (limit_mb + 64) * MB, f"peak RSS {peak // MB} MB, limit {limit_mb} MB"
        assert refused, f"never refused, peak {peak // MB} MB (limit {limit_mb} MB)"
        assert stored, statuses
        srv.wait_applied(60)
        with srv.client() as c:
            assert _count_by_tag(c, "budget.mem") == dict.fromkeys(stored, points)
    finally:
        stop.set()
        srv.stop()


def _hold_upload(port: int, path: str, length: int, sent: int) -> socket.socket:
    """A client that announces ``length`` body bytes, sends ``sent`` of them and stalls."""
    s = socket.create_connection(("127.0.0.1", port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    s.sendall(head.encode() + b"[" + b" " * (sent - 1))
    return s


def _wait_refusal(c: httpx.Client) -> httpx.Response:
    """The first refusal of a small ingest once the stalled upload holds the budget."""
    deadline = time.monotonic() + 10
    while True:
        r = c.post("/api/v1/datapoints", content=b"[]")
        if r.status_code == 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def test_every_body_endpoint_waits_for_the_budget(tmp_path) -> None:
    env = {"KAIROSDB_MAX_INFLIGHT_BODY_MB": "1", "KAIROSDB_MAX_BODY_MB": "8"}
    srv = start_server(tmp_path / "data", env=env, workers=1)
    try:
        with srv.client() as c:
            # A body larger than the budget is still admitted when it is the only one.
            big = _padded_body("budget.alone", "a", 10, 3 * MB)
            assert c.post("/api/v1/datapoints", content=big).status_code == 204
            # A body over the size limit is 413 whatever the budget, before it is read.
            r = c.post("/api/v1/datapoints", content=b" " * (9 * MB))
            assert r.status_code == 413, r.text
            assert r.json() == {"errors": ["Request body exceeds the size limit"]}

            held = _hold_upload(srv.port, "/api/v1/datapoints", 2 * MB, 64 * 1024)
            try:
                r = _wait_refusal(c)
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] == "1"
                [message] = r.json()["errors"]
                assert "KAIROSDB_MAX_INFLIGHT_BODY_MB=1" in message
                query = {"start_relative": {"value": 1, "unit": "days"}, "metrics": [{"name": "x"}]}
                bodies = {
                    "/api/v1/datapoints/query": orjson.dumps(query),
                    "/api/v1/datapoints/query/tags": orjson.dumps(query),
                    "/api/v1/datapoints/delete": orjson.dumps(query),
                    "/api/v1/metadata/svc/sk/k": b"value",
                    "/api/v1/prometheus/writeadapter/write": b"\x00",
                }
                for path, body in bodies.items():
                    r = c.post(path, content=body)
                    assert r.status_code == 503, (path, r.status_code, r.text)
                    assert r.headers["retry-after"] == "1", path
                    assert "KAIROSDB_MAX_INFLIGHT_BODY_MB" in r.json()["errors"][0], path
                # Requests without a body are not held up.
                assert c.get("/api/v1/metricnames").status_code == 200
                metrics = c.get("/metrics").text
                assert "kairos_request_bodies_refused_total 6" in metrics, metrics
                assert c.get("/api/v1/metadata/svc/sk/k").status_code == 404
            finally:
                held.close()  # the client gives up mid-body: its bytes are released
            deadline = time.monotonic() + 10
            while True:
                r = c.post("/api/v1/metadata/svc/sk/k", content=b"value")
                if r.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert r.status_code == 204, r.text
            assert c.get("/api/v1/metadata/svc/sk/k").text == "value"
            small = _padded_body("budget.after", "a", 5, 4096)
            assert c.post("/api/v1/datapoints", content=small).status_code == 204
            srv.wait_applied()
            assert _count_by_tag(c, "budget.alone") == {"a": 10}
            assert _count_by_tag(c, "budget.after") == {"a": 5}
    finally:
        srv.stop()
