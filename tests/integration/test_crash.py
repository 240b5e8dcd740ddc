"""kill -9 at random moments: every point acknowledged with ``sync=true`` survives."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from tests.conftest import start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMPACT_OFTEN = {"KAIROSDB_DATASTORE_COMPACTION_FANOUT": "2", "KAIROSDB_WRITER_INTERVAL_MS": "20"}


def _ingest(url: str, client_id: int, base: int, acked: list[int], stop: threading.Event) -> None:
    seq = base
    with httpx.Client(base_url=url, timeout=10) as c:
        while not stop.is_set():
            pts = [[seq * 10 + i, seq * 10 + i] for i in range(10)]
            body = [{"name": "crash", "datapoints": pts, "tags": {"client": str(client_id)}}]
            try:
                r = c.post("/api/v1/datapoints?sync=true", json=body)
            except httpx.HTTPError:
                return  # the server died mid-request: this batch was never acknowledged
            if r.status_code == 204:
                acked.extend(p[0] for p in pts)
            seq += 1


def test_sigkill_loses_no_acknowledged_point(tmp_path) -> None:
    rng = random.Random(1234)
    data = tmp_path / "data"
    acked: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for rnd in range(4):
        # Fanout 2: the writer compacts every other apply, so kills also land mid-compaction.
        srv = start_server(data, workers=2, env=COMPACT_OFTEN)
        stop = threading.Event()
        threads = [
            threading.Thread(target=_ingest, args=(srv.url, cid, rnd * 10**8, acked[cid], stop))
            for cid in acked
        ]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.5, 2.5))
        srv.kill()  # SIGKILL the main process, the HTTP workers and the writer at once
        stop.set()
        for t in threads:
            t.join()

    srv = start_server(data, workers=1, env=COMPACT_OFTEN)
    try:
        srv.wait_applied(timeout=60)
        with srv.client() as c:
            for cid, points in acked.items():
                body = {
                    "start_absolute": -(10**15),
                    "metrics": [{"name": "crash", "tags": {"client": str(cid)}}],
                }
                res = c.post("/api/v1/datapoints/query", json=body).json()["queries"][0]["results"]
                stored = {t for r in res for t, _ in r["values"]}
                missing = set(points) - stored
                assert not missing, f"client {cid}: {len(missing)} acknowledged points lost"
                assert len(points) > 0
    finally:
        srv.stop()
