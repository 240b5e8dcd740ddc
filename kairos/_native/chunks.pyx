"""Chunk codec of the embedded engine v2: the per-point loops.

The facade is ``kairos.storage.embedded.chunks`` (it validates, allocates and raises); the
plain reference is ``kairos.storage.embedded._chunks_reference`` and
``tests/property/test_chunks.py`` proves that both produce the same bytes.  The byte layout is
specified in the facade's docstring and in ``docs/storage-format.md`` ("Chunk encoding").

Every sum and difference of timestamps or values is done on ``uint64_t`` (wrapping) and cast
back, because signed overflow is undefined behaviour in C.

The decoder trusts nothing in the buffer: every byte it reads is checked against the buffer's
length (directives turn Cython's own checks off), and the kernels return a negative status
code (``ERR_*``) that the facade turns into ``ChunkError``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.math cimport fabs, rint
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memmove

from kairos._native._types cimport f64_t, ts_t

cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil
    int __builtin_ctzll(unsigned long long) nogil

cdef enum:
    BLOCK = 128             # deltas per frame-of-reference block
    MAX_DECIMALS = 9
    VENC_LONG = 0
    VENC_DECIMAL = 1
    VENC_XOR = 2
    TSENC_CONSTANT = 0
    TSENC_DOD = 1
    # header fields written by ``header`` into its int64 output
    H_FLAGS = 0
    H_COUNT = 1
    H_MIN_TS = 2
    H_MAX_TS = 3
    H_TS_LEN = 4
    H_LEN = 5
    H_FIELDS = 6

cdef enum:
    # status codes (the facade's _MESSAGES says what each means)
    ERR_TRUNCATED = -1
    ERR_HEADER = -2
    ERR_TIMESTAMPS = -3
    ERR_VALUES = -4
    ERR_TRAILING = -5

cdef extern from *:
    """
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    #define KAIROS_LITTLE_ENDIAN 1
    #else
    #define KAIROS_LITTLE_ENDIAN 0
    #endif
    """
    const bint LITTLE_ENDIAN "KAIROS_LITTLE_ENDIAN"

cdef uint64_t MASK32 = 0xFFFFFFFFu
cdef double[MAX_DECIMALS + 1] P10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9]


# --------------------------------------------------------------------------- small helpers

cdef inline uint64_t _zz(int64_t v) noexcept nogil:
    return (<uint64_t>v << 1) ^ <uint64_t>(v >> 63)


cdef inline int64_t _unzz(uint64_t u) noexcept nogil:
    return <int64_t>((u >> 1) ^ (<uint64_t>0 - (u & 1)))


cdef inline Py_ssize_t _put_uvarint(uint8_t* out, Py_ssize_t pos, uint64_t u) noexcept nogil:
    while u >= 0x80:
        out[pos] = <uint8_t>((u & 0x7F) | 0x80)
        pos += 1
        u >>= 7
    out[pos] = <uint8_t>u
    return pos + 1


cdef inline Py_ssize_t _get_uvarint(
    const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end, uint64_t* out
) noexcept nogil:
    """Position after the varint at ``pos``, or -1 if it is truncated or overflows 64 bits."""
    cdef uint64_t u = 0, b
    cdef int shift = 0
    while True:
        if pos >= end or shift > 63:
            return -1
        b = buf[pos]
        pos += 1
        if shift == 63 and (b & 0x7F) > 1:
            return -1
        u |= (b & 0x7F) << shift
        if b < 0x80:
            out[0] = u
            return pos
        shift += 7


cdef inline int _width(uint64_t u) noexcept nogil:
    return 0 if u == 0 else 64 - __builtin_clzll(u)


# MSB-first bit stream (timestamps' delta-of-delta, Gorilla XOR values)

cdef struct BitWriter:
    uint8_t* out
    Py_ssize_t pos
    uint64_t acc
    int nbits


cdef inline void _bw_put(BitWriter* w, uint64_t v, int n) noexcept nogil:
    # 0 <= n <= 32 and v < 2**n; fewer than 8 bits are pending between calls
    w.acc = (w.acc << n) | v
    w.nbits += n
    while w.nbits >= 8:
        w.nbits -= 8
        w.out[w.pos] = <uint8_t>(w.acc >> w.nbits)
        w.pos += 1


cdef inline void _bw_put_wide(BitWriter* w, uint64_t v, int n) noexcept nogil:
    # 0 <= n <= 64 and v < 2**n
    if n > 32:
        _bw_put(w, v >> 32, n - 32)
        _bw_put(w, v & MASK32, 32)
    else:
        _bw_put(w, v, n)


cdef inline void _bw_flush(BitWriter* w) noexcept nogil:
    if w.nbits > 0:
        w.out[w.pos] = <uint8_t>(w.acc << (8 - w.nbits))
        w.pos += 1
        w.nbits = 0


cdef struct BitReader:
    const uint8_t* buf
    Py_ssize_t pos
    Py_ssize_t end
    uint64_t acc     # the next ``nbits`` bits, top-aligned
    int nbits


cdef inline void _br_fill(BitReader* r) noexcept nogil:
    while r.nbits <= 56 and r.pos < r.end:
        r.acc |= (<uint64_t>r.buf[r.pos]) << (56 - r.nbits)
        r.pos += 1
        r.nbits += 8


cdef inline uint64_t _br_take(BitReader* r, int n) noexcept nogil:
    # 1 <= n <= nbits (the caller checked) and n <= 56
    cdef uint64_t v = r.acc >> (64 - n)
    r.acc <<= n
    r.nbits -= n
    return v


cdef inline int _br_get(BitReader* r, int n, uint64_t* v) noexcept nogil:
    """Read 0 <= n <= 64 bits into ``v``; 0, or -1 when the stream ends first."""
    cdef uint64_t hi
    if n > 56:
        if _br_get(r, n - 32, &hi) < 0 or _br_get(r, 32, v) < 0:
            return -1
        v[0] |= hi << 32
        return 0
    if n == 0:
        v[0] = 0
        return 0
    if r.nbits < n:
        _br_fill(r)
        if r.nbits < n:
            return -1
    v[0] = _br_take(r, n)
    return 0


cdef inline Py_ssize_t _br_used_bytes(BitReader* r, Py_ssize_t start) noexcept nogil:
    # bytes of the stream holding the bits consumed so far
    return (r.pos - start) - r.nbits // 8


cdef inline int64_t _sext(uint64_t v, int n) noexcept nogil:
    return (<int64_t>(v << (64 - n))) >> (64 - n)


# --------------------------------------------------------------------------- encoder

cdef Py_ssize_t _encode_header(
    const ts_t* ts, Py_ssize_t n, int flags, uint8_t* out, Py_ssize_t ts_len
) noexcept nogil:
    cdef Py_ssize_t pos = 1
    out[0] = <uint8_t>flags
    pos = _put_uvarint(out, pos, <uint64_t>n)
    pos = _put_uvarint(out, pos, _zz(ts[0]))
    pos = _put_uvarint(out, pos, <uint64_t>ts[n - 1] - <uint64_t>ts[0])
    pos = _put_uvarint(out, pos, <uint64_t>ts_len)
    return pos


cdef int _ts_mode(const ts_t* ts, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint64_t d
    if n <= 2:
        return TSENC_CONSTANT
    d = <uint64_t>ts[1] - <uint64_t>ts[0]
    for i in range(2, n):
        if <uint64_t>ts[i] - <uint64_t>ts[i - 1] != d:
            return TSENC_DOD
    return TSENC_CONSTANT


cdef Py_ssize_t _encode_ts(const ts_t* ts, Py_ssize_t n, uint8_t* out) noexcept nogil:
    """The TSENC_DOD section: first delta as a varint, then one bit code per later point."""
    cdef Py_ssize_t i
    cdef uint64_t prev = <uint64_t>ts[1] - <uint64_t>ts[0], d
    cdef int64_t dod
    cdef BitWriter w
    w.out = out
    w.pos = _put_uvarint(out, 0, prev)
    w.acc = 0
    w.nbits = 0
    for i in range(2, n):
        d = <uint64_t>ts[i] - <uint64_t>ts[i - 1]
        dod = <int64_t>(d - prev)
        prev = d
        if dod == 0:
            _bw_put(&w, 0, 1)
        elif -(1 << 13) <= dod < (1 << 13):
            _bw_put(&w, 0b10, 2)
            _bw_put(&w, <uint64_t>dod & 0x3FFF, 14)
        elif -(1 << 16) <= dod < (1 << 16):
            _bw_put(&w, 0b110, 3)
            _bw_put(&w, <uint64_t>dod & 0x1FFFF, 17)
        elif -(1 << 19) <= dod < (1 << 19):
            _bw_put(&w, 0b1110, 4)
            _bw_put(&w, <uint64_t>dod & 0xFFFFF, 20)
        else:
            _bw_put(&w, 0b1111, 4)
            _bw_put_wide(&w, <uint64_t>dod, 64)
    _bw_flush(&w)
    return w.pos


cdef Py_ssize_t _encode_for(const int64_t* v, Py_ssize_t n, uint8_t* out) noexcept nogil:
    """First value as a zig-zag varint, then frame-of-reference blocks of deltas."""
    cdef Py_ssize_t pos, i, j, m
    cdef int64_t lo
    cdef uint64_t hi, x, acc
    cdef int width, nbits, part
    pos = _put_uvarint(out, 0, _zz(v[0]))
    i = 1
    while i < n:
        m = n - i if n - i < BLOCK else BLOCK
        lo = <int64_t>(<uint64_t>v[i] - <uint64_t>v[i - 1])
        for j in range(i + 1, i + m):
            x = <uint64_t>v[j] - <uint64_t>v[j - 1]
            if <int64_t>x < lo:
                lo = <int64_t>x
        hi = 0
        for j in range(i, i + m):
            x = <uint64_t>v[j] - <uint64_t>v[j - 1] - <uint64_t>lo
            hi |= x
        width = _width(hi)
        pos = _put_uvarint(out, pos, _zz(lo))
        out[pos] = <uint8_t>width
        pos += 1
        if width > 0:
            acc = 0
            nbits = 0
            for j in range(i, i + m):
                x = <uint64_t>v[j] - <uint64_t>v[j - 1] - <uint64_t>lo
                part = width
                if part > 32:  # low 32 bits first, so that acc never overflows
                    acc |= (x & MASK32) << nbits
                    nbits += 32
                    while nbits >= 8:
                        out[pos] = <uint8_t>acc
                        pos += 1
                        acc >>= 8
                        nbits -= 8
                    x >>= 32
                    part -= 32
                acc |= x << nbits
                nbits += part
                while nbits >= 8:
                    out[pos] = <uint8_t>acc
                    pos += 1
                    acc >>= 8
                    nbits -= 8
            if nbits > 0:
                out[pos] = <uint8_t>acc
                pos += 1
        i += m
    return pos


cdef Py_ssize_t _encode_xor(const uint64_t* v, Py_ssize_t n, uint8_t* out) noexcept nogil:
    """Gorilla XOR: 64 raw bits, then a control code per later value."""
    cdef Py_ssize_t i
    cdef uint64_t x
    cdef int lead, trail, sig, plead = -1, ptrail = 0
    cdef BitWriter w
    w.out = out
    w.pos = 0
    w.acc = 0
    w.nbits = 0
    _bw_put_wide(&w, v[0], 64)
    for i in range(1, n):
        x = v[i] ^ v[i - 1]
        if x == 0:
            _bw_put(&w, 0, 1)
            continue
        lead = __builtin_clzll(x)
        trail = __builtin_ctzll(x)
        if lead > 31:
            lead = 31
        if plead >= 0 and lead >= plead and trail >= ptrail:
            _bw_put(&w, 0b10, 2)
            _bw_put_wide(&w, x >> ptrail, 64 - plead - ptrail)
        else:
            sig = 64 - lead - trail
            _bw_put(&w, 0b11, 2)
            _bw_put(&w, <uint64_t>lead, 5)
            _bw_put(&w, <uint64_t>(sig & 63), 6)
            _bw_put_wide(&w, x >> trail, sig)
            plead = lead
            ptrail = trail
    _bw_flush(&w)
    return w.pos


cdef Py_ssize_t _encode_patches(
    const uint64_t* words, const int64_t* patches, Py_ssize_t npatch, uint8_t* out
) noexcept nogil:
    """DECIMAL's exceptions: their number, then each one's position gap and 64 bits."""
    cdef Py_ssize_t j, pos = _put_uvarint(out, 0, <uint64_t>npatch)
    cdef int64_t prev = -1
    cdef int b
    cdef uint64_t u
    for j in range(npatch):
        pos = _put_uvarint(out, pos, <uint64_t>(patches[j] - prev - 1))
        prev = patches[j]
        u = words[prev]
        for b in range(8):
            out[pos + b] = <uint8_t>(u >> (8 * b))
        pos += 8
    return pos


cdef Py_ssize_t _encode(
    const ts_t* ts, Py_ssize_t n, const void* values, int kind, int venc, int k, uint8_t* out,
    const uint64_t* words=NULL, const int64_t* patches=NULL, Py_ssize_t npatch=0,
) noexcept nogil:
    cdef int tsenc = _ts_mode(ts, n)
    cdef int flags = kind | (venc << 1) | (tsenc << 3) | (k << 4)
    cdef Py_ssize_t ts_len = 0, pos
    cdef uint8_t* scratch
    if tsenc == TSENC_DOD:
        # the header's ts_len varint comes first: encode the section after the widest header,
        # then move it into place
        scratch = out + 64
        ts_len = _encode_ts(ts, n, scratch)
        pos = _encode_header(ts, n, flags, out, ts_len)
        memmove(out + pos, scratch, ts_len)
        pos += ts_len
    else:
        pos = _encode_header(ts, n, flags, out, 0)
    if venc == VENC_XOR:
        pos += _encode_xor(<const uint64_t*>values, n, out + pos)
    else:
        if venc == VENC_DECIMAL:
            pos += _encode_patches(words, patches, npatch, out + pos)
        pos += _encode_for(<const int64_t*>values, n, out + pos)
    return pos


def max_encoded_size(Py_ssize_t n):
    """Upper bound of an encoded chunk of ``n`` points, in bytes."""
    # header <= 41 bytes (the timestamps are first written at offset 64); timestamps <= 10 + 68
    # bits a point; values <= 8 + 77 bits a point (XOR), or 10 + 18 bytes an exception (at most
    # n // 32) + 10 + 64 bits a point + 11 bytes a block of 128 (DECIMAL / LONG)
    return 64 + 64 + 20 * n


cdef int _find_decimal(
    const f64_t* values, Py_ssize_t n, int64_t* out, int64_t* patches, Py_ssize_t* npatch
) noexcept nogil:
    """Smallest k in 0..9 such that all values but at most n // 32 are exactly int / 10**k.

    Fills ``out`` with the integers (an exception gets its predecessor's, or the first good
    one's), ``patches`` with the exceptions' positions and ``npatch`` with their number.
    """
    cdef Py_ssize_t i, bad, first_good, limit = n // 32
    cdef int k
    cdef double p, x, back
    cdef int64_t iv = 0
    cdef uint64_t a, b
    cdef bint ok
    for k in range(MAX_DECIMALS + 1):
        p = P10[k]
        bad = 0
        first_good = -1
        for i in range(n):
            x = values[i] * p
            ok = fabs(x) < 9007199254740992.0  # 2**53; false for NaN too
            if ok:
                iv = <int64_t>rint(x)
                back = (<double>iv) / p
                memcpy(&a, &back, 8)
                memcpy(&b, &values[i], 8)
                ok = a == b
            if ok:
                out[i] = iv
                if first_good < 0:
                    first_good = i
            else:
                if bad == limit:
                    bad += 1
                    break
                patches[bad] = i
                bad += 1
                out[i] = out[i - 1] if i > 0 else 0
        if bad <= limit:
            for i in range(first_good):
                out[i] = out[first_good]
            npatch[0] = bad
            return k
    return -1


# --------------------------------------------------------------------------- decoder

cdef int _parse_header(const uint8_t* buf, Py_ssize_t size, int64_t* h) noexcept nogil:
    cdef Py_ssize_t pos
    cdef uint64_t count, zmin, span, ts_len
    cdef int flags, kind, venc, tsenc, k
    if size < 1:
        return ERR_TRUNCATED
    flags = buf[0]
    kind = flags & 1
    venc = (flags >> 1) & 3
    tsenc = (flags >> 3) & 1
    k = flags >> 4
    if venc == 3 or (kind == 0 and (venc != VENC_LONG or k != 0)) or (
        kind == 1 and (venc == VENC_LONG or k > MAX_DECIMALS or (venc == VENC_XOR and k != 0))
    ):
        return ERR_HEADER
    pos = _get_uvarint(buf, 1, size, &count)
    if pos < 0:
        return ERR_TRUNCATED
    pos = _get_uvarint(buf, pos, size, &zmin)
    if pos < 0:
        return ERR_TRUNCATED
    pos = _get_uvarint(buf, pos, size, &span)
    if pos < 0:
        return ERR_TRUNCATED
    pos = _get_uvarint(buf, pos, size, &ts_len)
    if pos < 0:
        return ERR_TRUNCATED
    # a point costs at least 1/128 of a byte (a frame-of-reference block of width 0 takes two
    # bytes), which bounds what a corrupt count can make the facade allocate
    if count == 0 or count - 1 > <uint64_t>(BLOCK * size):
        return ERR_HEADER
    if ts_len > <uint64_t>(size - pos):
        return ERR_TRUNCATED
    if (tsenc == TSENC_CONSTANT) != (ts_len == 0):
        return ERR_HEADER
    h[H_FLAGS] = flags
    h[H_COUNT] = <int64_t>count
    h[H_MIN_TS] = _unzz(zmin)
    h[H_MAX_TS] = <int64_t>(<uint64_t>h[H_MIN_TS] + span)
    h[H_TS_LEN] = <int64_t>ts_len
    h[H_LEN] = pos
    return 0


def header(const uint8_t[::1] buf, int64_t[::1] out):
    """Parse a chunk header.

    Parameters
    ----------
    buf : uint8 buffer, the whole chunk
    out : int64 array, shape (6,)
        Receives flags, count, min_ts, max_ts, timestamps-section length, header length.

    Returns
    -------
    int
        0, or a negative ``ERR_*`` code.
    """
    cdef Py_ssize_t size = buf.shape[0]
    if size == 0:
        return ERR_TRUNCATED
    return _parse_header(&buf[0], size, &out[0])


cdef inline bint _constant_step_ok(const int64_t* h) noexcept nogil:
    # count points from min_ts to max_ts at one non-zero step: the span divides evenly
    cdef uint64_t d, span = <uint64_t>h[H_MAX_TS] - <uint64_t>h[H_MIN_TS]
    cdef Py_ssize_t n = h[H_COUNT]
    if n == 1:
        return span == 0
    d = span // <uint64_t>(n - 1)
    return d != 0 and d * <uint64_t>(n - 1) == span


cdef int _decode_ts(
    const uint8_t* buf, Py_ssize_t start, Py_ssize_t end, int64_t* h, ts_t* ts
) noexcept nogil:
    cdef Py_ssize_t i, n = h[H_COUNT]
    cdef uint64_t d, u, span = <uint64_t>h[H_MAX_TS] - <uint64_t>h[H_MIN_TS]
    cdef int64_t dod
    cdef BitReader r
    ts[0] = h[H_MIN_TS]
    if ((h[H_FLAGS] >> 3) & 1) == TSENC_CONSTANT:
        if not _constant_step_ok(h):
            return ERR_TIMESTAMPS
        if n == 1:
            return 0
        d = span // <uint64_t>(n - 1)
        for i in range(1, n):
            ts[i] = <int64_t>(<uint64_t>ts[i - 1] + d)
        return 0
    if n < 3:
        return ERR_TIMESTAMPS
    r.pos = _get_uvarint(buf, start, end, &d)
    if r.pos < 0:
        return ERR_TRUNCATED
    r.buf = buf
    r.end = end
    r.acc = 0
    r.nbits = 0
    ts[1] = <int64_t>(<uint64_t>ts[0] + d)
    for i in range(2, n):
        if r.nbits < 24:
            _br_fill(&r)
        if r.nbits < 1:
            return ERR_TRUNCATED
        if _br_take(&r, 1) == 0:
            ts[i] = <int64_t>(<uint64_t>ts[i - 1] + d)
            continue
        if r.nbits < 1:
            return ERR_TRUNCATED
        if _br_take(&r, 1) == 0:
            if r.nbits < 14:
                return ERR_TRUNCATED
            dod = _sext(_br_take(&r, 14), 14)
        else:
            if r.nbits < 1:
                return ERR_TRUNCATED
            if _br_take(&r, 1) == 0:
                if r.nbits < 17:
                    return ERR_TRUNCATED
                dod = _sext(_br_take(&r, 17), 17)
            else:
                if r.nbits < 1:
                    return ERR_TRUNCATED
                if _br_take(&r, 1) == 0:
                    if r.nbits < 20:
                        return ERR_TRUNCATED
                    dod = _sext(_br_take(&r, 20), 20)
                else:
                    if _br_get(&r, 64, &u) < 0:
                        return ERR_TRUNCATED
                    dod = <int64_t>u
        d += <uint64_t>dod
        ts[i] = <int64_t>(<uint64_t>ts[i - 1] + d)
    if _br_used_bytes(&r, start) != end - start or ts[n - 1] != h[H_MAX_TS]:
        return ERR_TIMESTAMPS
    return 0


cdef Py_ssize_t _decode_for(
    const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t n, int64_t* v
) noexcept nogil:
    """Position after the section, or a negative ``ERR_*`` code."""
    cdef Py_ssize_t i, j, m, nbytes
    cdef uint64_t u, lo, acc, mask, x, prev
    cdef int width, nbits, part
    cdef Py_ssize_t bitpos
    pos = _get_uvarint(buf, pos, end, &u)
    if pos < 0:
        return ERR_TRUNCATED
    prev = <uint64_t>_unzz(u)
    v[0] = <int64_t>prev
    i = 1
    while i < n:
        m = n - i if n - i < BLOCK else BLOCK
        pos = _get_uvarint(buf, pos, end, &u)
        if pos < 0 or pos >= end:
            return ERR_TRUNCATED
        lo = <uint64_t>_unzz(u)
        width = buf[pos]
        pos += 1
        if width > 64:
            return ERR_VALUES
        nbytes = (m * width + 7) // 8
        if nbytes > end - pos:
            return ERR_TRUNCATED
        if width == 0:
            for j in range(i, i + m):
                prev += lo
                v[j] = <int64_t>prev
        elif LITTLE_ENDIAN and width <= 56 and end - pos >= nbytes + 8:
            # One 8-byte load at each value's bit position: the loads do not depend on one
            # another (about 2x faster than refilling byte by byte). The section's end leaves
            # 8 bytes to spare; the last block of a chunk usually takes the loop below.
            mask = (<uint64_t>1 << width) - 1
            bitpos = 0
            for j in range(i, i + m):
                memcpy(&acc, &buf[pos + (bitpos >> 3)], 8)  # the bytes LSB first
                x = (acc >> (bitpos & 7)) & mask
                bitpos += width
                prev += x + lo
                v[j] = <int64_t>prev
            pos += nbytes
        elif width <= 56:
            mask = (<uint64_t>1 << width) - 1
            acc = 0
            nbits = 0
            for j in range(i, i + m):
                while nbits < width:
                    acc |= (<uint64_t>buf[pos]) << nbits
                    pos += 1
                    nbits += 8
                x = acc & mask
                acc >>= width
                nbits -= width
                prev += x + lo
                v[j] = <int64_t>prev
        else:
            acc = 0
            nbits = 0
            for j in range(i, i + m):
                x = 0
                part = 0
                # byte by byte: a value of up to 64 bits plus 7 pending bits overflows acc
                while part < width:
                    if nbits == 0:
                        acc = buf[pos]
                        pos += 1
                        nbits = 8
                    if width - part < nbits:
                        x |= (acc & ((<uint64_t>1 << (width - part)) - 1)) << part
                        acc >>= width - part
                        nbits -= width - part
                        part = width
                    else:
                        x |= acc << part
                        part += nbits
                        nbits = 0
                prev += x + lo
                v[j] = <int64_t>prev
        i += m
    return pos


cdef Py_ssize_t _decode_xor(
    const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t n, uint64_t* v
) noexcept nogil:
    cdef Py_ssize_t i, start = pos
    cdef uint64_t x, u
    cdef int lead, sig, trail, plead = -1, ptrail = 0
    cdef BitReader r
    r.buf = buf
    r.pos = pos
    r.end = end
    r.acc = 0
    r.nbits = 0
    if _br_get(&r, 64, &x) < 0:
        return ERR_TRUNCATED
    v[0] = x
    for i in range(1, n):
        if r.nbits < 13:
            _br_fill(&r)
        if r.nbits < 1:
            return ERR_TRUNCATED
        if _br_take(&r, 1) == 0:
            v[i] = v[i - 1]
            continue
        if r.nbits < 1:
            return ERR_TRUNCATED
        if _br_take(&r, 1) == 0:
            if plead < 0:
                return ERR_VALUES
            if _br_get(&r, 64 - plead - ptrail, &u) < 0:
                return ERR_TRUNCATED
            x = u << ptrail
        else:
            if r.nbits < 11:
                return ERR_TRUNCATED
            lead = <int>_br_take(&r, 5)
            sig = <int>_br_take(&r, 6)
            if sig == 0:
                sig = 64
            trail = 64 - lead - sig
            if trail < 0:
                return ERR_VALUES
            if _br_get(&r, sig, &u) < 0:
                return ERR_TRUNCATED
            x = u << trail
            plead = lead
            ptrail = trail
        if x == 0:
            return ERR_VALUES
        v[i] = v[i - 1] ^ x
    return start + _br_used_bytes(&r, start)


cdef Py_ssize_t _skip_patches(
    const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t n
) noexcept nogil:
    """Check DECIMAL's exceptions; the position after them or a negative ``ERR_*`` code."""
    cdef uint64_t npatch, gap
    cdef uint64_t _j, at = 0
    pos = _get_uvarint(buf, pos, end, &npatch)
    if pos < 0:
        return ERR_TRUNCATED
    if npatch > <uint64_t>(n // 32):
        return ERR_VALUES
    for _j in range(npatch):
        pos = _get_uvarint(buf, pos, end, &gap)
        if pos < 0:
            return ERR_TRUNCATED
        if gap >= <uint64_t>n - at:
            return ERR_VALUES
        at += gap + 1
        if end - pos < 8:
            return ERR_TRUNCATED
        pos += 8
    return pos


cdef void _apply_patches(const uint8_t* buf, Py_ssize_t pos, int64_t* values) noexcept nogil:
    # only after _skip_patches accepted the section
    cdef uint64_t npatch = 0, gap = 0, u
    cdef uint64_t _j
    cdef int64_t at = -1
    cdef int b
    pos = _get_uvarint(buf, pos, pos + 10, &npatch)
    for _j in range(npatch):
        pos = _get_uvarint(buf, pos, pos + 10, &gap)
        at += <int64_t>gap + 1
        u = 0
        for b in range(8):
            u |= (<uint64_t>buf[pos + b]) << (8 * b)
        values[at] = <int64_t>u
        pos += 8


cdef extern from *:
    """
    /* The DECIMAL division, 4 values at a time where the CPU has AVX2 (chosen at run time).
       For |v| < 2**51, v + 1.5 * 2**52 is exact in a double's 52-bit mantissa, so subtracting
       1.5 * 2**52 gives (double)v exactly; then one correctly rounded division, as the plain
       loop does. Nothing here can be fused or reordered: the result is bit-identical. */
    #include <stdint.h>
    #include <string.h>
    #if defined(__x86_64__) && defined(__GNUC__)
    __attribute__((target("avx2")))
    #endif
    static void kairos_scale_down_avx2(int64_t* v, Py_ssize_t n, double p) {
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t u = (uint64_t)v[i] + (uint64_t)0x4338000000000000ULL;
            double d, x;
            memcpy(&d, &u, 8);
            x = (d - 6755399441055744.0) / p;
            memcpy(&v[i], &x, 8);
        }
    }
    static int kairos_has_avx2(void) {
    #if defined(__x86_64__) && defined(__GNUC__)
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
    #else
        return 0;  /* elsewhere the plain loop (the compiler's own vectors, if any) */
    #endif
    }
    """
    void kairos_scale_down_avx2(int64_t* v, Py_ssize_t n, double p) nogil
    int kairos_has_avx2() nogil


cdef bint HAS_AVX2 = kairos_has_avx2()


cdef void _scale_down(int64_t* values, Py_ssize_t n, double p) noexcept nogil:
    """``values[i] = <double>values[i] / p``, the double's bits written in place (the caller's
    float64 array viewed as int64)."""
    cdef Py_ssize_t i
    cdef uint64_t big = 0
    cdef double x
    if HAS_AVX2:
        for i in range(n):
            big |= (<uint64_t>values[i] + (<uint64_t>1 << 51)) >> 52  # |v| >= 2**51
        if not big:
            kairos_scale_down_avx2(values, n, p)
            return
    for i in range(n):
        x = (<double>values[i]) / p
        memcpy(&values[i], &x, 8)


cdef int _decode(const uint8_t* buf, Py_ssize_t size, ts_t* ts, int64_t* values) noexcept nogil:
    # ``ts`` NULL: the values only, of a chunk with constant steps (its timestamps follow from
    # min_ts, max_ts and count, which the caller has from the header)
    cdef int64_t[H_FIELDS] h
    cdef int rc, venc, k
    cdef Py_ssize_t n, pos, patches
    rc = _parse_header(buf, size, h)
    if rc < 0:
        return rc
    n = h[H_COUNT]
    pos = h[H_LEN]
    if ts != NULL:
        rc = _decode_ts(buf, pos, pos + h[H_TS_LEN], h, ts)
        if rc < 0:
            return rc
    elif ((h[H_FLAGS] >> 3) & 1) != TSENC_CONSTANT or not _constant_step_ok(h):
        return ERR_TIMESTAMPS  # only constant steps follow from the header alone
    pos += h[H_TS_LEN]
    venc = (h[H_FLAGS] >> 1) & 3
    if venc == VENC_XOR:
        pos = _decode_xor(buf, pos, size, n, <uint64_t*>values)
    else:
        patches = pos
        if venc == VENC_DECIMAL:
            pos = _skip_patches(buf, pos, size, n)
            if pos < 0:
                return <int>pos
        pos = _decode_for(buf, pos, size, n, values)
    if pos < 0:
        return <int>pos
    if pos != size:
        return ERR_TRAILING
    if venc == VENC_DECIMAL:
        k = h[H_FLAGS] >> 4
        _scale_down(values, n, P10[k])
        _apply_patches(buf, patches, values)
    return 0


def decode(const uint8_t[::1] buf, ts_t[::1] ts, int64_t[::1] values):
    """Decode a whole chunk.

    Parameters
    ----------
    buf : uint8 buffer, the whole chunk (nothing after it)
    ts : int64 array, shape (count,)
    values : int64 array, shape (count,)
        Receives the longs, or the doubles' bits (pass a float64 array's ``.view(np.int64)``).

    Returns
    -------
    int
        0, or a negative ``ERR_*`` code.
    """
    cdef Py_ssize_t size = buf.shape[0]
    cdef int64_t[H_FIELDS] h
    cdef int rc
    if size == 0:
        return ERR_TRUNCATED
    rc = _parse_header(&buf[0], size, h)
    if rc < 0:
        return rc
    if ts.shape[0] != h[H_COUNT] or values.shape[0] != h[H_COUNT]:
        return ERR_HEADER
    with nogil:
        rc = _decode(&buf[0], size, &ts[0], &values[0])
    return rc


cdef inline const uint8_t* _bytes_of(object buf, Py_ssize_t* size):
    # NULL when ``buf`` is not exactly ``bytes``
    if PyBytes_CheckExact(buf):
        size[0] = PyBytes_GET_SIZE(buf)
        return <const uint8_t*>PyBytes_AS_STRING(buf)
    return NULL


def headers(list bufs, int64_t[:, ::1] out):
    """Parse the headers of many chunks (one Python call instead of one a chunk).

    Parameters
    ----------
    bufs : list of byte buffers (``bytes`` is fastest)
    out : int64 array, shape (len(bufs), 6)
        Row i receives chunk i's fields, as ``header`` writes them.

    Returns
    -------
    tuple of int
        ``(-1, 0)``, or the index of the first bad chunk and its ``ERR_*`` code.
    """
    cdef Py_ssize_t i, size
    cdef const uint8_t* p
    cdef const uint8_t[::1] mv
    cdef int rc
    for i in range(len(bufs)):
        p = _bytes_of(bufs[i], &size)
        if p == NULL:
            mv = bufs[i]
            size = mv.shape[0]
            p = &mv[0] if size > 0 else NULL
        rc = _parse_header(p, size, &out[i, 0]) if size > 0 else ERR_TRUNCATED
        if rc < 0:
            return i, rc
    return -1, 0


def decode_list(list bufs, const uint8_t[::1] picked, ts_t[::1] ts, int64_t[::1] values):
    """Decode the picked chunks of a list back to back.

    Parameters
    ----------
    bufs : list of byte buffers whose headers ``headers`` accepted
    picked : uint8 array, shape (len(bufs),)
        1 for the chunks to decode, 2 for the values only of a chunk with constant steps
        (else ``ERR_TIMESTAMPS``): its timestamps are not written.
    ts : int64 array, shape (sum of the counts of the chunks picked 1,)
    values : int64 array, shape (sum of the picked chunks' counts,)
        As for ``decode``.

    Returns
    -------
    tuple of int
        ``(-1, 0)``, or the index of the first bad chunk and its ``ERR_*`` code.
    """
    cdef Py_ssize_t i, j, m = 0, size, n = len(bufs), pos = 0, vpos = 0, bad = -1
    cdef const uint8_t* p
    cdef const uint8_t[::1] mv
    cdef int64_t[H_FIELDS] h
    cdef int rc = 0
    cdef const uint8_t** ptrs
    cdef Py_ssize_t* sizes
    cdef Py_ssize_t* which
    cdef uint8_t* values_only
    if picked.shape[0] < n:
        raise ValueError("picked is shorter than bufs")
    ptrs = <const uint8_t**>malloc(max(n, 1) * sizeof(uint8_t*))
    sizes = <Py_ssize_t*>malloc(max(n, 1) * sizeof(Py_ssize_t))
    which = <Py_ssize_t*>malloc(max(n, 1) * sizeof(Py_ssize_t))
    values_only = <uint8_t*>malloc(max(n, 1))
    if ptrs == NULL or sizes == NULL or which == NULL or values_only == NULL:
        free(ptrs)
        free(sizes)
        free(which)
        free(values_only)
        raise MemoryError()
    try:
        # The chunks' addresses first (``bufs`` keeps every buffer alive), then the decoding
        # without the GIL, so that other threads can decode other chunks meanwhile.
        for i in range(n):
            if not picked[i]:
                continue
            p = _bytes_of(bufs[i], &size)
            if p == NULL:
                mv = bufs[i]
                size = mv.shape[0]
                p = &mv[0] if size > 0 else NULL
            ptrs[m] = p
            sizes[m] = size
            which[m] = i
            values_only[m] = picked[i] == 2
            m += 1
        with nogil:
            for j in range(m):
                if sizes[j] == 0:
                    rc = ERR_TRUNCATED
                else:
                    rc = _parse_header(ptrs[j], sizes[j], h)
                    if rc == 0 and h[H_COUNT] > values.shape[0] - vpos:
                        rc = ERR_HEADER
                    if rc == 0 and not values_only[j] and h[H_COUNT] > ts.shape[0] - pos:
                        rc = ERR_HEADER
                    if rc == 0:
                        rc = _decode(
                            ptrs[j], sizes[j], NULL if values_only[j] else &ts[pos], &values[vpos]
                        )
                if rc < 0:
                    bad = which[j]
                    break
                vpos += h[H_COUNT]
                if not values_only[j]:
                    pos += h[H_COUNT]
        if bad >= 0:
            return bad, rc
        return -1, 0
    finally:
        free(ptrs)
        free(sizes)
        free(which)
        free(values_only)


def encode(
    const ts_t[::1] ts, const int64_t[::1] words, bint is_double, uint8_t[::1] out,
    int64_t[::1] scratch,
):
    """Check the timestamps, pick the encodings and encode a chunk, in one call.

    Parameters
    ----------
    ts : int64 array, shape (n,), n >= 1
    words : int64 array, shape (n,)
        The longs, or the doubles' bits (a float64 array's ``.view(np.int64)``).
    is_double : bool
    out : uint8 array, shape (>= max_encoded_size(n),)
    scratch : int64 array, shape (2 * n,) for doubles (DECIMAL integers and exceptions)

    Returns
    -------
    int
        The encoded length, or ``-i`` when ``ts[i] <= ts[i - 1]``.
    """
    cdef Py_ssize_t i, n = ts.shape[0], r = 0, npatch
    cdef int k
    with nogil:
        for i in range(1, n):
            if ts[i] <= ts[i - 1]:
                r = -i
                break
        if r < 0:
            pass
        elif not is_double:
            r = _encode(&ts[0], n, &words[0], 0, VENC_LONG, 0, &out[0])
        else:
            k = _find_decimal(<const f64_t*>&words[0], n, &scratch[0], &scratch[n], &npatch)
            if k >= 0:
                r = _encode(
                    &ts[0], n, &scratch[0], 1, VENC_DECIMAL, k, &out[0],
                    <const uint64_t*>&words[0], &scratch[n], npatch,
                )
            else:
                r = _encode(&ts[0], n, &words[0], 1, VENC_XOR, 0, &out[0])
    return r
