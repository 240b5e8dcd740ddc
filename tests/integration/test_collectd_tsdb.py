"""collectd (Debian ``collectd-core``) writes to Kairos's telnet listener with ``write_tsdb``.

collectd 5.12 sends OpenTSDB ``put`` lines over TCP, with seconds timestamps and a double
space before the ``HostTags``::

    put load.load.shortterm 1700000000 0.42 fqdn=kairos-test  role=test run=<hex>

Kairos must split on runs of whitespace, convert the seconds to milliseconds and make the
metrics readable through the HTTP query endpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, free_port, start_server
from tests.integration.test_collectd import HOST, _collectd_binary, _read, _timestamps, _types_db

pytestmark = [pytest.mark.integration, pytest.mark.collectd]

LOAD_METRICS = ("load.load.shortterm", "load.load.midterm", "load.load.longterm")
DEADLINE_S = 30.0
MIN_TIMESTAMPS = 3  # Interval 1: a few seconds of writing


@pytest.fixture
def tsdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    telnet = free_port()
    srv = start_server(
        tmp_path_factory.mktemp("kairos-tsdb") / "data",
        env={"KAIROSDB_TELNET_PORT": str(telnet)},
    )
    srv.telnet_port = telnet
    yield srv
    srv.stop()


def _write_config(tmp_path: Path, port: int, run_id: str) -> tuple[Path, Path]:
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

LoadPlugin write_tsdb
<Plugin write_tsdb>
  <Node "k">
    Host "127.0.0.1"
    Port "{port}"
    HostTags "role=test run={run_id}"
  </Node>
</Plugin>
"""
    )
    return conf, log


def _query(client, name: str, run_id: str) -> dict:
    r = client.post(
        "/api/v1/datapoints/query",
        json={"start_absolute": 0, "metrics": [{"name": name, "tags": {"run": [run_id]}}]},
    )
    assert r.status_code == 200, f"query {name}: {r.status_code} {r.text}"
    return r.json()["queries"][0]


def test_collectd_write_tsdb_telnet(tsdb_server: Server, tmp_path: Path) -> None:
    server = tsdb_server
    binary = _collectd_binary()
    run_id = uuid.uuid4().hex
    conf, log = _write_config(tmp_path, server.telnet_port, run_id)
    out = tmp_path / "collectd.out"
    start_ms = int(time.time()) * 1000  # collectd sends whole seconds

    def diag() -> str:
        return (
            f"\n--- collectd log ({log}) ---\n{_read(log)}"
            f"\n--- collectd stdout/stderr ---\n{_read(out)}"
            f"\n--- collectd.conf ---\n{_read(conf)}"
            f"\n--- kairos log ---\n{server.log()}"
        )

    with open(out, "wb") as outf:
        proc = subprocess.Popen(
            [binary, "-C", str(conf), "-f"],
            stdout=outf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with server.client() as c:
            deadline = time.monotonic() + DEADLINE_S
            while True:
                assert proc.poll() is None, f"collectd exited early with {proc.returncode}{diag()}"
                r = c.get("/api/v1/metricnames")
                assert r.status_code == 200, r.text
                names = r.json()["results"]
                if LOAD_METRICS[0] in names:
                    n = len(_timestamps(_query(c, LOAD_METRICS[0], run_id)))
                    if n >= MIN_TIMESTAMPS:
                        break
                assert time.monotonic() < deadline, (
                    f"{LOAD_METRICS[0]} not queryable after {DEADLINE_S}s (names: {names}){diag()}"
                )
                time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    server.wait_applied()
    end_ms = int(time.time() * 1000)
    collectd_log = _read(log)
    assert "write_tsdb plugin" not in collectd_log, f"collectd reported a write error{diag()}"

    with server.client() as c:
        names = c.get("/api/v1/metricnames").json()["results"]
        for name in LOAD_METRICS:
            assert name in names, f"{name} not in {names}{diag()}"
        assert any(n.startswith("memory.") for n in names), f"no memory metric in {names}{diag()}"

        for name in LOAD_METRICS:
            q = _query(c, name, run_id)
            results = [res for res in q["results"] if res["values"]]
            assert results, f"{name}: no values {q}{diag()}"
            for res in results:
                assert res["name"] == name
                tags = res["tags"]
                assert tags.get("fqdn") == [HOST], f"{name}: {tags}{diag()}"
                assert tags.get("role") == ["test"], f"{name}: {tags}{diag()}"
                assert tags.get("run") == [run_id], f"{name}: {tags}{diag()}"
                for ts, value in res["values"]:
                    assert isinstance(ts, int), (name, ts)
                    # Seconds converted to milliseconds, written during this run.
                    assert ts % 1000 == 0, (name, ts)
                    assert start_ms - 2_000 <= ts <= end_ms + 2_000, (name, ts, start_ms, end_ms)
                    assert isinstance(value, (int, float)) and not isinstance(value, bool), (
                        name,
                        value,
                    )
                    assert value == value and value >= 0, (name, value)  # no NaN; load >= 0

    assert "Traceback" not in server.log(), f"kairos logged a traceback:\n{server.log()}"
