"""Each server owns its ports: a second server on a taken port stops with one line, and the
start-up announcement lists every listener once they are all bound (issue 15, items 1-2)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, Server, free_port, launch_server, start_server


def run_until_exit(srv: Server, probe: bool = True, timeout: float = 60.0) -> int:
    """The exit code of a server expected to fail at start-up.  Fails the test (after stopping
    it) when the server comes up instead (its ``/health`` answers, when ``probe``: not when it
    shares another server's HTTP port), or is still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = srv.proc.poll()
        if code is not None:
            return code
        if not probe:
            time.sleep(0.1)
            continue
        try:
            up = httpx.get(srv.url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            up = False
        if up:
            srv.kill()
            pytest.fail(f"the second server started on a taken port:\n{srv.log()}")
        time.sleep(0.1)
    srv.kill()
    pytest.fail(f"the second server neither started nor exited:\n{srv.log()}")


def send_lines(port: int, lines: list[bytes]) -> None:
    """One connection per line, each closed after its line is sent."""
    for line in lines:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(line)


def values(srv: Server, name: str) -> list[list]:
    srv.wait_applied()
    with srv.client() as c:
        r = c.post(
            "/api/v1/datapoints/query",
            json={"start_absolute": 0, "metrics": [{"name": name}]},
        )
    assert r.status_code == 200, r.text
    return sorted(v for res in r.json()["queries"][0]["results"] for v in res["values"])


def announce_lines(srv: Server) -> list[str]:
    return [line for line in srv.log().splitlines() if "Kairos serving" in line]


@pytest.fixture
def first(tmp_path: Path):
    """A server with both line listeners on free ports."""
    telnet, graphite = free_port(), free_port()
    srv = start_server(
        tmp_path / "first" / "data",
        env={"KAIROSDB_TELNET_PORT": str(telnet), "KAIROSDB_GRAPHITE_PORT": str(graphite)},
    )
    srv.telnet_port, srv.graphite_port = telnet, graphite  # type: ignore[attr-defined]
    yield srv
    srv.stop()


def test_second_server_on_the_telnet_port_fails_and_the_first_keeps_every_point(
    first: Server, tmp_path: Path
) -> None:
    port = first.telnet_port  # type: ignore[attr-defined]
    second = launch_server(
        tmp_path / "second" / "data",
        env={"KAIROSDB_TELNET_PORT": str(port), "KAIROSDB_GRAPHITE_PORT": "0"},
    )
    assert run_until_exit(second) != 0
    out = second.log().strip()
    assert len(out.splitlines()) == 1, out
    assert "telnet" in out and f":{port}" in out and "KAIROSDB_TELNET_PORT" in out, out
    assert "Kairos serving" not in out

    send_lines(port, [f"put ports.telnet {1000 + i} {i} conn={i}\n".encode() for i in range(20)])
    deadline = time.monotonic() + 20
    while len(got := values(first, "ports.telnet")) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)  # a connection's read may reach its worker after the query
    assert got == [[(1000 + i) * 1000, i] for i in range(20)]


def test_second_server_on_the_graphite_port_fails_and_the_first_keeps_every_point(
    first: Server, tmp_path: Path
) -> None:
    port = first.graphite_port  # type: ignore[attr-defined]
    second = launch_server(
        tmp_path / "second" / "data",
        env={"KAIROSDB_TELNET_PORT": "0", "KAIROSDB_GRAPHITE_PORT": str(port)},
    )
    assert run_until_exit(second) != 0
    out = second.log().strip()
    assert len(out.splitlines()) == 1, out
    assert "Graphite" in out and f":{port}" in out and "KAIROSDB_GRAPHITE_PORT" in out, out
    assert "Kairos serving" not in out

    send_lines(port, [f"ports.graphite {i} {1000 + i}\n".encode() for i in range(20)])
    deadline = time.monotonic() + 20
    while len(got := values(first, "ports.graphite")) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert got == [[(1000 + i) * 1000, i] for i in range(20)]


def test_second_server_on_the_http_port_fails_and_the_first_keeps_every_point(
    first: Server, tmp_path: Path
) -> None:
    second = launch_server(tmp_path / "second" / "data", port=first.port)
    assert run_until_exit(second, probe=False) != 0
    out = second.log().strip()
    assert len(out.splitlines()) == 1, out
    assert "HTTP" in out and f":{first.port}" in out and "KAIROSDB_BIND_ADDRESS" in out, out
    assert "Kairos serving" not in out

    for i in range(20):
        with first.client() as c:  # a new connection each time
            r = c.post(
                "/api/v1/datapoints",
                json=[{"name": "ports.http", "datapoints": [[1000 + i, i]], "tags": {"c": "x"}}],
            )
            assert r.status_code == 204, r.text
    assert values(first, "ports.http") == [[1000 + i, i] for i in range(20)]


def test_the_announcement_lists_every_listener(first: Server, tmp_path: Path) -> None:
    (line,) = announce_lines(first)
    assert f"HTTP on http://127.0.0.1:{first.port}" in line, line
    assert f"telnet on 127.0.0.1:{first.telnet_port}" in line, line  # type: ignore[attr-defined]
    assert f"Graphite on 127.0.0.1:{first.graphite_port}" in line, line  # type: ignore[attr-defined]

    off = start_server(tmp_path / "off" / "data")  # conftest disables both line listeners
    try:
        (line,) = announce_lines(off)
        assert f"HTTP on http://127.0.0.1:{off.port}" in line, line
        assert "telnet off" in line and "Graphite off" in line, line
    finally:
        off.stop()


def test_query_service_binds_no_line_listener(first: Server, tmp_path: Path) -> None:
    """``kairos query`` serves no line protocol, so the ingest side's ports do not stop it."""
    query = start_server(
        first.data_dir,  # a query service reads what an ingest service's writer applies
        command="query",
        env={
            "KAIROSDB_TELNET_PORT": str(first.telnet_port),  # type: ignore[attr-defined]
            "KAIROSDB_GRAPHITE_PORT": str(first.graphite_port),  # type: ignore[attr-defined]
        },
    )
    try:
        (line,) = announce_lines(query)
        assert "telnet off" in line and "Graphite off" in line, line
        assert "2 HTTP workers, no writer" in line, line  # it runs none
    finally:
        query.stop()


def make_run_command(*variables: str) -> list[str]:
    """The ``kairos serve`` command line ``make run`` would run (``make -n`` runs nothing)."""
    out = subprocess.run(
        ["make", "-n", "run", *variables], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.replace("\\\n", " ")
    (cmd,) = [line for line in out.splitlines() if "kairos serve" in line]
    return cmd.split()


def test_make_run_passes_the_line_ports() -> None:
    args = make_run_command("PORT=9123", "TELNET_PORT=5123", "GRAPHITE_PORT=0")
    assert args[args.index("--port") + 1] == "9123", args
    assert args[args.index("--telnet-port") + 1] == "5123", args
    assert args[args.index("--graphite-port") + 1] == "0", args
    # Not given: no option, so KAIROSDB_TELNET_PORT / KAIROSDB_GRAPHITE_PORT still apply.
    args = make_run_command()
    assert "--telnet-port" not in args and "--graphite-port" not in args, args


def test_make_run_stops_at_once() -> None:
    """``make run`` is interactive: Ctrl-C does not wait for a load balancer."""
    args = make_run_command()
    assert args[args.index("--health-lb-delay-seconds") + 1] == "0", args
