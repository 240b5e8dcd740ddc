"""collectd (Debian ``collectd-core``) writes to Kairos's telnet listener with ``write_tsdb``.

collectd 5.12 sends OpenTSDB ``put`` lines over TCP, with seconds timestamps and a double
space before the ``HostTags``::

    put load.load.shortterm 1700000000 0.42 fqdn=kairos-test  role=test run=<hex>

Kairos must split on runs of whitespace, convert the seconds to milliseconds and make the
metrics readable through the HTTP query endpoint.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, free_port, start_server
from tests.integration.test_collectd import (
    DEADLINE_S,
    HOST,
    MIN_TIMESTAMPS,
    _query,
    _read,
    _timestamps,
    running_collectd,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.collectd]

LOAD_METRICS = ("load.load.shortterm", "load.load.midterm", "load.load.longterm")


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
    return write_config(
        tmp_path,
        f"""LoadPlugin write_tsdb
<Plugin write_tsdb>
  <Node "k">
    Host "127.0.0.1"
    Port "{port}"
    HostTags "role=test run={run_id}"
  </Node>
</Plugin>""",
    )


def test_collectd_write_tsdb_telnet(tsdb_server: Server, tmp_path: Path) -> None:
    server = tsdb_server
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

    with running_collectd(conf, out) as proc, server.client() as c:
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
