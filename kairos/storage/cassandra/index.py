"""Series discovery through KairosDB's index tables (spec §6.8), and the series a store knows.

``string_index`` lists the metric names; ``row_key_time_index`` (metric -> row times) and
``row_keys`` (metric, row time -> data types and tag maps) list the row keys of a metric, and
the pre-1.x ``row_key_index`` (metric -> encoded row keys) is read too.  The series found are
kept, bounded (least recently used go), so that :meth:`SeriesIndex.row_times` can tell a read
which partitions to fetch without asking the index again.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict

from kairos.config import Config
from kairos.model.batch import DOUBLE, HISTOGRAM, LONG, STRING
from kairos.model.java import LONG_MAX, LONG_MIN, java_key
from kairos.storage.cassandra import codec
from kairos.storage.cassandra.schema import METRIC_NAMES_KEY
from kairos.storage.cassandra.session import READ, Keyspace
from kairos.storage.protocol import SeriesInfo

__all__ = ["DATA_TYPES", "KINDS", "SERIES_CACHE", "SeriesIndex", "first_row_time"]

log = logging.getLogger("kairos.cassandra")

DATA_TYPES = {
    LONG: codec.LONG_TYPE,
    DOUBLE: codec.DOUBLE_TYPE,
    STRING: codec.STRING_TYPE,
    HISTOGRAM: codec.HISTOGRAM_TYPE,
}
"""Kairos value kind -> KairosDB data type name in a row key."""
KINDS = {t: k for k, t in DATA_TYPES.items()}

SERIES_CACHE = 1_000_000
"""Series whose ids and row times a store keeps between queries (least recently used go)."""


def first_row_time(start: int, width: int) -> int:
    """The lowest row time that can hold a point at or after ``start``.

    ``rowTime(ts) = ts - (|ts| mod W)`` is ``rowTime(start)`` for ``start >= 0`` but for a
    negative timestamp the row lies up to ``W - 1`` below it (``-W < ts < 0`` maps to ``2 ts``),
    so later timestamps can live in lower rows.  KairosDB's reader starts at
    ``rowTime(start)`` and misses those points; Kairos writes them to the same rows as
    KairosDB and also finds them.
    """
    if start < 0:
        return max(LONG_MIN, start - width + 1)
    return codec.row_time(start, width)


class SeriesIndex:
    """Metric names, row keys and series of one keyspace, and the series seen so far."""

    def __init__(self, keyspace: Keyspace, config: Config) -> None:
        self.ks = keyspace
        self.simultaneous = config.cassandra_simultaneous_queries
        self._lock = threading.Lock()
        # Series seen by queries, bounded: (metric, tags, kind) -> its info, and -> data type ->
        # row times found. A series pushed out is found again (under a new id) when needed.
        self._infos: OrderedDict[tuple, SeriesInfo] = OrderedDict()
        self._rows: OrderedDict[tuple, dict[str, set[int]]] = OrderedDict()
        self._next_sid = itertools.count()

    # -- names --------------------------------------------------------------------------------

    def metric_names(self, prefix: str | None = None) -> list[str]:
        rows = self.ks.execute(
            [
                (
                    self.ks.stmt("SELECT column1 FROM {ks}.string_index WHERE key = ?"),
                    (METRIC_NAMES_KEY,),
                )
            ],
            1,
            READ,
        )[0]
        names = [r[0] for r in rows]
        if prefix:
            names = [n for n in names if n.startswith(prefix)]
        return sorted(names, key=java_key)

    def all_tags(self) -> list[tuple[str, str]]:
        """Every (name, value) tag pair of every metric (a full index walk)."""
        pairs: set[tuple[str, str]] = set()
        for metric in self.metric_names():
            for info in self.find_series(metric, {}):
                pairs.update(info.tags)
        return list(pairs)

    # -- row keys -----------------------------------------------------------------------------

    def row_keys(self, metric: str, start: int, end: int) -> list[codec.RowKey]:
        """Every row key of ``metric`` whose row may hold points in [start, end]."""
        spec = self.ks.spec
        lo = first_row_time(start, spec.row_width)
        times = self.ks.execute(
            [
                (
                    self.ks.stmt(
                        "SELECT toUnixTimestamp(row_time) FROM {ks}.row_key_time_index WHERE metric = ? "
                        "AND table_name = 'data_points' AND row_time >= ? AND row_time <= ?"
                    ),
                    (metric, lo, end),
                )
            ],
            1,
            READ,
        )[0]
        row_times = [int(r[0]) for r in times]
        stmt = self.ks.stmt(
            "SELECT data_type, tags FROM {ks}.row_keys WHERE metric = ? "
            "AND table_name = 'data_points' AND row_time = ?"
        )
        results = self.ks.execute(
            [(stmt, (metric, rt)) for rt in row_times],
            self.simultaneous,
            READ,
        )
        keys: dict[bytes, codec.RowKey] = {}
        for row_time, rows in zip(row_times, results, strict=True):
            for data_type, tags in rows:
                if data_type is None:  # a partition holding only the static mtime
                    continue
                rk = codec.RowKey(metric, row_time, data_type, codec.java_sorted_tags(tags or {}))
                keys[codec.encode_row_key(rk.metric, rk.row_time, rk.data_type, rk.tags)] = rk
        for rk in self._legacy_row_keys(metric, start, end):
            keys.setdefault(codec.encode_row_key(rk.metric, rk.row_time, rk.data_type, rk.tags), rk)
        return list(keys.values())

    def _legacy_row_keys(self, metric: str, start: int, end: int) -> list[codec.RowKey]:
        """Row keys listed in the pre-1.x ``row_key_index`` (read-only; spec §6.8 step 1)."""
        spec = self.ks.spec
        ranges = [(start, -1), (0, end)] if start < 0 <= end else [(start, end)]
        stmt = self.ks.stmt(
            "SELECT column1 FROM {ks}.row_key_index WHERE key = ? AND column1 >= ? AND column1 < ?"
        )
        name = metric.encode("utf-8", "surrogatepass")
        items = []
        for a, b in ranges:
            # KairosDB's scan keys, from the lowest row that can hold a point >= a (see
            # first_row_time) rather than its rowTime(a).
            first = codec.encode_row_key(metric, first_row_time(a, spec.row_width), "", ())
            _, last = codec.row_key_index_range(metric, b, b, spec.row_width)
            items.append((stmt, (name, first, last)))
        out = []
        for rows in self.ks.execute(items, 2, READ):
            for (key,) in rows:
                try:
                    out.append(codec.decode_row_key(key))
                except ValueError:
                    log.warning("row_key_index of %s: undecodable row key %s", metric, key.hex())
        return out

    # -- series -------------------------------------------------------------------------------

    def find_series(
        self,
        metric: str,
        tags: dict[str, list[str]],
        start: int = LONG_MIN,
        end: int = LONG_MAX,
    ) -> list[SeriesInfo]:
        found: dict[int, SeriesInfo] = {}
        for key, rows in self._discover(metric, start, end).items():
            have = dict(key[1])
            if not all(have.get(k) in vals for k, vals in tags.items()):
                continue
            info = self._series(*key)
            with self._lock:
                known = self._rows.get(key)
                if known is None:
                    self._rows[key] = rows
                    while len(self._rows) > SERIES_CACHE:
                        self._rows.popitem(last=False)
                else:
                    self._rows.move_to_end(key)
                    for dt, rts in rows.items():
                        known.setdefault(dt, set()).update(rts)
            found[info.sid] = info
        return sorted(found.values(), key=lambda s: s.sid)

    def _discover(self, metric: str, start: int, end: int) -> dict[tuple, dict[str, set[int]]]:
        """(metric, tags, kind) -> data type -> row times of every series of ``metric`` with
        rows in [start, end]."""
        out: dict[tuple, dict[str, set[int]]] = {}
        for rk in self.row_keys(metric, start, end):
            if rk.data_type == codec.LEGACY_TYPE:
                kinds: tuple[int, ...] = (
                    LONG,
                    DOUBLE,
                )  # one legacy row holds both; the column's low bit says
            elif rk.data_type in KINDS:
                kinds = (KINDS[rk.data_type],)
            else:
                continue  # a plugin's type (kairos_complex ...) Kairos cannot aggregate
            for kind in kinds:
                rows = out.setdefault((metric, rk.tags, kind), {})
                rows.setdefault(rk.data_type, set()).add(rk.row_time)
        return out

    def _series(self, metric: str, tags: tuple, kind: int) -> SeriesInfo:
        key = (metric, tags, kind)
        with self._lock:
            info = self._infos.get(key)
            if info is None:
                info = self._infos[key] = SeriesInfo(next(self._next_sid), metric, tags, kind)
                while len(self._infos) > SERIES_CACHE:
                    self._infos.popitem(last=False)
            else:
                self._infos.move_to_end(key)
            return info

    def row_times(
        self, series: list[SeriesInfo], start: int, end: int
    ) -> list[dict[str, list[int]]]:
        """Data type -> row times of each series found by :meth:`find_series`; the series the
        bounded map has let go are found again, one discovery per metric."""
        out: list[dict[str, list[int]] | None] = []
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, info in enumerate(series):
                rows = self._rows.get((info.metric, info.tags, info.kind))
                out.append(None if rows is None else {dt: sorted(r) for dt, r in rows.items()})
                if rows is None:
                    missing.setdefault(info.metric, []).append(i)
        for metric, idx in missing.items():
            found = self._discover(metric, start, end)
            for i in idx:
                info = series[i]
                rows = found.get((info.metric, info.tags, info.kind), {})
                out[i] = {dt: sorted(r) for dt, r in rows.items()}
        return out  # type: ignore[return-value]
