"""End-to-end HTTP ingest throughput, next to ``orjson.loads`` of the same bodies.

    .venv/bin/python -m benchmarks.http_ingest --duration 15 [--gzip] [--url URL]

Without ``--url`` it starts ``kairos serve`` (``--workers`` HTTP workers + the writer) on a
temporary data directory.  Bodies are pre-generated (10,000 points across 100 series each, every
body with its own timestamps) and posted by ``--senders`` processes over keep-alive
connections.  Prints points/s acknowledged, the one-core ``orjson.loads`` rate on the same
bodies measured in the same run, their ratio, the load generator's own CPU use, and how long
the writer then took to apply the backlog, and (when it started the server) the writer
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse

import orjson

from benchmarks._data import START_MS, ingest_body

N_BODIES = 64


def make_bodies(gz: bool) -> list[bytes]:
    bodies = []
    for i in range(N_BODIES):
        b = ingest_body(seed=i, t0=START_MS + i * 1_000_000_000)
        bodies.append(gzip.compress(b, 1) if gz else b)
    return bodies


def orjson_rate(bodies: list[bytes], gz: bool, seconds: float = 3.0) -> float:
    raw = [gzip.decompress(b) for b in bodies] if gz else bodies
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for b in raw:
            orjson.loads(b)
            n += 10_000
    return n / (time.perf_counter() - t0)


def _sender(
    url: str, path: str, bodies: list[bytes], gz: bool, start: float, stop: float, out
) -> None:
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if gz:
        headers["Content-Encoding"] = "gzip"
    ok = err = 0
    i = os.getpid()
    while time.time() < start:
        time.sleep(0.001)
    while time.time() < stop:
        body = bodies[i % len(bodies)]
        i += 1
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        if r.status == 204:
            ok += 1
        else:
            err += 1
    t = os.times()
    out.put((ok, err, t.user + t.system))


def run(url: str, senders: int, duration: float, gz: bool, perf_mode: str | None = None) -> dict:
    bodies = make_bodies(gz)
    ref = orjson_rate(bodies, gz)
    q: mp.Queue = mp.Queue()
    start = time.time() + 1.0
    stop = start + duration
    path = "/api/v1/datapoints" + (f"?perf_mode={perf_mode}" if perf_mode else "")
    procs = [
        mp.Process(target=_sender, args=(url, path, bodies, gz, start, stop, q))
        for _ in range(senders)
    ]
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    client_cpu = sum(r[2] for r in results)
    t_drain = time.time()
    u = urlparse(url)
    while True:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("GET", "/health")
        doc = orjson.loads(c.getresponse().read())
        if doc["checks"]["Writer"].get("wal_backlog_bytes", 0) == 0:
            break
        time.sleep(0.1)
    drain = time.time() - t_drain
    rate = ok * 10_000 / duration
    return {
        "points_per_s": rate,
        "requests_ok": ok,
        "requests_failed": errors,
        "orjson_loads_points_per_s": ref,
        "ratio_vs_orjson": rate / ref,
        "loadgen_cpu_s": client_cpu,
        "loadgen_cpu_share": client_cpu / duration,
        "drain_s": drain,
    }


def writer_peak_rss_mb(data_dir: str) -> float | None:
    """The writer process's peak resident memory so far (``VmHWM``), from its status file."""
    try:
        with open(os.path.join(data_dir, "writer.status"), "rb") as f:
            pid = orjson.loads(f.read())["pid"]
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, KeyError, orjson.JSONDecodeError):
        pass
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--senders", type=int, default=3)
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--perf-mode", choices=["no_parse", "parse_only", "parse_and_store"])
    args = ap.parse_args()
    srv = None
    tmp = None
    url = args.url
    if not url:
        tmp = tempfile.mkdtemp(prefix="kairos-bench-")
        port = 18000 + os.getpid() % 1000
        srv = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kairos.cli",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                tmp,
                "--workers",
                str(args.workers),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/health/live")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
    try:
        res = run(url, args.senders, args.duration, args.gzip, args.perf_mode)
        if tmp is not None:
            res["writer_peak_rss_mb"] = writer_peak_rss_mb(tmp)
    finally:
        if srv is not None:
            srv.terminate()
            srv.wait(30)
            shutil.rmtree(tmp, ignore_errors=True)
    print(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
