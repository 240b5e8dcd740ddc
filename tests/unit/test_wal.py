"""The WAL: framing, CRCs, torn tails, corruption, and the writer's bookkeeping."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from kairos.storage.wal import (
    FILE_MAGIC,
    MIN_READ_BYTES,
    WalReader,
    WalWriter,
    backlog_bytes,
    quarantined_files,
)


def _payloads(n: int) -> list[bytes]:
    return [f"record-{i}".encode() * (i + 1) for i in range(n)]


def test_round_trip_and_commit_deletes_finished_files(tmp_path) -> None:
    w = WalWriter(str(tmp_path))
    for p in _payloads(5):
        w.append(p, sync=True)
    r = WalReader(str(tmp_path))
    got, pos, finished = r.poll()
    assert got == _payloads(5)
    assert finished == []  # the writer still holds its file
    r.commit(pos, finished)
    assert backlog_bytes(r.dir, r.positions) == 0
    w.append(b"more")
    assert backlog_bytes(r.dir, r.positions) > 0
    w.close()
    got, pos, finished = r.poll()
    assert got == [b"more"]
    assert finished == [os.path.basename(w.path)]
    r.commit(pos, finished)
    assert os.listdir(r.dir) == []


def test_rotation_releases_old_file(tmp_path) -> None:
    w = WalWriter(str(tmp_path), segment_bytes=200)
    for p in _payloads(6):
        w.append(p)
    r = WalReader(str(tmp_path))
    got, _pos, finished = r.poll()
    assert got == _payloads(6)
    assert len(r.files()) > 1
    assert len(finished) == len(r.files()) - 1
    w.close()


def test_torn_tail_is_truncated_and_logged(tmp_path, caplog) -> None:
    w = WalWriter(str(tmp_path))
    for p in _payloads(3):
        w.append(p)
    path = w.path
    w.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 5)  # the last record lost its end, as after a crash mid-write
    r = WalReader(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="kairos.wal"):
        got, pos, _finished = r.poll()
    assert got == _payloads(2)
    assert "torn record" in caplog.text and os.path.basename(path) in caplog.text
    assert os.path.getsize(path) == pos[os.path.basename(path)]
    assert r.repaired == [path]


def test_bit_flip_in_middle_skips_only_that_record(tmp_path, caplog) -> None:
    w = WalWriter(str(tmp_path))
    for p in _payloads(3):
        w.append(p)
    path = w.path
    w.close()
    data = bytearray(Path(path).read_bytes())
    first_payload_at = len(FILE_MAGIC) + 12
    data[first_payload_at + 2] ^= 0x40
    Path(path).write_bytes(bytes(data))
    r = WalReader(str(tmp_path))
    with caplog.at_level(logging.ERROR, logger="kairos.wal"):
        got, _, _ = r.poll()
    assert got == _payloads(3)[1:]
    assert "corrupt record" in caplog.text and os.path.basename(path) in caplog.text


def test_bit_flip_in_last_record_of_finished_file_is_a_torn_tail(tmp_path, caplog) -> None:
    w = WalWriter(str(tmp_path))
    for p in _payloads(2):
        w.append(p)
    path = w.path
    w.close()
    data = bytearray(Path(path).read_bytes())
    data[-1] ^= 1
    Path(path).write_bytes(bytes(data))
    r = WalReader(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="kairos.wal"):
        got, _, _ = r.poll()
    assert got == _payloads(1)
    assert "CRC mismatch" in caplog.text


def test_active_file_partial_record_is_not_truncated(tmp_path) -> None:
    w = WalWriter(str(tmp_path))
    w.append(b"complete")
    with open(w.path, "ab") as f:
        f.write(b"\x46\x43\x52\x4b\x10\x00")  # a frame header still being written
    r = WalReader(str(tmp_path))
    got, _pos, finished = r.poll()
    assert got == [b"complete"]
    assert finished == []
    assert r.repaired == []
    w.close()


def test_bad_header_quarantines_the_finished_file_and_reads_the_others(tmp_path, caplog) -> None:
    good = WalWriter(str(tmp_path))
    good.append(b"good")
    good.close()
    bad = tmp_path / "wal" / "0001-1-1.wal"
    bad.write_bytes(b"GARBAGE!" + b"x" * 30)
    r = WalReader(str(tmp_path))
    with caplog.at_level(logging.ERROR, "kairos.wal"):
        got, pos, finished = r.poll()
    assert got == [b"good"]
    assert finished == [os.path.basename(good.path)]
    assert "0001-1-1.wal" not in pos
    assert r.quarantined == ["0001-1-1.wal"]
    assert not bad.exists()
    assert (tmp_path / "wal" / "quarantine" / "0001-1-1.wal").read_bytes()[:8] == b"GARBAGE!"
    assert quarantined_files(r.dir) == [
        {
            "name": "0001-1-1.wal",
            "reason": "bad header b'GARBAGE!' (expected b'KAIROSW1'); 30 bytes after it not "
            "applied",
        }
    ]
    assert "0001-1-1.wal: bad header" in caplog.text
    r.commit(pos, finished)
    assert backlog_bytes(r.dir, r.positions) == 0
    assert r.files() == []


def test_bad_header_of_a_live_file_is_skipped_until_its_worker_releases_it(tmp_path) -> None:
    w = WalWriter(str(tmp_path))
    w.append(b"lost")
    with open(w.path, "r+b") as f:
        f.write(b"GARBAGE!")
    r = WalReader(str(tmp_path))
    assert r.poll() == ([], {}, [])
    assert r.quarantined == []
    assert os.path.exists(w.path)
    w.close()
    assert r.poll() == ([], {}, [])
    assert r.quarantined == [os.path.basename(w.path)]


def test_file_shorter_than_its_header_is_a_torn_creation(tmp_path) -> None:
    os.makedirs(tmp_path / "wal")
    (tmp_path / "wal" / "0001-1-1.wal").write_bytes(b"KAIR")
    r = WalReader(str(tmp_path))
    got, _pos, finished = r.poll()
    assert (got, finished) == ([], ["0001-1-1.wal"])
    assert r.quarantined == []


def test_poll_reads_a_slice_at_a_time_and_finishes_the_file_at_its_end(tmp_path) -> None:
    payloads = [bytes([i]) * 300_000 for i in range(10)]  # 3 MB in 300 kB records
    w = WalWriter(str(tmp_path))
    for p in payloads:
        w.append(p)
    w.close()
    r = WalReader(str(tmp_path))
    got: list[bytes] = []
    polls = 0
    while True:
        batch, pos, finished = r.poll(max_bytes=1)  # below MIN_READ_BYTES: 1 MiB slices
        got += batch
        polls += 1
        r.commit(pos, finished)
        if finished:
            break
        assert batch and sum(map(len, batch)) <= MIN_READ_BYTES
    assert got == payloads
    assert polls >= 3
    assert r.files() == [] and r.repaired == []


def test_poll_reads_a_record_larger_than_a_slice_whole(tmp_path) -> None:
    payloads = [b"a" * 10, b"b" * (3 * MIN_READ_BYTES), b"c" * 10]
    w = WalWriter(str(tmp_path))
    for p in payloads:
        w.append(p)
    w.close()
    r = WalReader(str(tmp_path))
    got: list[bytes] = []
    for _ in range(5):
        batch, pos, finished = r.poll(max_bytes=1)
        got += batch
        r.commit(pos, finished)
    assert got == payloads
    assert r.files() == [] and r.repaired == []


def test_corrupt_record_after_a_slice_is_skipped(tmp_path, caplog) -> None:
    payloads = [bytes([i]) * 400_000 for i in range(6)]
    w = WalWriter(str(tmp_path))
    for p in payloads:
        w.append(p)
    path = w.path
    w.close()
    frame = 12 + 400_000
    with open(path, "r+b") as f:  # flip a byte in the payload of the fourth record
        f.seek(len(FILE_MAGIC) + 3 * frame + 100)
        f.write(b"\xff")
    r = WalReader(str(tmp_path))
    got: list[bytes] = []
    with caplog.at_level(logging.ERROR, "kairos.wal"):
        for _ in range(6):
            batch, pos, finished = r.poll(max_bytes=1)
            got += batch
            r.commit(pos, finished)
    assert got == payloads[:3] + payloads[4:]
    assert "corrupt record" in caplog.text
    assert r.files() == []


@pytest.mark.parametrize("rotate", [False, True])
def test_the_writer_never_sees_a_new_file_before_it_is_locked(
    tmp_path, monkeypatch, rotate
) -> None:
    """A writer polling while a worker creates its WAL file must not take the new, still
    unlocked, empty file for a finished one and delete it: the worker's appends (and its
    sync acknowledgements) would then go to an unlinked file.  Found by the kill -9 test."""
    import fcntl as real_fcntl

    import kairos.storage.wal as wal_mod

    reader = WalReader(str(tmp_path))
    deleted: list[str] = []
    real_flock = real_fcntl.flock

    def flock_after_a_poll(fd, op):  # the writer's poll lands in the creation window
        if op & real_fcntl.LOCK_EX:
            _, positions, finished = reader.poll()
            reader.commit(positions, finished)
            deleted.extend(finished)
        return real_flock(fd, op)

    w = WalWriter(str(tmp_path), segment_bytes=64) if rotate else None
    if w is not None:
        w.append(b"first")
    monkeypatch.setattr(wal_mod.fcntl, "flock", flock_after_a_poll)
    if w is None:
        w = WalWriter(str(tmp_path))
    w.append(b"x" * 100, sync=True)  # with rotate: a new file is made for it
    monkeypatch.undo()
    assert os.path.exists(w.path)
    payloads, _, _ = reader.poll()
    assert b"x" * 100 in payloads
    w.close()


def test_a_file_left_in_creation_by_a_dead_worker_is_removed(tmp_path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)  # fmt: skip
    reader = WalReader(str(tmp_path))
    wal = tmp_path / "wal"
    abandoned = wal / f"00000000000000000001-{int(dead.stdout)}-1.wal.tmp"
    abandoned.write_bytes(b"")
    mine = wal / f"00000000000000000002-{os.getpid()}-1.wal.tmp"  # in creation: kept
    mine.write_bytes(b"")
    assert reader.files() == []
    assert not abandoned.exists() and mine.exists()
