"""Plain Python reference of KairosDB's Cassandra byte formats (used by the tests only).

Same signatures and results as ``kairos.storage.cassandra.codec``, written as one obvious loop
per value, straight from ``shared/spec/kairosdb-reference.md`` §6.3-6.5 and the Java classes it
names (``RowSpec``, ``DataPointsRowKeySerializer``, ``ValueSerializer``, ``Util.packLong``,
``DataInputStream.readUTF``).  Java's 64- and 32-bit arithmetic wraps; :func:`_i64`,
:func:`_i32` and :func:`_u32` make Python's unbounded ints do the same.
``tests/property/test_cassandra_codec.py`` checks the Cython kernels against this module.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from kairos.model.java import java_long as _i64
from kairos.model.varint import MASK64, encode_uvarint, read_uvarint, unzigzag, zigzag

__all__ = [
    "column_range_ref",
    "column_ref",
    "decode_columns_ref",
    "decode_doubles_ref",
    "decode_legacy_ref",
    "decode_longs_ref",
    "decode_row_key_ref",
    "decode_string_ref",
    "decode_strings_ref",
    "encode_columns_ref",
    "encode_double_ref",
    "encode_doubles_ref",
    "encode_long_ref",
    "encode_longs_ref",
    "encode_row_key_ref",
    "encode_string_ref",
    "java_sorted_tags_ref",
    "parse_tag_string_ref",
    "row_time_ref",
    "row_times_ref",
    "row_width_millis_ref",
    "tag_string_ref",
]

MILLISECONDS, SECONDS, LEGACY = "MILLISECONDS", "SECONDS", "LEGACY"
LEGACY_TYPE = "kairos_legacy"
UNITS = (MILLISECONDS, SECONDS, LEGACY)


def _i32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >= 1 << 31 else x


def _u32(x: int) -> int:
    return x & 0xFFFFFFFF


def _java_rem(a: int, b: int) -> int:
    """Java's ``%``: the remainder takes the sign of the dividend."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


# --------------------------------------------------------------------------- rows and columns


def row_time_ref(ts: int, width: int) -> int:
    """``ts - (Math.abs(ts) % width)`` in Java long arithmetic (``Math.abs(MIN) == MIN``)."""
    a = _i64(abs(ts))
    return _i64(ts - _java_rem(a, width))


def row_times_ref(ts: np.ndarray, width: int) -> np.ndarray:
    return np.array([row_time_ref(int(t), width) for t in ts], dtype=np.int64)


def row_width_millis_ref(width: int, unit: str) -> int:
    return _i64(width * 1000) if unit == SECONDS else width


def column_ref(ts: int, row_time: int, unit: str) -> int:
    """``RowSpec.getColumnName`` as an unsigned 32-bit value."""
    offset = _i64(ts - row_time)
    if unit == SECONDS:
        # Java long division truncates toward zero, then (int) keeps the low 32 bits.
        q = abs(offset) // 1000
        return _u32(-q if offset < 0 else q)
    if unit == LEGACY:
        return _u32(_i32(offset) << 1)
    return _u32(offset)


def encode_columns_ref(ts: Sequence[int], row_time: int | Sequence[int], unit: str) -> list[bytes]:
    rows = [row_time] * len(ts) if isinstance(row_time, int) else list(row_time)
    return [
        struct.pack(">I", column_ref(int(t), int(r), unit)) for t, r in zip(ts, rows, strict=True)
    ]


def decode_column_ref(col: bytes, row_time: int, unit: str) -> int:
    """``RowSpec.getColumnTimestamp``: the column is a signed Java int except in LEGACY."""
    if len(col) != 4:
        raise ValueError(f"a column name has 4 bytes, not {len(col)}")
    (signed,) = struct.unpack(">i", col)
    if unit == SECONDS:
        return _i64(row_time + signed * 1000)
    if unit == LEGACY:
        return _i64(row_time + (_u32(signed) >> 1))
    return _i64(row_time + signed)


def decode_columns_ref(cols: Sequence[bytes], row_time: int, unit: str) -> np.ndarray:
    return np.array([decode_column_ref(bytes(c), row_time, unit) for c in cols], dtype=np.int64)


def column_range_ref(
    start: int, end: int, row_time: int, width: int, unit: str
) -> tuple[bytes, bytes]:
    """``CassandraDatastore``'s read range ``[first, last)`` for one row, Java int arithmetic."""
    row_end = _i64(row_time + row_width_millis_ref(width, unit))
    first = 0 if start < row_time else column_ref(start, row_time, unit)
    last = column_ref(row_end if end > row_end else end, row_time, unit)
    return struct.pack(">I", first), struct.pack(">I", _u32(last + 1))


# --------------------------------------------------------------------------- row keys


def _java_key(s: str) -> bytes:
    """Big-endian UTF-16 bytes compare like ``String.compareTo`` (code unit by code unit)."""
    return s.encode("utf-16-be", "surrogatepass")


def java_sorted_tags_ref(
    tags: Iterable[tuple[str, str]] | Mapping[str, str],
) -> tuple[tuple[str, str], ...]:
    d = dict(tags.items() if isinstance(tags, Mapping) else tags)
    return tuple(sorted(d.items(), key=lambda kv: _java_key(kv[0])))


def _escape(s: str, escape: str) -> str:
    out = []
    for ch in s:
        if ch in ":=":
            out.append(escape)
        out.append(ch)
    return "".join(out)


def tag_string_ref(tags: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
    return "".join(
        _escape(k, ":") + "=" + _escape(v, "=") + ":" for k, v in java_sorted_tags_ref(tags)
    )


def _unescape(s: str, escape: str) -> str:
    out = []
    i = 0
    while i < len(s):
        if s[i] == escape:
            i += 1  # the next char is literal (nothing when the escape is last)
            if i < len(s):
                out.append(s[i])
        else:
            out.append(s[i])
        i += 1
    return "".join(out)


def parse_tag_string_ref(s: str) -> tuple[tuple[str, str], ...]:
    """``DataPointsRowKeySerializer.extractTags``: a trailing pair without ``:`` is dropped."""
    tags: dict[str, str] = {}
    key: str | None = None
    mark = 0
    i = 0
    while i < len(s):
        ch = s[i]
        if key is None:
            if ch == "=":
                key = _unescape(s[mark:i], ":")
                mark = i + 1
            if ch == ":":
                i += 1
        else:
            if ch == ":":
                tags[key] = _unescape(s[mark:i], "=")
                mark = i + 1
                key = None
            if ch == "=":
                i += 1
        i += 1
    return java_sorted_tags_ref(tags)


def _java_utf8(s: str) -> bytes:
    """``String.getBytes(UTF_8)``: a lone surrogate becomes ``?``."""
    return s.encode("utf-8", "replace")


def encode_row_key_ref(
    metric: str, row_time: int, data_type: str, tags: Iterable[tuple[str, str]] | Mapping[str, str]
) -> bytes:
    name = _java_utf8(metric)
    if b"\x00" in name:
        raise ValueError("a metric name in a row key cannot contain U+0000")
    out = name + b"\x00" + struct.pack(">q", row_time)
    if data_type != LEGACY_TYPE:
        t = _java_utf8(data_type)
        if len(t) > 127:
            raise ValueError("a data type in a row key has at most 127 UTF-8 bytes")
        out += b"\x00" + bytes([len(t)]) + t
    return out + _java_utf8(tag_string_ref(tags))


def decode_row_key_ref(key: bytes) -> tuple[str, int, str, tuple[tuple[str, str], ...]]:
    """``(metric, row_time, data_type, tags)``."""
    nul = key.find(b"\x00")
    if nul < 0 or len(key) < nul + 9:
        raise ValueError("a row key is too short")
    metric = key[:nul].decode("utf-8", "replace")
    (row_time,) = struct.unpack(">q", key[nul + 1 : nul + 9])
    pos = nul + 9
    data_type = LEGACY_TYPE
    if pos < len(key) and key[pos] == 0:
        if pos + 1 >= len(key) or key[pos + 1] > 127 or pos + 2 + key[pos + 1] > len(key):
            raise ValueError("a row key's data type section is truncated")
        size = key[pos + 1]
        data_type = key[pos + 2 : pos + 2 + size].decode("utf-8", "replace")
        pos += 2 + size
    return metric, row_time, data_type, parse_tag_string_ref(key[pos:].decode("utf-8", "replace"))


# --------------------------------------------------------------------------- values


def encode_long_ref(v: int) -> bytes:
    return encode_uvarint(zigzag(v))


def encode_longs_ref(values: Sequence[int]) -> list[bytes]:
    return [encode_long_ref(int(v)) for v in values]


def decode_long_ref(b: bytes) -> int:
    """``Util.unpackLong``: at most 10 bytes, bits past 64 dropped, trailing bytes ignored."""
    try:
        u, _ = read_uvarint(b, 0, max_bytes=10)
    except ValueError as e:
        if e.args[0] == "truncated":
            raise ValueError("a long value ends inside its varint") from None
        raise ValueError("a long value's varint is longer than 10 bytes") from None
    return _i64(unzigzag(u & MASK64))


def decode_longs_ref(values: Sequence[bytes]) -> np.ndarray:
    return np.array([decode_long_ref(bytes(v)) for v in values], dtype=np.int64)


def encode_double_ref(v: float) -> bytes:
    return struct.pack(">d", v)


def encode_doubles_ref(values: np.ndarray) -> list[bytes]:
    # Via the bit pattern so NaN payloads survive every step.
    return [struct.pack(">Q", int(u)) for u in np.asarray(values, np.float64).view(np.uint64)]


def decode_doubles_ref(values: Sequence[bytes]) -> np.ndarray:
    """``readDouble``: the first 8 bytes, trailing bytes ignored."""
    bits = []
    for v in values:
        if len(v) < 8:
            raise ValueError(f"a double value has at least 8 bytes, not {len(v)}")
        bits.append(struct.unpack(">Q", bytes(v[:8]))[0])
    return np.array(bits, dtype=np.uint64).view(np.float64)


def encode_string_ref(s: str) -> bytes:
    """``DataOutput.writeUTF``: modified UTF-8 of the UTF-16 code units, 2-byte length first."""
    units = struct.unpack(f">{len(_java_key(s)) // 2}H", _java_key(s))
    out = bytearray()
    for c in units:
        if 0x0001 <= c <= 0x007F:
            out.append(c)
        elif c <= 0x07FF:
            out += bytes([0xC0 | (c >> 6), 0x80 | (c & 0x3F)])
        else:
            out += bytes([0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F)])
    if len(out) > 0xFFFF:
        raise ValueError(f"a string value encodes to {len(out)} bytes, more than 65535")
    return struct.pack(">H", len(out)) + bytes(out)


def decode_string_ref(b: bytes) -> str:
    """``DataInputStream.readUTF``, including its acceptance of overlong forms."""
    if len(b) < 2:
        raise ValueError("a string value is shorter than its 2-byte length")
    (n,) = struct.unpack(">H", b[:2])
    if len(b) < 2 + n:
        raise ValueError("a string value is shorter than its length says")
    data = b[2 : 2 + n]
    units = []
    i = 0
    while i < n:
        c = data[i]
        if c >> 4 <= 7:
            units.append(c)
            i += 1
        elif c >> 4 in (12, 13):
            if i + 2 > n or data[i + 1] & 0xC0 != 0x80:
                raise ValueError(f"malformed modified UTF-8 around byte {i}")
            units.append(((c & 0x1F) << 6) | (data[i + 1] & 0x3F))
            i += 2
        elif c >> 4 == 14:
            if i + 3 > n or data[i + 1] & 0xC0 != 0x80 or data[i + 2] & 0xC0 != 0x80:
                raise ValueError(f"malformed modified UTF-8 around byte {i}")
            units.append(((c & 0x0F) << 12) | ((data[i + 1] & 0x3F) << 6) | (data[i + 2] & 0x3F))
            i += 3
        else:
            raise ValueError(f"malformed modified UTF-8 around byte {i}")
    # A Java String is UTF-16: valid surrogate pairs become one code point, lone ones stay.
    return struct.pack(f"<{len(units)}H", *units).decode("utf-16-le", "surrogatepass")


def decode_strings_ref(values: Sequence[bytes]) -> list[str]:
    return [decode_string_ref(bytes(v)) for v in values]


def decode_legacy_value_ref(
    col: bytes, value: bytes, row_time: int
) -> tuple[int, bool, int, float]:
    """One cell of a ``kairos_legacy`` row: ``(ts, is_double, long_value, double_value)``."""
    ts = decode_column_ref(col, row_time, LEGACY)
    if col[3] & 1 == 0:
        # ValueSerializer.getLongFromByteBuffer: big-endian, leading zero bytes stripped.
        u = 0
        for byte in value:
            u = ((u << 8) | byte) & ((1 << 64) - 1)
        return ts, False, _i64(u), 0.0
    if len(value) >= 5 and value[0] == 1:
        return ts, True, 0, struct.unpack(">f", value[1:5])[0]
    if len(value) < 9:
        raise ValueError("a legacy double value is truncated")
    return ts, True, 0, struct.unpack(">d", value[1:9])[0]


def decode_legacy_ref(
    cols: Sequence[bytes], values: Sequence[bytes], row_time: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if len(cols) != len(values):
        raise ValueError("as many legacy columns as values are needed")
    cells = [
        decode_legacy_value_ref(bytes(c), bytes(v), row_time)
        for c, v in zip(cols, values, strict=True)
    ]
    return (
        np.array([c[0] for c in cells], dtype=np.int64),
        np.array([c[1] for c in cells], dtype=bool),
        np.array([c[2] for c in cells], dtype=np.int64),
        np.array([c[3] for c in cells], dtype=np.float64),
    )
