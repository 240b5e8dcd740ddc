"""Graceful shutdown for load balancers: health fails first, serving goes on for the delay."""

from __future__ import annotations

import signal
import time

import httpx
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
