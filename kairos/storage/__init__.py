"""Storage: the ``Datastore`` protocol, the WAL, the writer stage and the backends.

``kairos.storage`` knows nothing of HTTP; it receives validated columnar batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kairos.storage.protocol import Datastore, SeriesData, SeriesInfo

if TYPE_CHECKING:
    from kairos.config import Config

__all__ = ["Datastore", "SeriesData", "SeriesInfo", "open_store"]


def open_store(config: Config, *, writer: bool = False) -> Datastore:
    """The datastore ``config`` names: the embedded engine or Cassandra."""
    if config.datastore == "cassandra":
        from kairos.storage.cassandra.store import CassandraStore

        return CassandraStore(config, writer=writer)
    from kairos.storage.embedded.compaction import points_for
    from kairos.storage.embedded.store import EmbeddedStore

    return EmbeddedStore(
        config.data_dir,
        writer=writer,
        default_ttl=config.datastore_default_ttl,
        fanout=config.datastore_compaction_fanout,
        retention=config.datastore_retention_seconds,
        # A quarter of the writer's memory (see ``writer.max_memory_mb``).
        compaction_points=points_for((config.writer_max_memory_mb << 20) // 4),
    )
