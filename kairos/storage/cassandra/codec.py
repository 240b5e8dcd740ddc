"""KairosDB's Cassandra byte formats (``shared/spec/kairosdb-reference.md`` §6.3-6.5).

Everything a reader or writer of KairosDB's ``data_points`` table needs, byte for byte::

    key     = metric UTF-8, 00, row time (int64 BE),
              [00, len(type) (1 byte), type UTF-8]        absent for kairos_legacy row keys
              tag string UTF-8: escapeKey(k) "=" escapeValue(v) ":" per tag, Java-sorted keys
    column1 = 4-byte BE column name (compared unsigned):
              MILLISECONDS  ts - rowTime
              SECONDS       (ts - rowTime) / 1000           rows are still W *ms* wide
              LEGACY        (ts - rowTime) << 1             low bit: 0 long, 1 double
    value   = kairos_long       zig-zag varint (protobuf sint64)
              kairos_double     8-byte BE IEEE-754
              kairos_string     Java writeUTF: 2-byte BE length + modified UTF-8
              kairos_histogram  kairos.model.histogram.Histogram.to_bytes() (Kairos only)
              kairos_legacy     long: BE two's complement, leading 00 bytes stripped;
                                double: flag byte, 0x01 + 4-byte float else 8-byte double

``rowTime(ts) = ts - (|ts| mod W)`` in Java long arithmetic, which puts ``-W < ts < 0`` in row
``2 * ts``.  Every timestamp and column computation wraps like Java's ``long``/``int``.

The per-point loops are Cython kernels in ``kairos._native.cassandra``; the plain reference is
``kairos.storage.cassandra._codec_reference``.  Decoders mirror what KairosDB accepts (bytes
after a varint, double or string are ignored; overlong modified UTF-8 is accepted) and raise
:class:`CodecError` for what it would fail on.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kairos._native import cassandra as _k
from kairos.errors import CodecError
from kairos.model.java import LONG_MAX, LONG_MIN
from kairos.model.java import java_long as _i64
from kairos.model.varint import encode_uvarint, zigzag

__all__ = [
    "DEFAULT_ROW_WIDTH",
    "DOUBLE_TYPE",
    "HISTOGRAM_TYPE",
    "LEGACY",
    "LEGACY_TYPE",
    "LONG_TYPE",
    "MILLISECONDS",
    "SECONDS",
    "STRING_TYPE",
    "RowKey",
    "column",
    "column_range",
    "decode_columns",
    "decode_doubles",
    "decode_legacy",
    "decode_longs",
    "decode_row_key",
    "decode_string",
    "decode_strings",
    "encode_columns",
    "encode_double",
    "encode_doubles",
    "encode_long",
    "encode_longs",
    "encode_row_key",
    "encode_string",
    "java_sorted_tags",
    "parse_tag_string",
    "row_key_index_range",
    "row_time",
    "row_times",
    "row_width_millis",
    "tag_string",
]

MILLISECONDS, SECONDS, LEGACY = "MILLISECONDS", "SECONDS", "LEGACY"
LONG_TYPE, DOUBLE_TYPE, STRING_TYPE = "kairos_long", "kairos_double", "kairos_string"
HISTOGRAM_TYPE = "kairos_histogram"
LEGACY_TYPE = "kairos_legacy"
DEFAULT_ROW_WIDTH = 1814400000

_UNITS = {MILLISECONDS: 0, SECONDS: 1, LEGACY: 2}
_MAX_UTF = 0xFFFF

Tags = Iterable[tuple[str, str]] | Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RowKey:
    """A decoded ``data_points`` row key; ``tags`` are sorted in Java String order."""

    metric: str
    row_time: int
    data_type: str
    tags: tuple[tuple[str, str], ...]


def _unit(unit: str) -> int:
    try:
        return _UNITS[unit]
    except KeyError:
        raise CodecError(
            f"row_time_unit must be one of {', '.join(_UNITS)}, not {unit!r}"
        ) from None


def _width(width: int) -> int:
    if not 0 < width <= LONG_MAX:
        raise CodecError(f"row_width must be a positive long, not {width}")
    return width


def _int64_array(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1 or a.dtype != np.int64:
        raise CodecError(f"{what} must be a 1-d int64 array, not {a.dtype} with shape {a.shape}")
    return np.ascontiguousarray(a)


def _flatten(values: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """One uint8 buffer and int64 offsets (n + 1) for a sequence of byte strings."""
    if type(values) is not list:
        values = list(values)
    offsets = np.empty(len(values) + 1, dtype=np.int64)
    _k.cell_offsets(values, offsets)
    return np.frombuffer(b"".join(values), dtype=np.uint8), offsets


def _column_buffer(cols: Sequence[bytes]) -> np.ndarray:
    """The 4-byte column names back to back, uint8 (4 * n,)."""
    buf, offsets = _flatten(cols)
    if len(buf) != 4 * len(cols) or np.any(np.diff(offsets) != 4):
        i = int(np.flatnonzero(np.diff(offsets) != 4)[0])
        raise CodecError(f"column {i} has {len(cols[i])} bytes, not 4: {_show(cols[i])}")
    return buf


def _show(b: bytes) -> str:
    return bytes(b[:24]).hex(" ") + (" ..." if len(b) > 24 else "")


# --------------------------------------------------------------------------- rows and columns


def row_time(ts: int, width: int) -> int:
    """The row a timestamp lives in: ``ts - (Math.abs(ts) % width)`` in Java long arithmetic."""
    _width(width)
    r = abs(ts) % width
    # Math.abs(Long.MIN_VALUE) is Long.MIN_VALUE, whose Java remainder is negative.
    return _i64(ts + r) if ts == LONG_MIN else _i64(ts - r)


def row_times(ts: np.ndarray, width: int) -> np.ndarray:
    """:func:`row_time` of each element of an int64 array, shape (n,) -> (n,)."""
    ts = _int64_array(ts, "ts")
    out = np.empty(len(ts), dtype=np.int64)
    _k.row_times(ts, _width(width), out)
    return out


def row_width_millis(width: int, unit: str) -> int:
    """The row width the read and delete paths use: W, or W * 1000 in SECONDS mode."""
    return _i64(width * 1000) if _unit(unit) == 1 else width


def column(ts: int, row_time: int, unit: str) -> int:
    """``RowSpec.getColumnName`` as an unsigned 32-bit value."""
    u = _unit(unit)
    offset = _i64(ts - row_time)
    if u == 1:
        q = abs(offset) // 1000  # Java's long division truncates toward zero
        return (-q if offset < 0 else q) & 0xFFFFFFFF
    if u == 2:
        return (offset << 1) & 0xFFFFFFFF
    return offset & 0xFFFFFFFF


def encode_columns(ts: np.ndarray, row_time: int | np.ndarray, unit: str) -> list[bytes]:
    """4-byte big-endian column names of int64 timestamps in their row(s).

    ``row_time`` is one row time for all points, or an int64 array of shape (n,).
    """
    ts = _int64_array(ts, "ts")
    if isinstance(row_time, np.ndarray):
        rows = _int64_array(row_time, "row_time")
        if rows.shape != ts.shape:
            raise CodecError(f"row_time has {len(rows)} elements for {len(ts)} timestamps")
    else:
        rows = np.broadcast_to(np.int64(row_time), ts.shape)
    out = np.empty(4 * len(ts), dtype=np.uint8)
    _k.encode_columns(ts, rows, _unit(unit), out)
    return _k.split_fixed(out, 4)


def decode_columns(cols: Sequence[bytes], row_time: int, unit: str) -> np.ndarray:
    """Timestamps (int64 ms, shape (n,)) of 4-byte column names read from one row."""
    u = _unit(unit)
    out = np.empty(len(cols), dtype=np.int64)
    _k.decode_columns(_column_buffer(cols), row_time, u, out)
    return out


def column_range(start: int, end: int, row_time: int, width: int, unit: str) -> tuple[bytes, bytes]:
    """The read path's ``[first, last)`` column blobs for query ``[start, end]`` on one row.

    ``first = 0 if start < row_time else col(start)`` and
    ``last = col(min(end, row_time + rowWidthMillis)) + 1`` (the + 1 also takes in the legacy
    double bit), in Java int arithmetic.
    """
    row_end = _i64(row_time + row_width_millis(width, unit))
    first = 0 if start < row_time else column(start, row_time, unit)
    last = column(row_end if end > row_end else end, row_time, unit)
    return first.to_bytes(4, "big"), ((last + 1) & 0xFFFFFFFF).to_bytes(4, "big")


# --------------------------------------------------------------------------- row keys


def _java_order(s: str) -> bytes:
    # String.compareTo compares UTF-16 code units, which big-endian UTF-16 bytes preserve;
    # code-point order would put U+10000 after U+FFFF.
    return s.encode("utf-16-be", "surrogatepass")


def java_sorted_tags(tags: Tags) -> tuple[tuple[str, str], ...]:
    """Tags sorted by key in Java String order (a later duplicate key wins, as in a TreeMap)."""
    d = dict(tags.items() if isinstance(tags, Mapping) else tags)
    return tuple(sorted(d.items(), key=lambda kv: _java_order(kv[0])))


def tag_string(tags: Tags) -> str:
    """``k=v:`` per tag in Java order; ``:``/``=`` escaped by ``:`` in keys, by ``=`` in values."""
    return "".join(
        k.replace(":", "::").replace("=", ":=")
        + "="
        + v.replace("=", "==").replace(":", "=:")
        + ":"
        for k, v in java_sorted_tags(tags)
    )


# One ``key=value:`` pair: a ':' in the key and a '=' in the value make the next char literal.
_PAIR = re.compile(r"((?:[^:=]|:.)*)=((?:[^=:]|=.)*):", re.DOTALL)
_KEY_ESCAPE = re.compile(r":(.)", re.DOTALL)
_VALUE_ESCAPE = re.compile(r"=(.)", re.DOTALL)


def parse_tag_string(s: str) -> tuple[tuple[str, str], ...]:
    """Inverse of :func:`tag_string`; like KairosDB, drops a trailing pair without its ``:``."""
    tags: dict[str, str] = {}
    pos = 0
    while m := _PAIR.match(s, pos):
        tags[_KEY_ESCAPE.sub(r"\1", m[1])] = _VALUE_ESCAPE.sub(r"\1", m[2])
        pos = m.end()
    return java_sorted_tags(tags)


def _java_utf8(s: str) -> bytes:
    # String.getBytes(UTF_8) writes '?' for a lone surrogate, as Python's "replace" does.
    return s.encode("utf-8", "replace")


def encode_row_key(metric: str, row_time: int, data_type: str, tags: Tags) -> bytes:
    """A ``data_points`` key; ``LEGACY_TYPE`` writes the pre-0.9.4 key without a type section."""
    name = _java_utf8(metric)
    if b"\x00" in name:
        raise CodecError(f"metric name {metric!r} contains U+0000, which ends it in a row key")
    out = [name, b"\x00", struct.pack(">q", row_time)]
    if data_type != LEGACY_TYPE:
        t = _java_utf8(data_type)
        if len(t) > 127:  # read back as a signed byte
            raise CodecError(f"data type {data_type!r} has more than 127 UTF-8 bytes")
        out += [b"\x00", bytes([len(t)]), t]
    out.append(_java_utf8(tag_string(tags)))
    return b"".join(out)


def row_key_index_range(metric: str, start: int, end: int, width: int) -> tuple[bytes, bytes]:
    """``[start key, end key)`` for the legacy ``row_key_index`` scan (``setStartEndKeys``).

    Both are row keys with an empty data type and no tags, at ``row_time(start)`` and
    ``row_time(end)``; the end key's type marker is ``FF`` instead of ``00``.
    """
    first = encode_row_key(metric, row_time(start, width), "", ())
    last = bytearray(encode_row_key(metric, row_time(end, width), "", ()))
    last[-2] = 0xFF
    return first, bytes(last)


def decode_row_key(key: bytes) -> RowKey:
    """Parse a ``data_points`` key; no 0x00 after the row time means ``LEGACY_TYPE``."""
    key = bytes(key)
    nul = key.find(b"\x00")
    if nul < 0 or len(key) < nul + 9:
        raise CodecError(f"row key too short: {_show(key)}")
    (rt,) = struct.unpack_from(">q", key, nul + 1)
    pos = nul + 9
    data_type = LEGACY_TYPE
    if pos < len(key) and key[pos] == 0:
        size = key[pos + 1] if pos + 1 < len(key) else -1
        if not 0 <= size <= 127 or pos + 2 + size > len(key):
            raise CodecError(f"row key data type section truncated: {_show(key)}")
        data_type = key[pos + 2 : pos + 2 + size].decode("utf-8", "replace")
        pos += 2 + size
    return RowKey(
        metric=key[:nul].decode("utf-8", "replace"),
        row_time=rt,
        data_type=data_type,
        tags=parse_tag_string(key[pos:].decode("utf-8", "replace")),
    )


# --------------------------------------------------------------------------- values


def encode_long(v: int) -> bytes:
    """One ``kairos_long`` value: zig-zag varint of a signed 64-bit int."""
    if not LONG_MIN <= v <= LONG_MAX:
        raise CodecError(f"long value {v} does not fit in 64 bits")
    return encode_uvarint(zigzag(v))


def encode_longs(values: np.ndarray) -> list[bytes]:
    """``kairos_long`` values of an int64 array, shape (n,)."""
    values = _int64_array(values, "values")
    out = np.empty(10 * len(values), dtype=np.uint8)
    offsets = np.empty(len(values) + 1, dtype=np.int64)
    _k.encode_longs(values, out, offsets)
    return _k.split_bytes(out, offsets)


def decode_longs(values: Sequence[bytes]) -> np.ndarray:
    """int64 array (n,) of ``kairos_long`` values (``Util.unpackLong``)."""
    buf, offsets = _flatten(values)
    out = np.empty(len(values), dtype=np.int64)
    bad = _k.decode_longs(buf, offsets, out)
    if bad >= 0:
        raise CodecError(
            f"long value {bad} ends inside its varint or is longer than 10 bytes: "
            f"{_show(values[bad])}"
        )
    return out


def encode_double(v: float) -> bytes:
    """One ``kairos_double`` value: 8 bytes, big-endian."""
    return struct.pack(">d", v)


def encode_doubles(values: np.ndarray) -> list[bytes]:
    """``kairos_double`` values of a float64 array, shape (n,), bit for bit."""
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype != np.float64:
        raise CodecError(f"values must be a 1-d float64 array, not {values.dtype} {values.shape}")
    out = np.empty(8 * len(values), dtype=np.uint8)
    _k.encode_doubles(np.ascontiguousarray(values), out)
    return _k.split_fixed(out, 8)


def decode_doubles(values: Sequence[bytes]) -> np.ndarray:
    """float64 array (n,) of ``kairos_double`` values, bit for bit (NaN payloads kept)."""
    buf, offsets = _flatten(values)
    out = np.empty(len(values), dtype=np.float64)
    bad = _k.decode_doubles(buf, offsets, out)
    if bad >= 0:
        raise CodecError(f"double value {bad} is shorter than 8 bytes: {_show(values[bad])}")
    return out


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _surrogate_pair(m: re.Match[str]) -> str:
    c = ord(m[0]) - 0x10000
    return chr(0xD800 | (c >> 10)) + chr(0xDC00 | (c & 0x3FF))


def encode_string(s: str) -> bytes:
    """One ``kairos_string`` value: ``DataOutput.writeUTF``.

    Modified UTF-8 is UTF-8 of the UTF-16 code units (so a supplementary character becomes
    two 3-byte surrogates) with U+0000 written as ``C0 80``.

    Raises
    ------
    CodecError
        The encoding is longer than 65535 bytes (KairosDB fails to write it too).
    """
    if s.isascii():
        b = s.encode("ascii")
    else:
        b = _ASTRAL.sub(_surrogate_pair, s).encode("utf-8", "surrogatepass")
    b = b.replace(b"\x00", b"\xc0\x80")
    if len(b) > _MAX_UTF:
        raise CodecError(f"string value encodes to {len(b)} bytes, more than 65535")
    return len(b).to_bytes(2, "big") + b


def decode_strings(values: Sequence[bytes]) -> list[str]:
    """``kairos_string`` values (``DataInputStream.readUTF``); lone surrogates are kept."""
    buf, offsets = _flatten(values)
    units = np.empty(2 * len(buf), dtype=np.uint8)
    unit_offsets = np.empty(len(values) + 1, dtype=np.int64)
    bad = _k.decode_mutf8(buf, offsets, units, unit_offsets)
    if bad >= 0:
        raise CodecError(
            f"string value {bad} is truncated or not modified UTF-8: {_show(values[bad])}"
        )
    return _k.utf16le_strings(units, unit_offsets)


def decode_string(b: bytes) -> str:
    """One ``kairos_string`` value."""
    return decode_strings([b])[0]


def decode_legacy(
    cols: Sequence[bytes], values: Sequence[bytes], row_time: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cells of a ``kairos_legacy`` row.

    Returns
    -------
    ts : int64 array, shape (n,)
        ``row_time + (column >>> 1)``.
    is_double : bool array, shape (n,)
        The column's low bit.
    long_values, double_values : int64 and float64 arrays, shape (n,)
        The value in the slot of its kind, 0 in the other.
    """
    if len(cols) != len(values):
        raise CodecError(f"{len(cols)} legacy columns for {len(values)} values")
    colbuf = _column_buffer(cols)
    buf, offsets = _flatten(values)
    n = len(cols)
    ts = np.empty(n, dtype=np.int64)
    is_double = np.empty(n, dtype=np.uint8)
    longs = np.empty(n, dtype=np.int64)
    doubles = np.empty(n, dtype=np.float64)
    bad = _k.decode_legacy(colbuf, buf, offsets, row_time, ts, is_double, longs, doubles)
    if bad >= 0:
        raise CodecError(f"legacy double value {bad} is truncated: {_show(values[bad])}")
    return ts, is_double.view(bool), longs, doubles
