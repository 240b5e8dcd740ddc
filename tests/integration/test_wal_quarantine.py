"""A WAL file with a damaged header is quarantined; the other files are still applied."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from kairos.storage.records import decode_record
from kairos.storage.wal import WalReader
from tests.conftest import start_server

pytestmark = [pytest.mark.integration]


def _timestamps_in(wal_file, scratch) -> set[int]:
    """Every timestamp the WAL file holds, read with the real WAL reader from a copy."""
    (scratch / "wal").mkdir(parents=True)
    shutil.copy(wal_file, scratch / "wal" / wal_file.name)
    payloads, _, _ = WalReader(str(scratch)).poll()
    return {int(t) for p in payloads for t in decode_record(p).ts}


def _stored(c: httpx.Client) -> set[int]:
    body = {"start_absolute": 1, "metrics": [{"name": "quarantine"}]}
    r = c.post("/api/v1/datapoints/query", json=body)
    assert r.status_code == 200, r.text
    return {t for res in r.json()["queries"][0]["results"] for t, _ in res["values"]}


def test_damaged_wal_header_is_quarantined_and_the_rest_applied(tmp_path) -> None:
    data = tmp_path / "data"
    # The writer waits an hour between polls: nothing is applied before the kill.
    srv = start_server(data, workers=2, env={"KAIROSDB_WRITER_INTERVAL_MS": "3600000"})
    acked: set[int] = set()
    try:
        for i in range(60):
            pts = [[1_000_000 + i * 100 + j, j] for j in range(20)]
            # A new connection per request, so both workers (two WAL files) get some.  Not
            # ?sync=true: that wakes the writer and waits until the points are applied.
            r = httpx.post(
                srv.url + "/api/v1/datapoints",
                json=[{"name": "quarantine", "datapoints": pts, "tags": {"h": "a"}}],
                timeout=30,
            )
            assert r.status_code == 204, r.text
            acked |= {t for t, _ in pts}
        time.sleep(1.5)  # the group fsync (1 s) makes the WAL durable
    finally:
        srv.kill()  # the WAL files stay, unapplied

    files = sorted((data / "wal").glob("*.wal"))
    held = {f.name: _timestamps_in(f, tmp_path / f"scratch-{f.name}") for f in files}
    with_data = [name for name, ts in held.items() if ts]
    assert len(with_data) >= 2, held.keys()
    assert set().union(*held.values()) == acked
    bad = with_data[0]
    with open(data / "wal" / bad, "r+b") as f:
        f.write(b"\xde\xad\xbe\xef" * 2)  # the first 8 bytes: the file header

    srv = start_server(data, workers=2)
    try:
        srv.wait_applied(timeout=60)
        with srv.client() as c:
            stored = _stored(c)
            assert stored == acked - held[bad]
            health = c.get("/health")
            assert health.status_code == 200, health.text
            q = health.json()["checks"]["Writer"]["quarantined_files"]
            assert [e["name"] for e in q] == [bad]
            assert "bad header" in q[0]["reason"]
            metrics = c.get("/metrics").text
            assert "kairos_wal_quarantined_files_total 1.0" in metrics, metrics
            # Ingest goes on and is applied too.
            r = c.post(
                "/api/v1/datapoints?sync=true",
                json=[{"name": "quarantine", "datapoints": [[5, 5]], "tags": {"h": "a"}}],
            )
            assert r.status_code == 204
            srv.wait_applied(timeout=60)
            assert 5 in _stored(c)
    finally:
        assert srv.stop() == 0
    assert (data / "wal" / "quarantine" / bad).read_bytes()[:8] == b"\xde\xad\xbe\xef" * 2
    assert not (data / "wal" / bad).exists()
    log = srv.log()
    assert f"{bad}: bad header" in log, log
