"""Shared fixtures: KairosDB's fixture directory and real Kairos server processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KAIROS_SHARED_DIR", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures" / "kairosdb"


@pytest.fixture(scope="session")
def kairos_fixtures() -> Path:
    """KairosDB's own public test data (read from ../shared at run time)."""
    if not FIXTURES.is_dir():
        pytest.fail(f"KairosDB fixtures not found at {FIXTURES} (set KAIROS_SHARED_DIR)")
    return FIXTURES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A ``kairos serve`` subprocess."""

    url: str
    port: int
    data_dir: Path
    proc: subprocess.Popen
    log_path: Path

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_applied(self, timeout: float = 20.0) -> None:
        """Wait until the writer has applied every WAL byte (the data is queryable)."""
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while time.monotonic() < deadline:
                r = c.get("/health")
                # The backlog is computed live: WAL bytes past the datastore's checkpoint.
                if r.status_code == 200 and r.json()["checks"]["Writer"]["wal_backlog_bytes"] == 0:
                    return
                time.sleep(0.05)
        raise AssertionError(f"writer did not drain the WAL in {timeout}s\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group (main, HTTP workers and writer)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


def launch_server(
    data_dir: Path,
    *,
    port: int | None = None,
    env: dict | None = None,
    workers: int = 2,
    command: str = "serve",
) -> Server:
    """Start a ``kairos`` server process without waiting for it (see :func:`start_server`)."""
    port = port or free_port()
    log_path = data_dir.parent / f"kairos-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KAIROSDB_")}
    # No telnet/Graphite listeners unless asked for: test servers must not share 4242/2003.
    full_env.update({"KAIROSDB_TELNET_PORT": "0", "KAIROSDB_GRAPHITE_PORT": "0"})
    # No load-balancer detection delay on SIGTERM unless asked for: keeps Server.stop() fast.
    full_env["KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS"] = "0"
    full_env.update(env or {})
    logf = open(log_path, "ab")  # noqa: SIM115 -- owned by the server process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kairos.cli",
            command,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--workers",
            str(workers),
        ],
        stdout=logf,
        stderr=subprocess.STDOUT,
        env=full_env,
        start_new_session=True,
    )
    logf.close()
    return Server(f"http://127.0.0.1:{port}", port, data_dir, proc, log_path)


def start_server(
    data_dir: Path,
    *,
    port: int | None = None,
    env: dict | None = None,
    workers: int = 2,
    command: str = "serve",
    wait_for: str = "/health",
) -> Server:
    """Start a ``kairos`` server process and wait until ``wait_for`` answers 200 (a server
    expected to start unhealthy, or whose datastore is down on purpose, waits for
    ``/health/live``)."""
    srv = launch_server(data_dir, port=port, env=env, workers=workers, command=command)
    proc = srv.proc
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kairos exited with {proc.returncode}:\n{srv.log()}")
        try:
            r = httpx.get(srv.url + wait_for, timeout=2)
            if r.status_code == 200:
                return srv
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    srv.kill()
    raise RuntimeError(f"kairos did not become healthy:\n{srv.log()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One Kairos server shared by the read/write integration tests."""
    srv = start_server(tmp_path_factory.mktemp("kairos") / "data")
    yield srv
    srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


# A real Apache Cassandra 5.0 for tests marked `cassandra` (see tests/cassandra_support.py).
from tests.cassandra_support import cassandra_contact_points  # noqa: E402, F401
