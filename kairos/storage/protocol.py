"""The ``Datastore`` protocol every backend implements, and the values it passes around."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kairos.model.batch import Batch, Tags

__all__ = ["Datastore", "SeriesData", "SeriesInfo"]


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """One stored series: metric, tags (sorted pairs) and value kind (``batch.LONG`` ...)."""

    sid: int
    metric: str
    tags: Tags
    kind: int


@dataclass(slots=True)
class SeriesData:
    """A series' points in a time range, ascending by timestamp, one point per timestamp.

    ``values`` is int64 for longs, float64 for doubles, and a list of ``str`` / encoded
    histogram ``bytes`` for strings and histograms.
    """

    info: SeriesInfo
    ts: np.ndarray
    values: np.ndarray | list


class Datastore(Protocol):
    """What the writer stage and the query engine need from a backend."""

    def write(self, batch: Batch) -> None:
        """Durably apply a batch (called by the writer stage only)."""

    def refresh(self) -> None:
        """Make data applied by the writer (possibly in another process) visible."""

    def metric_names(self, prefix: str | None = None) -> list[str]:
        """Metric names that have data, sorted in Java String order."""

    def find_series(
        self, metric: str, tags: dict[str, list[str]], start: int = ..., end: int = ...
    ) -> list[SeriesInfo]:
        """Series of ``metric`` having, for every tag name given, one of the listed values and
        possibly points in [start, end] (a backend may return more; the range lets Cassandra
        read only the index rows of that time range)."""

    def count(self, series: list[SeriesInfo], start: int, end: int) -> int:
        """A cheap estimate, without decoding, of the points :meth:`read` would read, used to
        refuse a query over its point limit before decoding anything; it must not exceed
        what is actually read (0 is valid).  The engine adds the rest after the read."""

    def read(
        self, series: list[SeriesInfo], start: int, end: int, limit: int = 0, order: str = "asc"
    ) -> list[SeriesData]:
        """Points of each series with ``start <= ts <= end`` (empty series are omitted).

        With ``limit`` > 0 a backend may return only the first (``order`` asc) or last (desc)
        ``limit`` points of each series (the engine applies the limit either way)."""

    def delete(
        self, metric: str, tag_filter, start: int, end: int, *, tag_filtered: bool = True
    ) -> int:
        """Delete the points in [start, end] of ``metric``'s series that ``tag_filter(tags)``
        accepts (writer stage only); ``tag_filtered`` says whether the request named tags."""

    @property
    def wal_positions(self) -> dict[str, int]:
        """The WAL positions the datastore has applied (the writer's checkpoint)."""

    def close(self) -> None:
        """Release files and connections."""
