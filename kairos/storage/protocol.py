"""The ``Datastore`` protocol every backend implements, and the values it passes around."""

from __future__ import annotations

from collections.abc import Callable
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
    """What the writer stage, the query engine and the HTTP workers need from a backend.

    Every backend implements all of it (``tests/conformance/test_protocol.py`` checks the
    signatures; ``make lint`` type-checks ``open_store``'s return against it).  Methods marked
    *writer only* are called by the writer process alone and raise ``RuntimeError`` elsewhere.
    """

    is_writer: bool

    def write(self, batch: Batch, wal_positions: dict[str, int] | None = None) -> None:
        """Durably apply one batch (*writer only*); see :meth:`write_many`."""

    def write_many(self, batches: list[Batch], wal_positions: dict[str, int] | None = None) -> None:
        """Durably apply ``batches`` in order (later points of a series and timestamp win) and
        then checkpoint ``wal_positions`` (WAL file name -> applied offset) atomically with them
        (*writer only*)."""

    def refresh(self) -> None:
        """Make data applied by the writer (possibly in another process) visible."""

    def metric_names(self, prefix: str | None = None) -> list[str]:
        """Metric names that have data, sorted in Java String order."""

    def tag_names(self) -> list[str]:
        """Every tag name of every series with data, in Java String order (KairosDB 1.2's
        ``/api/v1/tagnames``)."""

    def tag_values(self) -> list[str]:
        """Every tag value of every series with data, in Java String order (KairosDB 1.2's
        ``/api/v1/tagvalues``)."""

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
        self,
        metric: str,
        tag_filter: Callable[[dict[str, str]], bool],
        start: int,
        end: int,
        *,
        tag_filtered: bool = True,
    ) -> int:
        """Delete the points in [start, end] of ``metric``'s series that ``tag_filter(dict(tags))``
        accepts (*writer only*); ``tag_filtered`` says whether the request named tags.  Returns
        the number of series touched."""

    @property
    def wal_positions(self) -> dict[str, int]:
        """The WAL positions the datastore has applied (the writer's checkpoint)."""

    def close(self) -> None:
        """Release files and connections."""
