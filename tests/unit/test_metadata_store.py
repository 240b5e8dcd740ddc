"""The embedded metadata store: KairosDB's ServiceKeyStore semantics on one SQLite database."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from kairos.errors import CorruptFile
from kairos.storage._frame import encode_frame
from kairos.storage.embedded.metadata import EmbeddedMetadata


@pytest.fixture
def store(tmp_path):
    s = EmbeddedMetadata(str(tmp_path))
    yield s
    s.close()


def test_set_get_overwrite_delete(store) -> None:
    assert store.get_value("svc", "sk", "k") is None
    store.set_value("svc", "sk", "k", "v1")
    assert store.get_value("svc", "sk", "k") == "v1"
    store.set_value("svc", "sk", "k", "v2")
    assert store.get_value("svc", "sk", "k") == "v2"
    assert store.get_value("svc", "other", "k") is None
    assert store.get_value("other", "sk", "k") is None
    store.set_value("svc", "sk", "empty", "")
    assert store.get_value("svc", "sk", "empty") == ""
    store.delete_key("svc", "sk", "k")
    assert store.get_value("svc", "sk", "k") is None
    store.delete_key("svc", "sk", "missing")  # deleting nothing is fine, as in KairosDB
    assert store.list_keys("svc", "sk") == ["empty"]


def test_list_service_keys_one_entry_per_row_ordered_by_key(store) -> None:
    store.set_value("svc", "b", "k1", "x")
    store.set_value("svc", "b", "k2", "x")
    store.set_value("svc", "a", "k3", "x")
    store.set_value("svc", "a", "k1", "x")
    store.set_value("other", "z", "k0", "x")
    # H2's `ORDER BY key`: (k1,a) (k1,b) (k2,b) (k3,a).
    assert store.list_service_keys("svc") == ["a", "b", "b", "a"]
    assert store.list_service_keys("nothing") == []
    for key in ("k1", "k2"):
        store.delete_key("svc", "b", key)
    assert store.list_service_keys("svc") == ["a", "a"]


def test_list_keys_sorted_and_prefix(store) -> None:
    keys = ["b", "a", "ab", "abc", "a\u00e9", "\u00e9t\u00e9", "a\uffee", "a\U0001f600", "B"]
    for k in keys:
        store.set_value("svc", "sk", k, k.upper())
    # Code point order: Cassandra compares text as UTF-8 bytes.
    assert store.list_keys("svc", "sk") == sorted(keys)
    assert store.list_keys("svc", "sk", "") == sorted(keys)
    assert store.list_keys("svc", "sk", None) == sorted(keys)
    # [a, a + U+FFFF): a key 'a' + a character above U+FFFF falls outside, as on Cassandra.
    assert store.list_keys("svc", "sk", "a") == ["a", "ab", "abc", "a\u00e9", "a\uffee"]
    assert store.list_keys("svc", "sk", "ab") == ["ab", "abc"]
    assert store.list_keys("svc", "sk", "\u00e9") == ["\u00e9t\u00e9"]
    assert store.list_keys("svc", "sk", "z") == []
    assert store.list_keys("svc", "nope") == []


def test_two_instances_share_the_file(tmp_path) -> None:
    a, b = EmbeddedMetadata(str(tmp_path)), EmbeddedMetadata(str(tmp_path))
    try:
        a.set_value("svc", "sk", "k", "from a")
        assert b.get_value("svc", "sk", "k") == "from a"
        b.set_value("svc", "sk", "k2", "from b")  # b's write keeps a's
        assert a.list_keys("svc", "sk") == ["k", "k2"]
        for i in range(20):  # many quick rewrites: each one is seen
            a.set_value("svc", "sk", "k", f"v{i}")
            assert b.get_value("svc", "sk", "k") == f"v{i}"
        b.delete_key("svc", "sk", "k")
        assert a.get_value("svc", "sk", "k") is None
        assert a.list_keys("svc", "sk") == ["k2"]
    finally:
        a.close()
        b.close()


def test_entries_live_in_one_sqlite_database_in_wal_mode(tmp_path) -> None:
    s = EmbeddedMetadata(str(tmp_path))
    s.set_value("svc", "sk", "k", "v\u00e9")
    s.set_value("svc", "sk", "nul", "a\x00b")
    path = tmp_path / "metadata" / "metadata.sqlite"
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (1,)
        rows = db.execute("SELECT service, service_key, key, value FROM entries ORDER BY key")
        assert rows.fetchall() == [("svc", "sk", "k", "v\u00e9"), ("svc", "sk", "nul", "a\x00b")]
    finally:
        db.close()
    s.close()
    assert not (tmp_path / "metadata" / "metadata.json").exists()
    again = EmbeddedMetadata(str(tmp_path))
    assert again.get_value("svc", "sk", "k") == "v\u00e9"
    assert again.get_value("svc", "sk", "nul") == "a\x00b"
    again.close()


def _write_bytes() -> int:
    """Bytes this process has handed to write(2) and friends so far."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("wchar:")).split()[1])


def test_a_small_write_does_not_rewrite_the_other_values(tmp_path) -> None:
    s = EmbeddedMetadata(str(tmp_path))
    try:
        s.set_value("svc", "big", "k", "x" * (1 << 20))
        before = _write_bytes()
        for i in range(20):
            s.set_value("svc", "small", f"k{i}", "v")
        written = _write_bytes() - before
        # The legacy JSON file was rewritten whole by each set: over 20 MiB here.
        assert written < 2 << 20, f"{written} bytes written for 20 one-byte values"
        assert s.get_value("svc", "big", "k") == "x" * (1 << 20)
        assert s.list_keys("svc", "small") == sorted(f"k{i}" for i in range(20))
    finally:
        s.close()


def _writer(data_dir: str, n: int, name: str) -> None:
    s = EmbeddedMetadata(data_dir)
    for i in range(n):
        s.set_value("svc", name, f"k{i:03d}", f"{name}-{i}")
        assert s.get_value("svc", name, f"k{i:03d}") == f"{name}-{i}"
        s.list_service_keys("svc")
    s.close()


def test_processes_write_concurrently(tmp_path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 50, f"p{k}")) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    s = EmbeddedMetadata(str(tmp_path))
    try:
        for k in range(4):
            assert s.list_keys("svc", f"p{k}") == [f"k{i:03d}" for i in range(50)]
            assert s.get_value("svc", f"p{k}", "k049") == f"p{k}-49"
        assert len(s.list_service_keys("svc")) == 200
    finally:
        s.close()


def _legacy_file(tmp_path: Path, rows: list) -> Path:
    path = tmp_path / "metadata" / "metadata.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_frame(orjson.dumps({"version": 1, "entries": rows})))
    return path


def test_a_legacy_json_file_is_migrated_on_first_open(tmp_path) -> None:
    rows = [
        ["other", "z", "k0", "x", 5],
        ["svc", "a", "k1", "va1", 1],
        ["svc", "a", "k3", "va3", 2],
        ["svc", "b", "k1", "vb1", 3],
        ["svc", "b", "k2", "", 4],
    ]
    path = _legacy_file(tmp_path, rows)
    a, b = EmbeddedMetadata(str(tmp_path)), EmbeddedMetadata(str(tmp_path))
    try:
        assert a.list_service_keys("svc") == ["a", "b", "b", "a"]
        assert b.get_value("svc", "b", "k2") == ""  # the second process finds it migrated
        assert b.list_keys("svc", "a") == ["k1", "k3"]
        assert a.get_value("other", "z", "k0") == "x"
        assert not path.exists()
        assert path.with_name("metadata.json.migrated").exists()
        db = sqlite3.connect(tmp_path / "metadata" / "metadata.sqlite")
        mtimes = db.execute("SELECT mtime FROM entries ORDER BY mtime").fetchall()
        db.close()
        assert mtimes == [(1,), (2,), (3,), (4,), (5,)]
        a.set_value("svc", "a", "k1", "new")
    finally:
        a.close()
        b.close()
    again = EmbeddedMetadata(str(tmp_path))  # the renamed file is never read again
    assert again.get_value("svc", "a", "k1") == "new"
    again.close()


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # CRC mismatch
        lambda b: b[:-3],  # torn
        lambda b: b + b"junk",  # trailing bytes
        lambda b: b"",  # empty
        lambda b: encode_frame(b"not json"),  # a valid frame with a bad payload
        lambda b: encode_frame(b'{"version": 2, "entries": []}'),
    ],
)
def test_a_damaged_legacy_file_is_named_and_left_in_place(tmp_path, damage) -> None:
    path = _legacy_file(tmp_path, [["svc", "sk", "k", "v", 1]])
    path.write_bytes(damage(path.read_bytes()))
    fresh = EmbeddedMetadata(str(tmp_path))
    with pytest.raises(CorruptFile) as info:
        fresh.get_value("svc", "sk", "k")
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    with pytest.raises(CorruptFile):  # a writer does not paper over it either
        fresh.set_value("svc", "sk", "k", "new")
    fresh.close()
    assert path.exists()


def test_a_damaged_database_is_named(tmp_path) -> None:
    path = tmp_path / "metadata" / "metadata.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    fresh = EmbeddedMetadata(str(tmp_path))
    with pytest.raises(CorruptFile) as info:
        fresh.get_value("svc", "sk", "k")
    assert info.value.path == str(path)
    fresh.close()


def test_an_embedded_worker_never_imports_cassandra(tmp_path) -> None:
    """The worker's and the writer's entry points open an embedded store and its metadata
    without importing the Cassandra backend or the driver."""
    script = """
import sys
from kairos.app.state import WorkerState
from kairos.config import load
from kairos.storage import open_store

config = load(env={"KAIROSDB_DATA_DIR": sys.argv[1]})
writer = open_store(config, writer=True)
state = WorkerState.open(config)
state.metadata.set_value("svc", "sk", "k", "v")
assert state.metadata.get_value("svc", "sk", "k") == "v"
state.metadata.close()
print(sorted(m for m in sys.modules if m == "cassandra" or m.startswith("kairos.storage.cassandra")))
"""
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"
