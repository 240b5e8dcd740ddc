"""Structured logging: KAIROSDB_LOG_FORMAT=json lines, and what each level shows."""

from __future__ import annotations

import json

import pytest

from tests.conftest import start_server

pytestmark = pytest.mark.integration


def _json_lines(log: str) -> list[dict]:
    out = []
    for line in log.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


@pytest.mark.parametrize("level", ["info", "trace"])
def test_json_logs_by_level(tmp_path, level: str) -> None:
    env = {"KAIROSDB_LOG_FORMAT": "json", "KAIROSDB_LOG_LEVEL": level}
    srv = start_server(tmp_path / "data", env=env, workers=1)
    try:
        with srv.client() as c:
            body = [{"name": "log.m", "datapoints": [[1, 1], [2, 2]], "tags": {"h": "a"}}]
            assert c.post("/api/v1/datapoints", json=body).status_code == 204
            assert c.get("/api/v1/metricnames").status_code == 200
    finally:
        assert srv.stop() == 0
    records = _json_lines(srv.log())
    assert records, srv.log()
    for r in records:
        assert {"ts", "level", "pid", "logger", "msg"} <= r.keys()
        assert r["ts"].endswith("+00:00")
    msgs = [r["msg"] for r in records]
    assert any(m.startswith("writer started") for m in msgs)
    assert any(m.startswith("writer stopped after applying 2 points") for m in msgs)
    requests = [r for r in records if r["logger"] == "kairos.access"]
    if level == "trace":
        assert {(r["method"], r["path"], r["status"]) for r in requests} >= {
            ("POST", "/api/v1/datapoints", 204),
            ("GET", "/api/v1/metricnames", 200),
        }
        assert all(r["level"] == "trace" for r in requests)
    else:
        assert requests == []
        assert {r["level"] for r in records} <= {"info", "warning", "error"}
    # Never one line per data point, at any level.
    assert not any("log.m" in m and "[1, 1]" in m for m in msgs)
