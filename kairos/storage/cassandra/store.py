"""The Cassandra datastore: KairosDB's own keyspace, read and written byte for byte.

Layout and algorithms are KairosDB's (``shared/spec/kairosdb-reference.md`` §6): a series is
(metric, data type, tags); its points live in ``data_points`` partitions keyed by
(metric, row time, data type, tag string), one partition per row width (3 weeks by default),
indexed by ``row_key_time_index`` (metric -> row times) and ``row_keys`` (metric, row time ->
data types and tag maps); ``string_index`` lists the metric names.  Java KairosDB reads what
Kairos writes and the other way round.

Writes come only from the writer stage, which applies the WAL: index rows first (skipped for
row keys the writer already indexed), then the points as unlogged per-partition batches, many
in flight.  Every statement carries a millisecond write time, as KairosDB's driver
configuration does (spec §6.5), strictly increasing across the writer's applies so that later
WAL records (an overwrite, a delete) win over earlier ones.  The WAL positions applied are
checkpointed in ``<data_dir>/cassandra.checkpoint`` only after Cassandra acknowledged every
statement: a failure or a crash re-applies from the previous checkpoint (idempotent).

Readers (every HTTP worker) discover series through the index for the query's time range and
read each partition's column range concurrently.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

import numpy as np
import orjson

from kairos.config import Config, cassandra_contact_points
from kairos.errors import CorruptFile
from kairos.model.batch import DOUBLE, HISTOGRAM, LONG, STRING, Batch
from kairos.model.java import LONG_MAX, LONG_MIN, java_key
from kairos.storage._frame import FrameStatus, encode_frame, iter_frames
from kairos.storage._fs import fsync_dir
from kairos.storage.cassandra import codec
from kairos.storage.cassandra.schema import (
    METRIC_NAMES_KEY,
    ClusterSpec,
    create_schema,
    read_spec,
)
from kairos.storage.protocol import SeriesData, SeriesInfo

__all__ = ["CassandraStore"]

READ = "read"
WRITE = "write"

log = logging.getLogger("kairos.cassandra")


DATA_TYPES = {
    LONG: codec.LONG_TYPE,
    DOUBLE: codec.DOUBLE_TYPE,
    STRING: codec.STRING_TYPE,
    HISTOGRAM: codec.HISTOGRAM_TYPE,
}
KINDS = {t: k for k, t in DATA_TYPES.items()}

BATCH_ROWS = 100
"""Rows per unlogged single-partition batch (a few KB: under Cassandra's batch warning)."""
FETCH_SIZE = 20000
CHECKPOINT = "cassandra.checkpoint"


def connect(config: Config):
    """A driver ``Cluster`` and ``Session`` for ``config``: token-aware routing, KairosDB's
    consistency levels, tuple rows, and millisecond client timestamps (spec §6.5)."""
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.connection import DefaultEndPoint
    from cassandra.policies import (
        DCAwareRoundRobinPolicy,
        ExponentialReconnectionPolicy,
        TokenAwarePolicy,
    )
    from cassandra.query import tuple_factory

    points = [DefaultEndPoint(h, p) for h, p in cassandra_contact_points(config)]
    level = ConsistencyLevel.name_to_value

    def profile(consistency: str) -> ExecutionProfile:
        return ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
            consistency_level=level[consistency.upper()],
            row_factory=tuple_factory,
            request_timeout=30,
        )

    auth = None
    if config.cassandra_username:
        auth = PlainTextAuthProvider(config.cassandra_username, config.cassandra_password)
    cluster = Cluster(
        contact_points=points,
        auth_provider=auth,
        execution_profiles={
            EXEC_PROFILE_DEFAULT: profile(config.cassandra_read_consistency),
            READ: profile(config.cassandra_read_consistency),
            WRITE: profile(config.cassandra_write_consistency),
        },
        timestamp_generator=_millis,
        # Back within seconds of an outage's end (the driver's default waits up to 10 min).
        reconnection_policy=ExponentialReconnectionPolicy(0.5, 2.0),
        connect_timeout=config.cassandra_connect_timeout_seconds,
        **_connection_class(),
    )
    return cluster, cluster.connect()


def _connection_class() -> dict:
    """The asyncio reactor: the default asyncore one warns (deprecated) on Python 3.11."""
    try:
        from cassandra.io.libevreactor import LibevConnection

        return {"connection_class": LibevConnection}
    except ImportError:  # pragma: no cover - depends on the driver build
        from cassandra.io.asyncioreactor import AsyncioConnection

        return {"connection_class": AsyncioConnection}


def _millis() -> int:
    return time.time_ns() // 1_000_000


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


SERIES_CACHE = 1_000_000
"""Series whose ids and row times a store keeps between queries (least recently used go)."""


class CassandraStore:
    """:class:`~kairos.storage.protocol.Datastore` on KairosDB's Cassandra keyspace."""

    def __init__(self, config: Config, *, writer: bool = False) -> None:
        self.config = config
        self.is_writer = writer
        self.keyspace = config.cassandra_keyspace
        self.default_ttl = config.datastore_default_ttl
        self.checkpoint_path = os.path.join(config.data_dir, CHECKPOINT)
        self._positions: dict[str, int] = {}
        self._checkpoint_bytes: bytes | None = None
        self._lock = threading.Lock()
        # Series seen by queries, bounded: (metric, tags, kind) -> its info, and -> data type ->
        # row times found. A series pushed out is found again (under a new id) when needed.
        self._infos: OrderedDict[tuple, SeriesInfo] = OrderedDict()
        self._rows: OrderedDict[tuple, dict[str, set[int]]] = OrderedDict()
        self._next_sid = itertools.count()
        self._row_key_cache = _LRU(config.cassandra_row_key_cache_size)
        self._metric_cache = _LRU(config.cassandra_row_key_cache_size)
        self._last_write_time = 0
        self._prepared: dict[str, object] = {}
        self._spec: ClusterSpec | None = None
        os.makedirs(config.data_dir, exist_ok=True)
        self._load_checkpoint()
        self.cluster, self.session = connect(config)
        if writer:
            self._spec = create_schema(
                self.session,
                self.keyspace,
                config.cassandra_replication,
                config.cassandra_row_time_unit,
                config.cassandra_row_width,
            )

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def spec(self) -> ClusterSpec:
        """The keyspace's row width and unit (read clusters without a spec row assume the
        defaults, as KairosDB does; a reader retries until the writer has created it)."""
        if self._spec is None:
            try:
                spec = read_spec(self.session, self.keyspace)
            except Exception as e:
                raise _unavailable(e) from None
            if spec is None:
                return ClusterSpec()
            self._spec = spec
        return self._spec

    def _stmt(self, cql: str):
        stmt = self._prepared.get(cql)
        if stmt is None:
            try:
                stmt = self.session.prepare(cql.format(ks=self.keyspace))
            except Exception as e:
                raise _unavailable(e) from None
            self._prepared[cql] = stmt
        return stmt

    def _execute(self, items: Iterable[tuple], concurrency: int, profile: str) -> list:
        """Run (statement, params) pairs with ``concurrency`` in flight; results in order."""
        from cassandra.concurrent import execute_concurrent

        try:
            results = execute_concurrent(
                self.session,
                items,
                concurrency=concurrency,
                raise_on_first_error=True,
                execution_profile=profile,
            )
        except Exception as e:
            raise _unavailable(e) from None
        return [r.result_or_exc for r in results]

    def _next_write_time(self) -> int:
        self._last_write_time = max(_millis(), self._last_write_time + 1)
        return self._last_write_time

    # -- checkpoint --------------------------------------------------------------------------

    def _load_checkpoint(self) -> None:
        try:
            with open(self.checkpoint_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        if data == self._checkpoint_bytes:
            return
        frames = list(iter_frames(data))
        if not frames or frames[0][0] != FrameStatus.OK:
            raise CorruptFile(self.checkpoint_path, "checkpoint failed its CRC check")
        self._positions = orjson.loads(bytes(frames[0][2]))
        self._checkpoint_bytes = data

    def _save_checkpoint(self, positions: dict[str, int]) -> None:
        data = encode_frame(orjson.dumps(positions))
        tmp = f"{self.checkpoint_path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.checkpoint_path)
        fsync_dir(os.path.dirname(self.checkpoint_path) or ".")
        self._positions = dict(positions)
        self._checkpoint_bytes = data

    @property
    def wal_positions(self) -> dict[str, int]:
        return dict(self._positions)

    def refresh(self) -> None:
        with self._lock:
            self._load_checkpoint()

    def close(self) -> None:
        self.cluster.shutdown()

    # -- reads: names --------------------------------------------------------------------------

    def metric_names(self, prefix: str | None = None) -> list[str]:
        rows = self._execute(
            [
                (
                    self._stmt("SELECT column1 FROM {ks}.string_index WHERE key = ?"),
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

    def _all_tags(self) -> list[tuple[str, str]]:
        pairs = set()
        for metric in self.metric_names():
            for info in self.find_series(metric, {}):
                pairs.update(info.tags)
        return list(pairs)

    def tag_names(self) -> list[str]:
        """Every tag name of every metric (KairosDB 1.2 API; a full index walk)."""
        return sorted({k for k, _ in self._all_tags()}, key=java_key)

    def tag_values(self) -> list[str]:
        return sorted({v for _, v in self._all_tags()}, key=java_key)

    # -- reads: series discovery (spec §6.8) ---------------------------------------------------

    def _row_keys(self, metric: str, start: int, end: int) -> list[codec.RowKey]:
        """Every row key of ``metric`` whose row may hold points in [start, end]."""
        spec = self.spec
        lo = first_row_time(start, spec.row_width)
        times = self._execute(
            [
                (
                    self._stmt(
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
        stmt = self._stmt(
            "SELECT data_type, tags FROM {ks}.row_keys WHERE metric = ? "
            "AND table_name = 'data_points' AND row_time = ?"
        )
        results = self._execute(
            [(stmt, (metric, rt)) for rt in row_times],
            self.config.cassandra_simultaneous_queries,
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
        spec = self.spec
        ranges = [(start, -1), (0, end)] if start < 0 <= end else [(start, end)]
        stmt = self._stmt(
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
        for rows in self._execute(items, 2, READ):
            for (key,) in rows:
                try:
                    out.append(codec.decode_row_key(key))
                except ValueError:
                    log.warning("row_key_index of %s: undecodable row key %s", metric, key.hex())
        return out

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
        for rk in self._row_keys(metric, start, end):
            if rk.data_type == codec.LEGACY_TYPE:
                kinds = (LONG, DOUBLE)  # one legacy row holds both; the column's low bit says
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

    def _row_times(
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

    def count(self, series: list[SeriesInfo], start: int, end: int) -> int:
        """0: Cassandra has no cheap count.  The engine accounts for what :meth:`read`
        returns, so the query point limit still applies (after the read)."""
        return 0

    # -- reads: points -----------------------------------------------------------------------

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
        spec = self.spec
        cql = (
            "SELECT column1, value FROM {ks}.data_points WHERE key = ? "
            "AND column1 >= ? AND column1 < ?"
        )
        if limit:  # one prepared statement per order, the limit bound
            cql += f" ORDER BY column1 {'DESC' if order == 'desc' else 'ASC'} LIMIT ?"
        stmt = self._stmt(cql)
        extra = (int(limit),) if limit else ()
        stmt.fetch_size = FETCH_SIZE
        lo = first_row_time(start, spec.row_width)
        plan: list[tuple[int, str, int]] = []  # (series index, data type, row time)
        items = []
        for i, (info, rows) in enumerate(
            zip(series, self._row_times(series, start, end), strict=True)
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
        results = self._execute(items, self.config.cassandra_simultaneous_queries, READ)
        parts: dict[int, list[tuple[np.ndarray, object]]] = {}
        for (i, dt, rt), rows in zip(plan, results, strict=True):
            rows = list(rows)
            if not rows:
                continue
            cols = [r[0] for r in rows]
            vals = [r[1] for r in rows]
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
    ) -> tuple[np.ndarray, object]:
        unit = self.spec.unit
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

    # -- writes (spec §6.5, §6.6) --------------------------------------------------------------

    def write(self, batch: Batch, wal_positions: dict[str, int] | None = None) -> None:
        self.write_many([batch], wal_positions)

    def write_many(self, batches: list[Batch], wal_positions: dict[str, int] | None = None) -> None:
        """Write the points (last one wins per series and timestamp), then checkpoint."""
        if not self.is_writer:
            raise RuntimeError("only the writer process writes to Cassandra")
        batches = [b for b in batches if len(b)]
        if batches:
            self._write_points(batches)
        if wal_positions is not None and wal_positions != self._positions:
            self._save_checkpoint(wal_positions)

    def _write_points(self, batches: list[Batch]) -> None:
        spec = self.spec
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
            self._execute(index_items, self.config.cassandra_write_concurrency, WRITE)
        self._execute(
            self._data_items(series, gid, rts, cols, encoded, ttl, bounds, write_time),
            self.config.cassandra_write_concurrency,
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
        row_key = self._stmt(
            "INSERT INTO {ks}.row_keys (metric, table_name, row_time, data_type, tags, mtime) "
            "VALUES (?, 'data_points', ?, ?, ?, now()) USING TTL ? AND TIMESTAMP ?"
        )
        time_index = self._stmt(
            "INSERT INTO {ks}.row_key_time_index (metric, table_name, row_time) "
            "VALUES (?, 'data_points', ?) USING TTL ? AND TIMESTAMP ?"
        )
        name = self._stmt(
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

        insert = self._stmt(
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
        if not self.is_writer:
            raise RuntimeError("only the writer process deletes from Cassandra")
        spec = self.spec
        wt = self._next_write_time()
        width = spec.width_millis
        whole_row = self._stmt("DELETE FROM {ks}.data_points USING TIMESTAMP ? WHERE key = ?")
        cols = self._stmt(
            "DELETE FROM {ks}.data_points USING TIMESTAMP ? WHERE key = ? "
            "AND column1 >= ? AND column1 <= ?"
        )
        row_keys = self._stmt(
            "DELETE FROM {ks}.row_keys USING TIMESTAMP ? WHERE metric = ? "
            "AND table_name = 'data_points' AND row_time = ? AND data_type = ? AND tags = ?"
        )
        legacy_index = self._stmt(
            "DELETE FROM {ks}.row_key_index USING TIMESTAMP ? WHERE key = ? AND column1 = ?"
        )
        time_index = self._stmt(
            "DELETE FROM {ks}.row_key_time_index USING TIMESTAMP ? WHERE metric = ? "
            "AND table_name = 'data_points' AND row_time = ?"
        )
        items = []
        touched = 0
        partial: list[codec.RowKey] = []
        whole: list[codec.RowKey] = []
        for rk in self._row_keys(metric, start, end):
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
                    self._stmt("DELETE FROM {ks}.row_key_index USING TIMESTAMP ? WHERE key = ?"),
                    (wt, metric.encode()),
                )
            )
            items.append(
                (
                    self._stmt(
                        "DELETE FROM {ks}.string_index USING TIMESTAMP ? "
                        "WHERE key = ? AND column1 = ?"
                    ),
                    (wt, METRIC_NAMES_KEY, metric),
                )
            )
        if items:
            self._execute(items, self.config.cassandra_write_concurrency, WRITE)
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
        n = self.config.cassandra_write_concurrency
        wt = self._next_write_time()
        probe = self._stmt("SELECT column1 FROM {ks}.data_points WHERE key = ? LIMIT 1")
        keys = [codec.encode_row_key(r.metric, r.row_time, r.data_type, r.tags) for r in partial]
        results = self._execute([(probe, (k,)) for k in keys], n, WRITE)
        emptied = [
            (rk, key)
            for rk, key, rows in zip(partial, keys, results, strict=True)
            if not list(rows)
        ]
        drop_legacy = self._stmt(
            "DELETE FROM {ks}.row_key_index USING TIMESTAMP ? WHERE key = ? AND column1 = ?"
        )
        drop_key = self._stmt(
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
            self._execute(drop, n, WRITE)
        row_times = sorted({rk.row_time for rk, _ in emptied} | {rk.row_time for rk in whole})
        left = self._stmt(
            "SELECT data_type FROM {ks}.row_keys WHERE metric = ? "
            "AND table_name = 'data_points' AND row_time = ? LIMIT 1"
        )
        results = self._execute([(left, (metric, rt)) for rt in row_times], n, WRITE)
        # A partition with only its static mtime left answers one row with no data_type.
        empty_times = [
            rt
            for rt, rows in zip(row_times, results, strict=True)
            if not any(r[0] is not None for r in rows)
        ]
        if empty_times:
            time_index = self._stmt(
                "DELETE FROM {ks}.row_key_time_index USING TIMESTAMP ? WHERE metric = ? "
                "AND table_name = 'data_points' AND row_time = ?"
            )
            self._execute([(time_index, (wt, metric, rt)) for rt in empty_times], n, WRITE)
        any_time, any_legacy = self._execute(
            [
                (
                    self._stmt(
                        "SELECT row_time FROM {ks}.row_key_time_index WHERE metric = ? LIMIT 1"
                    ),
                    (metric,),
                ),
                (
                    self._stmt("SELECT column1 FROM {ks}.row_key_index WHERE key = ? LIMIT 1"),
                    (metric.encode(),),
                ),
            ],
            2,
            WRITE,
        )
        if not list(any_time) and not list(any_legacy):
            name = self._stmt(
                "DELETE FROM {ks}.string_index USING TIMESTAMP ? WHERE key = ? AND column1 = ?"
            )
            self._execute([(name, (wt, METRIC_NAMES_KEY, metric))], 1, WRITE)
            log.info("%s has no data left: its name is removed", metric)


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


def _assemble(info: SeriesInfo, parts: list[tuple[np.ndarray, object]]) -> SeriesData:
    ts = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    if isinstance(parts[0][1], np.ndarray):
        values: object = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
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


def _unavailable(e: Exception) -> Exception:
    from kairos.errors import Unavailable

    return Unavailable(f"Cassandra: {type(e).__name__}: {e}")
