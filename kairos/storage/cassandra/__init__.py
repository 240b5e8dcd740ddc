"""The Cassandra backend: KairosDB's own keyspace, read and written byte for byte.

Layout and algorithms are KairosDB's (``shared/spec/kairosdb-reference.md`` §6), so Java
KairosDB reads what Kairos writes and the other way round.  A series is (metric, data type,
tags); its points live in ``data_points`` partitions keyed by (metric, row time, data type, tag
string), one partition per row width (3 weeks by default)::

    CassandraStore (store.py): the Datastore facade
     |
     +-- Checkpoint (checkpoint.py)   <data_dir>/cassandra.checkpoint: WAL positions applied
     +-- Keyspace   (session.py)      driver Cluster + Session, read/write profiles, prepared
     |                                statements, concurrent execute, the cluster spec;
     |                                driver errors -> DatastoreUnavailable (failures.py)
     +-- SeriesIndex (index.py)       metric names, row keys, series (bounded LRU)
     +-- PointReader (read.py)        partition column ranges -> decoded points
     +-- PointWriter (write.py)       index rows + data rows, deletes + index pruning
                                      (the writer process only)
    CassandraMetadata (metadata.py)   KairosDB's metadata, on the store's session
    codec.py / schema.py              bytes of keys, columns and values / DDL and cluster spec

    keyspace table       written by (W = write, D = delete, P = prune)  read by
    data_points          write.py W D                                   read.py; write.py P
    row_keys             write.py W D P                                 index.py; write.py P
    row_key_time_index   write.py W D P                                 index.py; write.py P
    row_key_index        write.py D P (pre-1.x rows: never written)     index.py; write.py P
    string_index         write.py W D P (the metric names)              index.py
    service_index        metadata.py                                    metadata.py
    spec                 schema.py (writer start-up)                    session.py

Writes come only from the writer stage, which applies the WAL: index rows first (skipped for
row keys the writer already indexed), then the points as unlogged per-partition batches, many
in flight; every statement carries a millisecond write time, strictly increasing, so later WAL
records (an overwrite, a delete) win over earlier ones (spec §6.5).  The WAL positions applied
are checkpointed only after Cassandra acknowledged every statement: a failure or a crash
re-applies from the previous checkpoint (idempotent).  Readers (every HTTP worker) discover
series through the index for the query's time range and read each partition's column range
concurrently.

Only :mod:`kairos.storage` imports this package, and only when ``datastore`` is ``cassandra``.
"""

from kairos.storage.cassandra.metadata import CassandraMetadata
from kairos.storage.cassandra.store import CassandraStore

__all__ = ["CassandraMetadata", "CassandraStore"]
