"""collectd (Debian ``collectd-core``) posts to Kairos with ``write_http`` ``Format "KAIROSDB"``.

collectd 5.12 sends bodies such as::

    [{"name":"collectd.load","datapoints":[[1700000000123,0.42]],"ttl":3600,
      "tags":{"host":"kairos-test","type":"load","ds":"shortterm","env":"test"}}, ...]

and the metrics must then be readable through the query endpoint.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.collectd]

HOST = "kairos-test"
TYPES_DB_CANDIDATES = (
    Path("/usr/share/collectd/types.db"),
    Path("/usr/lib/collectd/types.db"),
    Path("/etc/collectd/types.db"),
)
# Plain gauges: they work unprivileged in a container and have a value from the first read.
EXPECTED = {
    "collectd.load": {"type": "load", "ds": {"shortterm", "midterm", "longterm"}},
    "collectd.memory": {"type": "memory"},
}
DEADLINE_S = 30.0
MIN_TIMESTAMPS = 3  # Interval 1: a few seconds of posting


def _collectd_binary() -> str:
    found = shutil.which("collectd") or next(
        (p for p in ("/usr/sbin/collectd", "/usr/local/sbin/collectd") if os.access(p, os.X_OK)),
        None,
    )
    if not found:
        pytest.fail(
            "the collectd binary is missing: run `make system-deps` "
            "(installs Debian's collectd-core, libcurl3-gnutls and libyajl2)"
        )
    return found


def _types_db() -> Path:
    for p in TYPES_DB_CANDIDATES:
        if p.is_file():
            return p
    pytest.fail(
        f"collectd's types.db not found in {[str(p) for p in TYPES_DB_CANDIDATES]}: "
        "run `make system-deps`"
    )


def write_config(tmp_path: Path, writer: str) -> tuple[Path, Path]:
    """collectd.conf with the load and memory plugins, a log file and the ``writer`` block."""
    log = tmp_path / "collectd.log"
    conf = tmp_path / "collectd.conf"
    conf.write_text(
        f"""\
Interval 1
FQDNLookup false
Hostname "{HOST}"
BaseDir "{tmp_path}"
PIDFile "{tmp_path / "collectd.pid"}"
TypesDB "{_types_db()}"

LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{log}"
  Timestamp true
  PrintSeverity true
</Plugin>

LoadPlugin load
LoadPlugin memory

{writer}
"""
    )
    return conf, log


@contextmanager
def running_collectd(conf: Path, out: Path) -> Iterator[subprocess.Popen]:
    """collectd in the foreground for the duration of the block, stopped by pid after."""
    with open(out, "wb") as outf:
        proc = subprocess.Popen(
            [_collectd_binary(), "-C", str(conf), "-f"],
            stdout=outf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _write_config(tmp_path: Path, url: str, run_id: str) -> tuple[Path, Path]:
    return write_config(
        tmp_path,
        f"""LoadPlugin write_http
<Plugin write_http>
  <Node "kairos">
    URL "{url}/api/v1/datapoints"
    Format "KAIROSDB"
    StoreRates true
    TTL 3600
    Attribute "env" "test"
    Attribute "run" "{run_id}"
  </Node>
</Plugin>""",
    )


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else "<missing>"


def _query(client, name: str, run_id: str) -> dict:
    r = client.post(
        "/api/v1/datapoints/query",
        json={"start_absolute": 0, "metrics": [{"name": name, "tags": {"run": [run_id]}}]},
    )
    assert r.status_code == 200, f"query {name}: {r.status_code} {r.text}"
    return r.json()["queries"][0]


def _timestamps(query: dict) -> set[int]:
    return {v[0] for res in query["results"] for v in res["values"]}


def test_collectd_write_http_kairosdb(server, tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex
    conf, log = _write_config(tmp_path, server.url, run_id)
    out = tmp_path / "collectd.out"
    log_offset = len(server.log())
    start_ms = int(time.time() * 1000)

    def diag() -> str:
        return (
            f"\n--- collectd log ({log}) ---\n{_read(log)}"
            f"\n--- collectd stdout/stderr ---\n{_read(out)}"
            f"\n--- collectd.conf ---\n{_read(conf)}"
        )

    with running_collectd(conf, out) as proc, server.client() as c:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert proc.poll() is None, f"collectd exited early with {proc.returncode}{diag()}"
            counts = {name: len(_timestamps(_query(c, name, run_id))) for name in EXPECTED}
            if all(n >= MIN_TIMESTAMPS for n in counts.values()):
                break
            assert time.monotonic() < deadline, (
                f"collectd metrics not queryable after {DEADLINE_S}s "
                f"(distinct timestamps: {counts})"
                f"{diag()}\n--- kairos log ---\n{server.log()[log_offset:]}"
            )
            time.sleep(0.5)

    server.wait_applied()
    end_ms = int(time.time() * 1000)
    collectd_log = _read(log)
    for bad in ("HTTP Error code", "curl_easy_perform failed", "write_http plugin: "):
        # write_http logs only failures (rejected POSTs, connection errors).
        assert bad not in collectd_log, f"collectd reported a write error ({bad!r}){diag()}"

    with server.client() as c:
        r = c.get("/api/v1/metricnames", params={"prefix": "collectd."})
        assert r.status_code == 200, r.text
        names = r.json()["results"]
        for name in EXPECTED:
            assert name in names, f"{name} not in {names}{diag()}"
        assert all(n.startswith("collectd.") for n in names), names

        for name, want in EXPECTED.items():
            q = _query(c, name, run_id)
            assert q["sample_size"] > 0, f"{name}: {q}{diag()}"
            results = [res for res in q["results"] if res["values"]]
            assert results, f"{name}: no values {q}{diag()}"
            for res in results:
                assert res["name"] == name
                tags = res["tags"]
                assert tags.get("host") == [HOST], f"{name}: {tags}"
                assert tags.get("env") == ["test"], f"{name}: {tags}"
                assert tags.get("run") == [run_id], f"{name}: {tags}"
                assert tags.get("type") == [want["type"]], f"{name}: {tags}"
                if "ds" in want:
                    assert set(tags.get("ds", [])) == want["ds"], f"{name}: {tags}"
                for ts, value in res["values"]:
                    assert isinstance(ts, int), (name, ts)
                    # Milliseconds, written during this run (allow a little clock slack).
                    assert start_ms - 5_000 <= ts <= end_ms + 5_000, (name, ts, start_ms, end_ms)
                    assert isinstance(value, (int, float)) and not isinstance(value, bool), (
                        name,
                        value,
                    )
                    assert value == value and value >= 0, (
                        name,
                        value,
                    )  # no NaN; gauges are non-negative

        # A type_instance tag reaches the memory series (used/free/...).
        mem = _query(c, "collectd.memory", run_id)
        instances = {v for res in mem["results"] for v in res["tags"].get("type_instance", [])}
        assert {"used", "free"} <= instances, f"collectd.memory type_instance: {instances}{diag()}"

    new_log = server.log()[log_offset:]
    assert "Traceback" not in new_log, f"kairos logged a traceback:\n{new_log}"
