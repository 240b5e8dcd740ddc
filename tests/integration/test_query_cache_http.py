"""The query cache over HTTP: cache_time reuse, invalidation by applied writes, metrics."""

from __future__ import annotations

import re

import pytest

from tests.conftest import start_server

pytestmark = pytest.mark.integration


def _query(c, cache_time: int) -> list:
    q = {"start_absolute": 0, "cache_time": cache_time, "metrics": [{"name": "qc.m"}]}
    r = c.post("/api/v1/datapoints/query", json=q)
    assert r.status_code == 200, r.text
    return r.json()["queries"][0]["results"][0]["values"]


def _counter(text: str, name: str) -> float:
    m = re.search(rf"^{name}(?:_total)?(?:{{[^}}]*}})? (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


@pytest.mark.parametrize("enabled", [True, False])
def test_cache_time_and_write_invalidation(tmp_path, enabled: bool) -> None:
    env = {"KAIROSDB_CACHE_ENABLE": str(enabled).lower()}
    srv = start_server(tmp_path / "data", env=env, workers=1)
    try:
        with srv.client() as c:
            point = {"name": "qc.m", "tags": {"h": "a"}}
            assert c.post("/api/v1/datapoints", json=[point | {"datapoints": [[1, 1]]}]).is_success
            srv.wait_applied()
            assert _query(c, 60) == [[1, 1]]
            assert _query(c, 60) == [[1, 1]]
            # A write applied to the metric drops its cache entries at once.
            assert c.post("/api/v1/datapoints", json=[point | {"datapoints": [[2, 2]]}]).is_success
            srv.wait_applied()
            assert _query(c, 60) == [[1, 1], [2, 2]]
            text = c.get("/metrics").text
            hits = _counter(text, "kairos_query_cache_hits")
            misses = _counter(text, "kairos_query_cache_misses")
            assert (hits, misses) == ((1, 2) if enabled else (0, 0))
    finally:
        srv.stop()
