"""The columnar ingest batch: the unit the WAL stores and the writer applies.

A batch has two tables and an object list::

    series   one row per series touched by the request
             metric: str, tags: tuple[(name, value), ...] sorted in Java String order,
             kind: uint8 (LONG, DOUBLE, STRING, HISTOGRAM), ttl: int32 seconds (0 = default)
    points   one row per data point
             series: int32 row of the series table, ts: int64 ms,
             value: int64 -- the long itself, the IEEE-754 bits of a double, or for strings
             and histograms an index into ``objects``
    objects  str (string values) and bytes (encoded histograms)

A series is identified by (metric, tags, kind): a long and a double at the same timestamp are
two series and both come back, as in KairosDB where the data type is part of the row key.

On the wire (WAL) a batch is three Arrow IPC streams, each preceded by its length as a
little-endian uint64; see ``docs/storage-format.md``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

__all__ = [
    "DOUBLE",
    "HISTOGRAM",
    "KIND_NAMES",
    "LONG",
    "STRING",
    "Batch",
    "BatchBuilder",
]

LONG = 0
DOUBLE = 1
STRING = 2
HISTOGRAM = 3
KIND_NAMES = ("long", "double", "string", "histogram")
KIND_BY_NAME = {name: kind for kind, name in enumerate(KIND_NAMES)}

Tags = tuple[tuple[str, str], ...]

_SERIES_SCHEMA = pa.schema(
    [
        ("metric", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("kind", pa.uint8()),
        ("ttl", pa.int32()),
    ]
)
_POINTS_SCHEMA = pa.schema([("series", pa.int32()), ("ts", pa.int64()), ("value", pa.int64())])
_OBJECTS_SCHEMA = pa.schema([("object", pa.binary()), ("is_str", pa.bool_())])
_LEN = struct.Struct("<Q")


@dataclass(slots=True)
class Batch:
    """A validated batch of data points in columnar form (see the module docstring)."""

    metrics: list[str] = field(default_factory=list)
    tags: list[Tags] = field(default_factory=list)
    kinds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    ttls: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    series: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    ts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    objects: list[str | bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def n_series(self) -> int:
        return len(self.metrics)

    def to_ipc(self) -> bytes:
        """Serialise to three length-prefixed Arrow IPC streams."""
        flat_tags = [[x for kv in t for x in kv] for t in self.tags]
        series = pa.record_batch(
            [
                pa.array(self.metrics, pa.string()),
                pa.array(flat_tags, pa.list_(pa.string())),
                pa.array(self.kinds, pa.uint8()),
                pa.array(self.ttls, pa.int32()),
            ],
            schema=_SERIES_SCHEMA,
        )
        points = pa.record_batch(
            [pa.array(self.series), pa.array(self.ts), pa.array(self.values)],
            schema=_POINTS_SCHEMA,
        )
        is_str = [isinstance(o, str) for o in self.objects]
        objs = pa.record_batch(
            [
                pa.array(
                    [
                        o.encode("utf-8", "surrogatepass") if isinstance(o, str) else o
                        for o in self.objects
                    ],
                    pa.binary(),
                ),
                pa.array(is_str, pa.bool_()),
            ],
            schema=_OBJECTS_SCHEMA,
        )
        out = bytearray()
        for rb in (series, points, objs):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, rb.schema) as w:
                w.write_batch(rb)
            buf = sink.getvalue()
            out += _LEN.pack(buf.size)
            out += memoryview(buf)
        return bytes(out)

    @classmethod
    def from_ipc(cls, data: bytes | memoryview) -> Batch:
        """Inverse of :meth:`to_ipc`."""
        mv = memoryview(data)
        tables = []
        pos = 0
        for _ in range(3):
            (n,) = _LEN.unpack_from(mv, pos)
            pos += _LEN.size
            reader = pa.ipc.open_stream(pa.py_buffer(mv[pos : pos + n]))
            tables.append(reader.read_all())
            pos += n
        st, pt, ot = tables
        flat = st.column("tags").to_pylist()
        tags = [tuple(zip(f[0::2], f[1::2], strict=True)) for f in flat]
        objs_raw = ot.column("object").to_pylist()
        is_str = ot.column("is_str").to_pylist()
        objects: list[str | bytes] = [
            o.decode("utf-8", "surrogatepass") if s else o
            for o, s in zip(objs_raw, is_str, strict=True)
        ]
        return cls(
            metrics=st.column("metric").to_pylist(),
            tags=tags,
            kinds=st.column("kind").to_numpy().astype(np.uint8),
            ttls=st.column("ttl").to_numpy().astype(np.int32),
            series=pt.column("series").to_numpy().astype(np.int32),
            ts=pt.column("ts").to_numpy().astype(np.int64),
            values=pt.column("value").to_numpy().astype(np.int64),
            objects=objects,
        )

    def equals(self, other: Batch) -> bool:
        """Exact equality, NaN payloads included (values compare as raw bits)."""
        return (
            self.metrics == other.metrics
            and self.tags == other.tags
            and np.array_equal(self.kinds, other.kinds)
            and np.array_equal(self.ttls, other.ttls)
            and np.array_equal(self.series, other.series)
            and np.array_equal(self.ts, other.ts)
            and np.array_equal(self.values, other.values)
            and self.objects == other.objects
        )


class BatchBuilder:
    """Accumulates metric objects into one :class:`Batch`.

    Series rows are created once per (metric object, kind); points arrive as arrays.
    """

    __slots__ = ("_chunks", "_kinds", "_series_index", "_ttls", "batch", "n_points")

    def __init__(self) -> None:
        self.batch = Batch()
        self._series_index: dict[tuple[str, Tags, int, int], int] = {}
        self._kinds: list[int] = []
        self._ttls: list[int] = []
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.n_points = 0

    def series_id(self, metric: str, tags: Tags, kind: int, ttl: int) -> int:
        """Row of the series table for this series, created on first use."""
        key = (metric, tags, kind, ttl)
        sid = self._series_index.get(key)
        if sid is None:
            sid = len(self.batch.metrics)
            self._series_index[key] = sid
            self.batch.metrics.append(metric)
            self.batch.tags.append(tags)
            self._kinds.append(kind)
            self._ttls.append(ttl)
        return sid

    def add(self, series: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        """Append points: int32 series rows, int64 timestamps, int64 value words."""
        if ts.shape[0]:
            self._chunks.append((series, ts, values))
            self.n_points += int(ts.shape[0])

    def add_object(self, obj: str | bytes) -> int:
        """Store a string or encoded histogram; returns its index for the value column."""
        self.batch.objects.append(obj)
        return len(self.batch.objects) - 1

    def build(self) -> Batch:
        b = self.batch
        b.kinds = np.asarray(self._kinds, dtype=np.uint8)
        b.ttls = np.asarray(self._ttls, dtype=np.int32)
        if self._chunks:
            b.series = np.concatenate([c[0] for c in self._chunks]).astype(np.int32, copy=False)
            b.ts = np.concatenate([c[1] for c in self._chunks]).astype(np.int64, copy=False)
            b.values = np.concatenate([c[2] for c in self._chunks]).astype(np.int64, copy=False)
        return b
