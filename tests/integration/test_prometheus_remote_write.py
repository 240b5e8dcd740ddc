"""Prometheus (Debian ``prometheus``) remote-writes its self-scrape to Kairos.

Prometheus scrapes itself every second and posts snappy-compressed protobuf ``WriteRequest``
bodies to ``/api/v1/prometheus/writeadapter/write`` (the kairosdb-prometheus-adapter path); the
metrics must then be listed by ``/api/v1/metricnames`` and queryable with their labels as tags.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cramjam
import httpx
import pytest

from tests.conftest import Server, free_port, start_server

pytestmark = pytest.mark.integration

PATH = "/api/v1/prometheus/writeadapter/write"
DEADLINE_S = 60.0
WANTED = ("prometheus_build_info", "up")
MAX_MB = 4  # far above a Prometheus batch (~100 KB), small enough for a cheap bomb
HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


@pytest.fixture(scope="module")
def kairos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("kairos-prom") / "data", env={"KAIROSDB_MAX_BODY_MB": str(MAX_MB)}
    )
    yield srv
    srv.stop()


def _prometheus_binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None
    )
    if not found:
        pytest.fail(
            "the prometheus binary is missing: run `make system-deps` "
            "(apt-get install -y --no-install-recommends prometheus)"
        )
    return found


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else "<missing>"


def _names(c: httpx.Client) -> list[str]:
    r = c.get("/api/v1/metricnames", params={"prefix": ""})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_prometheus_remote_write(kairos: Server, tmp_path: Path) -> None:
    binary = _prometheus_binary()
    port = free_port()
    conf = tmp_path / "prometheus.yml"
    conf.write_text(
        f"""\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{port}"]
remote_write:
  - url: {kairos.url}{PATH}
    queue_config:
      batch_send_deadline: 1s
"""
    )
    out = tmp_path / "prometheus.out"
    log_offset = len(kairos.log())

    def diag() -> str:
        return (
            f"\n--- prometheus output ---\n{_read(out)[-6000:]}"
            f"\n--- kairos log ---\n{kairos.log()[log_offset:][-4000:]}"
        )

    with open(out, "wb") as outf:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={conf}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            ],
            stdout=outf,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        with kairos.client() as c:
            deadline = time.monotonic() + DEADLINE_S
            while True:
                assert proc.poll() is None, f"prometheus exited with {proc.returncode}{diag()}"
                r = c.get("/api/v1/metricnames", params={"prefix": "prometheus_"})
                assert r.status_code == 200, r.text
                names = set(r.json()["results"])
                if "prometheus_build_info" in names and "up" in _names(c):
                    break
                assert time.monotonic() < deadline, (
                    f"{WANTED} not listed after {DEADLINE_S}s "
                    f"({len(names)} prometheus_* names){diag()}"
                )
                time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    kairos.wait_applied()
    prom_log = _read(out)
    for bad in ("non-recoverable error", "HTTP status 4", "HTTP status 5"):
        # Prometheus logs every rejected remote-write batch.
        assert bad not in prom_log, f"prometheus reported a remote-write error ({bad!r}){diag()}"
    with kairos.client() as c:
        r = c.get("/api/v1/metricnames", params={"prefix": "prometheus_"})
        names = r.json()["results"]
        assert "prometheus_build_info" in names and all(
            n.startswith("prometheus_") for n in names
        ), names
        for metric in WANTED:
            r = c.post(
                "/api/v1/datapoints/query",
                json={
                    "start_relative": {"value": 1, "unit": "hours"},
                    "metrics": [{"name": metric}],
                },
            )
            assert r.status_code == 200, r.text
            q = r.json()["queries"][0]
            assert q["sample_size"] > 0, f"{metric}: {q}{diag()}"
            (res,) = [x for x in q["results"] if x["values"]]
            tags = res["tags"]
            assert tags.get("job") == ["prometheus"], f"{metric}: {tags}"
            assert tags.get("instance") == [f"127.0.0.1:{port}"], f"{metric}: {tags}"
            assert "__name__" not in tags
            now = time.time() * 1000
            for ts, value in res["values"]:
                assert now - 600_000 < ts <= now + 5_000, (metric, ts)
                assert isinstance(value, (int, float)), (metric, value)
            if metric == "up":
                assert {v for _, v in res["values"]} == {1}, res["values"]


# -- hand-made requests: status codes ------------------------------------------------------------


def _ld(field: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([field << 3 | 2, len(payload)]) + payload


def _request(name: str, ts_ms: int, value: float) -> bytes:
    labels = _ld(1, _ld(1, b"__name__") + _ld(2, name.encode())) + _ld(
        1, _ld(1, b"host") + _ld(2, b"h1")
    )
    nan = struct.pack("<d", float("nan"))
    samples = _ld(2, b"\x09" + struct.pack("<d", value) + b"\x10" + bytes([ts_ms])) + _ld(
        2, b"\x09" + nan + b"\x10\x02"
    )
    return _ld(1, labels + samples)


def test_hand_made_request_stored(kairos: Server) -> None:
    body = bytes(cramjam.snappy.compress_raw(_request("handmade.metric", 1, 2.5)))
    with kairos.client() as c:
        r = c.post(PATH, content=body, headers=HEADERS)
        assert r.status_code == 200, r.text
        assert r.content == b""
        kairos.wait_applied()
        r = c.post(
            "/api/v1/datapoints/query",
            json={
                "start_absolute": 0,
                "end_absolute": 10,
                "metrics": [{"name": "handmade.metric"}],
            },
        )
        assert r.status_code == 200, r.text
        (res,) = r.json()["queries"][0]["results"]
        assert res["values"] == [[1, 2.5]]  # the NaN sample was dropped
        assert res["tags"] == {"host": ["h1"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not snappy at all", "snappy"),
        (bytes(cramjam.snappy.compress_raw(b"\x0a\x64garbage")), "Invalid Prometheus remote write"),
        (b"", "empty body"),
    ],
)
def test_bad_body_is_400(kairos: Server, body: bytes, message: str) -> None:
    with kairos.client() as c:
        r = c.post(PATH, content=body, headers=HEADERS)
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert len(errors) == 1 and message in errors[0], errors


def test_decompression_bomb_is_413(kairos: Server) -> None:
    # Far below the HTTP body limit compressed, far above it decompressed.
    with kairos.client() as c:
        limit = MAX_MB << 20
        body = bytes(cramjam.snappy.compress_raw(b"\0" * (limit + 1)))
        r = c.post(PATH, content=body, headers=HEADERS)
    assert r.status_code == 413, r.text[:500]
    assert "exceeds the maximum" in r.json()["errors"][0]
