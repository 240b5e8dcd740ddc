"""Run one ``kairos perf`` scenario against a Kairos server this script starts and stops.

``python scripts/perf_server.py SCENARIO [kairos perf run options...]`` starts ``kairos serve``
on a free loopback port with a temporary data directory (telnet and Graphite off), waits until
``/health`` answers, runs ``kairos perf run SCENARIO --url ...``, then stops the server with
SIGTERM and removes the directory.  The exit code is the load test's.  Used by ``make perf-*``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"perf_server: kairos exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"perf_server: {url} not healthy after {timeout:g} s")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    scenario, extra = argv[0], argv[1:]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KAIROSDB_TELNET_PORT": "0", "KAIROSDB_GRAPHITE_PORT": "0"}
    env["KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS"] = "0"
    with tempfile.TemporaryDirectory(prefix="kairos-perf-") as data:
        server = subprocess.Popen(
            [sys.executable, "-m", "kairos.cli", "serve", "--port", str(port), "--data-dir", data],
            env=env,
            start_new_session=True,
        )
        try:
            _wait_healthy(url, server)
            print(f"perf_server: kairos on {url}, data in {data}", flush=True)
            run = [sys.executable, "-m", "kairos.cli", "perf", "run", scenario, "--url", url]
            return subprocess.call([*run, *extra])
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=120)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
