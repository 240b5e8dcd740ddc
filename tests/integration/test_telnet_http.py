"""Telnet and Graphite over real TCP sockets, checked through the HTTP query API."""

from __future__ import annotations

import socket
import time

import pytest

from tests.conftest import free_port, start_server


@pytest.fixture(scope="module")
def line_server(tmp_path_factory):
    telnet, graphite = free_port(), free_port()
    srv = start_server(
        tmp_path_factory.mktemp("telnet") / "data",
        env={"KAIROSDB_TELNET_PORT": str(telnet), "KAIROSDB_GRAPHITE_PORT": str(graphite)},
        workers=2,
    )
    srv.telnet_port, srv.graphite_port = telnet, graphite
    yield srv
    srv.stop()


def connect(port: int) -> socket.socket:
    deadline = time.monotonic() + 10
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def query(srv, name: str) -> list[dict]:
    with srv.client() as c:
        r = c.post(
            "/api/v1/datapoints/query",
            json={"start_absolute": 0, "metrics": [{"name": name}]},
        )
    assert r.status_code == 200, r.text
    return r.json()["queries"][0]["results"]


def test_version_round_trip(line_server) -> None:
    with connect(line_server.telnet_port) as s:
        s.sendall(b"version\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(100)
            assert chunk
            reply += chunk
    assert reply.startswith(b"KairosDB ") and reply.count(b"\n") == 1


def test_put_putm_puts_and_malformed_lines(line_server) -> None:
    with connect(line_server.telnet_port) as s:
        s.sendall(b"put tn.long 1500000000 42 host=a  dc=x\r\n")
        s.sendall(b"putm tn.double 1500000000123 2.5 host=a\n")
        s.sendall(b"puts tn.string 1500000000000 hello\n")
        s.sendall(b"put tn.bad notanumber 1 host=a\n")  # logged, not answered
        s.sendall(b"put tn.bad 1 1 fum\nfrobnicate\n" + b"x" * 5000 + b"\n")
        # a later good line on the same connection still gets stored
        s.sendall(b"put tn.after 1500000001 7\n")
        s.sendall(b"version\n")  # proves the connection is alive and everything was read
        assert s.recv(100).startswith(b"KairosDB ")
    line_server.wait_applied()

    (res,) = query(line_server, "tn.long")
    assert res["values"] == [[1500000000000, 42]]
    assert res["tags"] == {"dc": ["x"], "host": ["a"]}
    (res,) = query(line_server, "tn.double")
    assert res["values"] == [[1500000000123, 2.5]]
    (res,) = query(line_server, "tn.string")
    assert res["values"] == [[1500000000000, "hello"]]
    assert res["tags"] == {"add": ["tag"]}
    (res,) = query(line_server, "tn.after")
    assert res["values"] == [[1500000001000, 7]]
    assert all(not r["values"] for r in query(line_server, "tn.bad"))
    log = line_server.log()
    assert "tn.bad" in log and "127.0.0.1:" in log


def test_many_connections_spread_over_workers(line_server) -> None:
    socks = [connect(line_server.telnet_port) for _ in range(8)]
    for i, s in enumerate(socks):
        s.sendall(f"putm tn.many {1000 + i} {i} conn={i}\n".encode())
    for s in socks:
        s.sendall(b"version\n")
        assert s.recv(100).startswith(b"KairosDB ")
        s.close()
    line_server.wait_applied()
    res = query(line_server, "tn.many")
    assert sorted(v for r in res for v in r["values"]) == [[1000 + i, i] for i in range(8)]


def test_graphite(line_server) -> None:
    with connect(line_server.graphite_port) as s:
        s.sendall(b"servers.web1.cpu 1.5 1500000000\nservers.web1.cpu 2 1500000001\nbad\n")
        s.sendall(b"servers.web1.cpu 3.25 1500000002\n")
    deadline = time.monotonic() + 20
    while True:
        line_server.wait_applied()
        res = query(line_server, "servers.web1.cpu")
        values = sorted(v for r in res for v in r["values"])
        if len(values) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert values == [[1500000000000, 1.5], [1500000001000, 2], [1500000002000, 3.25]]
    assert {t for r in res for t in r["tags"].get("add", [])} == {"tag"}
