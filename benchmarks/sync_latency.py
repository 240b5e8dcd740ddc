"""Latency of one small ingest request, one at a time, and whether a query right after sees it.

    .venv/bin/python -m benchmarks.sync_latency --requests 200 [--no-sync] [--url URL]

Without ``--url`` it starts ``kairos serve`` (2 HTTP workers + the writer, default settings,
telnet and Graphite off) on a temporary data directory, with the ``kairos`` importable from
``PYTHONPATH`` (so another checkout can be measured with this same script).  Each request posts
the README's body (2 points, one new metric per request) with ``?sync=true`` (or without,
``--no-sync``) over a keep-alive connection, then queries the metric over a second one.
Prints the median, 90th and 99th percentile latency of the ingest requests and the share of
queries that found the points.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import orjson


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()


def run(url: str, requests: int, sync: bool) -> dict:
    host, port = url.removeprefix("http://").split(":")
    w = http.client.HTTPConnection(host, int(port), timeout=60)
    q = http.client.HTTPConnection(host, int(port), timeout=60)
    path = "/api/v1/datapoints" + ("?sync=true" if sync else "")
    lat, seen = [], 0
    for i in range(requests + 10):
        name = f"latency.{os.getpid()}.{i}"
        body = orjson.dumps(
            [
                {
                    "name": name,
                    "datapoints": [[1700000000000, 0.5], [1700000010000, 0.75]],
                    "tags": {"host": "a"},
                }
            ]
        )
        t0 = time.perf_counter()
        status, text = _post(w, path, body)
        dt = time.perf_counter() - t0
        if status != 204:
            raise SystemExit(f"ingest answered {status}: {text!r}")
        query = orjson.dumps({"start_absolute": 0, "metrics": [{"name": name}]})
        status, text = _post(q, "/api/v1/datapoints/query", query)
        if i < 10:
            continue  # warm-up
        lat.append(dt)
        if any(r.get("values") for r in orjson.loads(text)["queries"][0]["results"]):
            seen += 1
    lat.sort()
    return {
        "requests": requests,
        "sync": sync,
        "median_ms": round(statistics.median(lat) * 1000, 2),
        "p90_ms": round(lat[int(0.9 * len(lat))] * 1000, 2),
        "p99_ms": round(lat[int(0.99 * len(lat))] * 1000, 2),
        "visible_right_after": f"{seen}/{requests}",
        "loadavg_1min": os.getloadavg()[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--no-sync", action="store_true")
    args = ap.parse_args()
    srv = tmp = None
    url = args.url
    if not url:
        tmp = tempfile.mkdtemp(prefix="kairos-bench-")
        port = 18000 + os.getpid() % 1000
        env = os.environ | {"KAIROSDB_TELNET_PORT": "0", "KAIROSDB_GRAPHITE_PORT": "0"}
        env["KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS"] = "0"
        srv = subprocess.Popen(
            [
                *(sys.executable, "-m", "kairos.cli", "serve"),
                *("--port", str(port), "--data-dir", tmp, "--workers", "2"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
    try:
        res = run(url, args.requests, not args.no_sync)
    finally:
        if srv is not None:
            srv.terminate()
            srv.wait(30)
            shutil.rmtree(tmp, ignore_errors=True)
    print(orjson.dumps(res).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
