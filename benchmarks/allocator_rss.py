"""Resident memory after a load spike, glibc malloc vs jemalloc (``--allocator``).

    python benchmarks/allocator_rss.py [--bodies 40] [--points 200000]

For each allocator: start ``kairos serve`` (2 HTTP workers + writer), measure the processes'
RSS idle, send a spike of large ingest bodies from 4 threads (sampling RSS every 50 ms), let the
writer apply everything, wait ``--settle`` seconds idle (15), and measure again.  Prints one row per allocator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from kairos.app.process import rss_bytes
from tests.conftest import start_server

MB = 1024 * 1024


def rss(pid: int) -> int:
    return rss_bytes(pid) or 0


def pids(srv) -> list[int]:
    children = []
    for task in Path(f"/proc/{srv.proc.pid}/task").iterdir():
        children += [int(p) for p in (task / "children").read_text().split()]
    return [srv.proc.pid, *children]


def run(allocator: str, bodies: int, points: int, settle: float) -> dict:
    env = {"KAIROSDB_ALLOCATOR": allocator, "KAIROSDB_MAX_BATCH_SIZE": str(points)}
    srv = start_server(Path(tempfile.mkdtemp()) / "data", env=env, workers=2)
    body = orjson.dumps(
        [{"name": "rss.m", "tags": {"h": "a"}, "datapoints": [[i, i * 0.5] for i in range(points)]}]
    )
    try:
        procs = pids(srv)
        idle = sum(rss(p) for p in procs)
        peak = 0
        stop = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, sum(rss(p) for p in procs))
                time.sleep(0.05)

        def send() -> None:
            with srv.client() as c:
                for _ in range(bodies // 4):
                    c.post("/api/v1/datapoints", content=body)

        w = threading.Thread(target=watch)
        w.start()
        senders = [threading.Thread(target=send) for _ in range(4)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        srv.wait_applied(300)
        stop.set()
        w.join()
        time.sleep(settle)
        after = sum(rss(p) for p in procs)
    finally:
        srv.stop()
    return {
        "allocator": allocator,
        "idle_mb": idle / MB,
        "peak_mb": peak / MB,
        "after_mb": after / MB,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bodies", type=int, default=40)
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--settle", type=float, default=15.0, help="idle seconds before 'after'")
    args = ap.parse_args()
    for allocator in ("malloc", "jemalloc"):
        print(json.dumps(run(allocator, args.bodies, args.points, args.settle)))


if __name__ == "__main__":
    main()
