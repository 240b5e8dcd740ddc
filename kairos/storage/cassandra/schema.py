"""KairosDB's keyspace on Cassandra: the DDL of spec §6.1-6.2 and the cluster spec of §6.3."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kairos.storage.cassandra import codec

__all__ = ["TABLES", "ClusterSpec", "create_schema", "missing_tables", "read_spec", "statements"]

log = logging.getLogger("kairos.cassandra")

TABLES = (
    "data_points",
    "row_key_index",
    "row_key_time_index",
    "row_keys",
    "tag_indexed_row_keys",
    "string_index",
    "service_index",
    "spec",
)
"""Every table of the keyspace, in the order :func:`statements` creates them."""

METRIC_NAMES_KEY = b"metric_names"
"""The ``string_index`` partition holding every metric name (``0x6d65747269635f6e616d6573``)."""


def statements(keyspace: str, compact_storage: bool) -> list[str]:
    """``CREATE ... IF NOT EXISTS`` for the keyspace's tables, in KairosDB's column layout.

    ``data_points`` is created ``WITH COMPACT STORAGE`` only where Cassandra still accepts it
    (before 4.0); the columns and bytes are the same either way.
    """
    ks = keyspace
    blob_table = "(key blob, column1 blob, value blob, PRIMARY KEY ((key), column1))"
    compact = " WITH COMPACT STORAGE" if compact_storage else ""
    return [
        f"CREATE TABLE IF NOT EXISTS {ks}.data_points {blob_table}{compact}",
        f"CREATE TABLE IF NOT EXISTS {ks}.row_key_index {blob_table}",
        f"CREATE TABLE IF NOT EXISTS {ks}.row_key_time_index (metric text, table_name text, "
        "row_time timestamp, value text, PRIMARY KEY ((metric), table_name, row_time))",
        f"CREATE TABLE IF NOT EXISTS {ks}.row_keys (metric text, table_name text, "
        "row_time timestamp, data_type text, tags frozen<map<text,text>>, mtime timeuuid static, "
        "value text, PRIMARY KEY ((metric, table_name, row_time), data_type, tags))",
        f"CREATE TABLE IF NOT EXISTS {ks}.tag_indexed_row_keys (metric text, table_name text, "
        "row_time timestamp, single_tag_pair text, tag_collection_hash int, data_type text, "
        "tags frozen<map<text,text>>, mtime timeuuid static, value text, "
        "PRIMARY KEY ((metric, table_name, row_time, single_tag_pair), data_type, "
        "tag_collection_hash, tags))",
        f"CREATE TABLE IF NOT EXISTS {ks}.string_index (key blob, column1 text, value blob, "
        "PRIMARY KEY ((key), column1))",
        f"CREATE TABLE IF NOT EXISTS {ks}.service_index (service text, service_key text, "
        "key text, mtime timeuuid static, value text, PRIMARY KEY ((service, service_key), key))",
        f"CREATE TABLE IF NOT EXISTS {ks}.spec (spec_type text, name text, value text, "
        "PRIMARY KEY ((spec_type), name))",
    ]


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """Row width and time unit of a keyspace (spec §6.3): readers and writers must agree."""

    row_width: int = codec.DEFAULT_ROW_WIDTH
    unit: str = codec.MILLISECONDS

    @property
    def width_millis(self) -> int:
        return codec.row_width_millis(self.row_width, self.unit)


def read_spec(session, keyspace: str) -> ClusterSpec | None:
    """The stored spec, or None when the keyspace has no ``row_time_unit`` row yet."""
    rows = session.execute(
        f"SELECT name, value FROM {keyspace}.spec WHERE spec_type = 'cluster_config'"
    )
    values = {r[0]: r[1] for r in rows}
    unit = values.get("row_time_unit")
    if unit is None:
        return None
    width = int(values.get("row_width", codec.DEFAULT_ROW_WIDTH))
    return ClusterSpec(width, unit.upper())


def missing_tables(session, keyspace: str) -> list[str]:
    """The tables of :data:`TABLES` that ``keyspace`` does not have (all of them when the
    keyspace itself does not exist)."""
    rows = session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,)
    )
    have = {r[0] for r in rows}
    return [t for t in TABLES if t not in have]


def create_schema(session, keyspace: str, replication: str, unit: str, width: int) -> ClusterSpec:
    """Create the keyspace and tables if absent and settle the cluster spec (writers only).

    A keyspace that already has a spec keeps it.  Without one, data from before KairosDB 1.3
    (a ``metric_names`` row in ``string_index``) means LEGACY; otherwise the configured unit
    and width are stored.
    """
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH REPLICATION = {replication}",
        timeout=60,
    )
    version = session.execute("SELECT release_version FROM system.local").one()[0]
    major = int(str(version).split(".")[0])
    for cql in statements(keyspace, compact_storage=major < 4):
        session.execute(cql, timeout=60)
    spec = read_spec(session, keyspace)
    if spec is not None:
        return spec
    legacy = session.execute(
        f"SELECT column1 FROM {keyspace}.string_index WHERE key = %s LIMIT 1",
        (METRIC_NAMES_KEY,),
    ).one()
    unit = codec.LEGACY if legacy is not None else unit.upper()
    if unit == codec.SECONDS and width == codec.DEFAULT_ROW_WIDTH:
        width = codec.DEFAULT_ROW_WIDTH // 1000  # KairosDB's default for SECONDS
    insert = (
        f"INSERT INTO {keyspace}.spec (spec_type, name, value) VALUES ('cluster_config', %s, %s)"
    )
    session.execute(insert, ("row_time_unit", unit))
    session.execute(insert, ("row_width", str(width)))
    log.info(
        "keyspace %s: row_time_unit %s, row_width %d (Cassandra %s)", keyspace, unit, width, version
    )
    return ClusterSpec(width, unit)
