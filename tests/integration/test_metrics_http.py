"""``GET /metrics``: Prometheus text with totals over every HTTP worker and the writer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("metrics") / "data", workers=2)
    yield s
    s.stop()


def parse(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, for every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        v
        for k, v in samples.items()
        if (k == name or k.startswith(name + "{")) and all(w in k for w in want)
    )


def test_metrics_totals_over_workers(srv: Server, tmp_path: Path) -> None:
    sent, requests, invalid = 0, 0, 0
    # Fresh connection per request, so the kernel spreads them over both workers.
    for i in range(40):
        n = 1 + i % 7
        body = [
            {
                "name": "metrics.test",
                "tags": {"h": f"h{i % 3}"},
                "datapoints": [[1_000_000 + i * 100 + j, j] for j in range(n)],
            }
        ]
        with srv.client() as c:
            assert c.post("/api/v1/datapoints", json=body).status_code == 204
        sent += n
        requests += 1
    for _ in range(5):
        with srv.client() as c:
            r = c.post("/api/v1/datapoints", json=[{"name": "", "datapoints": [[1, 1]]}])
        assert r.status_code == 400
        invalid += 1
        requests += 1
    srv.wait_applied()
    q = {
        "start_absolute": 1,
        "metrics": [
            {
                "name": "metrics.test",
                "aggregators": [{"name": "count", "sampling": {"value": 1, "unit": "years"}}],
            }
        ],
    }
    for _ in range(3):
        with srv.client() as c:
            r = c.post("/api/v1/datapoints/query", json=q)
        assert r.status_code == 200
        assert r.json()["queries"][0]["sample_size"] == sent

    # Other workers publish their counters every second: poll until the totals converge.
    deadline = time.monotonic() + 15
    while True:
        with srv.client() as c:
            r = c.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert "version=0.0.4" in r.headers["content-type"]
        s = parse(r.text)
        done = (
            total(s, "kairos_ingested_points_total") == sent
            and total(s, "kairos_queries_total") == 3
            and total(s, "kairos_http_workers") == 2
        )
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.3)

    assert total(s, "kairos_http_workers") == 2
    assert total(s, "kairos_ingested_points_total") == sent
    assert total(s, "kairos_ingest_requests_total") == requests
    assert total(s, "kairos_ingest_validation_errors_total") == invalid
    assert (
        total(s, "kairos_http_requests_total", route="/api/v1/datapoints", status_class="4xx")
        == invalid
    )
    assert (
        total(s, "kairos_http_requests_total", route="/api/v1/datapoints", status_class="2xx") == 40
    )
    assert total(s, "kairos_writer_applied_points_total") == sent
    assert total(s, "kairos_wal_backlog_bytes") == 0
    assert total(s, "kairos_writer_lag_seconds") == 0
    assert total(s, "kairos_wal_appends_total") == 40
    assert total(s, "kairos_wal_bytes_total") > 0
    assert total(s, "kairos_ingest_batch_size_points_count") == 40
    assert total(s, "kairos_ingest_batch_size_points_sum") == sent
    assert total(s, "kairos_query_duration_seconds_count") == 3
    assert s['kairos_query_duration_seconds_bucket{le="+Inf"}'] == 3
    assert total(s, "kairos_http_request_duration_seconds_count", route="/api/v1/datapoints") == 45
    assert total(s, "kairos_datastore_read_duration_seconds_count") == 3
    assert total(s, "kairos_datastore_write_duration_seconds_count") >= 1
    assert total(s, "kairos_datastore_write_retries_total") == 0
    assert total(s, "kairos_wal_disk_bytes") > 0
    assert total(s, "kairos_process_resident_memory_bytes", process="writer") > 0
    assert total(s, "kairos_process_resident_memory_bytes", process="worker") > 0

    # Repeated scrapes of either worker agree (nothing more was sent).
    for _ in range(6):
        with srv.client() as c:
            again = parse(c.get("/metrics").text)
        assert total(again, "kairos_ingested_points_total") == sent
        assert total(again, "kairos_writer_applied_points_total") == sent
    # Each worker has seen some of the ingest traffic (both report).
    pids = {k for k in s if k.startswith("kairos_process_resident_memory_bytes") and "worker" in k}
    assert len(pids) == 2
