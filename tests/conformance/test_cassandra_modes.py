"""The Cassandra cluster spec (spec §6.3): SECONDS and LEGACY row time units honoured on write
and read, and the unit a new keyspace settles on."""

from __future__ import annotations

import struct
import uuid

import orjson
import pytest

from kairos.config import load
from kairos.ingest.parser import parse_datapoints
from kairos.storage.cassandra import codec
from kairos.storage.cassandra.schema import statements
from kairos.storage.cassandra.store import CassandraStore

pytestmark = pytest.mark.cassandra

TS = 1_700_000_000_123


def _config(contact_points: str, tmp_path, keyspace: str, **env):
    return load(
        env={
            "KAIROSDB_DATASTORE": "cassandra",
            "KAIROSDB_CASSANDRA_CONTACT_POINTS": contact_points,
            "KAIROSDB_CASSANDRA_KEYSPACE": keyspace,
            "KAIROSDB_DATA_DIR": str(tmp_path / "data"),
            **env,
        }
    )


def _write(store: CassandraStore, points: list[list]) -> None:
    body = orjson.dumps([{"name": "m", "datapoints": points, "tags": {"h": "a"}}])
    store.write_many([parse_datapoints(body).batch])


def _read(store: CassandraStore) -> list:
    (d,) = store.read(store.find_series("m", {}), 0, 2**62)
    return list(zip(d.ts.tolist(), d.values.tolist(), strict=True))


def _columns(store: CassandraStore, row_time: int, data_type: str) -> list[int]:
    key = codec.encode_row_key("m", row_time, data_type, (("h", "a"),))
    rows = store.session.execute(
        f"SELECT column1 FROM {store.keyspace}.data_points WHERE key = %s", (key,)
    )
    return [struct.unpack(">I", r[0])[0] for r in rows]


def test_seconds_unit(cassandra_contact_points, tmp_path) -> None:
    ks = f"kairos_sec_{uuid.uuid4().hex[:8]}"
    store = CassandraStore(
        _config(cassandra_contact_points, tmp_path, ks, KAIROSDB_CASSANDRA_ROW_TIME_UNIT="SECONDS"),
        writer=True,
    )
    try:
        spec = dict(
            store.session.execute(
                f"SELECT name, value FROM {ks}.spec WHERE spec_type = 'cluster_config'"
            )
        )
        assert spec == {"row_time_unit": "SECONDS", "row_width": "1814400"}
        _write(store, [[TS, 1], [TS + 1876, 2]])
        # Columns are whole seconds past the row time; the row width is the number as ms.
        row = TS - TS % 1814400
        assert _columns(store, row, "kairos_long") == [
            (TS - row) // 1000,
            (TS + 1876 - row) // 1000,
        ]
        assert _read(store) == [
            (row + (TS - row) // 1000 * 1000, 1),
            (row + (TS + 1876 - row) // 1000 * 1000, 2),
        ]
    finally:
        store.close()


def test_existing_pre_13_data_means_legacy(cassandra_contact_points, tmp_path) -> None:
    ks = f"kairos_legacy_{uuid.uuid4().hex[:8]}"
    cfg = _config(cassandra_contact_points, tmp_path, ks)
    bootstrap = CassandraStore(cfg)  # a reader creates nothing
    s = bootstrap.session
    s.execute(
        f"CREATE KEYSPACE {ks} WITH REPLICATION = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    for cql in statements(ks, compact_storage=False):
        s.execute(cql)
    s.execute(
        f"INSERT INTO {ks}.string_index (key, column1, value) VALUES (%s, 'old', 0x00)",
        (b"metric_names",),
    )
    bootstrap.close()
    store = CassandraStore(cfg, writer=True)
    try:
        spec = dict(
            store.session.execute(
                f"SELECT name, value FROM {ks}.spec WHERE spec_type = 'cluster_config'"
            )
        )
        assert spec["row_time_unit"] == "LEGACY"
        _write(store, [[TS, 5], [TS + 1, 6]])
        row = TS - TS % codec.DEFAULT_ROW_WIDTH
        # New writes keep the type section; columns are shifted left, low bit 0.
        assert _columns(store, row, "kairos_long") == [(TS - row) << 1, (TS + 1 - row) << 1]
        assert _read(store) == [(TS, 5), (TS + 1, 6)]
        store.delete("m", lambda tags: True, TS + 1, TS + 1)
        assert _read(store) == [(TS, 5)]
    finally:
        store.close()


def test_series_maps_are_bounded(cassandra_contact_points, tmp_path, monkeypatch) -> None:
    """A query service keeps at most SERIES_CACHE series between queries; a series pushed out
    is found again by the read that needs it, with every point."""
    from kairos.storage.cassandra import index as index_mod

    monkeypatch.setattr(index_mod, "SERIES_CACHE", 2)
    ks = f"kairos_lru_{uuid.uuid4().hex[:8]}"
    store = CassandraStore(_config(cassandra_contact_points, tmp_path, ks), writer=True)
    try:
        body = orjson.dumps(
            [
                {"name": "m", "datapoints": [[TS, i], [TS + 5, i + 1]], "tags": {"h": str(i)}}
                for i in range(5)
            ]
        )
        store.write_many([parse_datapoints(body).batch])
        series = store.find_series("m", {})
        assert len(series) == 5
        assert len(store.index._infos) <= 2 and len(store.index._rows) <= 2
        got = {dict(d.info.tags)["h"]: d.values.tolist() for d in store.read(series, 0, 2**62)}
        assert got == {str(i): [i, i + 1] for i in range(5)}
        assert len(store.index._infos) <= 2 and len(store.index._rows) <= 2
    finally:
        store.close()
