"""How long ``kairos serve`` takes to stop on SIGTERM under keep-alive ingest load.

    .venv/bin/python -m benchmarks.shutdown --rounds 5 [--delay 3] [--senders 4] [--load 2]

Each round starts ``kairos serve`` (``--workers`` HTTP workers + the writer) on a temporary data
directory, lets ``--senders`` threads post pre-generated ``--points``-point bodies (100 series)
over keep-alive connections (one ``httpx.Client`` each) for ``--load`` seconds, sends
SIGTERM to the main process and times its exit while the senders keep going.  Prints, per
round, the seconds from the signal to the exit, the exit code and the tracebacks in the
server's log; then the median and range.  The load-balancer delay is ``--delay``
(``KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS``).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import orjson

from benchmarks._data import START_MS, ingest_body


def _sender(port: int, bodies: list[list], stop: threading.Event) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        i = threading.get_ident()
        while not stop.is_set():
            try:
                c.post("/api/v1/datapoints", json=bodies[i % len(bodies)])
            except httpx.HTTPError:
                time.sleep(0.01)
            i += 1


def _wait_live(port: int, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"kairos exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("kairos did not become healthy")


def one_round(args: argparse.Namespace, bodies: list[bytes], n: int) -> dict:
    tmp = tempfile.mkdtemp(prefix="kairos-shutdown-")
    port = 19000 + (os.getpid() + n) % 1000
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIROSDB_")}
    env.update(
        {
            "KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS": str(args.delay),
            "KAIROSDB_TELNET_PORT": "0",
            "KAIROSDB_GRAPHITE_PORT": "0",
        }
    )
    log_path = os.path.join(tmp, "kairos.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "kairos.cli", "serve", "--port", str(port)),
                *("--data-dir", os.path.join(tmp, "data"), "--workers", str(args.workers)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    stop = threading.Event()
    senders = [
        threading.Thread(target=_sender, args=(port, bodies, stop)) for _ in range(args.senders)
    ]
    try:
        _wait_live(port, proc)
        for p in senders:
            p.start()
        time.sleep(args.load)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(120)
        seconds = time.monotonic() - t0
    finally:
        stop.set()
        for p in senders:
            p.join(30)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with open(log_path, errors="replace") as f:
        text = f.read()
    shutil.rmtree(tmp, ignore_errors=True)
    return {"stop_s": round(seconds, 2), "exit": rc, "tracebacks": text.count("Traceback")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--delay", type=float, default=3.0)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--points", type=int, default=5_000, help="points per request")
    ap.add_argument("--load", type=float, default=2.0, help="seconds of load before SIGTERM")
    args = ap.parse_args()
    bodies = [
        orjson.loads(ingest_body(points_per_series=args.points // 100, seed=i, t0=START_MS + i))
        for i in range(16)
    ]
    rounds = []
    for n in range(args.rounds):
        r = one_round(args, bodies, n)
        print(orjson.dumps(r).decode(), flush=True)
        rounds.append(r)
    stops = [r["stop_s"] for r in rounds]
    summary = {
        "delay_s": args.delay,
        "stop_s_median": statistics.median(stops),
        "stop_s_min": min(stops),
        "stop_s_max": max(stops),
        "exit_codes": sorted({r["exit"] for r in rounds}),
        "tracebacks": sum(r["tracebacks"] for r in rounds),
        "load_average": os.getloadavg(),
    }
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
