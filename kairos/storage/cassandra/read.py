"""Points of known series: the ``data_points`` column ranges of their partitions, decoded.

Each series' partitions (one per data type and row time, as :class:`~kairos.storage.cassandra.
index.SeriesIndex` found them) are read concurrently, each for the column range of the query's
time range (spec §6.5 "Reads"); the parts are decoded by :mod:`~kairos.storage.cassandra.codec`
and joined in time order.
"""

from __future__ import annotations

import numpy as np

from kairos.config import Config
from kairos.model.batch import DOUBLE
from kairos.storage.cassandra import codec
from kairos.storage.cassandra.index import SeriesIndex, first_row_time
from kairos.storage.cassandra.session import READ, Keyspace
from kairos.storage.protocol import SeriesData, SeriesInfo

__all__ = ["FETCH_SIZE", "PointReader"]

FETCH_SIZE = 20000
"""Rows per page of a partition read."""


class PointReader:
    """Reads series' points from ``data_points``."""

    def __init__(self, keyspace: Keyspace, index: SeriesIndex, config: Config) -> None:
        self.ks = keyspace
        self.index = index
        self.simultaneous = config.cassandra_simultaneous_queries

    def read(
        self,
        series: list[SeriesInfo],
        start: int,
        end: int,
        limit: int = 0,
        order: str = "asc",
    ) -> list[SeriesData]:
        """Points of each series in [start, end]; with ``limit``, only the first (``asc``) or
        last (``desc``) ``limit`` of each series, pushed down as ``ORDER BY``/``LIMIT`` on every
        partition read (spec §6.5 "Reads")."""
        spec = self.ks.spec
        cql = (
            "SELECT column1, value FROM {ks}.data_points WHERE key = ? "
            "AND column1 >= ? AND column1 < ?"
        )
        if limit:  # one prepared statement per order, the limit bound
            cql += f" ORDER BY column1 {'DESC' if order == 'desc' else 'ASC'} LIMIT ?"
        stmt = self.ks.stmt(cql)
        extra = (int(limit),) if limit else ()
        stmt.fetch_size = FETCH_SIZE
        lo = first_row_time(start, spec.row_width)
        plan: list[tuple[int, str, int]] = []  # (series index, data type, row time)
        items = []
        for i, (info, rows) in enumerate(
            zip(series, self.index.row_times(series, start, end), strict=True)
        ):
            for dt, row_times in rows.items():
                unit = codec.LEGACY if dt == codec.LEGACY_TYPE else spec.unit
                for rt in row_times:
                    if rt < lo or rt > end:
                        continue
                    lo_col, hi_col = codec.column_range(start, end, rt, spec.row_width, unit)
                    key = codec.encode_row_key(info.metric, rt, dt, info.tags)
                    plan.append((i, dt, rt))
                    items.append((stmt, (key, lo_col, hi_col, *extra)))
        results = self.ks.execute(items, self.simultaneous, READ)
        parts: dict[int, list[tuple[np.ndarray, np.ndarray | list]]] = {}
        for (i, dt, rt), result in zip(plan, results, strict=True):
            cells = list(result)
            if not cells:
                continue
            cols = [r[0] for r in cells]
            vals = [r[1] for r in cells]
            ts, values = self._decode(series[i].kind, dt, rt, cols, vals)
            keep = (ts >= start) & (ts <= end)
            if not keep.all():
                ts = ts[keep]
                values = (
                    values[keep]
                    if isinstance(values, np.ndarray)
                    else [v for v, k in zip(values, keep, strict=True) if k]
                )
            if len(ts):
                parts.setdefault(i, []).append((ts, values))
        out = []
        for i, info in enumerate(series):
            if i not in parts:
                continue
            d = _assemble(info, parts[i])
            if limit and len(d.ts) > limit:
                sl = slice(-limit, None) if order == "desc" else slice(0, limit)
                d = SeriesData(info, d.ts[sl], d.values[sl])
            out.append(d)
        return out

    def _decode(
        self, kind: int, data_type: str, row_time: int, cols: list, vals: list
    ) -> tuple[np.ndarray, np.ndarray | list]:
        unit = self.ks.spec.unit
        if data_type == codec.LEGACY_TYPE:
            ts, is_double, longs, doubles = codec.decode_legacy(cols, vals, row_time)
            mask = is_double if kind == DOUBLE else ~is_double
            return ts[mask], (doubles if kind == DOUBLE else longs)[mask]
        ts = codec.decode_columns(cols, row_time, unit)
        if data_type == codec.LONG_TYPE:
            return ts, codec.decode_longs(vals)
        if data_type == codec.DOUBLE_TYPE:
            return ts, codec.decode_doubles(vals)
        if data_type == codec.STRING_TYPE:
            return ts, codec.decode_strings(vals)
        return ts, [bytes(v) for v in vals]


def _assemble(info: SeriesInfo, parts: list[tuple[np.ndarray, np.ndarray | list]]) -> SeriesData:
    ts = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    if isinstance(parts[0][1], np.ndarray):
        values: np.ndarray | list = (
            np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        )
    else:
        values = [v for p in parts for v in p[1]]
    if len(ts) > 1 and not (np.diff(ts) > 0).all():
        # Rows out of time order (negative row times) or one timestamp in two rows (legacy
        # and typed): ascending, the last one read wins.
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        keep = np.ones(len(ts), bool)
        keep[:-1] = ts[1:] != ts[:-1]
        idx = order[keep]
        ts = ts[keep]
        values = (
            values[idx] if isinstance(values, np.ndarray) else [values[j] for j in idx.tolist()]
        )
    return SeriesData(info, ts, values)
