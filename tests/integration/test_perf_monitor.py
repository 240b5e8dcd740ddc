"""``kairos perf monitor`` against a real server: one line and one CSV row per interval."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from kairos.perf.monitor import COLUMNS, server_gauges

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_monitor_reports_every_interval(server, tmp_path: Path) -> None:
    out_csv = tmp_path / "trend.csv"
    r = subprocess.run(
        [sys.executable, "-m", "kairos.cli", "perf", "monitor", "--url", server.url,
         "--rate", "40", "--series", "4", "--interval", "1.5", "--duration", "3.2",
         "--csv", str(out_csv)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == " | ".join(COLUMNS)
    with out_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 2
    for row in rows:
        assert list(row) == list(COLUMNS)
        assert int(row["points_ok"]) > 0 and row["errors"] == "0"
        assert row["read_back"] == "ok"
        assert float(row["rss_mb"]) > 10  # the server's processes, from /metrics
    assert sum(int(row["points_ok"]) for row in rows) >= 80


def test_server_gauges_sum_the_processes() -> None:
    text = """# HELP kairos_process_resident_memory_bytes x
kairos_process_resident_memory_bytes{pid="1",process="http"} 1048576.0
kairos_process_resident_memory_bytes{pid="2",process="writer"} 2097152.0
kairos_wal_backlog_bytes 512.0
kairos_writer_lag_seconds 0.25
kairos_wal_backlog_bytes_total 9
"""
    assert server_gauges(text) == {"rss": 3 * 2**20, "wal_backlog": 512.0, "writer_lag": 0.25}
