"""Prometheus ``remote_write`` (protocol 0.1.0) as kairosdb-prometheus-adapter maps it.

The request body is a raw snappy block holding a protobuf ``WriteRequest``::

    WriteRequest { repeated TimeSeries timeseries = 1; ...metadata = 3 (ignored) }
    TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2;
                   ...exemplars = 3, histograms = 4 (ignored) }
    Label        { string name = 1; string value = 2; }
    Sample       { double value = 1; int64 timestamp = 2; }   // timestamp in ms

The decoder below is a minimal hand-written protobuf wire reader: every length and varint is
bounds-checked against the enclosing message, unknown fields of any wire type except groups are
skipped, and any malformed input raises :class:`ProtobufError` (a 400).

Mapping to a Kairos batch (adapter semantics, spec clients.md §4):

* ``__name__`` is the metric name; every other label is a tag (Java-sorted).
* Labels with an empty value are dropped: Prometheus treats them as absent, and KairosDB
  refuses empty tag values.
* A series whose only label is ``__name__`` gets the tag ``add=tag``: KairosDB needs at least
  one tag, and ``add=tag`` is the placeholder KairosDB's own Graphite/carbon ingestion uses.
* A series without a (non-empty) ``__name__`` cannot be named and is dropped (counted in
  :attr:`Conversion.dropped_series`); the rest of the request is still stored.
* NaN and ±Inf samples are dropped (this also drops Prometheus's staleness markers, which are
  a NaN bit pattern); every remaining value is stored as a double.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from kairos.errors import BadRequest, PayloadTooLarge, ProtobufError
from kairos.model.batch import DOUBLE, Batch, BatchBuilder
from kairos.model.java import java_long, java_sorted_tags
from kairos.model.varint import MASK64, read_uvarint

__all__ = [
    "NO_TAGS_PLACEHOLDER",
    "Conversion",
    "TimeSeries",
    "decode_write_request",
    "decompress_snappy",
    "to_batch",
    "write_request_to_batch",
]

NO_TAGS_PLACEHOLDER = ("add", "tag")

_F64 = struct.Struct("<d")

_WT_VARINT, _WT_I64, _WT_LEN, _WT_I32 = 0, 1, 2, 5


@dataclass(slots=True)
class TimeSeries:
    """One decoded series: its labels in wire order and its samples as arrays."""

    labels: list[tuple[str, str]]
    timestamps: np.ndarray  # int64 ms
    values: np.ndarray  # float64


@dataclass(slots=True)
class Conversion:
    """The batch built from one request, and what was left out of it."""

    batch: Batch
    series: int = 0
    dropped_series: int = 0
    dropped_samples: int = 0
    errors: list[str] = field(default_factory=list)


# -- snappy --------------------------------------------------------------------------------------


def decompress_snappy(body: bytes, limit: int) -> bytes:
    """Decode a raw (unframed) snappy block, refusing more than ``limit`` bytes of output.

    The block's header states its uncompressed length, so the limit is checked before any
    memory is allocated for the output.
    """
    import cramjam  # imported lazily: only this endpoint needs it

    if not body:
        raise BadRequest("Invalid Prometheus remote write request: empty body")
    try:
        n = cramjam.snappy.decompress_raw_len(body)
    except cramjam.DecompressionError as e:
        raise BadRequest(f"Invalid snappy block: {e}") from None
    if n > limit:
        raise PayloadTooLarge(f"Decompressed request body exceeds the maximum of {limit} bytes")
    try:
        out = cramjam.snappy.decompress_raw(body)
    except cramjam.DecompressionError as e:
        raise BadRequest(f"Invalid snappy block: {e}") from None
    data = bytes(out)
    if len(data) > limit:  # the header lied; cannot happen with a conforming decoder
        raise PayloadTooLarge(f"Decompressed request body exceeds the maximum of {limit} bytes")
    return data


# -- protobuf wire reader ------------------------------------------------------------------------


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode a varint at ``pos``; returns (unsigned value, next position)."""
    try:
        result, pos = read_uvarint(buf, pos, end, max_bytes=10)
    except ValueError as e:
        reason, at = e.args
        if reason == "truncated":
            raise ProtobufError(f"truncated varint at byte {at}") from None
        raise ProtobufError(f"varint longer than 10 bytes at byte {at}") from None
    if result > MASK64:
        raise ProtobufError(f"varint at byte {pos} exceeds 64 bits")
    return result, pos


def _length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A length prefix; returns (end of the delimited field, start of its content)."""
    n, pos = _varint(buf, pos, end)
    stop = pos + n
    if stop > end:
        raise ProtobufError(f"length {n} at byte {pos} runs past the end of its message")
    return stop, pos


def _skip(buf: bytes, pos: int, end: int, wire_type: int, fieldno: int) -> int:
    """Skip an unknown field's payload."""
    if wire_type == _WT_VARINT:
        return _varint(buf, pos, end)[1]
    if wire_type == _WT_I64:
        pos += 8
    elif wire_type == _WT_I32:
        pos += 4
    elif wire_type == _WT_LEN:
        return _length(buf, pos, end)[0]
    else:
        raise ProtobufError(f"unsupported wire type {wire_type} for field {fieldno} at byte {pos}")
    if pos > end:
        raise ProtobufError(f"truncated fixed-width field {fieldno}")
    return pos


def _key(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    key, pos = _varint(buf, pos, end)
    fieldno = key >> 3
    if fieldno == 0:
        raise ProtobufError(f"field number 0 at byte {pos}")
    return fieldno, key & 7, pos


def _expect(wire_type: int, want: int, what: str, pos: int) -> None:
    if wire_type != want:
        raise ProtobufError(f"{what} has wire type {wire_type}, expected {want} (byte {pos})")


def _string(buf: bytes, start: int, stop: int, what: str) -> str:
    try:
        return buf[start:stop].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError(f"{what} at byte {start} is not valid UTF-8") from None


def _label(buf: bytes, pos: int, end: int) -> tuple[str, str]:
    name = value = ""
    while pos < end:
        fieldno, wt, pos = _key(buf, pos, end)
        if fieldno in (1, 2):
            _expect(wt, _WT_LEN, "Label.name" if fieldno == 1 else "Label.value", pos)
            stop, start = _length(buf, pos, end)
            s = _string(buf, start, stop, "label")
            if fieldno == 1:
                name = s
            else:
                value = s
            pos = stop
        else:
            pos = _skip(buf, pos, end, wt, fieldno)
    return name, value


def _sample(buf: bytes, pos: int, end: int) -> tuple[float, int]:
    value = 0.0
    ts = 0
    while pos < end:
        fieldno, wt, pos = _key(buf, pos, end)
        if fieldno == 1:
            _expect(wt, _WT_I64, "Sample.value", pos)
            if pos + 8 > end:
                raise ProtobufError(f"truncated Sample.value at byte {pos}")
            (value,) = _F64.unpack_from(buf, pos)
            pos += 8
        elif fieldno == 2:
            _expect(wt, _WT_VARINT, "Sample.timestamp", pos)
            ts, pos = _varint(buf, pos, end)
        else:
            pos = _skip(buf, pos, end, wt, fieldno)
    return value, java_long(ts)


def _series(buf: bytes, pos: int, end: int) -> TimeSeries:
    labels: list[tuple[str, str]] = []
    values: list[float] = []
    stamps: list[int] = []
    while pos < end:
        fieldno, wt, pos = _key(buf, pos, end)
        if fieldno == 1:
            _expect(wt, _WT_LEN, "TimeSeries.labels", pos)
            stop, start = _length(buf, pos, end)
            labels.append(_label(buf, start, stop))
            pos = stop
        elif fieldno == 2:
            _expect(wt, _WT_LEN, "TimeSeries.samples", pos)
            stop, start = _length(buf, pos, end)
            v, t = _sample(buf, start, stop)
            values.append(v)
            stamps.append(t)
            pos = stop
        else:  # exemplars (3), native histograms (4), anything newer
            pos = _skip(buf, pos, end, wt, fieldno)
    return TimeSeries(labels, np.array(stamps, np.int64), np.array(values, np.float64))


def decode_write_request(data: bytes) -> list[TimeSeries]:
    """Decode an (uncompressed) protobuf ``WriteRequest``; raises :class:`ProtobufError`."""
    buf = bytes(data)
    out: list[TimeSeries] = []
    pos, end = 0, len(buf)
    while pos < end:
        fieldno, wt, pos = _key(buf, pos, end)
        if fieldno == 1:
            _expect(wt, _WT_LEN, "WriteRequest.timeseries", pos)
            stop, start = _length(buf, pos, end)
            out.append(_series(buf, start, stop))
            pos = stop
        else:  # metadata (3) and anything newer
            pos = _skip(buf, pos, end, wt, fieldno)
    return out


# -- to a Kairos batch ---------------------------------------------------------------------------


def to_batch(series: list[TimeSeries]) -> Conversion:
    """Map decoded series to one :class:`Batch` of doubles (see the module docstring)."""
    b = BatchBuilder()
    conv = Conversion(Batch())
    for s in series:
        name = ""
        tags: dict[str, str] = {}
        for k, v in s.labels:
            if k == "__name__":
                name = v
            elif k and v:
                tags[k] = v
        n = s.values.shape[0]
        if not name:
            conv.dropped_series += 1
            conv.dropped_samples += n
            continue
        conv.series += 1
        if not n:
            continue
        finite = np.isfinite(s.values)
        if not finite.all():
            conv.dropped_samples += int(n - np.count_nonzero(finite))
            ts, vals = s.timestamps[finite], s.values[finite]
            if not ts.shape[0]:
                continue
        else:
            ts, vals = s.timestamps, s.values
        sorted_tags = java_sorted_tags(tags) if tags else (NO_TAGS_PLACEHOLDER,)
        sid = b.series_id(name, sorted_tags, DOUBLE, 0)
        b.add(np.full(ts.shape[0], sid, np.int32), ts, vals.view(np.int64))
    conv.batch = b.build()
    return conv


def write_request_to_batch(body: bytes, limit: int) -> Conversion:
    """Snappy body -> protobuf -> batch; raises BadRequest (400) or PayloadTooLarge (413)."""
    return to_batch(decode_write_request(decompress_snappy(body, limit)))
