"""The project's own Cassandra (or KAIROSDB_CASSANDRA_CONTACT_POINTS) answers real CQL."""

from __future__ import annotations

import uuid

import pytest

from tests.cassandra_support import connect, parse_contact_points

pytestmark = [pytest.mark.cassandra, pytest.mark.integration, pytest.mark.slow]


def test_parse_contact_points() -> None:
    assert parse_contact_points("10.0.0.1:9042, 10.0.0.2:9042") == [
        ("10.0.0.1", 9042),
        ("10.0.0.2", 9042),
    ]
    assert parse_contact_points("[::1]:19042") == [("::1", 19042)]
    with pytest.raises(ValueError):
        parse_contact_points("localhost")


def test_cassandra_5_round_trip(cassandra_contact_points: str) -> None:
    cluster = connect(cassandra_contact_points)
    try:
        session = cluster.connect()
        version = session.execute("SELECT release_version FROM system.local").one()[0]
        assert version.startswith("5.0"), version

        ks = f"kairos_rt_{uuid.uuid4().hex[:12]}"
        session.execute(
            f"CREATE KEYSPACE {ks} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        try:
            session.execute(
                f"CREATE TABLE {ks}.data_points (key blob, column1 blob, value blob, "
                "PRIMARY KEY ((key), column1))"
            )
            key, column, value = b"\x00metric\x00row", b"\x00\x00\x01", b"\x07\x2a"
            ts_ms = 1_700_000_000_123
            insert = session.prepare(
                f"INSERT INTO {ks}.data_points (key, column1, value) VALUES (?, ?, ?) "
                "USING TIMESTAMP ?"
            )
            session.execute(insert, (key, column, value, ts_ms))
            row = session.execute(
                f"SELECT column1, value, WRITETIME(value) FROM {ks}.data_points WHERE key = %s",
                (key,),
            ).one()
            assert row is not None
            assert (bytes(row[0]), bytes(row[1]), row[2]) == (column, value, ts_ms)
        finally:
            session.execute(f"DROP KEYSPACE {ks}")
    finally:
        cluster.shutdown()
