"""``kairos perf`` end to end against real ``kairos serve`` processes."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kairos.cli import main
from kairos.perf.data import metric_names
from kairos.perf.scenarios import get
from tests.conftest import Server, start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    a = start_server(tmp_path_factory.mktemp("perf-a") / "data", workers=1)
    try:
        b = start_server(tmp_path_factory.mktemp("perf-b") / "data", workers=1)
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


def stored_points(url: str, scenario: str, run_id: str, start: int, end: int) -> int:
    """Points of a run counted by the server's own ``sample_size`` (no aggregator)."""
    q = {
        "start_absolute": start,
        "end_absolute": end,
        "metrics": [
            {"name": n, "tags": {"perf_run": [run_id]}} for n in metric_names(get(scenario))
        ],
    }
    r = httpx.post(f"{url}/api/v1/datapoints/query", json=q, timeout=120)
    assert r.status_code == 200, r.text
    return sum(qr["sample_size"] for qr in r.json()["queries"])


def test_run_small_scale_reports_and_reads_back_every_point(servers, tmp_path: Path):
    srv = servers[0]
    # Small bodies keep the volume (and so the writer's drain) small on a shared machine.
    rc = main(
        ["perf", "run", "small_scale", "--url", srv.url, "--duration", "5", "--batch-size", "100",
         "--concurrency", "2", "--pool-points", "20000", "--quiet", "--report-dir", str(tmp_path)]
    )  # fmt: skip
    assert rc == 0
    [report] = tmp_path.glob("small_scale-*.json")
    [png] = tmp_path.glob("small_scale-*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(report.read_text())
    s = doc["summary"]
    assert s["requests"] > 0 and s["success_rate"] == 1.0 and s["errors"] == {}
    assert s["points_acknowledged"] == s["requests_ok"] * 100
    assert s["drain_method"] == "wal_backlog_bytes" and s["drain_s"] is not None
    direct = stored_points(srv.url, "small_scale", s["run_id"], *s["time_range_ms"])
    assert s["points_acknowledged"] == s["points_read_back"] == direct
    assert s["latency_ms"]["min"] <= s["latency_ms"]["median"] <= s["latency_ms"]["p99"]
    assert sum(doc["per_second"]["points_per_s"]) == s["points_acknowledged"]
    with (tmp_path / "perf-trend.csv").open() as f:
        [row] = list(csv.DictReader(f))
    assert row["run_id"] == s["run_id"]
    assert int(row["points_read_back"]) == direct


def test_compare_two_servers_with_queries(servers, tmp_path: Path):
    a, b = servers
    rc = main(
        ["perf", "compare", "quick", "--only", "small_scale,memory_pressure", "--skip",
         "memory_pressure", "--a", a.url, "--b", b.url, "--duration", "2", "--concurrency", "1",
         "--batch-size", "500", "--pool-points", "20000", "--queries", "2", "--quiet", "--report-dir", str(tmp_path)]
    )  # fmt: skip
    assert rc == 0
    [path] = tmp_path.glob("compare-*.json")
    doc = json.loads(path.read_text())
    [sc] = doc["scenarios"]
    assert sc["scenario"] == "small_scale"
    assert sc["a"]["url"] == a.url and sc["b"]["url"] == b.url
    for side in ("a", "b"):
        assert sc[side]["read_back_matches"] and sc[side]["points_acknowledged"] > 0
    ratio = sc["ratios_b_over_a"]["points_per_s"]
    assert ratio == pytest.approx(sc["b"]["points_per_s"] / sc["a"]["points_per_s"])
    better = "a" if sc["a"]["points_per_s"] >= sc["b"]["points_per_s"] else "b"
    assert sc["winner"] == better == doc["overall_winner"]
    assert set(doc["queries"]["median_ratio_b_over_a"]) == {
        "raw_range", "avg_1m", "group_by_host", "percentile_p99", "rate",
    }  # fmt: skip
    [csv_path] = tmp_path.glob("compare-2*.csv")
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["kind"] for r in rows] == ["scenario"] * 4 + ["query"] * 5
    assert float(rows[0]["a"]) == pytest.approx(sc["a"]["points_per_s"])
    assert (tmp_path / "compare-trend.csv").read_text().count("\n") == len(rows) + 1


def test_query_mode(servers, tmp_path: Path):
    srv = servers[1]
    rc = main(
        ["perf", "query", "--url", srv.url, "--repeat", "3", "--hosts", "4", "--hours", "1",
         "--quiet", "--report-dir", str(tmp_path)]
    )  # fmt: skip
    assert rc == 0
    [path] = tmp_path.glob("query-*.json")
    doc = json.loads(path.read_text())
    data = doc["dataset"]
    assert data["points"] == 4 * 360 == data["points_read_back"]
    for name, q in doc["queries"].items():
        assert q["ok"] == 3 and q["errors"] == {}, name
        assert q["min"] <= q["median"] <= q["max"]
    assert doc["queries"]["avg_1m"]["sample_size"] == data["points"]
    # raw_range: the last hour of one host (361 points 10 s apart, both ends included).
    assert doc["queries"]["raw_range"]["sample_size"] == 360
