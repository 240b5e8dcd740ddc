"""Graceful shutdown for load balancers: health fails first, serving goes on for the delay."""

from __future__ import annotations

import signal
import time

import httpx
import orjson
import pytest

from tests.conftest import start_server

pytestmark = [pytest.mark.integration]

DELAY = 2.0


def _post(c: httpx.Client, base: int, n: int = 50) -> list[int]:
    pts = [[base + i, i] for i in range(n)]
    r = c.post(
        "/api/v1/datapoints?sync=false",
        json=[{"name": "drain", "datapoints": pts, "tags": {"h": "a"}}],
    )
    assert r.status_code == 204, r.text
    return [t for t, _ in pts]


def _stored(c: httpx.Client) -> set[int]:
    body = {"start_absolute": 1, "metrics": [{"name": "drain"}]}
    r = c.post("/api/v1/datapoints/query", json=body)
    assert r.status_code == 200, r.text
    return {t for res in r.json()["queries"][0]["results"] for t, _ in res["values"]}


def test_sigterm_fails_health_keeps_serving_then_exits_0(tmp_path) -> None:
    data = tmp_path / "data"
    env = {"KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS": str(DELAY)}
    srv = start_server(data, env=env)
    acked: list[int] = []
    try:
        with srv.client() as c:
            acked += _post(c, 1_000_000)
            assert c.get("/health/ready").status_code == 200
            srv.proc.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            # The main process handles the signal asynchronously (after start-up completes).
            while c.get("/health/ready").status_code != 503:
                assert time.monotonic() - t0 < DELAY * 0.3, "health did not fail in time"
                time.sleep(0.01)
            seq = 0
            # Well inside the delay: health fails at once in every worker, the rest serves.
            while time.monotonic() - t0 < DELAY * 0.6:
                assert c.get("/health/ready").status_code == 503
                assert c.get("/health").status_code == 503
                assert c.get("/api/v1/health/check").status_code == 503
                status = c.get("/api/v1/health/status")
                assert status.status_code == 200
                assert "Shutdown: FAIL" in status.json()
                assert c.get("/health/live").status_code == 200
                seq += 1
                acked += _post(c, 2_000_000 + seq * 1000)
                _stored(c)
            assert seq > 3
            assert srv.proc.poll() is None
        assert srv.proc.wait(30) == 0
        assert time.monotonic() - t0 >= DELAY * 0.9
    finally:
        srv.kill()
    assert not (data / "draining").exists()

    srv = start_server(data, workers=1)
    try:
        with srv.client() as c:
            assert c.get("/health/ready").status_code == 200
            srv.wait_applied(timeout=30)
            missing = set(acked) - _stored(c)
            assert not missing, f"{len(missing)} of {len(acked)} acknowledged points lost"
    finally:
        assert srv.stop() == 0


def test_second_sigterm_during_delay_exits_promptly(tmp_path) -> None:
    env = {"KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS": "30"}
    srv = start_server(tmp_path / "data", env=env)
    try:
        with srv.client() as c:
            _post(c, 1_000_000)
            srv.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 5
            while c.get("/health/ready").status_code != 503:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(15) == 0
        assert time.monotonic() - t0 < 15
    finally:
        srv.kill()


LOAD_ROUNDS = 5
LOAD_SENDERS = 4
LOAD_POINTS = 2_000  # per request: requests long enough to keep keep-alive connections busy
LOAD_REQUESTS = 5_000  # per sender and round, at most
LOAD_BASE = 1_000_000_000_000


def _send(srv, rnd: int, sender: int, acked: list[int], closed: list[int], stop) -> None:
    """Post ``LOAD_POINTS``-point bodies on one keep-alive connection until the server exits
    (at most ``LOAD_REQUESTS``); record the first timestamp of each acknowledged body, and
    in ``closed`` each response that closed its connection ("Connection: close")."""
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        for i in range(LOAD_REQUESTS):
            if stop.is_set():
                return
            base = LOAD_BASE + ((rnd * LOAD_SENDERS + sender) * LOAD_REQUESTS + i) * LOAD_POINTS
            pts = [[base + j, j] for j in range(LOAD_POINTS)]
            body = orjson.dumps([{"name": "loaded", "datapoints": pts, "tags": {"s": "x"}}])
            try:
                r = c.post(
                    "/api/v1/datapoints",
                    content=body,
                    headers={"content-type": "application/json"},
                )
            except httpx.HTTPError:
                if srv.proc.poll() is not None:
                    return
                time.sleep(0.01)  # refused while stopping: this body was not acknowledged
                continue
            if r.status_code == 204:
                acked.append(base)
            if r.headers.get("connection") == "close":
                closed.append(base)


def test_sigterm_under_keep_alive_load_exits_0_fsyncs_and_loses_nothing(tmp_path) -> None:
    """Keep-alive senders that never leave their connection idle used to hold a stop for
    Sanic's whole graceful timeout (13-16 s with a 3 s delay); the interpreter's exit could then
    SIGTERM a worker in the middle of its drain (``RuntimeError: Event loop stopped before
    Future completed``), before its WAL fsync.  Stop times are in docs/benchmarks.md."""
    import threading

    data = tmp_path / "data"
    env = {"KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS": "1"}
    acked: list[int] = []
    for rnd in range(LOAD_ROUNDS):
        srv = start_server(data, env=env, workers=2)
        stop = threading.Event()
        closed: list[int] = []
        senders = [
            threading.Thread(target=_send, args=(srv, rnd, s, acked, closed, stop))
            for s in range(LOAD_SENDERS)
        ]
        try:
            n0 = len(acked)
            for t in senders:
                t.start()
            while len(acked) < n0 + 40 and any(t.is_alive() for t in senders):
                time.sleep(0.05)
            srv.proc.send_signal(signal.SIGTERM)
            rc = srv.proc.wait(120)
        finally:
            stop.set()
            for t in senders:
                t.join(60)
            srv.kill()
        log = srv.log()
        srv.log_path.rename(srv.log_path.with_suffix(f".{rnd}.log"))
        assert rc == 0, log
        # Draining, then stopping, the server closes keep-alive connections after their
        # current response (otherwise busy connections hold the stop for the whole timeout).
        assert closed, "no response closed its keep-alive connection during the shutdown"
        assert "Traceback" not in log and "RuntimeError" not in log, log
        # Both workers fsynced and closed their WAL file (after the last acknowledgement).
        assert log.count("fsynced and closed") == 2, log

    srv = start_server(data, workers=1)
    try:
        srv.wait_applied(timeout=120)
        body = {
            "start_absolute": LOAD_BASE,
            "end_absolute": LOAD_BASE + LOAD_ROUNDS * LOAD_SENDERS * LOAD_REQUESTS * LOAD_POINTS,
            "metrics": [
                {
                    "name": "loaded",
                    "aggregators": [
                        {
                            "name": "count",
                            "align_start_time": True,
                            "sampling": {"value": LOAD_POINTS, "unit": "milliseconds"},
                        }
                    ],
                }
            ],
        }
        with srv.client() as c:
            r = c.post("/api/v1/datapoints/query", json=body)
            assert r.status_code == 200, r.text
        counts = {t: n for res in r.json()["queries"][0]["results"] for t, n in res["values"]}
        short = [b for b in acked if counts.get(b) != LOAD_POINTS]
        assert not short, f"{len(short)} of {len(acked)} acknowledged requests lost points"
    finally:
        assert srv.stop() == 0
