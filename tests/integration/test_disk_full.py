"""A full disk, on a small file system each test mounts as the data directory of a real server:
every ingest path answers 507 + ``Retry-After`` (telnet waits), nothing acknowledged is lost,
the writer survives and applies its backlog once space is freed, start-up works on a full disk,
and the free-space reserve refuses ingest before the disk is full.

The file system is a tmpfs of a few MB (``mount -t tmpfs``, needs root), else a loop-mounted
ext4 image; where neither can be mounted the tests are skipped with the reason.
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cramjam
import httpx
import numpy as np
import orjson
import pytest

from kairos.errors import InsufficientStorage
from kairos.ingest.parser import parse_datapoints
from kairos.storage.embedded.store import EmbeddedStore
from kairos.storage.wal import WalReader, WalWriter
from tests.conftest import Server, free_port, start_server
from tests.unit.test_prometheus import series, write_request

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MB = 1024 * 1024
FS_MB = 24


def _run(*cmd: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)


@contextmanager
def small_fs(path: Path, mb: int = FS_MB) -> Iterator[Path]:
    """A file system of ``mb`` MB mounted on ``path`` (unmounted on exit).  Mounted as the data
    directory itself, so that the server's log (beside it) stays writable."""
    path.mkdir()
    r = _run("mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", path)
    if r.returncode != 0:
        img = path.parent / "small-fs.img"
        with open(img, "wb") as f:
            f.truncate(mb * MB)
        made = _run("mkfs.ext4", "-q", "-F", img)
        r = _run("mount", "-o", "loop", img, path) if made.returncode == 0 else made
        if r.returncode != 0:
            pytest.skip(f"cannot mount a small file system here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        if _run("umount", path).returncode != 0:
            _run("umount", "-l", path)


def free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(fs: Path, leave: int = 0) -> Path:
    """Fill ``fs`` until a write fails for lack of space (or only ``leave`` bytes are left);
    returns the filler file."""
    filler = fs / "filler"
    chunk = b"\0" * (256 * 1024)
    with open(filler, "wb", buffering=0) as f:
        for size in (256 * 1024, 4096):
            while free(fs) - size >= leave:
                try:
                    f.write(chunk[:size])
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    return filler


def _body(metric: str, first: int, n: int) -> bytes:
    return orjson.dumps(
        [{"name": metric, "datapoints": [[first + i, i] for i in range(n)], "tags": {"h": "a"}}]
    )


def _count(c: httpx.Client, metric: str) -> int:
    q = {
        "start_absolute": 0,
        "metrics": [
            {
                "name": metric,
                "aggregators": [{"name": "count", "sampling": {"value": 100, "unit": "years"}}],
            }
        ],
    }
    r = c.post("/api/v1/datapoints/query", json=q)
    assert r.status_code == 200, r.text
    return sum(v for _, v in r.json()["queries"][0]["results"][0]["values"])


def _assert_disk_full(r: httpx.Response, reserve: str | None = None) -> None:
    assert r.status_code == 507, (r.status_code, r.text)
    assert r.headers["retry-after"] == "5"
    errors = r.json()["errors"]
    assert len(errors) == 1 and errors[0].startswith("Disk full"), errors
    if reserve is not None:
        assert f"KAIROSDB_DISK_MIN_FREE_MB={reserve}" in errors[0], errors


def _until(pred, timeout: float, what: str, srv: Server) -> float:
    """Poll ``pred`` until true; returns the seconds it took (failing after ``timeout``)."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what} not reached in {timeout}s\n{srv.log()[-4000:]}")
        time.sleep(0.05)
    return time.monotonic() - t0


def _backlog(c: httpx.Client) -> int:
    """The WAL backlog, whatever the health status (503 while the disk is below its reserve)."""
    return c.get("/health").json()["checks"]["Writer"]["wal_backlog_bytes"]


def _writer_status(srv: Server) -> dict:
    with open(srv.data_dir / "writer.status", "rb") as f:
        return orjson.loads(f.read())


def _remote_write_body(metric: str, ts: int) -> bytes:
    return bytes(
        cramjam.snappy.compress_raw(
            write_request(series({"__name__": metric, "h": "a"}, [(1.5, ts), (2.5, ts + 1)]))
        )
    )


PROM_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def test_wal_append_on_a_full_disk_leaves_nothing_and_resumes(tmp_path) -> None:
    with small_fs(tmp_path / "data", 4) as fs:
        (fs / "wal").mkdir()
        filler = fill(fs)
        wal = WalWriter(str(fs))  # no room for a WAL file: created by the first append
        payload = os.urandom(64 * 1024)
        with pytest.raises(InsufficientStorage):
            wal.append(payload)
        filler.unlink()
        wal.append(payload)
        size = os.path.getsize(wal.path)
        fill(fs)
        for _ in range(3):
            with pytest.raises(InsufficientStorage) as e:
                wal.append(payload, sync=True)
            assert e.value.status_code == 507
            assert os.path.getsize(wal.path) == size  # the partial frame was cut back off
        (fs / "filler").unlink()
        wal.append(payload, sync=True)
        wal.close()
        payloads, _, _ = WalReader(str(fs)).poll()
        assert payloads == [payload, payload]


def test_metadata_store_on_a_full_disk_is_507_and_resumes(tmp_path) -> None:
    from kairos.storage.embedded.metadata import EmbeddedMetadata

    with small_fs(tmp_path / "data", 4) as fs:
        md = EmbeddedMetadata(str(fs))
        md.set_value("svc", "k", "small", "1")
        filler = fill(fs)
        with pytest.raises(InsufficientStorage) as e:
            for i in range(200):  # SQLite fills its free pages before it needs the disk
                md.set_value("svc", "k", f"key{i}", "x" * 65536)
        assert e.value.status_code == 507
        assert md.get_value("svc", "k", "small") == "1"  # still readable
        filler.unlink()
        md.set_value("svc", "k", "after", "2")
        assert md.get_value("svc", "k", "after") == "2"
        md.close()


def test_full_disk_refuses_every_ingest_path_and_recovers_without_loss(tmp_path) -> None:
    telnet_port = free_port()
    env = {"KAIROSDB_DISK_MIN_FREE_MB": "0", "KAIROSDB_TELNET_PORT": str(telnet_port)}
    with small_fs(tmp_path / "data") as fs:
        srv = start_server(fs, env=env, workers=1)
        try:
            with srv.client() as c:
                acked = 0
                for i in range(5):
                    r = c.post("/api/v1/datapoints", content=_body("disk.http", i * 1000, 1000))
                    assert r.status_code == 204, r.text
                    acked += 1000
                srv.wait_applied()
                filler = fill(fs)

                # Every ingest path is refused; nothing of it is stored.
                def refused() -> bool:
                    nonlocal acked
                    r = c.post("/api/v1/datapoints", content=_body("disk.http", acked, 1000))
                    if r.status_code == 204:  # room was left for this one: it counts
                        acked += 1000
                        return False
                    _assert_disk_full(r)
                    return True

                _until(refused, 10, "507 for ingest", srv)
                for _ in range(3):
                    r = c.post("/api/v1/datapoints?sync=true", content=_body("disk.x", 0, 1000))
                    _assert_disk_full(r)
                gz = c.post(
                    "/api/v1/datapoints",
                    content=gzip.compress(_body("disk.x", 0, 10)),
                    headers={"Content-Encoding": "gzip"},
                )
                _assert_disk_full(gz)
                _assert_disk_full(
                    c.post(
                        "/api/v1/prometheus/writeadapter/write",
                        content=_remote_write_body("disk_prom", 1000),
                        headers=PROM_HEADERS,
                    )
                )
                delete = {"start_absolute": 0, "metrics": [{"name": "disk.http"}]}
                _assert_disk_full(c.post("/api/v1/datapoints/delete", json=delete))
                _assert_disk_full(c.delete("/api/v1/metric/disk.http"))
                _assert_disk_full(c.post("/api/v1/metadata/svc/key/k", content=b"value"))
                _assert_disk_full(c.delete("/api/v1/metadata/svc/key/k"))

                # Telnet has no answer to give: the connection stops being read instead.
                tel = socket.create_connection(("127.0.0.1", telnet_port), timeout=10)
                tel.sendall(b"".join(b"put disk.telnet %d %d h=a\n" % (i, i) for i in range(100)))

                # Queries keep working, and the server says why ingest is refused.
                assert _count(c, "disk.http") == acked
                h = c.get("/health")
                assert h.status_code == 503
                disk = h.json()["checks"]["Disk"]
                assert not disk["ok"] and disk["ingest"].startswith("read-only: Disk full")
                ready = c.get("/health/ready")
                assert ready.status_code == 200  # it serves queries: still ready for those
                assert ready.json()["ingest"].startswith("read-only: Disk full")
                scrape = c.get("/metrics")
                assert scrape.status_code == 200
                assert "kairos_data_dir_free_bytes 0.0" in scrape.text, scrape.text[-2000:]

                # The writer lives on through the full disk and keeps reporting.
                pid = _writer_status(srv)["pid"]
                before = _writer_status(srv)["updated"]
                _until(lambda: _writer_status(srv)["updated"] > before, 10, "a report", srv)
                os.kill(pid, 0)

                filler.unlink()
                t0 = time.monotonic()
                n = 0

                def accepted() -> bool:
                    nonlocal acked, n
                    n += 1
                    r = c.post("/api/v1/datapoints", content=_body("disk.http", acked, 1000))
                    if r.status_code == 204:
                        acked += 1000
                        return True
                    _assert_disk_full(r)
                    return False

                _until(accepted, 10, "ingest accepted again", srv)
                t_ingest = time.monotonic() - t0
                r = c.post(
                    "/api/v1/prometheus/writeadapter/write",
                    content=_remote_write_body("disk_prom", 1000),
                    headers=PROM_HEADERS,
                )
                assert r.status_code == 200, r.text
                srv.wait_applied()
                _until(lambda: _count(c, "disk.telnet") == 100, 10, "telnet points", srv)
                t_all = time.monotonic() - t0
                tel.close()
                assert _count(c, "disk.http") == acked
                assert _count(c, "disk_prom") == 2
                assert c.get("/health").status_code == 200
                assert _writer_status(srv)["pid"] == pid
                print(
                    f"\nrecovery after freeing space: ingest 204 after {t_ingest:.2f} s, "
                    f"held telnet lines stored and everything queryable after {t_all:.2f} s"
                )
        finally:
            srv.stop()


def test_start_up_on_a_full_disk_is_read_only_then_applies_the_backlog(tmp_path) -> None:
    with small_fs(tmp_path / "data") as fs:
        data = fs
        # The writer applies once at start, then sleeps: what follows stays in the WAL.
        env = {"KAIROSDB_WRITER_INTERVAL_MS": "600000", "KAIROSDB_DISK_MIN_FREE_MB": "0"}
        srv = start_server(data, env=env, workers=1)
        acked = 0
        try:
            with srv.client() as c:
                time.sleep(0.5)
                for i in range(10):
                    # Not ?sync=true: that would wake the writer and wait for the apply.
                    r = c.post("/api/v1/datapoints", content=_body("disk.boot", i * 500, 500))
                    assert r.status_code == 204, r.text
                    acked += 500
                time.sleep(1.5)  # the group fsync (1 s) makes the WAL durable
        finally:
            srv.kill()  # SIGKILL: the backlog is left unapplied in the WAL
        filler = fill(fs)
        env = {"KAIROSDB_DISK_MIN_FREE_MB": "0"}
        srv = start_server(data, env=env, workers=2, wait_for="/health/live")
        try:
            with srv.client() as c:
                _until(
                    lambda: _writer_status(srv).get("state") == "disk full",
                    20,
                    "the writer reporting the full disk",
                    srv,
                )
                status = _writer_status(srv)
                assert "No space left on device" in status["error"], status
                h = c.get("/health")
                assert h.status_code == 503
                checks = h.json()["checks"]
                assert not checks["Disk"]["ok"] and not checks["Writer"]["ok"]
                assert checks["Writer"]["state"] == "disk full"
                assert checks["Writer"]["wal_backlog_bytes"] > 0
                ready = c.get("/health/ready")
                assert ready.json()["ingest"].startswith("read-only: Disk full")
                for _ in range(4):
                    _assert_disk_full(c.post("/api/v1/datapoints", content=_body("d.x", 0, 50)))
                assert c.get("/api/v1/metricnames").status_code == 200

                pid = status["pid"]
                filler.unlink()
                t0 = time.monotonic()
                srv.wait_applied(30)
                t_backlog = time.monotonic() - t0
                assert _count(c, "disk.boot") == acked
                # A worker samples the free space every 100 ms: one that last looked before the
                # space came back may still refuse (507, nothing stored) until its next sample.
                deadline = time.monotonic() + 5
                while True:
                    r = c.post("/api/v1/datapoints", content=_body("disk.boot", acked, 500))
                    if r.status_code != 507 or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                assert r.status_code == 204, r.text
                status = _writer_status(srv)
                assert status["pid"] == pid and status["state"] == "running"
                assert "No space left on device" in status["last_error"]
                assert c.get("/health").status_code == 200
                assert "writer recovered after" in srv.log()
                print(f"\nstart-up on a full disk: backlog applied {t_backlog:.2f} s after freeing")
        finally:
            srv.stop()


def test_reserve_refuses_ingest_before_the_disk_is_full(tmp_path) -> None:
    env = {"KAIROSDB_DISK_MIN_FREE_MB": "12", "KAIROSDB_WRITER_INTERVAL_MS": "1000"}
    with small_fs(tmp_path / "data") as fs:
        srv = start_server(fs, env=env, workers=1)
        try:
            with srv.client() as c:
                r = c.post("/api/v1/datapoints", content=_body("disk.reserve", 0, 1000))
                assert r.status_code == 204, r.text
                filler = fill(fs, leave=8 * MB)  # under the 12 MB reserve, far from full
                time.sleep(0.15)  # past the free-space sampling interval
                r = c.post("/api/v1/datapoints", content=_body("disk.reserve", 1000, 1000))
                _assert_disk_full(r, reserve="12")
                assert free(fs) > 6 * MB  # refused with room to spare
                # The writer still has room: what was acknowledged gets applied.
                _until(lambda: _backlog(c) == 0, 20, "the backlog applied", srv)
                assert _count(c, "disk.reserve") == 1000
                h = c.get("/health").json()["checks"]["Disk"]
                assert h["min_free_bytes"] == 12 * MB and h["free_bytes"] < 12 * MB
                filler.unlink()
                time.sleep(0.15)
                r = c.post("/api/v1/datapoints", content=_body("disk.reserve", 1000, 1000))
                assert r.status_code == 204, r.text
                srv.wait_applied()
                assert _count(c, "disk.reserve") == 2000
        finally:
            srv.stop()


def _random_batch(metric: str, n: int, series: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    body = [
        {
            "name": metric,
            "tags": {"s": str(k)},
            "datapoints": [
                [int(t), float(v)] for t, v in zip(range(n), rng.random(n), strict=True)
            ],
        }
        for k in range(series)
    ]
    r = parse_datapoints(orjson.dumps(body))
    assert r.errors == []
    return r.batch


def _points(store: EmbeddedStore, metric: str) -> int:
    store.refresh()
    return sum(len(d.ts) for d in store.read(store.find_series(metric, {}), 0, 2**62))


def test_failed_apply_on_a_full_disk_leaves_a_consistent_store(tmp_path) -> None:
    """A write that meets ENOSPC midway (new series in series.log, a block, the manifest) is
    undone by reopening, as the writer does; nothing half-written stays or takes space."""
    with small_fs(tmp_path / "data", 4) as fs:
        w = EmbeddedStore(str(fs), writer=True)
        w.write(_random_batch("m.ok", 1000))
        filler = fill(fs)
        with pytest.raises(OSError) as e:
            w.write(_random_batch("m.new", 2000, series=50, seed=1), {"f.wal": 123})
        assert e.value.errno == errno.ENOSPC
        assert not os.path.exists(fs / "MANIFEST.tmp")
        assert os.listdir(fs / "segments") == ["000000000001.kblk"]
        w.close()
        w = EmbeddedStore(str(fs), writer=True)  # the writer's reopen after a failed step
        assert w.wal_positions == {} and w.metric_names() == ["m.ok"]
        filler.unlink()
        w.write(_random_batch("m.new", 2000, series=50, seed=1), {"f.wal": 123})
        reader = EmbeddedStore(str(fs))
        assert _points(reader, "m.new") == 100_000 and _points(reader, "m.ok") == 1000
        assert reader.wal_positions == {"f.wal": 123}


def test_compaction_waits_for_room_and_the_apply_goes_on(tmp_path, caplog) -> None:
    with small_fs(tmp_path / "data", 8) as fs:
        w = EmbeddedStore(str(fs), writer=True, fanout=2)
        w.write(_random_batch("m", 100_000))  # one level-0 block of ~0.8 MB of random doubles
        filler = fill(fs, leave=256 * 1024)
        with caplog.at_level(logging.WARNING, logger="kairos.store"):
            w.write(_random_batch("m", 10, seed=2), {"f.wal": 1})  # a run of 2 blocks is due
        assert "compaction postponed" in caplog.text
        assert [s["level"] for s in w._view.manifest["segments"]] == [0, 0]
        assert w.wal_positions == {"f.wal": 1} and _points(w, "m") == 100_000
        filler.unlink()
        w.write(_random_batch("m", 10, seed=3), {"f.wal": 2})
        assert [s["level"] for s in w._view.manifest["segments"]] == [1]  # the 3 merged
        assert _points(EmbeddedStore(str(fs)), "m") == 100_000
