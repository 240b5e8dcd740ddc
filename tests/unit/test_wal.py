"""The WAL: framing, CRCs, torn tails, corruption, and the writer's bookkeeping."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from kairos.errors import CorruptFile
from kairos.storage.wal import FILE_MAGIC, WalReader, WalWriter, backlog_bytes


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


def test_not_a_wal_file_is_reported_by_name(tmp_path) -> None:
    os.makedirs(tmp_path / "wal")
    bad = tmp_path / "wal" / "0001-1-1.wal"
    bad.write_bytes(b"GARBAGE!" + b"x" * 30)
    with pytest.raises(CorruptFile, match=r"0001-1-1\.wal"):
        WalReader(str(tmp_path)).poll()


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
