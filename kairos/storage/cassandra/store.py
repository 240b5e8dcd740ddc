"""The Cassandra :class:`~kairos.storage.protocol.Datastore`: a facade over the backend's parts.

Each method hands its work to one part (see the drawing in :mod:`kairos.storage.cassandra`):
the checkpoint, the keyspace session, the series index, the point reader, and in the writer
process the point writer.  The facade owns the process role: only the writer writes, deletes
and checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from kairos.config import Config
from kairos.model.batch import Batch
from kairos.model.java import LONG_MAX, LONG_MIN, java_key
from kairos.storage.cassandra.checkpoint import CHECKPOINT, Checkpoint
from kairos.storage.cassandra.index import SeriesIndex
from kairos.storage.cassandra.read import PointReader
from kairos.storage.cassandra.schema import ClusterSpec
from kairos.storage.cassandra.session import Keyspace
from kairos.storage.cassandra.write import PointWriter
from kairos.storage.protocol import SeriesData, SeriesInfo

__all__ = ["CassandraStore"]


class CassandraStore:
    """:class:`~kairos.storage.protocol.Datastore` on KairosDB's Cassandra keyspace.

    A facade: ``db`` (session, statements, spec), ``checkpoint``, ``index`` (series
    discovery), ``reader`` and, in the writer process, ``writer`` do the work.
    """

    def __init__(self, config: Config, *, writer: bool = False) -> None:
        self.config = config
        self.is_writer = writer
        self.keyspace = config.cassandra_keyspace
        os.makedirs(config.data_dir, exist_ok=True)
        self.checkpoint = Checkpoint(os.path.join(config.data_dir, CHECKPOINT))
        self.checkpoint.load()
        # Never fails for a Cassandra that is down: it connects when Cassandra answers, and
        # until then every read, write and metadata call raises DatastoreUnavailable (503).
        self.db = Keyspace(config, create=writer)
        self.index = SeriesIndex(self.db, config)
        self.reader = PointReader(self.db, self.index, config)
        self.writer = PointWriter(self.db, self.index, config) if writer else None

    @property
    def session(self):
        """The driver session (see :attr:`Keyspace.session`: raises until connected)."""
        return self.db.session

    @property
    def cluster(self):
        """The driver ``Cluster``, None until connected."""
        return self.db.cluster

    @property
    def spec(self) -> ClusterSpec:
        """The keyspace's row width and unit (see :attr:`Keyspace.spec`)."""
        return self.db.spec

    @property
    def checkpoint_path(self) -> str:
        return self.checkpoint.path

    @property
    def wal_positions(self) -> dict[str, int]:
        return dict(self.checkpoint.positions)

    def refresh(self) -> None:
        self.checkpoint.load()

    def close(self) -> None:
        self.db.close()

    # -- reads ----------------------------------------------------------------------------------

    def metric_names(self, prefix: str | None = None) -> list[str]:
        return self.index.metric_names(prefix)

    def tag_names(self) -> list[str]:
        """Every tag name of every metric (KairosDB 1.2 API; a full index walk)."""
        return sorted({k for k, _ in self.index.all_tags()}, key=java_key)

    def tag_values(self) -> list[str]:
        return sorted({v for _, v in self.index.all_tags()}, key=java_key)

    def find_series(
        self,
        metric: str,
        tags: dict[str, list[str]],
        start: int = LONG_MIN,
        end: int = LONG_MAX,
    ) -> list[SeriesInfo]:
        return self.index.find_series(metric, tags, start, end)

    def count(self, series: list[SeriesInfo], start: int, end: int) -> int:
        """0: Cassandra has no cheap count.  The engine accounts for what :meth:`read`
        returns, so the query point limit still applies (after the read)."""
        return 0

    def read(
        self,
        series: list[SeriesInfo],
        start: int,
        end: int,
        limit: int = 0,
        order: str = "asc",
    ) -> list[SeriesData]:
        """Points of each series in [start, end] (see :meth:`PointReader.read`)."""
        return self.reader.read(series, start, end, limit, order)

    # -- writes ---------------------------------------------------------------------------------

    def write(self, batch: Batch, wal_positions: dict[str, int] | None = None) -> None:
        self.write_many([batch], wal_positions)

    def write_many(self, batches: list[Batch], wal_positions: dict[str, int] | None = None) -> None:
        """Write the points (last one wins per series and timestamp), then checkpoint."""
        if self.writer is None:
            raise RuntimeError("only the writer process writes to Cassandra")
        batches = [b for b in batches if len(b)]
        if batches:
            self.writer.write_points(batches)
        if wal_positions is not None and wal_positions != self.checkpoint.positions:
            self.checkpoint.save(wal_positions)

    def delete(
        self,
        metric: str,
        tag_filter: Callable[[dict], bool],
        start: int,
        end: int,
        *,
        tag_filtered: bool = True,
    ) -> int:
        """Delete ``metric``'s points in [start, end] of the row keys ``tag_filter`` accepts."""
        if self.writer is None:
            raise RuntimeError("only the writer process deletes from Cassandra")
        return self.writer.delete(metric, tag_filter, start, end, tag_filtered=tag_filtered)
