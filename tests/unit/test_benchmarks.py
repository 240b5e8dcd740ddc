"""Every asv benchmark still runs (once, quickly); times are not asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_asv_suite_runs(tmp_path) -> None:
    asv = [sys.executable, "-m", "asv"]
    env_home = {"HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    subprocess.run(
        [*asv, "machine", "--yes", "--machine", "ci"],
        cwd=BENCH,
        env=env_home,
        check=True,
        capture_output=True,
    )
    r = subprocess.run(
        [*asv, "run", "--quick", "--dry-run", "--python=same", "--show-stderr", "--machine", "ci"],
        cwd=BENCH,
        env=env_home,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "failed" not in r.stdout.lower(), r.stdout[-4000:]
