"""Peak RSS of one HTTP worker under many concurrent large ingest bodies.

    python benchmarks/body_memory.py [--bodies 40] [--mb 60] [--max-memory-mb 1024]

Starts ``kairos serve`` with one HTTP worker and ``KAIROSDB_MAX_MEMORY_MB``, sends ``--bodies``
datapoints bodies of ``--mb`` MiB at once (one thread and connection each, over loopback; each
body is 2,000 points padded with JSON whitespace, so the writer's work stays small), samples
the worker's RSS every 5 ms from ``/proc`` and prints the peak and the answers (204 / 503).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from kairos.app.process import rss_bytes
from tests.conftest import start_server

MB = 1024 * 1024


def rss(pid: int) -> int:
    return rss_bytes(pid) or 0


def padded(tag: str, size: int) -> bytes:
    doc = orjson.dumps(
        [{"name": "mem.m", "tags": {"req": tag}, "datapoints": [[1 + i, i] for i in range(2000)]}]
    )
    return b"[" + b" " * (size - len(doc)) + doc[1:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bodies", type=int, default=40)
    ap.add_argument("--mb", type=int, default=60)
    ap.add_argument("--max-memory-mb", type=int, default=1024)
    a = ap.parse_args()
    env = {"KAIROSDB_MAX_MEMORY_MB": str(a.max_memory_mb)}
    srv = start_server(Path(tempfile.mkdtemp()) / "data", env=env, workers=1)
    try:
        with srv.client() as c:
            pid = c.get("/health").json()["checks"]["WAL"]["worker_pid"]
        idle = rss(pid)
        peak, stop = 0, threading.Event()
        answers: Counter[int] = Counter()
        go = threading.Barrier(a.bodies)

        def watch() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, rss(pid))
                time.sleep(0.005)

        def send(k: int) -> None:
            body = padded(f"r{k}", a.mb * MB)
            with httpx.Client(base_url=srv.url, timeout=300) as c:
                go.wait()
                try:
                    answers[c.post("/api/v1/datapoints", content=body).status_code] += 1
                except httpx.HTTPError as e:
                    answers[type(e).__name__] += 1  # type: ignore[index]

        w = threading.Thread(target=watch)
        w.start()
        t0 = time.monotonic()
        threads = [threading.Thread(target=send, args=(k,)) for k in range(a.bodies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - t0
        stop.set()
        w.join()
        print(
            json.dumps(
                {
                    "bodies": a.bodies,
                    "mb": a.mb,
                    "max_memory_mb": a.max_memory_mb,
                    "idle_rss_mb": idle // MB,
                    "peak_rss_mb": peak // MB,
                    "answers": dict(answers),
                    "seconds": round(seconds, 1),
                    "load": os.getloadavg()[0],
                }
            )
        )
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
