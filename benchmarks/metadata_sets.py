"""Small metadata writes after one large value, over HTTP.

    python benchmarks/metadata_sets.py [--big-mb 60] [--sets 300]

Starts ``kairos serve`` (2 HTTP workers, embedded datastore) with
``KAIROSDB_METADATA_MAX_VALUE_MB`` just above ``--big-mb``, stores one value of ``--big-mb`` MiB,
then times ``--sets`` one-byte sets of distinct keys, one after another on one connection, and
prints the total and the median and worst set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tests.conftest import start_server

MB = 1024 * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-mb", type=int, default=60)
    ap.add_argument("--sets", type=int, default=300)
    a = ap.parse_args()
    env = {"KAIROSDB_METADATA_MAX_VALUE_MB": str(a.big_mb + 1)}
    srv = start_server(Path(tempfile.mkdtemp()) / "data", env=env, workers=2)
    try:
        with httpx.Client(base_url=srv.url, timeout=600) as c:
            t0 = time.monotonic()
            r = c.post("/api/v1/metadata/svc/big/k", content=b"x" * (a.big_mb * MB))
            assert r.status_code == 204, r.text
            big = time.monotonic() - t0
            times = []
            t0 = time.monotonic()
            for i in range(a.sets):
                t = time.monotonic()
                r = c.post(f"/api/v1/metadata/svc/small/k{i}", content=b"v")
                assert r.status_code == 204, r.text
                times.append(time.monotonic() - t)
            total = time.monotonic() - t0
            assert len(c.get("/api/v1/metadata/svc/small").json()["results"]) == a.sets
        print(
            json.dumps(
                {
                    "big_mb": a.big_mb,
                    "big_set_s": round(big, 2),
                    "sets": a.sets,
                    "total_s": round(total, 2),
                    "median_ms": round(statistics.median(times) * 1000, 2),
                    "max_ms": round(max(times) * 1000, 1),
                    "load": os.getloadavg()[0],
                }
            )
        )
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
