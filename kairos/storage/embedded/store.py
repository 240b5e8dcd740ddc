"""The embedded datastore, first version: segments, a series log and an atomic manifest.

Files under ``<data_dir>``::

    MANIFEST             one CRC frame holding JSON: generation, series_count, segments, and
                         the WAL positions applied (the writer's checkpoint)
    series.log           CRC frames, one per series, in series-id order: [metric, tags, kind]
    segments/<n>.arrow   immutable Arrow IPC files: series int32, ts int64, value int64,
                         expires int64 (ms, 0 = never), obj binary (strings, histograms);
                         sorted by (series, ts), one row per (series, ts)
    wal/                 see ``kairos.storage.wal``

Only the writer process mutates.  It writes a segment (fsync, rename), appends new series to
the log (fsync), then replaces MANIFEST (write temp, fsync, rename, fsync dir): a crash at any
point leaves the previous manifest, whose WAL positions make the writer re-apply the rest.
Readers (every HTTP worker) memory-map the segments named by the manifest they last read;
files are never modified in place, and a replaced segment is unlinked only after the manifest
stops naming it, so an open reader keeps a consistent view.

Newer segments win on equal (series, ts): that is how overwrites work.

Deletes are tombstones in the manifest: ``{"series": [ids], "start", "end", "horizon"}`` hides
the rows of those series in ``[start, end]`` held by segments numbered below ``horizon`` (the
segments that existed when the delete was applied; later writes are not affected).
Compaction drops hidden rows and forgets tombstones no live segment is old enough to need.
Series left without rows by a delete are listed in ``dead_series`` and disappear from metric
names, tag lookups and queries until new points arrive for them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib

import numpy as np
import orjson
import pyarrow as pa

from kairos.errors import CorruptFile
from kairos.ingest.batch import HISTOGRAM, STRING, Batch, java_key
from kairos.storage._frame import FrameStatus, encode_frame, iter_frames
from kairos.storage._fs import fsync_dir
from kairos.storage.protocol import SeriesData, SeriesInfo

__all__ = ["EmbeddedStore"]

log = logging.getLogger("kairos.store")

_SCHEMA = pa.schema(
    [
        ("series", pa.int32()),
        ("ts", pa.int64()),
        ("value", pa.int64()),
        ("expires", pa.int64()),
        ("obj", pa.binary()),
    ]
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _ranges(sers: np.ndarray, tss: np.ndarray, sids: np.ndarray, start: int, end: int):
    """Row ranges ``[a, b)`` of each series id in ``sids`` with ``start <= ts <= end``.

    One vectorised binary search per segment for all series (a scalar Python int key would
    make numpy cast the whole int32 column to int64 on every call).
    """
    lo = np.searchsorted(sers, sids, "left")
    hi = np.searchsorted(sers, sids, "right")
    a = lo.copy()
    b = lo.copy()
    for j in np.flatnonzero(hi > lo).tolist():
        seg_ts = tss[lo[j] : hi[j]]
        a[j] = lo[j] + np.searchsorted(seg_ts, start, "left")
        b[j] = lo[j] + np.searchsorted(seg_ts, end, "right")
    return a, b


def _seg_number(seg: dict) -> int:
    return int(seg["name"].split(".", 1)[0])


class EmbeddedStore:
    """The embedded backend (see the module docstring for the files).

    Parameters
    ----------
    data_dir : str
        Directory of the store; created if missing.
    writer : bool
        True in the writer process only: allows :meth:`write` and :meth:`checkpoint`.
    default_ttl : int
        Seconds applied to points ingested with ttl 0 (0 = keep forever).
    fanout : int
        Size-tiered compaction: new segments are level 0; ``fanout`` segments of one level
        merge into one segment of the next level, so each point is rewritten about
        log_fanout(total / flush) times.
    """

    def __init__(
        self, data_dir: str, writer: bool = False, default_ttl: int = 0, fanout: int = 8
    ) -> None:
        self.dir = data_dir
        self.seg_dir = os.path.join(data_dir, "segments")
        os.makedirs(self.seg_dir, exist_ok=True)
        self.is_writer = writer
        self.default_ttl = default_ttl
        self.fanout = fanout
        self.manifest_path = os.path.join(data_dir, "MANIFEST")
        self.series_path = os.path.join(data_dir, "series.log")
        self._manifest: dict = {
            "generation": 0,
            "series_count": 0,
            "segments": [],
            "wal": {},
            "next_segment": 1,
            "tombstones": [],
            "dead_series": [],
        }
        self._manifest_bytes: bytes | None = None
        self._series: list[SeriesInfo] = []
        self._series_key: dict[tuple, int] = {}
        self._by_metric: dict[str, list[int]] = {}
        self._series_offset = 0
        self._tables: dict[str, pa.Table] = {}
        self._metric_names: list[str] | None = None
        self._dead: set[int] = set()
        self._lock = threading.RLock()
        if writer:
            self._recover()
        self.refresh()

    # -- reading state ---------------------------------------------------------------------

    def _load_manifest(self) -> dict | None:
        try:
            with open(self.manifest_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return self._parse_manifest(data)

    def _parse_manifest(self, data: bytes) -> dict:
        frames = list(iter_frames(data))
        if not frames or frames[0][0] != FrameStatus.OK:
            raise CorruptFile(self.manifest_path, "manifest failed its CRC check")
        return orjson.loads(bytes(frames[0][2]))

    def refresh(self) -> None:
        """Pick up a newer manifest written by the writer process (cheap when unchanged).

        Thread-safe: queries run in executor threads while the event loop refreshes.
        """
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        # The manifest is small; its bytes (not its stat) say whether it changed: a rename can
        # reuse the inode number within one timestamp tick.
        try:
            with open(self.manifest_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        if data == self._manifest_bytes:
            return
        m = self._parse_manifest(data)
        self._manifest = m
        self._manifest_bytes = data
        self._dead = set(m.get("dead_series", ()))
        self._load_series(m["series_count"])
        live = {s["name"] for s in m["segments"]}
        for name in list(self._tables):
            if name not in live:
                del self._tables[name]
        self._metric_names = None

    def _load_series(self, count: int) -> None:
        if len(self._series) >= count:
            return
        with open(self.series_path, "rb") as f:
            f.seek(self._series_offset)
            data = f.read()
        base = self._series_offset
        for status, end, payload in iter_frames(data):
            if status != FrameStatus.OK or len(self._series) >= count:
                break
            metric, flat, kind = orjson.loads(bytes(payload))
            self._add_series(metric, tuple(zip(flat[0::2], flat[1::2], strict=True)), kind)
            self._series_offset = base + end
        if len(self._series) < count:
            raise CorruptFile(
                self.series_path, f"holds {len(self._series)} series, manifest says {count}"
            )

    def _add_series(self, metric: str, tags: tuple, kind: int) -> int:
        sid = len(self._series)
        self._series.append(SeriesInfo(sid, metric, tags, kind))
        self._series_key[(metric, tags, kind)] = sid
        self._by_metric.setdefault(metric, []).append(sid)
        return sid

    def _table(self, name: str) -> pa.Table:
        t = self._tables.get(name)
        if t is None:
            path = os.path.join(self.seg_dir, name)
            try:
                src = pa.memory_map(path, "r")
                t = pa.ipc.open_file(src).read_all()
            except (pa.ArrowInvalid, OSError) as e:
                raise CorruptFile(path, f"unreadable segment: {e}") from None
            self._tables[name] = t
        return t

    # -- Datastore: queries ------------------------------------------------------------------

    def metric_names(self, prefix: str | None = None) -> list[str]:
        if self._metric_names is None:
            live = (
                m for m, sids in self._by_metric.items() if any(s not in self._dead for s in sids)
            )
            self._metric_names = sorted(live, key=java_key)
        if not prefix:
            return list(self._metric_names)
        return [m for m in self._metric_names if m.startswith(prefix)]

    def tag_names(self) -> list[str]:
        """Every tag name of the live series, in Java ``String`` order (KairosDB 1.2 API)."""
        names = {k for s in self._series if s.sid not in self._dead for k, _ in s.tags}
        return sorted(names, key=java_key)

    def tag_values(self) -> list[str]:
        """Every tag value of the live series, in Java ``String`` order (KairosDB 1.2 API)."""
        values = {v for s in self._series if s.sid not in self._dead for _, v in s.tags}
        return sorted(values, key=java_key)

    def find_series(
        self, metric: str, tags: dict[str, list[str]], start: int = 0, end: int = 0
    ) -> list[SeriesInfo]:
        """Series of ``metric`` (the time range is not needed: the series list is in memory)."""
        out = []
        for sid in self._by_metric.get(metric, ()):
            if sid in self._dead:
                continue
            info = self._series[sid]
            have = dict(info.tags)
            if all(have.get(k) in vals for k, vals in tags.items()):
                out.append(info)
        return out

    def count(self, series: list[SeriesInfo], start: int, end: int) -> int:
        """Upper bound of the points :meth:`read` would return (before overwrites, deletes and
        TTL): binary searches only, nothing is decoded."""
        total = 0
        sids = np.array([i.sid for i in series], np.int32)
        for seg in self._manifest["segments"]:
            if seg["max_ts"] < start or seg["min_ts"] > end:
                continue
            t = self._table(seg["name"])
            if not t.num_rows:
                continue
            sers = t.column("series").chunk(0).to_numpy()
            tss = t.column("ts").chunk(0).to_numpy()
            a, b = _ranges(sers, tss, sids, start, end)
            total += int((b - a).sum())
        return total

    def read(
        self, series: list[SeriesInfo], start: int, end: int, limit: int = 0, order: str = "asc"
    ) -> list[SeriesData]:
        """``limit``/``order`` are hints (the engine applies the limit): the whole range of a
        series is one slice of a sorted segment here."""
        try:
            return self._read(series, start, end)
        except CorruptFile as e:
            # A compaction may have replaced a segment after we read the manifest.
            if os.path.exists(e.path):
                raise
            with self._lock:
                self._manifest_bytes = None
                self._refresh()
            return self._read(series, start, end)

    def _read(self, series: list[SeriesInfo], start: int, end: int) -> list[SeriesData]:
        now = _now_ms()
        per_sid: dict[int, list[tuple]] = {}
        sids = np.array([i.sid for i in series], np.int32)
        for seg in self._manifest["segments"]:
            if seg["max_ts"] < start or seg["min_ts"] > end:
                continue
            t = self._table(seg["name"])
            number = _seg_number(seg)
            sers = t.column("series").chunk(0).to_numpy() if t.num_rows else np.zeros(0, np.int32)
            if not len(sers):
                continue
            tss = t.column("ts").chunk(0).to_numpy()
            a, b = _ranges(sers, tss, sids, start, end)
            for j in np.flatnonzero(b > a).tolist():
                per_sid.setdefault(series[j].sid, []).append((t, int(a[j]), int(b[j]), number))
        out = []
        for info in series:
            parts = per_sid.get(info.sid)
            if not parts:
                continue
            ts = np.concatenate([p[0].column("ts").chunk(0).to_numpy()[p[1] : p[2]] for p in parts])
            vals = np.concatenate(
                [p[0].column("value").chunk(0).to_numpy()[p[1] : p[2]] for p in parts]
            )
            exp = np.concatenate(
                [p[0].column("expires").chunk(0).to_numpy()[p[1] : p[2]] for p in parts]
            )
            objs = None
            if info.kind in (STRING, HISTOGRAM):
                objs = []
                for t, a, b, _ in parts:
                    objs.extend(t.column("obj").chunk(0)[a:b].to_pylist())
            hidden = None
            if any(info.sid in t["series"] for t in self._manifest.get("tombstones", ())):
                numbers = np.concatenate([np.full(p[2] - p[1], p[3], np.int64) for p in parts])
                hidden = self._hidden(info.sid, ts, numbers)
            if hidden is not None:
                ts, vals, exp = ts[~hidden], vals[~hidden], exp[~hidden]
                if objs is not None:
                    objs = [o for o, h in zip(objs, hidden, strict=True) if not h]
            # Parts come oldest segment first; when their time ranges do not overlap (data
            # written in time order) the concatenation is already sorted and unique.
            disjoint = all(
                parts[k][0].column("ts").chunk(0)[parts[k][2] - 1].as_py()
                < parts[k + 1][0].column("ts").chunk(0)[parts[k + 1][1]].as_py()
                for k in range(len(parts) - 1)
            )
            if len(parts) > 1 and (hidden is not None or not disjoint):
                order = np.argsort(ts, kind="stable")
                ts, vals, exp = ts[order], vals[order], exp[order]
                keep = np.ones(len(ts), bool)
                keep[:-1] = ts[1:] != ts[:-1]  # the last of equal timestamps is the newest
                ts, vals, exp = ts[keep], vals[keep], exp[keep]
                if objs is not None:
                    objs = [objs[i] for i in order[keep]]
            alive = (exp == 0) | (exp > now)
            if not alive.all():
                ts, vals = ts[alive], vals[alive]
                if objs is not None:
                    objs = [o for o, a in zip(objs, alive, strict=True) if a]
            if not len(ts):
                continue
            if info.kind == STRING:
                values: np.ndarray | list = [o.decode("utf-8", "surrogatepass") for o in objs]
            elif info.kind == HISTOGRAM:
                values = objs
            elif info.kind == 1:
                values = vals.view(np.float64)
            else:
                values = vals
            out.append(SeriesData(info, ts, values))
        return out

    def _hidden(self, sid: int, ts: np.ndarray, numbers: np.ndarray) -> np.ndarray | None:
        """Rows hidden by tombstones (None when no tombstone touches ``sid``)."""
        mask = None
        for tomb in self._manifest.get("tombstones", ()):
            if sid not in tomb["series"]:
                continue
            m = (numbers < tomb["horizon"]) & (ts >= tomb["start"]) & (ts <= tomb["end"])
            mask = m if mask is None else (mask | m)
        return mask

    def _has_rows(self, sid: int) -> bool:
        now = _now_ms()
        for seg in self._manifest["segments"]:
            t = self._table(seg["name"])
            if not t.num_rows:
                continue
            sers = t.column("series").chunk(0).to_numpy()
            lo = int(np.searchsorted(sers, np.int32(sid), "left"))
            hi = int(np.searchsorted(sers, np.int32(sid), "right"))
            if lo == hi:
                continue
            ts = t.column("ts").chunk(0).to_numpy()[lo:hi]
            exp = t.column("expires").chunk(0).to_numpy()[lo:hi]
            keep = (exp == 0) | (exp > now)
            hidden = self._hidden(sid, ts, np.full(hi - lo, _seg_number(seg), np.int64))
            if hidden is not None:
                keep &= ~hidden
            if keep.any():
                return True
        return False

    # -- writer side -------------------------------------------------------------------------

    def delete(
        self, metric: str, tag_filter, start: int, end: int, *, tag_filtered: bool = True
    ) -> int:
        """Tombstone the points of ``metric``'s series matching ``tag_filter`` in [start, end].

        ``tag_filter(tags: dict) -> bool`` selects series.  Returns the number of series
        touched.  Series left without points become dead (hidden from names and lookups).
        """
        if not self.is_writer:
            raise RuntimeError("only the writer process deletes from the embedded store")
        self.refresh()
        sids = [s.sid for s in self.find_series(metric, {}) if tag_filter(dict(s.tags))]
        if not sids:
            return 0
        m = dict(self._manifest)
        tomb = {"series": sids, "start": int(start), "end": int(end), "horizon": m["next_segment"]}
        m["tombstones"] = [*m.get("tombstones", []), tomb]
        self._manifest = m  # _has_rows must see the new tombstone
        dead = set(m.get("dead_series", ())) | {sid for sid in sids if not self._has_rows(sid)}
        m["dead_series"] = sorted(dead)
        m["generation"] += 1
        self._dead = dead
        self._write_manifest(m)
        log.info("deleted %s: %d series in [%d, %d]", metric, len(sids), start, end)
        return len(sids)

    @property
    def wal_positions(self) -> dict[str, int]:
        return dict(self._manifest.get("wal", {}))

    def _recover(self) -> None:
        """Writer start-up: check the files the manifest names and drop orphans."""
        m = self._load_manifest()
        live = set()
        if m is not None:
            for seg in m["segments"]:
                path = os.path.join(self.seg_dir, seg["name"])
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    raise CorruptFile(path, "segment named by the manifest is missing") from None
                if len(data) != seg["size"] or zlib.crc32(data) != seg["crc"]:
                    raise CorruptFile(path, "segment failed its size/CRC check")
                live.add(seg["name"])
        for name in os.listdir(self.seg_dir):
            if name not in live:
                log.warning("removing orphan segment %s left by an interrupted write", name)
                os.unlink(os.path.join(self.seg_dir, name))
        if m is not None:
            # Truncate series appended after the last manifest: their ids will be reassigned.
            count = m["series_count"]
            if os.path.exists(self.series_path):
                with open(self.series_path, "rb") as f:
                    data = f.read()
                end = 0
                n = 0
                for status, e, _ in iter_frames(data):
                    if status != FrameStatus.OK or n >= count:
                        break
                    end, n = e, n + 1
                if n < count:
                    raise CorruptFile(self.series_path, f"holds {n} series, manifest says {count}")
                if end < len(data):
                    log.warning(
                        "series.log: dropping %d bytes past the checkpoint", len(data) - end
                    )
                    os.truncate(self.series_path, end)
        elif os.path.exists(self.series_path):
            os.truncate(self.series_path, 0)

    def write(self, batch: Batch, wal_positions: dict[str, int] | None = None) -> None:
        self.write_many([batch], wal_positions)

    def write_many(self, batches: list[Batch], wal_positions: dict[str, int] | None = None) -> None:
        """Apply batches as one new segment and checkpoint ``wal_positions`` atomically."""
        if not self.is_writer:
            raise RuntimeError("only the writer process writes to the embedded store")
        self.refresh()
        new_series: list[bytes] = []
        sids_parts, ts_parts, val_parts, exp_parts, obj_parts = [], [], [], [], []
        now = _now_ms()
        for b in batches:
            if not len(b):
                continue
            local = np.empty(b.n_series, np.int32)
            for i in range(b.n_series):
                key = (b.metrics[i], b.tags[i], int(b.kinds[i]))
                sid = self._series_key.get(key)
                if sid is None:
                    sid = self._add_series(*key)
                    flat = [x for kv in b.tags[i] for x in kv]
                    new_series.append(encode_frame(orjson.dumps([b.metrics[i], flat, key[2]])))
                local[i] = sid
            if self._dead:
                self._dead.difference_update(local.tolist())
            ttl = b.ttls.astype(np.int64)
            ttl = np.where(ttl > 0, ttl, self.default_ttl)
            exp_series = np.where(ttl > 0, now + ttl * 1000, 0)
            sids_parts.append(local[b.series])
            ts_parts.append(b.ts)
            val_parts.append(b.values)
            exp_parts.append(exp_series[b.series])
            if b.objects:
                kinds = b.kinds[b.series]
                objmask = (kinds == STRING) | (kinds == HISTOGRAM)
                objs: list = [None] * len(b)
                for i in np.nonzero(objmask)[0]:
                    o = b.objects[b.values[i]]
                    objs[i] = o.encode("utf-8", "surrogatepass") if isinstance(o, str) else o
                obj_parts.append(objs)
            else:
                obj_parts.append(None)
        if new_series:
            with open(self.series_path, "ab") as f:
                f.write(b"".join(new_series))
                f.flush()
                os.fsync(f.fileno())
        segments = list(self._manifest["segments"])
        next_seg = self._manifest["next_segment"]
        if sids_parts:
            n_total = sum(len(p) for p in ts_parts)
            obj_col = None
            if any(p is not None for p in obj_parts):
                obj_col = []
                for p, t in zip(obj_parts, ts_parts, strict=True):
                    obj_col.extend(p if p is not None else [None] * len(t))
            seg = self._write_segment(
                next_seg,
                np.concatenate(sids_parts),
                np.concatenate(ts_parts),
                np.concatenate(val_parts),
                np.concatenate(exp_parts),
                obj_col,
                n_total,
            )
            seg["level"] = 0
            segments.append(seg)
            next_seg += 1
        m = dict(self._manifest)
        m["segments"] = segments
        m["next_segment"] = next_seg
        m["series_count"] = len(self._series)
        m["generation"] = m["generation"] + 1
        m["dead_series"] = sorted(self._dead)
        if wal_positions is not None:
            m["wal"] = wal_positions
        self._write_manifest(m)
        self._maybe_compact()

    def _write_segment(self, number, sids, ts, vals, exp, objs, n) -> dict:
        # Sort by (series, ts); on equal keys the later point (higher input index) wins.
        order = np.lexsort((np.arange(n), ts, sids))
        sids, ts, vals, exp = sids[order], ts[order], vals[order], exp[order]
        keep = np.ones(n, bool)
        if n > 1:
            keep[:-1] = (sids[1:] != sids[:-1]) | (ts[1:] != ts[:-1])
        sids, ts, vals, exp = sids[keep], ts[keep], vals[keep], exp[keep]
        if objs is not None:
            sel = order[keep]
            obj_arr = pa.array([objs[i] for i in sel], pa.binary())
        else:
            obj_arr = pa.nulls(len(ts), pa.binary())
        table = pa.table(
            [pa.array(sids), pa.array(ts), pa.array(vals), pa.array(exp), obj_arr], schema=_SCHEMA
        )
        return self._write_table(number, table)

    def _write_table(self, number: int, table: pa.Table) -> dict:
        name = f"{number:012d}.arrow"
        path = os.path.join(self.seg_dir, name)
        tmp = path + ".tmp"
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, _SCHEMA) as w:
            w.write_table(table.combine_chunks(), max_chunksize=max(table.num_rows, 1))
        data = sink.getvalue().to_pybytes()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
        fsync_dir(self.seg_dir)
        ts = table.column("ts").to_numpy()
        return {
            "name": name,
            "rows": table.num_rows,
            "min_ts": int(ts.min()) if len(ts) else 0,
            "max_ts": int(ts.max()) if len(ts) else -1,
            "size": len(data),
            "crc": zlib.crc32(data),
        }

    def _write_manifest(self, m: dict) -> None:
        tmp = self.manifest_path + ".tmp"
        data = encode_frame(orjson.dumps(m))
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.manifest_path)
        fsync_dir(self.dir)
        self._manifest = m
        self._manifest_bytes = data
        self._metric_names = None

    def _maybe_compact(self) -> None:
        while True:
            segs = self._manifest["segments"]
            by_level: dict[int, list[int]] = {}
            for i, seg in enumerate(segs):
                by_level.setdefault(seg.get("level", 0), []).append(i)
            full = [lvl for lvl, idx in by_level.items() if len(idx) >= self.fanout]
            if not full:
                return
            lvl = min(full)
            idx = by_level[lvl]
            self.compact(idx[0], idx[-1] + 1, lvl + 1)

    def compact(self, lo: int = 0, hi: int | None = None, level: int | None = None) -> None:
        """Merge the manifest's segments ``lo:hi`` (a contiguous run; newer rows win) into one.

        Expired points are dropped.  The new segment takes the run's place in the manifest,
        then the old files are unlinked.
        """
        segs = list(self._manifest["segments"])
        hi = len(segs) if hi is None else hi
        old = segs[lo:hi]
        if len(old) < 2:
            return
        tables = [self._table(s["name"]) for s in old]
        cols = {
            c: [t.column(c).combine_chunks() for t in tables]
            for c in ("series", "ts", "value", "expires", "obj")
        }
        sids = np.concatenate([a.to_numpy() for a in cols["series"]])
        ts = np.concatenate([a.to_numpy() for a in cols["ts"]])
        vals = np.concatenate([a.to_numpy() for a in cols["value"]])
        exp = np.concatenate([a.to_numpy() for a in cols["expires"]])
        numbers = np.concatenate(
            [
                np.full(t.num_rows, _seg_number(sg), np.int64)
                for t, sg in zip(tables, old, strict=True)
            ]
        )
        now = _now_ms()
        n = len(ts)
        order = np.lexsort((np.arange(n), ts, sids))
        sids, ts, vals, exp, numbers = (
            sids[order],
            ts[order],
            vals[order],
            exp[order],
            numbers[order],
        )
        keep = np.ones(n, bool)
        if n > 1:
            keep[:-1] = (sids[1:] != sids[:-1]) | (ts[1:] != ts[:-1])
        keep &= (exp == 0) | (exp > now)
        for tomb in self._manifest.get("tombstones", ()):
            keep &= ~(
                np.isin(sids, tomb["series"])
                & (numbers < tomb["horizon"])
                & (ts >= tomb["start"])
                & (ts <= tomb["end"])
            )
        objs = pa.concat_arrays(cols["obj"]).take(pa.array(order[keep]))
        table = pa.table(
            [
                pa.array(sids[keep]),
                pa.array(ts[keep]),
                pa.array(vals[keep]),
                pa.array(exp[keep]),
                objs,
            ],
            schema=_SCHEMA,
        )
        number = self._manifest["next_segment"]
        seg = self._write_table(number, table)
        seg["level"] = max(s.get("level", 0) for s in old) + 1 if level is None else level
        m = dict(self._manifest)
        m["segments"] = [*segs[:lo], seg, *segs[hi:]]
        m["next_segment"] = number + 1
        m["generation"] += 1
        # A tombstone is needed while some live segment is older than its horizon.
        oldest = min(_seg_number(x) for x in m["segments"])
        m["tombstones"] = [t for t in m.get("tombstones", []) if t["horizon"] > oldest]
        self._write_manifest(m)
        for s in old:
            self._tables.pop(s["name"], None)
            try:
                os.unlink(os.path.join(self.seg_dir, s["name"]))
            except FileNotFoundError:
                pass
        log.info("compacted %d segments (%d rows) into %s", len(old), table.num_rows, seg["name"])

    def close(self) -> None:
        self._tables.clear()
