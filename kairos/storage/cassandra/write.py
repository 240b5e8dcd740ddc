"""Writes and deletes (spec §6.5, §6.6, §6.9): the writer process's side of the keyspace.

A write puts the index rows of row keys not yet indexed (``row_keys``, ``row_key_time_index``,
``string_index``; the LRU caches of spec §6.6 remember the row keys and metric rows written)
and then the points into ``data_points`` as unlogged single-partition batches, many in flight.
A delete removes whole partitions or column ranges and then prunes the index entries left
pointing at nothing.  Every statement carries a millisecond write time, strictly increasing
across the writer's calls, so later WAL records (an overwrite, a delete) win over earlier ones.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from kairos.config import Config
from kairos.model.batch import DOUBLE, HISTOGRAM, LONG, STRING, Batch
from kairos.model.java import LONG_MAX, LONG_MIN
from kairos.storage.cassandra import codec
from kairos.storage.cassandra.index import DATA_TYPES, SeriesIndex
from kairos.storage.cassandra.schema import METRIC_NAMES_KEY
from kairos.storage.cassandra.session import WRITE, Keyspace, millis

__all__ = ["BATCH_ROWS", "PointWriter"]

log = logging.getLogger("kairos.cassandra")

BATCH_ROWS = 100
"""Rows per unlogged single-partition batch (a few KB: under Cassandra's batch warning)."""


class _LRU:
    """A bounded set (the writer's row-key and metric-name caches of spec §6.6)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict = OrderedDict()

    def __contains__(self, key: object) -> bool:
        if key in self._d:
            self._d.move_to_end(key)
            return True
        return False

    def add(self, key: object) -> None:
        self._d[key] = None
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def clear(self) -> None:
        self._d.clear()


class PointWriter:
    """Writes points and deletes ranges in one keyspace (the writer process only)."""

    def __init__(self, keyspace: Keyspace, index: SeriesIndex, config: Config) -> None:
        self.ks = keyspace
        self.index = index
        self.concurrency = config.cassandra_write_concurrency
        self.default_ttl = config.datastore_default_ttl
        self._row_key_cache = _LRU(config.cassandra_row_key_cache_size)
        self._metric_cache = _LRU(config.cassandra_row_key_cache_size)
        self._last_write_time = 0

    def _next_write_time(self) -> int:
        self._last_write_time = max(millis(), self._last_write_time + 1)
        return self._last_write_time

    # -- writes (spec §6.5, §6.6) --------------------------------------------------------------

    def write_points(self, batches: list[Batch]) -> None:
        """Write the points of ``batches`` (last one wins per series and timestamp): index rows
        for new row keys first, then the points."""
        spec = self.ks.spec
        keys: dict[tuple, int] = {}
        series: list[tuple] = []
        gids, tss, vals, ttls, objs = [], [], [], [], []
        offset = 0
        for b in batches:
            gmap = np.empty(b.n_series, np.int64)
            for j in range(b.n_series):
                key = (b.metrics[j], b.tags[j], int(b.kinds[j]))
                g = keys.get(key)
                if g is None:
                    g = keys[key] = len(series)
                    series.append(key)
                gmap[j] = g
            gids.append(gmap[b.series])
            tss.append(b.ts)
            kinds = b.kinds[b.series]
            objectish = (kinds == STRING) | (kinds == HISTOGRAM)
            vals.append(np.where(objectish, b.values + offset, b.values))
            ttls.append(b.ttls[b.series].astype(np.int64))
            objs.extend(b.objects)
            offset += len(b.objects)
        gid = np.concatenate(gids)
        ts = np.concatenate(tss)
        val = np.concatenate(vals)
        ttl = np.concatenate(ttls)
        # Last write wins per (series, ts): stable sort, keep the last of each run.
        order = np.lexsort((ts, gid))
        gid, ts, val, ttl = gid[order], ts[order], val[order], ttl[order]
        last = np.ones(len(ts), bool)
        last[:-1] = (gid[1:] != gid[:-1]) | (ts[1:] != ts[:-1])
        gid, ts, val, ttl = gid[last], ts[last], val[last], ttl[last]
        if self.default_ttl:
            ttl = np.where(ttl == 0, self.default_ttl, ttl)
        rts = codec.row_times(ts, spec.row_width)
        cols = codec.encode_columns(ts, rts, spec.unit)
        write_time = self._next_write_time()
        # Partition runs: (series, row time) changes.
        cut = np.flatnonzero((gid[1:] != gid[:-1]) | (rts[1:] != rts[:-1])) + 1
        bounds = np.concatenate(([0], cut, [len(ts)])).tolist()
        encoded = self._encode_values(series, gid, val, objs)
        index_items, new_keys, new_metric_rows = self._index_items(
            series, gid, rts, ttl, bounds, spec, write_time
        )
        if index_items:
            self.ks.execute(index_items, self.concurrency, WRITE)
        self.ks.execute(
            self._data_items(series, gid, rts, cols, encoded, ttl, bounds, write_time),
            self.concurrency,
            WRITE,
        )
        for k in new_keys:
            self._row_key_cache.add(k)
        for k in new_metric_rows:
            self._metric_cache.add(k)

    def _encode_values(self, series, gid, val, objs) -> list[bytes]:
        kinds = np.array([s[2] for s in series], np.int64)[gid]
        out: list[bytes] = [b""] * len(val)
        for kind in np.unique(kinds).tolist():
            idx = np.flatnonzero(kinds == kind)
            v = val[idx]
            if kind == LONG:
                enc = codec.encode_longs(v)
            elif kind == DOUBLE:
                enc = codec.encode_doubles(v.view(np.float64))
            elif kind == STRING:
                enc = [codec.encode_string(objs[j]) for j in v.tolist()]
            else:
                enc = [bytes(objs[j]) for j in v.tolist()]
            for i, e in zip(idx.tolist(), enc, strict=True):
                out[i] = e
        return out

    def _index_items(self, series, gid, rts, ttl, bounds, spec, write_time):
        """``row_keys`` / ``row_key_time_index`` / ``string_index`` inserts for new row keys."""
        items = []
        new_keys, new_metric_rows = [], []
        width_s = spec.width_millis // 1000
        row_key = self.ks.stmt(
            "INSERT INTO {ks}.row_keys (metric, table_name, row_time, data_type, tags, mtime) "
            "VALUES (?, 'data_points', ?, ?, ?, now()) USING TTL ? AND TIMESTAMP ?"
        )
        time_index = self.ks.stmt(
            "INSERT INTO {ks}.row_key_time_index (metric, table_name, row_time) "
            "VALUES (?, 'data_points', ?) USING TTL ? AND TIMESTAMP ?"
        )
        name = self.ks.stmt(
            "INSERT INTO {ks}.string_index (key, column1, value) VALUES (?, ?, 0x00) "
            "USING TIMESTAMP ?"
        )
        seen = set()
        for a, b in itertools.pairwise(bounds):
            metric, tags, kind = series[int(gid[a])]
            rt = int(rts[a])
            t = ttl[a:b]
            # A row key lives as long as its longest-lived point (0 = forever).
            row_ttl = 0 if (t == 0).any() else int(t.max()) + width_s
            key = (metric, rt, kind, tags)
            if key in seen or key in self._row_key_cache:
                continue
            seen.add(key)
            new_keys.append(key)
            items.append((row_key, (metric, rt, DATA_TYPES[kind], dict(tags), row_ttl, write_time)))
            mkey = (metric, rt)
            if mkey in seen or mkey in self._metric_cache:
                continue
            seen.add(mkey)
            new_metric_rows.append(mkey)
            items.append((name, (METRIC_NAMES_KEY, metric, write_time)))
            items.append((time_index, (metric, rt, row_ttl, write_time)))
        return items, new_keys, new_metric_rows

    def _data_items(self, series, gid, rts, cols, encoded, ttl, bounds, write_time):
        from cassandra.query import BatchStatement, BatchType

        insert = self.ks.stmt(
            "INSERT INTO {ks}.data_points (key, column1, value) VALUES (?, ?, ?) "
            "USING TTL ? AND TIMESTAMP ?"
        )
        ttl_list = ttl.tolist()
        for a, b in itertools.pairwise(bounds):
            metric, tags, kind = series[int(gid[a])]
            key = codec.encode_row_key(metric, int(rts[a]), DATA_TYPES[kind], tags)
            for lo in range(a, b, BATCH_ROWS):
                hi = min(lo + BATCH_ROWS, b)
                if hi - lo == 1:
                    yield insert, (key, cols[lo], encoded[lo], ttl_list[lo], write_time)
                    continue
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for i in range(lo, hi):
                    batch.add(insert, (key, cols[i], encoded[i], ttl_list[i], write_time))
                yield batch, None

    # -- deletes (spec §6.9) -------------------------------------------------------------------

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
        spec = self.ks.spec
        wt = self._next_write_time()
        width = spec.width_millis
        whole_row = self.ks.stmt("DELETE FROM {ks}.data_points USING TIMESTAMP ? WHERE key = ?")
        cols = self.ks.stmt(
            "DELETE FROM {ks}.data_points USING TIMESTAMP ? WHERE key = ? "
            "AND column1 >= ? AND column1 <= ?"
        )
        row_keys = self.ks.stmt(
            "DELETE FROM {ks}.row_keys USING TIMESTAMP ? WHERE metric = ? "
            "AND table_name = 'data_points' AND row_time = ? AND data_type = ? AND tags = ?"
        )
        legacy_index = self.ks.stmt(
            "DELETE FROM {ks}.row_key_index USING TIMESTAMP ? WHERE key = ? AND column1 = ?"
        )
        time_index = self.ks.stmt(
            "DELETE FROM {ks}.row_key_time_index USING TIMESTAMP ? WHERE metric = ? "
            "AND table_name = 'data_points' AND row_time = ?"
        )
        items: list[tuple[Any, tuple]] = []
        touched = 0
        partial: list[codec.RowKey] = []
        whole: list[codec.RowKey] = []
        for rk in self.index.row_keys(metric, start, end):
            if not tag_filter(dict(rk.tags)):
                continue
            touched += 1
            key = codec.encode_row_key(rk.metric, rk.row_time, rk.data_type, rk.tags)
            rt = rk.row_time
            if start <= rt and end >= rt + width - 1:
                items.append((whole_row, (wt, key)))
                items.append((legacy_index, (wt, metric.encode(), key)))
                if rk.data_type != codec.LEGACY_TYPE:
                    items.append((row_keys, (wt, metric, rt, rk.data_type, dict(rk.tags))))
                if not tag_filtered:
                    items.append((time_index, (wt, metric, rt)))
                whole.append(rk)
                continue
            partial.append(rk)
            unit = codec.LEGACY if rk.data_type == codec.LEGACY_TYPE else spec.unit
            a, b = max(start, rt), min(end, rt + width - 1)
            lo = codec.column(a, rt, unit)
            hi = codec.column(b, rt, unit) | (1 if unit == codec.LEGACY else 0)
            items.append((cols, (wt, key, lo.to_bytes(4, "big"), hi.to_bytes(4, "big"))))
        if start == LONG_MIN and end == LONG_MAX:
            items.append(
                (
                    self.ks.stmt("DELETE FROM {ks}.row_key_index USING TIMESTAMP ? WHERE key = ?"),
                    (wt, metric.encode()),
                )
            )
            items.append(
                (
                    self.ks.stmt(
                        "DELETE FROM {ks}.string_index USING TIMESTAMP ? "
                        "WHERE key = ? AND column1 = ?"
                    ),
                    (wt, METRIC_NAMES_KEY, metric),
                )
            )
        if items:
            self.ks.execute(items, self.concurrency, WRITE)
        if partial or whole:
            self._prune(metric, partial, whole)
        self._row_key_cache.clear()
        self._metric_cache.clear()
        log.info("deleted %s: %d row keys in [%d, %d]", metric, touched, start, end)
        return touched

    def _prune(self, metric: str, partial: list[codec.RowKey], whole: list[codec.RowKey]) -> None:
        """Drop index entries a delete left pointing at nothing, so emptied series, row times
        and finally the metric name disappear (KairosDB keeps them: its issues #111/#389).

        Reads use the write consistency level, so they see the deletes just written.
        """
        n = self.concurrency
        wt = self._next_write_time()
        probe = self.ks.stmt("SELECT column1 FROM {ks}.data_points WHERE key = ? LIMIT 1")
        keys = [codec.encode_row_key(r.metric, r.row_time, r.data_type, r.tags) for r in partial]
        results = self.ks.execute([(probe, (k,)) for k in keys], n, WRITE)
        emptied = [
            (rk, key)
            for rk, key, rows in zip(partial, keys, results, strict=True)
            if not list(rows)
        ]
        drop_legacy = self.ks.stmt(
            "DELETE FROM {ks}.row_key_index USING TIMESTAMP ? WHERE key = ? AND column1 = ?"
        )
        drop_key = self.ks.stmt(
            "DELETE FROM {ks}.row_keys USING TIMESTAMP ? WHERE metric = ? "
            "AND table_name = 'data_points' AND row_time = ? AND data_type = ? AND tags = ?"
        )
        drop = [
            (drop_legacy, (wt, metric.encode(), key))
            if rk.data_type == codec.LEGACY_TYPE
            else (drop_key, (wt, metric, rk.row_time, rk.data_type, dict(rk.tags)))
            for rk, key in emptied
        ]
        if drop:
            self.ks.execute(drop, n, WRITE)
        row_times = sorted({rk.row_time for rk, _ in emptied} | {rk.row_time for rk in whole})
        left = self.ks.stmt(
            "SELECT data_type FROM {ks}.row_keys WHERE metric = ? "
            "AND table_name = 'data_points' AND row_time = ? LIMIT 1"
        )
        results = self.ks.execute([(left, (metric, rt)) for rt in row_times], n, WRITE)
        # A partition with only its static mtime left answers one row with no data_type.
        empty_times = [
            rt
            for rt, rows in zip(row_times, results, strict=True)
            if not any(r[0] is not None for r in rows)
        ]
        if empty_times:
            time_index = self.ks.stmt(
                "DELETE FROM {ks}.row_key_time_index USING TIMESTAMP ? WHERE metric = ? "
                "AND table_name = 'data_points' AND row_time = ?"
            )
            self.ks.execute([(time_index, (wt, metric, rt)) for rt in empty_times], n, WRITE)
        any_time, any_legacy = self.ks.execute(
            [
                (
                    self.ks.stmt(
                        "SELECT row_time FROM {ks}.row_key_time_index WHERE metric = ? LIMIT 1"
                    ),
                    (metric,),
                ),
                (
                    self.ks.stmt("SELECT column1 FROM {ks}.row_key_index WHERE key = ? LIMIT 1"),
                    (metric.encode(),),
                ),
            ],
            2,
            WRITE,
        )
        if not list(any_time) and not list(any_legacy):
            name = self.ks.stmt(
                "DELETE FROM {ks}.string_index USING TIMESTAMP ? WHERE key = ? AND column1 = ?"
            )
            self.ks.execute([(name, (wt, METRIC_NAMES_KEY, metric))], 1, WRITE)
            log.info("%s has no data left: its name is removed", metric)
