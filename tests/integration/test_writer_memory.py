"""The writer's memory stays under ``writer.max_memory_mb`` whatever the WAL backlog."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from benchmarks.writer_memory import write_backlog
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration]

LIMIT_MB = 160
POINTS = 3_000_000  # about 60 MB of WAL: many times what one apply may read under the limit
SERIES = 300


def test_writer_applying_a_backlog_larger_than_its_budget_stays_under_its_limit(tmp_path) -> None:
    data = tmp_path / "data"
    write_backlog(str(data), POINTS, SERIES, t0=1_700_000_000_000)
    wal_bytes = sum(f.stat().st_size for f in (data / "wal").glob("*.wal"))
    assert wal_bytes > 40 << 20
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIROSDB_")}
    # Fanout 2: compactions merge ever larger blocks, up to all of the points at the end.
    env |= {
        "KAIROSDB_WRITER_MAX_MEMORY_MB": str(LIMIT_MB),
        "KAIROSDB_DATASTORE_COMPACTION_FANOUT": "2",
    }
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.writer_memory", "--apply", str(data)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    res = orjson.loads(out.strip().splitlines()[-1])
    assert res["applied_points"] == POINTS
    assert res["stored_points"] == POINTS
    assert res["series"] == SERIES
    assert res["blocks"] <= 2  # compacted: the last merges held (nearly) every point
    # VmHWM of the writer process: its peak resident memory over the whole drain.
    assert res["peak_rss_mb"] < LIMIT_MB, res
