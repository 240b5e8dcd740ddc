"""``--allocator jemalloc``: every process runs on Debian's libjemalloc2 and says so."""

from __future__ import annotations

import json

import pytest

from kairos.allocator import find_jemalloc
from tests.conftest import start_server

pytestmark = pytest.mark.integration


def _maps(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


@pytest.mark.parametrize("allocator", ["malloc", "jemalloc"])
def test_allocator_of_every_process(tmp_path, allocator: str) -> None:
    assert find_jemalloc(), "libjemalloc2 is installed by make test (system-deps)"
    srv = start_server(tmp_path / "data", env={"KAIROSDB_ALLOCATOR": allocator}, workers=1)
    try:
        with srv.client() as c:
            body = [{"name": "alloc.m", "datapoints": [[1, 1]], "tags": {"h": "a"}}]
            assert c.post("/api/v1/datapoints", json=body).status_code == 204
            health = c.get("/health").json()["checks"]
        worker = health["WAL"]["worker_pid"]
        writer = json.loads((srv.data_dir / "writer.status").read_text())["pid"]
        for pid in (srv.proc.pid, worker, writer):
            assert ("libjemalloc" in _maps(pid)) is (allocator == "jemalloc"), pid
    finally:
        assert srv.stop() == 0
    want = "jemalloc" if allocator == "jemalloc" else "glibc malloc"
    assert f"allocator {want})" in srv.log()


def test_unknown_allocator_is_refused(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="KAIROSDB_ALLOCATOR: malloc or jemalloc"):
        start_server(tmp_path / "data", env={"KAIROSDB_ALLOCATOR": "tcmalloc"})
