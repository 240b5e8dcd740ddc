"""Kairos on a real Cassandra, over HTTP: KairosDB's own black-box cases, and byte-level
interoperability with the keyspace Java KairosDB reads and writes (spec §6)."""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.cassandra_support import connect
from tests.conftest import Server, start_server
from tests.integration.test_kairosdb_cases import CASES, run_case

pytestmark = [pytest.mark.integration, pytest.mark.cassandra]

W = 1814400000


@pytest.fixture(scope="module")
def keyspace() -> str:
    return f"kairos_http_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def cserver(cassandra_contact_points, keyspace, tmp_path_factory) -> Iterator[Server]:
    env = {
        "KAIROSDB_DATASTORE": "cassandra",
        "KAIROSDB_CASSANDRA_CONTACT_POINTS": cassandra_contact_points,
        "KAIROSDB_CASSANDRA_KEYSPACE": keyspace,
    }
    srv = start_server(tmp_path_factory.mktemp("kairos-cassandra") / "data", env=env)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def session(cassandra_contact_points, keyspace, cserver):
    cluster = connect(cassandra_contact_points)
    s = cluster.connect(keyspace)
    yield s
    cluster.shutdown()


@pytest.mark.parametrize("case", CASES)
def test_kairosdb_case_on_cassandra(cserver, kairos_fixtures, case) -> None:
    with cserver.client() as c:
        run_case(cserver, c, kairos_fixtures, case)


# -- what Java KairosDB wrote, Kairos reads ---------------------------------------------------


def _key(metric: str, row_time: int, data_type: str | None, tag_string: str) -> bytes:
    """Spec §6.4, written out independently of Kairos's codec."""
    out = metric.encode() + b"\x00" + struct.pack(">q", row_time)
    if data_type is not None:
        out += b"\x00" + bytes([len(data_type)]) + data_type.encode()
    return out + tag_string.encode()


def test_reads_a_keyspace_written_by_java_kairosdb(cserver, session) -> None:
    ts = 1700000000123
    row = 1698278400000
    long_key = bytes.fromhex(
        "6370752e6c6f6164000000018b6947e000000b6b6169726f735f6c6f6e67"
        "64633d613d3a623a686f73743d736572766572313a"
    )
    assert long_key == _key("cpu.load", row, "kairos_long", "dc=a=:b:host=server1:")
    double_key = _key("cpu.load", row, "kairos_double", "dc=a=:b:host=server1:")
    ins = "INSERT INTO data_points (key, column1, value) VALUES (%s, %s, %s) USING TIMESTAMP %s"
    wt = int(time.time() * 1000)
    session.execute(ins, (long_key, bytes.fromhex("669d887b"), bytes.fromhex("f601"), wt))
    session.execute(ins, (long_key, struct.pack(">I", ts + 1 - row), bytes.fromhex("01"), wt))
    session.execute(ins, (double_key, struct.pack(">I", 5), bytes.fromhex("402a666666666666"), wt))
    for data_type in ("kairos_long", "kairos_double"):
        session.execute(
            "INSERT INTO row_keys (metric, table_name, row_time, data_type, tags, mtime) "
            "VALUES ('cpu.load', 'data_points', %s, %s, %s, now())",
            (row, data_type, {"host": "server1", "dc": "a:b"}),
        )
    session.execute(
        "INSERT INTO row_key_time_index (metric, table_name, row_time) "
        "VALUES ('cpu.load', 'data_points', %s)",
        (row,),
    )
    session.execute(
        "INSERT INTO string_index (key, column1, value) VALUES (%s, 'cpu.load', 0x00)",
        (b"metric_names",),
    )
    # A pre-0.9.4 row: no type section, listed in row_key_index, legacy columns and values.
    legacy_key = _key("legacy.load", row, None, "host=old:")
    session.execute(
        "INSERT INTO row_key_index (key, column1, value) VALUES (%s, %s, 0x00)",
        (b"legacy.load", legacy_key),
    )
    session.execute(ins, (legacy_key, struct.pack(">I", 10 << 1), b"\x01\x2c", wt))  # long 300
    session.execute(ins, (legacy_key, struct.pack(">I", 0 << 1), b"", wt))  # long 0
    session.execute(  # double 2.5, 8-byte form
        ins, (legacy_key, struct.pack(">I", (20 << 1) | 1), b"\x00" + struct.pack(">d", 2.5), wt)
    )
    session.execute(  # double 0.5, 4-byte float form
        ins, (legacy_key, struct.pack(">I", (30 << 1) | 1), b"\x01" + struct.pack(">f", 0.5), wt)
    )

    with cserver.client() as c:
        names = c.get("/api/v1/metricnames").json()["results"]
        assert "cpu.load" in names
        q = {
            "start_absolute": row,
            "end_absolute": row + W - 1,
            "metrics": [{"name": "cpu.load", "tags": {"host": ["server1"]}}],
        }
        res = c.post("/api/v1/datapoints/query", json=q).json()["queries"][0]["results"][0]
        assert res["values"] == [[row + 5, 13.2], [ts, 123], [ts + 1, -1]]
        assert res["tags"] == {"dc": ["a:b"], "host": ["server1"]}
        q["metrics"] = [{"name": "legacy.load"}]
        res = c.post("/api/v1/datapoints/query", json=q).json()["queries"][0]["results"][0]
        assert res["values"] == [[row, 0], [row + 10, 300], [row + 20, 2.5], [row + 30, 0.5]]
        assert res["tags"] == {"host": ["old"]}


# -- what Kairos writes, KairosDB's rules decode -----------------------------------------------


def _unzigzag(b: bytes) -> int:
    u = shift = 0
    for byte in b:
        u |= (byte & 0x7F) << shift
        shift += 7
    return (u >> 1) ^ -(u & 1)


def test_writes_decode_under_kairosdb_rules(cserver, session) -> None:
    m = f"kw.{uuid.uuid4().hex[:8]}"
    ts = 1700000000123
    row = ts - ts % W
    t0 = int(time.time() * 1000)
    body = [
        {"name": m, "tags": {"host": "h1", "dc": "x=y:z"}, "datapoints": [[ts, 123], [ts + 1, -1]]},
        {"name": m, "tags": {"host": "h1", "dc": "x=y:z"}, "datapoints": [[ts, 13.2]]},
        {"name": m, "tags": {"host": "h1", "dc": "x=y:z"}, "datapoints": [[ts, "\u00e9\x00"]]},
        {"name": m, "tags": {"host": "h2"}, "datapoints": [[ts, 7]], "ttl": 3600},
    ]
    with cserver.client() as c:
        assert c.post("/api/v1/datapoints", json=body).status_code == 204
        cserver.wait_applied()
    t1 = int(time.time() * 1000)
    tags = "dc=x==y=:z:host=h1:"  # "=" and ":" in values are escaped with "="

    def cells(data_type: str, tag_string: str = tags) -> list:
        key = _key(m, row, data_type, tag_string)
        return list(
            session.execute(
                "SELECT column1, value, WRITETIME(value), TTL(value) FROM data_points "
                "WHERE key = %s",
                (key,),
            )
        )

    longs = cells("kairos_long")
    assert [struct.unpack(">I", r[0])[0] + row for r in longs] == [ts, ts + 1]
    assert [_unzigzag(r[1]) for r in longs] == [123, -1]
    assert [bytes(r[1]).hex() for r in longs] == ["f601", "01"]
    assert all(t0 <= r[2] <= t1 for r in longs), "write times are milliseconds"
    assert all(r[3] is None for r in longs)
    (d,) = cells("kairos_double")
    assert bytes(d[1]).hex() == "402a666666666666"
    (s,) = cells("kairos_string")
    assert bytes(s[1]) == b"\x00\x04\xc3\xa9\xc0\x80"  # writeUTF: modified UTF-8
    (ttl,) = cells("kairos_long", "host=h2:")
    assert 3500 < ttl[3] <= 3600
    rows = {
        (r.data_type, tuple(sorted(r.tags.items())))
        for r in session.execute(
            "SELECT data_type, tags FROM row_keys WHERE metric = %s "
            "AND table_name = 'data_points' AND row_time = %s",
            (m, row),
        )
    }
    assert rows == {
        ("kairos_long", (("dc", "x=y:z"), ("host", "h1"))),
        ("kairos_double", (("dc", "x=y:z"), ("host", "h1"))),
        ("kairos_string", (("dc", "x=y:z"), ("host", "h1"))),
        ("kairos_long", (("host", "h2"),)),
    }
    times = list(
        session.execute(
            "SELECT row_time FROM row_key_time_index WHERE metric = %s AND table_name = 'data_points'",
            (m,),
        )
    )
    assert len(times) == 1
    names = {
        r.column1
        for r in session.execute(
            "SELECT column1 FROM string_index WHERE key = %s", (b"metric_names",)
        )
    }
    assert m in names
    spec = dict(session.execute("SELECT name, value FROM spec WHERE spec_type = 'cluster_config'"))
    assert spec == {"row_time_unit": "MILLISECONDS", "row_width": str(W)}
