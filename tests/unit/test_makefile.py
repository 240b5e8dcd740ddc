"""The developer targets of the Makefile: each is listed by `make help` and does what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _make(*args: str) -> str:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_help_lists_every_documented_target() -> None:
    listed = {line.split()[0] for line in _make("help").splitlines() if line.strip()}
    declared = set(re.findall(r"^([a-z-]+):.*## ", (ROOT / "Makefile").read_text(), re.M))
    assert listed == declared
    assert {
        "run", "test", "check", "coverage", "lint", "run-ingest", "run-query",
        "perf-small", "perf-medium", "perf-large", "perf-stress", "help",
    } <= listed  # fmt: skip


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("run-ingest", ".venv/bin/kairos ingest --host 127.0.0.1 --port 8080 --data-dir ./data"),
        ("run-query", ".venv/bin/kairos query --host 127.0.0.1 --port 9999 --data-dir /tmp/d"),
        ("perf-small", ".venv/bin/python scripts/perf_server.py small_scale"),
        ("perf-stress", ".venv/bin/python scripts/perf_server.py stress_test"),
        ("coverage", "--cov=kairos --cov-report=term --cov-report=html:coverage-html"),
    ],
)
def test_targets_run_what_they_say(target: str, command: str) -> None:
    extra = ["QUERY_PORT=9999", "DATA_DIR=/tmp/d"] if target == "run-query" else []
    # -W: pretend the stamps are fresh so only the target's own recipe is printed.
    out = _make("-n", "-o", ".venv/.installed", "-o", ".venv/.test-deps", target, *extra)
    assert command in out


def test_check_runs_lint_and_the_suite() -> None:
    out = _make("-n", "-o", ".venv/.test-deps", "-o", "test-deps", "check")
    assert "mypy" in out and "stubtest" in out and "ruff format --check" in out
    assert "-m pytest -q" in out


@pytest.mark.slow
def test_perf_server_runs_a_scenario_against_its_own_server(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "scripts/perf_server.py", "small_scale", "--duration", "2",
         "--quiet", "--report-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "perf_server: kairos on http://127.0.0.1:" in r.stdout
    assert list(tmp_path.glob("small_scale-*.json"))
