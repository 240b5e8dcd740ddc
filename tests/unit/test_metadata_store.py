"""The embedded metadata store: KairosDB's ServiceKeyStore semantics on one crash-safe file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kairos.errors import CorruptFile
from kairos.storage._frame import encode_frame, iter_frames
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


def test_file_is_one_crc_frame_and_survives_reopen(tmp_path) -> None:
    s = EmbeddedMetadata(str(tmp_path))
    s.set_value("svc", "sk", "k", "v\u00e9")
    s.close()
    path = tmp_path / "metadata" / "metadata.json"
    frames = list(iter_frames(path.read_bytes()))
    assert len(frames) == 1 and frames[0][1] == path.stat().st_size
    assert b'"svc","sk","k","v\xc3\xa9"' in bytes(frames[0][2])
    assert not (tmp_path / "metadata" / "metadata.json.tmp").exists()
    again = EmbeddedMetadata(str(tmp_path))
    assert again.get_value("svc", "sk", "k") == "v\u00e9"
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
def test_corrupt_file_is_named(tmp_path, damage) -> None:
    s = EmbeddedMetadata(str(tmp_path))
    s.set_value("svc", "sk", "k", "v")
    s.close()
    path = os.path.join(tmp_path, "metadata", "metadata.json")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(damage(data))
    fresh = EmbeddedMetadata(str(tmp_path))
    with pytest.raises(CorruptFile) as info:
        fresh.get_value("svc", "sk", "k")
    assert info.value.path == path
    assert path in str(info.value)
    with pytest.raises(CorruptFile):  # a writer does not paper over it either
        fresh.set_value("svc", "sk", "k", "new")
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
