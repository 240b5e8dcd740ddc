"""The embedded store (first version): round trips, overwrites, compaction, recovery, TTL."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from kairos.errors import CorruptFile
from kairos.ingest.parser import parse_datapoints
from kairos.storage.embedded.store import EmbeddedStore


def batch(body: str):
    r = parse_datapoints(body.encode())
    assert r.errors == []
    return r.batch


def read_all(store: EmbeddedStore, metric: str, tags=None, start=-(2**62), end=2**62):
    series = store.find_series(metric, tags or {})
    return {
        tuple(d.info.tags): (d.ts.tolist(), list(d.values)) for d in store.read(series, start, end)
    }


def test_round_trip_every_kind(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True)
    w.write(
        batch(
            '[{"name":"m","datapoints":[[3,3],[1,1],[2,2.5],[4,"s"]],"tags":{"h":"a"}},'
            '{"name":"m","datapoints":[[1,10]],"tags":{"h":"b"}}]'
        )
    )
    r = EmbeddedStore(str(tmp_path))
    series = r.find_series("m", {})
    assert {(s.tags, s.kind) for s in series} == {
        ((("h", "a"),), 0),
        ((("h", "a"),), 1),
        ((("h", "a"),), 2),
        ((("h", "b"),), 0),
    }
    data = {(d.info.tags, d.info.kind): d for d in r.read(series, 0, 10)}
    assert data[((("h", "a"),), 0)].ts.tolist() == [1, 3]
    assert data[((("h", "a"),), 0)].values.tolist() == [1, 3]
    assert data[((("h", "a"),), 1)].values.dtype == np.float64
    assert data[((("h", "a"),), 2)].values == ["s"]
    assert r.find_series("m", {"h": ["b"]})[0].tags == (("h", "b"),)
    assert r.metric_names() == ["m"]


def test_time_range_is_inclusive(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True)
    w.write(batch('[{"name":"m","datapoints":[[1,1],[2,2],[3,3],[4,4]],"tags":{"h":"a"}}]'))
    assert read_all(w, "m", start=2, end=3)[(("h", "a"),)][0] == [2, 3]


def test_overwrite_newer_segment_wins_and_survives_compaction(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100)
    w.write(batch('[{"name":"m","datapoints":[[1,1],[2,2]],"tags":{"h":"a"}}]'))
    w.write(batch('[{"name":"m","datapoints":[[2,20],[3,30]],"tags":{"h":"a"}}]'))
    assert read_all(w, "m")[(("h", "a"),)] == ([1, 2, 3], [1, 20, 30])
    w.compact()
    assert len(w._view.manifest["segments"]) == 1
    r = EmbeddedStore(str(tmp_path))
    assert read_all(r, "m")[(("h", "a"),)] == ([1, 2, 3], [1, 20, 30])
    assert sorted(os.listdir(tmp_path / "segments")) == [w._view.manifest["segments"][0]["name"]]


def test_reader_sees_new_data_after_refresh(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True)
    r = EmbeddedStore(str(tmp_path))
    assert r.metric_names() == []
    w.write(batch('[{"name":"m","datapoints":[[1,1]],"tags":{"h":"a"}}]'))
    r.refresh()
    assert r.metric_names() == ["m"]


def test_reader_survives_compaction_between_manifest_and_read(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100)
    w.write(batch('[{"name":"m","datapoints":[[1,1]],"tags":{"h":"a"}}]'))
    w.write(batch('[{"name":"m","datapoints":[[2,2]],"tags":{"h":"a"}}]'))
    r = EmbeddedStore(str(tmp_path))  # knows the two segments, has opened neither
    w.compact()
    assert read_all(r, "m")[(("h", "a"),)] == ([1, 2], [1, 2])


def test_ttl_expires_points(tmp_path, monkeypatch) -> None:
    import kairos.storage.embedded.store as mod

    now = [1_000_000]
    monkeypatch.setattr(mod, "_now_ms", lambda: now[0])
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100)
    w.write(
        batch(
            '[{"name":"m","ttl":10,"datapoints":[[1,1]],"tags":{"h":"a"}},'
            '{"name":"m","datapoints":[[2,2]],"tags":{"h":"a"}}]'
        )
    )
    assert read_all(w, "m")[(("h", "a"),)] == ([1, 2], [1, 2])
    now[0] += 10_001
    assert read_all(w, "m")[(("h", "a"),)] == ([2], [2])


def test_default_ttl_applies_to_ttl_zero(tmp_path, monkeypatch) -> None:
    import kairos.storage.embedded.store as mod

    now = [1_000_000]
    monkeypatch.setattr(mod, "_now_ms", lambda: now[0])
    w = EmbeddedStore(str(tmp_path), writer=True, default_ttl=5)
    w.write(batch('[{"name":"m","datapoints":[[1,1]],"tags":{"h":"a"}}]'))
    now[0] += 5_001
    assert read_all(w, "m") == {}


def test_checkpoint_positions_are_atomic_with_data(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True)
    w.write(batch('[{"name":"m","datapoints":[[1,1]],"tags":{"h":"a"}}]'), {"a.wal": 123})
    assert EmbeddedStore(str(tmp_path), writer=True).wal_positions == {"a.wal": 123}


def test_recovery_drops_orphans_and_unreferenced_series(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True)
    w.write(batch('[{"name":"m","datapoints":[[1,1]],"tags":{"h":"a"}}]'))
    (tmp_path / "segments" / "999999999999.kblk").write_bytes(b"half-written")
    with open(tmp_path / "series.log", "ab") as f:
        f.write(b"\x00" * 7)  # a torn append of a new series
    w2 = EmbeddedStore(str(tmp_path), writer=True)
    assert not (tmp_path / "segments" / "999999999999.kblk").exists()
    w2.write(batch('[{"name":"n","datapoints":[[1,1]],"tags":{"h":"a"}}]'))
    r = EmbeddedStore(str(tmp_path))
    assert r.metric_names() == ["m", "n"]


def _block_path(tmp_path, w):
    return tmp_path / "segments" / w._view.manifest["segments"][0]["name"]


def test_bit_flip_in_a_chunk_is_reported_by_name_when_read(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True)
    w.write(batch('[{"name":"m","datapoints":[[1,1],[2,2],[3,3]],"tags":{"h":"a"}}]'))
    seg = _block_path(tmp_path, w)
    data = bytearray(seg.read_bytes())
    data[10] ^= 0x01  # inside the first chunk (after the 8-byte header)
    seg.write_bytes(bytes(data))
    r = EmbeddedStore(str(tmp_path))  # the index is intact: the block opens
    with pytest.raises(CorruptFile, match=seg.name) as e:
        read_all(r, "m")
    assert "CRC" in str(e.value)


@pytest.mark.parametrize("where", ["index", "truncated", "missing"])
def test_damaged_block_is_reported_by_name_at_start(tmp_path, where) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True)
    w.write(batch('[{"name":"m","datapoints":[[1,1]],"tags":{"h":"a"}}]'))
    seg = _block_path(tmp_path, w)
    data = bytearray(seg.read_bytes())
    if where == "index":
        data[-40] ^= 0xFF  # inside the index: its CRC no longer matches
        seg.write_bytes(bytes(data))
    elif where == "truncated":
        seg.write_bytes(bytes(data[:-5]))
    else:
        seg.unlink()
    with pytest.raises(CorruptFile, match=seg.name):
        EmbeddedStore(str(tmp_path), writer=True)


def test_corrupt_manifest_is_reported_by_name(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True)
    w.write(batch('[{"name":"m","datapoints":[[1,1]],"tags":{"h":"a"}}]'))
    m = tmp_path / "MANIFEST"
    data = bytearray(m.read_bytes())
    data[-2] ^= 0xFF
    m.write_bytes(bytes(data))
    with pytest.raises(CorruptFile, match="MANIFEST"):
        EmbeddedStore(str(tmp_path))


def test_metric_names_java_order_and_prefix(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True)
    w.write(
        batch(
            '[{"name":"b","datapoints":[[1,1]],"tags":{"h":"a"}},{"name":"B","datapoints":[[1,1]],"tags":{"h":"a"}},'
            '{"name":"ab","datapoints":[[1,1]],"tags":{"h":"a"}}]'
        )
    )
    assert w.metric_names() == ["B", "ab", "b"]
    assert w.metric_names("a") == ["ab"]


def test_size_tiered_compaction_keeps_newest_values(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=3)
    for i in range(10):
        w.write(batch(f'[{{"name":"m","datapoints":[[1,{i}],[{i + 10},{i}]],"tags":{{"h":"a"}}}}]'))
    levels = [s["level"] for s in w._view.manifest["segments"]]
    assert levels == sorted(levels, reverse=True)  # older, bigger segments first
    assert len(levels) < 10
    ts, vals = read_all(EmbeddedStore(str(tmp_path)), "m")[(("h", "a"),)]
    assert ts == [1, *range(10, 20)]
    assert vals == [9, *range(10)]
    assert len(os.listdir(tmp_path / "segments")) == len(levels)


def test_delete_hides_points_in_range_only_for_matching_series(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100)
    w.write(
        batch(
            '[{"name":"m","datapoints":[[1,1],[2,2],[3,3]],"tags":{"h":"a"}},'
            '{"name":"m","datapoints":[[1,10],[2,20]],"tags":{"h":"b"}}]'
        )
    )
    assert w.delete("m", lambda tags: tags.get("h") == "a", 2, 2) == 1
    r = EmbeddedStore(str(tmp_path))
    assert read_all(r, "m") == {(("h", "a"),): ([1, 3], [1, 3]), (("h", "b"),): ([1, 2], [10, 20])}
    # Points written after the delete are not affected by it.
    w.write(batch('[{"name":"m","datapoints":[[2,200]],"tags":{"h":"a"}}]'))
    r.refresh()
    assert read_all(r, "m")[(("h", "a"),)] == ([1, 2, 3], [1, 200, 3])


def test_delete_everything_removes_the_name_until_new_data(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100)
    w.write(
        batch(
            '[{"name":"gone","datapoints":[[1,1]],"tags":{"h":"a"}},{"name":"kept","datapoints":[[1,1]],"tags":{"h":"a"}}]'
        )
    )
    w.delete("gone", lambda tags: True, -(2**63), 2**63 - 1)
    r = EmbeddedStore(str(tmp_path))
    assert r.metric_names() == ["kept"]
    assert r.find_series("gone", {}) == []
    w.write(batch('[{"name":"gone","datapoints":[[5,5]],"tags":{"h":"a"}}]'))
    r.refresh()
    assert r.metric_names() == ["gone", "kept"]
    assert read_all(r, "gone") == {(("h", "a"),): ([5], [5])}


def test_compaction_drops_deleted_rows_and_forgets_tombstones(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100)
    w.write(batch('[{"name":"m","datapoints":[[1,1],[2,2]],"tags":{"h":"a"}}]'))
    w.write(batch('[{"name":"m","datapoints":[[3,3]],"tags":{"h":"a"}}]'))
    w.delete("m", lambda tags: True, 2, 3)
    w.write(batch('[{"name":"m","datapoints":[[3,30]],"tags":{"h":"a"}}]'))
    w.compact()
    assert w._view.manifest["tombstones"] == []
    assert w._view.manifest["segments"][0]["rows"] == 2
    assert read_all(EmbeddedStore(str(tmp_path)), "m")[(("h", "a"),)] == ([1, 3], [1, 30])


def test_postings_intersect_tag_filters(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True)
    w.write(
        batch(
            '[{"name":"m","datapoints":[[1,1]],"tags":{"host":"a","dc":"x"}},'
            '{"name":"m","datapoints":[[1,2]],"tags":{"host":"b","dc":"x"}},'
            '{"name":"m","datapoints":[[1,3]],"tags":{"host":"a","dc":"y"}},'
            '{"name":"n","datapoints":[[1,4]],"tags":{"host":"a","dc":"x"}}]'
        )
    )
    r = EmbeddedStore(str(tmp_path))

    def tags(**filters):
        return sorted(s.tags for s in r.find_series("m", {k: v for k, v in filters.items()}))

    assert tags(host=["a"]) == [(("dc", "x"), ("host", "a")), (("dc", "y"), ("host", "a"))]
    assert tags(host=["a", "b"], dc=["x"]) == [
        (("dc", "x"), ("host", "a")),
        (("dc", "x"), ("host", "b")),
    ]
    assert tags(host=["a"], dc=["z"]) == []
    assert tags(nope=["a"]) == []
    assert len(tags()) == 3


def test_retention_hides_old_points_and_compaction_drops_them(tmp_path, monkeypatch) -> None:
    import kairos.storage.embedded.store as store_mod

    now = 10_000_000
    monkeypatch.setattr(store_mod, "_now_ms", lambda: now)
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100, retention=60)
    w.write(batch('[{"name":"m","datapoints":[[9000000,1],[9950000,2]],"tags":{"h":"a"}}]'))
    w.write(batch('[{"name":"m","datapoints":[[9990000,3]],"tags":{"h":"a"}}]'))
    assert read_all(w, "m")[(("h", "a"),)] == ([9950000, 9990000], [2, 3])
    w.compact()
    assert w._view.manifest["segments"][0]["rows"] == 2


def test_strings_histograms_and_ttls_survive_compaction(tmp_path) -> None:
    # 2 points per merge step: each series (3 points) is merged in time windows.
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100, compaction_points=2)
    hist = '{"boundaries":[1,2],"counts":[0,3,1]}'
    for i in range(3):
        w.write(
            batch(
                f'[{{"name":"m","datapoints":[[{i},"s{i}"]],"tags":{{"h":"a"}}}},'
                f'{{"name":"m","type":"histogram","datapoints":[[{i},{hist}]],"tags":{{"h":"b"}}}},'
                f'{{"name":"m","datapoints":[[{i},{i}]],"tags":{{"h":"c"}},"ttl":3600}},'
                f'{{"name":"m","datapoints":[[{i},{i}.5]],"tags":{{"h":"d"}}}}]'
            )
        )
    before = read_all(w, "m")
    w.compact()
    assert len(w._view.manifest["segments"]) == 1
    after = read_all(EmbeddedStore(str(tmp_path)), "m")
    assert after == before
    assert after[(("h", "a"),)] == ([0, 1, 2], ["s0", "s1", "s2"])
    assert after[(("h", "c"),)] == ([0, 1, 2], [0, 1, 2])
    assert after[(("h", "d"),)][1] == [0.5, 1.5, 2.5]


def test_converts_a_version_1_store(tmp_path) -> None:
    import orjson
    import pyarrow as pa

    from kairos.storage._frame import encode_frame

    seg = tmp_path / "segments"
    seg.mkdir()
    schema = pa.schema(
        [
            ("series", pa.int32()),
            ("ts", pa.int64()),
            ("value", pa.int64()),
            ("expires", pa.int64()),
            ("obj", pa.binary()),
        ]
    )
    table = pa.table(
        [
            pa.array([0, 0, 1], pa.int32()),
            pa.array([1, 2, 1]),
            pa.array([5, 6, 0]),
            pa.array([0, 0, 0]),
            pa.array([None, None, b"txt"], pa.binary()),
        ],
        schema=schema,
    )
    with pa.OSFile(str(seg / "000000000001.arrow"), "wb") as f, pa.ipc.new_file(f, schema) as wr:
        wr.write_table(table)
    (tmp_path / "series.log").write_bytes(
        encode_frame(orjson.dumps(["m", ["h", "a"], 0]))
        + encode_frame(orjson.dumps(["m", ["h", "b"], 2]))
    )
    size = (seg / "000000000001.arrow").stat().st_size
    manifest = {
        "generation": 3,
        "series_count": 2,
        "next_segment": 2,
        "wal": {"x.wal": 9},
        "segments": [
            {
                "name": "000000000001.arrow",
                "rows": 3,
                "min_ts": 1,
                "max_ts": 2,
                "size": size,
                "crc": 0,
                "level": 0,
            }
        ],
        "tombstones": [],
        "dead_series": [],
    }
    (tmp_path / "MANIFEST").write_bytes(encode_frame(orjson.dumps(manifest)))
    w = EmbeddedStore(str(tmp_path), writer=True)
    assert os.listdir(seg) == ["000000000001.kblk"]
    assert w.wal_positions == {"x.wal": 9}
    got = read_all(EmbeddedStore(str(tmp_path)), "m")
    assert got == {(("h", "a"),): ([1, 2], [5, 6]), (("h", "b"),): ([1], ["txt"])}


@pytest.mark.parametrize("seed", range(6))
def test_read_equals_the_merged_reference(tmp_path, seed) -> None:
    """The read path (chunks of all blocks decoded together, each series a slice; overlapping
    series merged) gives what merging every series block by block gives: random writes of
    longs, doubles and strings over several blocks, some rewriting points, some with a TTL,
    some sharing their timestamps, deletes, and random ranges cutting chunks."""
    import json

    rng = np.random.default_rng(seed)
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100)
    for round_ in range(6):
        body = []
        grid = (round_ * 1000 + np.arange(0, 1000, 10)).tolist()
        for h in range(8):
            lo = int(rng.integers(0, 5000)) if rng.random() < 0.3 else round_ * 1000
            n = int(rng.integers(1, 300))
            ts = np.unique(lo + rng.integers(0, 1000, n)).tolist()
            if h >= 5:  # sampled at the same instants: one timestamp array for all of them
                ts = grid
            if h == 4:
                vals = [f"s{int(v)}" for v in rng.integers(0, 9, len(ts))]
            elif h % 2:
                vals = rng.integers(-50, 50, len(ts)).tolist()
            else:
                vals = np.round(rng.normal(0, 10, len(ts)), 2).tolist()
            obj = {
                "name": "m",
                "datapoints": [list(p) for p in zip(ts, vals, strict=True)],
                "tags": {"h": str(h)},
            }
            if h == 3 and round_ == 2:
                obj["ttl"] = 3600  # chunks with expiry times: the merged path
            body.append(obj)
        w.write(batch(json.dumps(body)))
        if rng.random() < 0.4:
            a = int(rng.integers(0, 6000))
            victim = str(int(rng.integers(0, 8)))
            w.delete("m", lambda tags, v=victim: tags["h"] == v, a, a + int(rng.integers(0, 800)))
    r = EmbeddedStore(str(tmp_path))
    series = r.find_series("m", {})
    for _ in range(8):
        a = int(rng.integers(-100, 6000))
        b = a + int(rng.integers(0, 3000))
        got = {d.info.sid: (d.ts.tolist(), list(d.values)) for d in r.read(series, a, b)}
        now = time.time_ns() // 1_000_000
        ref = r._reader.read_merged(np.array([s.sid for s in series], np.int64), a, b, now)
        kinds = {s.sid: s.kind for s in series}
        want = {}
        for sid, (ts, vals) in ref.items():
            if kinds[sid] == 0:
                vals = vals.tolist()
            elif kinds[sid] == 1:
                vals = vals.view(np.float64).tolist()
            else:
                vals = [o.decode() for o in vals]
            want[sid] = (ts.tolist(), vals)
        assert got == want


def test_series_sampled_at_the_same_instants_share_one_timestamp_array(tmp_path) -> None:
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100)
    pts = lambda k: ",".join(f"[{t},{t // 10 + k}]" for t in range(0, 100, 10))  # noqa: E731
    w.write(
        batch(
            "["
            + ",".join(
                f'{{"name":"m","datapoints":[{pts(k)}],"tags":{{"h":"{k}"}}}}' for k in range(4)
            )
            + "]"
        )
    )
    assert w.delete("m", lambda tags: tags["h"] == "2", 30, 40) == 1  # this one alone
    r = EmbeddedStore(str(tmp_path))
    series = r.find_series("m", {})
    got = {dict(d.info.tags)["h"]: d for d in r.read(series, 0, 10**6)}
    assert got["0"].ts is got["1"].ts is got["3"].ts  # decoded once, read-only
    assert not got["0"].ts.flags.writeable
    assert got["0"].ts.tolist() == list(range(0, 100, 10))
    assert got["3"].values.tolist() == [t // 10 + 3 for t in range(0, 100, 10)]
    assert got["2"].ts.tolist() == [0, 10, 20, 50, 60, 70, 80, 90]
    assert got["2"].values.tolist() == [2, 3, 4, 7, 8, 9, 10, 11]
    cut = {dict(d.info.tags)["h"]: d for d in r.read(series, 15, 55)}  # cuts every series
    assert cut["1"].ts.tolist() == [20, 30, 40, 50] and cut["1"].values.tolist() == [3, 4, 5, 6]
    assert cut["2"].ts.tolist() == [20, 50]


@pytest.mark.parametrize("max_points", [1, 7, 10_000])
def test_compaction_in_bounded_steps_keeps_the_newest_of_every_point(tmp_path, max_points) -> None:
    """Runs of series, single series cut in time windows, and overwrites across blocks."""
    import random

    import orjson

    rng = random.Random(max_points)
    w = EmbeddedStore(str(tmp_path), writer=True, fanout=100, compaction_points=max_points)
    expected: dict[tuple, dict[int, int]] = {}
    for blk in range(5):
        body = []
        for h in range(6):
            pts = {rng.randrange(0, 9_000 if h == 0 else 60): blk * 1000 + i for i in range(40)}
            if h == 0:  # one big series: several chunks per block
                pts |= {t: blk for t in range(blk * 1000, blk * 1000 + 5000)}
            body.append({"name": "m", "tags": {"h": str(h)}, "datapoints": sorted(pts.items())})
            expected.setdefault((("h", str(h)),), {}).update(pts)
        w.write(batch(orjson.dumps(body).decode()))
    w.compact()
    assert len(w._view.manifest["segments"]) == 1
    got = read_all(EmbeddedStore(str(tmp_path)), "m")
    want = {k: (sorted(v), [v[t] for t in sorted(v)]) for k, v in expected.items()}
    assert got == want
