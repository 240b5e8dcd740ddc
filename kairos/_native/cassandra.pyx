"""KairosDB's Cassandra byte formats: the per-point loops (spec §6.3-6.5).

The facade is ``kairos.storage.cassandra.codec``; the plain reference is
``kairos.storage.cassandra._codec_reference`` and ``tests/property/test_cassandra_codec.py``
proves that the two agree.  Values travel as one flat byte buffer plus int64 offsets
(value i is ``buf[offsets[i]:offsets[i + 1]]``); the kernels fill caller-allocated arrays and
return -1 on success or the index of the first value they could not decode.  Only
``split_bytes`` and ``utf16le_strings`` create Python objects: the driver wants one ``bytes``
(or ``str``) per cell.

Java's long and int arithmetic wraps, which is undefined behaviour for signed C integers, so
every sum and difference of timestamps is done on ``uint64_t`` and cast back.

Units: 0 = MILLISECONDS, 1 = SECONDS, 2 = LEGACY.
"""

from cpython.bytes cimport PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF16
from libc.stdint cimport INT64_MIN, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

from kairos._native._types cimport f64_t, ts_t

cdef enum:
    UNIT_MILLISECONDS = 0
    UNIT_SECONDS = 1
    UNIT_LEGACY = 2


cdef inline int64_t _row_time(int64_t ts, uint64_t width) noexcept nogil:
    # Java: ts - (Math.abs(ts) % width), where Math.abs(Long.MIN_VALUE) is still negative and
    # its remainder therefore negative too.
    cdef uint64_t mag = <uint64_t>0 - <uint64_t>ts if ts < 0 else <uint64_t>ts
    cdef uint64_t r = mag % width
    if ts == INT64_MIN:
        return <int64_t>(<uint64_t>ts + r)
    return <int64_t>(<uint64_t>ts - r)


cdef inline uint32_t _column(int64_t ts, int64_t row_time, int unit) noexcept nogil:
    cdef int64_t offset = <int64_t>(<uint64_t>ts - <uint64_t>row_time)
    if unit == UNIT_SECONDS:
        return <uint32_t>(offset // 1000)  # C division truncates toward zero, like Java's
    if unit == UNIT_LEGACY:
        return (<uint32_t>offset) << 1
    return <uint32_t>offset


cdef inline uint32_t _load_u32(const uint8_t* p) noexcept nogil:
    return ((<uint32_t>p[0]) << 24) | ((<uint32_t>p[1]) << 16) | ((<uint32_t>p[2]) << 8) | p[3]


cdef inline uint64_t _load_u64(const uint8_t* p) noexcept nogil:
    return ((<uint64_t>_load_u32(p)) << 32) | _load_u32(p + 4)


cdef inline void _store_u32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef inline int64_t _column_time(int64_t row_time, uint32_t col, int unit) noexcept nogil:
    # RowSpec.getColumnTimestamp reads the column as a signed Java int, except in LEGACY
    # where it shifts it unsigned.
    if unit == UNIT_SECONDS:
        return <int64_t>(<uint64_t>row_time + <uint64_t>(<int64_t>(<int32_t>col) * 1000))
    if unit == UNIT_LEGACY:
        return <int64_t>(<uint64_t>row_time + (col >> 1))
    return <int64_t>(<uint64_t>row_time + <uint64_t>(<int64_t>(<int32_t>col)))


def row_times(const ts_t[::1] ts, int64_t width, ts_t[::1] out):
    """Row time of each timestamp.

    Parameters
    ----------
    ts : int64 array, shape (n,)
    width : int
        The stored row width, > 0 (not checked).
    out : int64 array, shape (n,)
    """
    cdef Py_ssize_t i
    cdef uint64_t w = <uint64_t>width
    with nogil:
        for i in range(ts.shape[0]):
            out[i] = _row_time(ts[i], w)


def encode_columns(const ts_t[::1] ts, const ts_t[:] row_time, int unit, uint8_t[::1] out):
    """Column names as 4-byte big-endian blobs, back to back.

    Parameters
    ----------
    ts : int64 array, shape (n,)
    row_time : int64 array, shape (n,)
        Each point's row time (may be a stride-0 broadcast of one value).
    unit : int
        0 MILLISECONDS, 1 SECONDS, 2 LEGACY.
    out : uint8 array, shape (4 * n,)
    """
    cdef Py_ssize_t i
    with nogil:
        for i in range(ts.shape[0]):
            _store_u32(&out[4 * i], _column(ts[i], row_time[i], unit))


def decode_columns(const uint8_t[::1] buf, int64_t row_time, int unit, ts_t[::1] out):
    """Timestamps of 4-byte column names stored back to back.

    Parameters
    ----------
    buf : uint8 array, shape (4 * n,)
    row_time : int
    unit : int
        0 MILLISECONDS, 1 SECONDS, 2 LEGACY.
    out : int64 array, shape (n,)
    """
    cdef Py_ssize_t i
    with nogil:
        for i in range(out.shape[0]):
            out[i] = _column_time(row_time, _load_u32(&buf[4 * i]), unit)


def encode_longs(const int64_t[::1] values, uint8_t[::1] out, int64_t[::1] offsets):
    """Zig-zag varints (``Util.packLong``), back to back.

    Parameters
    ----------
    values : int64 array, shape (n,)
    out : uint8 array, shape (>= 10 * n,)
    offsets : int64 array, shape (n + 1,)
        Receives where each encoding starts, and the total length last.
    """
    cdef Py_ssize_t i, pos = 0
    cdef uint64_t u
    cdef int64_t v
    with nogil:
        for i in range(values.shape[0]):
            offsets[i] = pos
            v = values[i]
            u = (<uint64_t>v << 1) ^ <uint64_t>(v >> 63)
            while u >= 0x80:
                out[pos] = <uint8_t>((u & 0x7F) | 0x80)
                pos += 1
                u >>= 7
            out[pos] = <uint8_t>u
            pos += 1
        offsets[values.shape[0]] = pos


def decode_longs(const uint8_t[::1] buf, const int64_t[::1] offsets, int64_t[::1] out):
    """Zig-zag varints as ``Util.unpackLong`` reads them.

    At most 10 bytes a value, bits past the 64th dropped, bytes after the last one ignored.

    Parameters
    ----------
    buf : uint8 array
    offsets : int64 array, shape (n + 1,)
    out : int64 array, shape (n,)

    Returns
    -------
    int
        -1, or the index of a value that ends inside its varint or runs past 10 bytes.
    """
    cdef Py_ssize_t i, pos, end
    cdef int shift
    cdef uint64_t u, b
    cdef Py_ssize_t bad = -1
    with nogil:
        for i in range(out.shape[0]):
            pos = offsets[i]
            end = offsets[i + 1]
            u = 0
            shift = 0
            while True:
                if pos >= end or shift >= 64:
                    bad = i
                    break
                b = buf[pos]
                pos += 1
                u |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
            if bad >= 0:
                break
            out[i] = <int64_t>((u >> 1) ^ (<uint64_t>0 - (u & 1)))
    return bad


def encode_doubles(const f64_t[::1] values, uint8_t[::1] out):
    """8-byte big-endian IEEE-754 doubles, bit for bit, back to back.

    Parameters
    ----------
    values : float64 array, shape (n,)
    out : uint8 array, shape (8 * n,)
    """
    cdef Py_ssize_t i
    cdef uint64_t u
    with nogil:
        for i in range(values.shape[0]):
            memcpy(&u, &values[i], 8)
            _store_u32(&out[8 * i], <uint32_t>(u >> 32))
            _store_u32(&out[8 * i + 4], <uint32_t>u)


def decode_doubles(const uint8_t[::1] buf, const int64_t[::1] offsets, f64_t[::1] out):
    """The first 8 bytes of each value as a big-endian double (``readDouble``).

    Parameters
    ----------
    buf : uint8 array
    offsets : int64 array, shape (n + 1,)
    out : float64 array, shape (n,)

    Returns
    -------
    int
        -1, or the index of a value shorter than 8 bytes.
    """
    cdef Py_ssize_t i
    cdef uint64_t u
    cdef Py_ssize_t bad = -1
    with nogil:
        for i in range(out.shape[0]):
            if offsets[i + 1] - offsets[i] < 8:
                bad = i
                break
            u = _load_u64(&buf[offsets[i]])
            memcpy(&out[i], &u, 8)
    return bad


def decode_mutf8(const uint8_t[::1] buf, const int64_t[::1] offsets, uint8_t[::1] out,
                 int64_t[::1] out_offsets):
    """``DataInputStream.readUTF`` of each value, into UTF-16LE code units back to back.

    Overlong 2- and 3-byte forms are accepted, as Java does; bytes after the encoded length
    are ignored.

    Parameters
    ----------
    buf : uint8 array
    offsets : int64 array, shape (n + 1,)
    out : uint8 array, shape (>= 2 * len(buf),)
        Receives little-endian UTF-16 code units.
    out_offsets : int64 array, shape (n + 1,)
        Receives the byte offset of each string in ``out``, and the total last.

    Returns
    -------
    int
        -1, or the index of a value that is shorter than its length or not modified UTF-8.
    """
    cdef Py_ssize_t i, pos, end, o = 0
    cdef uint32_t c, c2, c3, unit
    cdef Py_ssize_t bad = -1
    with nogil:
        for i in range(offsets.shape[0] - 1):
            out_offsets[i] = o
            pos = offsets[i]
            if offsets[i + 1] - pos < 2:
                bad = i
                break
            end = pos + 2 + ((<Py_ssize_t>buf[pos] << 8) | buf[pos + 1])
            pos += 2
            if end > offsets[i + 1]:
                bad = i
                break
            while pos < end:
                c = buf[pos]
                if c < 0x80:
                    unit = c
                    pos += 1
                elif (c >> 5) == 0x6:
                    if pos + 2 > end:
                        bad = i
                        break
                    c2 = buf[pos + 1]
                    if (c2 & 0xC0) != 0x80:
                        bad = i
                        break
                    unit = ((c & 0x1F) << 6) | (c2 & 0x3F)
                    pos += 2
                elif (c >> 4) == 0xE:
                    if pos + 3 > end:
                        bad = i
                        break
                    c2 = buf[pos + 1]
                    c3 = buf[pos + 2]
                    if (c2 & 0xC0) != 0x80 or (c3 & 0xC0) != 0x80:
                        bad = i
                        break
                    unit = ((c & 0x0F) << 12) | ((c2 & 0x3F) << 6) | (c3 & 0x3F)
                    pos += 3
                else:
                    bad = i
                    break
                out[o] = <uint8_t>unit
                out[o + 1] = <uint8_t>(unit >> 8)
                o += 2
            if bad >= 0:
                break
        if bad < 0:
            out_offsets[offsets.shape[0] - 1] = o
    return bad


def decode_legacy(const uint8_t[::1] cols, const uint8_t[::1] buf, const int64_t[::1] offsets,
                  int64_t row_time, ts_t[::1] ts, uint8_t[::1] is_double, int64_t[::1] longs,
                  f64_t[::1] doubles):
    """Cells of a ``kairos_legacy`` row (LEGACY columns: low bit 0 long, 1 double).

    A long is big-endian two's complement with leading zero bytes stripped (``ValueSerializer``,
    empty = 0, only the last 8 bytes count); a double is a flag byte, then a 4-byte float if
    the flag is 0x01, else an 8-byte double.  The other kind's slot is 0.

    Parameters
    ----------
    cols : uint8 array, shape (4 * n,)
        The column names back to back.
    buf : uint8 array
    offsets : int64 array, shape (n + 1,)
    row_time : int
    ts, is_double, longs, doubles : int64, uint8, int64, float64 arrays, shape (n,)

    Returns
    -------
    int
        -1, or the index of a truncated double value.
    """
    cdef Py_ssize_t i, pos, end
    cdef uint32_t col, u32
    cdef uint64_t u
    cdef float f
    cdef Py_ssize_t bad = -1
    with nogil:
        for i in range(ts.shape[0]):
            col = _load_u32(&cols[4 * i])
            ts[i] = _column_time(row_time, col, UNIT_LEGACY)
            pos = offsets[i]
            end = offsets[i + 1]
            if (col & 1) == 0:
                u = 0
                while pos < end:
                    u = (u << 8) | buf[pos]
                    pos += 1
                is_double[i] = 0
                longs[i] = <int64_t>u
                doubles[i] = 0.0
            else:
                is_double[i] = 1
                longs[i] = 0
                if end - pos >= 5 and buf[pos] == 1:
                    u32 = _load_u32(&buf[pos + 1])
                    memcpy(&f, &u32, 4)
                    doubles[i] = <f64_t>f
                elif end - pos >= 9:
                    u = _load_u64(&buf[pos + 1])
                    memcpy(&doubles[i], &u, 8)
                else:
                    bad = i
                    break
    return bad


def cell_offsets(list values, int64_t[::1] offsets):
    """Where each cell would start in ``b"".join(values)``, and the total length last.

    Parameters
    ----------
    values : list of bytes-like, length n
    offsets : int64 array, shape (n + 1,)
    """
    cdef Py_ssize_t i, n = len(values)
    cdef int64_t total = 0
    cdef object v
    for i in range(n):
        offsets[i] = total
        v = values[i]
        total += PyBytes_GET_SIZE(v) if PyBytes_CheckExact(v) else len(v)
    offsets[n] = total


def split_bytes(const uint8_t[::1] buf, const int64_t[::1] offsets):
    """``[bytes(buf[offsets[i]:offsets[i + 1]]) for i in range(n)]``.

    Parameters
    ----------
    buf : uint8 array
    offsets : int64 array, shape (n + 1,), non-decreasing, within ``buf`` (not checked)

    Returns
    -------
    list of bytes
    """
    cdef Py_ssize_t i, n = offsets.shape[0] - 1
    cdef const char* base = <const char*>&buf[0] if buf.shape[0] > 0 else NULL
    out = [None] * n
    for i in range(n):
        out[i] = PyBytes_FromStringAndSize(base + offsets[i], offsets[i + 1] - offsets[i])
    return out


def split_fixed(const uint8_t[::1] buf, Py_ssize_t size):
    """``[bytes(buf[i:i + size]) for i in range(0, len(buf), size)]``, ``size`` > 0."""
    cdef Py_ssize_t i, n = buf.shape[0] // size
    cdef const char* base = <const char*>&buf[0] if buf.shape[0] > 0 else NULL
    out = [None] * n
    for i in range(n):
        out[i] = PyBytes_FromStringAndSize(base + i * size, size)
    return out


def utf16le_strings(const uint8_t[::1] buf, const int64_t[::1] offsets):
    """Decode each ``buf[offsets[i]:offsets[i + 1]]`` as UTF-16LE, lone surrogates kept.

    Parameters
    ----------
    buf : uint8 array
    offsets : int64 array, shape (n + 1,), even byte offsets within ``buf`` (not checked)

    Returns
    -------
    list of str
    """
    cdef Py_ssize_t i, n = offsets.shape[0] - 1
    cdef const char* base = <const char*>&buf[0] if buf.shape[0] > 0 else NULL
    cdef int order
    out = [None] * n
    for i in range(n):
        order = -1  # little endian; 0 would swallow a leading U+FEFF as a byte-order mark
        out[i] = PyUnicode_DecodeUTF16(base + offsets[i], offsets[i + 1] - offsets[i],
                                       "surrogatepass", &order)
    return out
