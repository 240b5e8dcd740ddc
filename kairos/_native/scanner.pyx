# cython: freethreading_compatible = False
"""Scan the raw bytes of a ``POST /api/v1/datapoints`` body straight into typed arrays.

The facade is ``kairos.ingest.fast.try_fast_parse``; the reference semantics is the general
path ``kairos.ingest.parser.parse_datapoints``.  The scanner accepts only the common shape of
a body (see ``kairos/ingest/fast.py`` for the exact list) and returns a non-zero status -- a
*bail* -- for anything else, so it never has to produce an error message: the general path
reparses the body and reports.

Outputs, all caller-allocated (``n_*`` = ``counts[0..2]`` on return)::

    ts, val  int64[cap_pt]        per point, in the order the general path publishes them
    code     int32[cap_pt]        2 * metric object index + kind (LONG=0, DOUBLE=1); turned
                                  into series rows by ``assign_series``
    meta     int64[cap_obj, 11]   per metric object, columns M_*:
               name_start, name_end        byte span of the name (inside the quotes)
               flags                       1: the name has escapes, 2: a tag string has escapes
               tag_first, tag_end          rows of ``tags``
               ttl
               single_kind                 kind of the timestamp/value point, or -1
               dp_kinds                    bit k set: some ``datapoints`` entry is of kind k
               kinds                       bit k set: some point is of kind k
               tags_start, tags_end        byte span of the whole tags object
    tags     int64[cap_tag, 4]    key_start, key_end, value_start, value_end (inside quotes)
    counts   int64[6]             n_obj, n_pt, n_tag, byte offset where scanning stopped,
                                  the OR of all flags, the number of metric objects that do
                                  not have exactly one series (kinds not 1 or 2)

Strings are validated (UTF-8, escapes) but not decoded; the facade decodes the few per metric
object.
"""

import sys

from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport strtod
from libc.string cimport memcmp, memcpy, memmove

from kairos._native._types cimport sid_t, ts_t, word_t

ctypedef unsigned char uchar

# Status codes; STATUS_NAMES below must list them in this order.
cdef enum:
    OK = 0
    EMPTY = 1             # no content
    SYNTAX = 2            # malformed JSON, truncation, trailing garbage
    NOT_OBJECT = 3        # top level or array element is not a metric object
    UNKNOWN_KEY = 4       # a key other than the seven known ones (or one with escapes)
    DUPLICATE_KEY = 5
    BAD_NAME = 6          # missing, not a string, or empty
    BAD_TAGS = 7          # missing, not an object, empty, non-string or empty name/value
    BAD_STRING = 8        # invalid UTF-8, control character or invalid escape
    BAD_DATAPOINT = 9     # an entry that is not a 2-element array
    BAD_TIMESTAMP = 10    # not an integer literal
    BAD_VALUE = 11        # not a number literal (null, string, bool, array, object)
    EXP_NO_DOT = 12       # an exponent without a dot (KairosDB's BigDecimal long)
    INT_OVERFLOW = 13     # an integer literal outside int64
    DOUBLE_OVERFLOW = 14  # a double literal that rounds to infinity
    LONG_RANGE = 15       # "type":"long" with a double outside +-9.2e18
    LONG_LITERAL = 16     # a double literal of 64 characters or more
    BAD_TTL = 17          # not an integer literal within int32
    BAD_TYPE = 18         # not "long" or "double"
    SINGLE_POINT = 19     # value without timestamp, timestamp without value, time+timestamp
    CAPACITY = 20         # an output array is too small

STATUS_NAMES = (
    "ok", "empty", "syntax", "not_object", "unknown_key", "duplicate_key", "bad_name",
    "bad_tags", "bad_string", "bad_datapoint", "bad_timestamp", "bad_value", "exp_no_dot",
    "int_overflow", "double_overflow", "long_range", "long_literal", "bad_ttl", "bad_type",
    "single_point", "capacity",
)

cdef enum:
    INFER = -1
    LONG = 0
    DOUBLE = 1

# Metric object keys, as bits of the seen-mask.
cdef enum:
    K_NAME = 1
    K_TAGS = 2
    K_DATAPOINTS = 4
    K_TIMESTAMP = 8
    K_TIME = 16
    K_VALUE = 32
    K_TTL = 64
    K_TYPE = 128

# Columns of ``meta``.
cdef enum:
    M_NAME_START = 0
    M_NAME_END = 1
    M_FLAGS = 2
    M_TAG_FIRST = 3
    M_TAG_END = 4
    M_TTL = 5
    M_SINGLE_KIND = 6
    M_DP_KINDS = 7
    M_KINDS = 8
    M_TAGS_START = 9
    M_TAGS_END = 10
    NMETA = 11

N_META = NMETA

cdef enum:
    F_NAME_ESCAPED = 1
    F_TAGS_ESCAPED = 2

# Literals of at most this many characters go through strtod; longer ones bail.
cdef enum:
    MAX_LITERAL = 63

cdef double _POW10[23]
cdef int _i
# The eight-digits-at-once integer parser assumes little-endian loads.
cdef bint _SWAR = sys.byteorder == "little"
_POW10[0] = 1.0
for _i in range(1, 23):
    _POW10[_i] = _POW10[_i - 1] * 10.0  # exact: every 10**k, k <= 22, is a double
cdef uint64_t _POW10I[9]
_POW10I[0] = 1
for _i in range(1, 9):
    _POW10I[_i] = _POW10I[_i - 1] * 10


cdef struct Scan:
    const uchar* base
    const uchar* p
    const uchar* e
    ts_t* ts
    word_t* val
    sid_t* code
    int64_t* meta
    int64_t* tags
    Py_ssize_t cap_pt
    Py_ssize_t cap_obj
    Py_ssize_t cap_tag
    Py_ssize_t n_pt
    Py_ssize_t n_obj
    Py_ssize_t n_tag
    int64_t all_flags
    Py_ssize_t n_multi


cdef inline word_t _bits(double d) noexcept nogil:
    cdef word_t w
    memcpy(&w, &d, 8)
    return w


cdef inline double _double(word_t w) noexcept nogil:
    cdef double d
    memcpy(&d, &w, 8)
    return d


cdef inline const uchar* _ws(const uchar* p, const uchar* e) noexcept nogil:
    while p < e and (p[0] == c' ' or p[0] == c'\n' or p[0] == c'\r' or p[0] == c'\t'):
        p += 1
    return p


cdef inline bint _digit(uchar c) noexcept nogil:
    return c'0' <= c <= c'9'


cdef inline bint _hex(uchar c) noexcept nogil:
    return _digit(c) or c'a' <= c <= c'f' or c'A' <= c <= c'F'


cdef inline bint _cont(const uchar* p, const uchar* e) noexcept nogil:
    return p < e and 0x80 <= p[0] <= 0xBF


cdef int _string(const uchar** pp, const uchar* e, bint* escaped) noexcept nogil:
    """Skip the JSON string whose opening quote is at ``*pp``; validate escapes and UTF-8."""
    cdef const uchar* p = pp[0] + 1
    cdef uchar c
    while True:
        if p >= e:
            return SYNTAX
        c = p[0]
        if c == c'"':
            break
        if c == c'\\':
            escaped[0] = True
            p += 1
            if p >= e:
                return SYNTAX
            c = p[0]
            if c == c'u':
                if e - p < 5 or not (_hex(p[1]) and _hex(p[2]) and _hex(p[3]) and _hex(p[4])):
                    return BAD_STRING
                p += 5
            elif (c == c'"' or c == c'\\' or c == c'/' or c == c'b' or c == c'f' or c == c'n'
                  or c == c'r' or c == c't'):
                p += 1
            else:
                return BAD_STRING
        elif c < 0x20:
            return BAD_STRING
        elif c < 0x80:
            p += 1
        # RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
        elif 0xC2 <= c <= 0xDF:
            if not _cont(p + 1, e):
                return BAD_STRING
            p += 2
        elif 0xE0 <= c <= 0xEF:
            if e - p < 3 or not (_cont(p + 1, e) and _cont(p + 2, e)):
                return BAD_STRING
            if (c == 0xE0 and p[1] < 0xA0) or (c == 0xED and p[1] > 0x9F):
                return BAD_STRING
            p += 3
        elif 0xF0 <= c <= 0xF4:
            if e - p < 4 or not (_cont(p + 1, e) and _cont(p + 2, e) and _cont(p + 3, e)):
                return BAD_STRING
            if (c == 0xF0 and p[1] < 0x90) or (c == 0xF4 and p[1] > 0x8F):
                return BAD_STRING
            p += 4
        else:
            return BAD_STRING
    pp[0] = p + 1
    return OK


cdef extern from *:
    """
    #define KAIROS_BYTES_HI 0xF0F0F0F0F0F0F0F0ULL
    #define KAIROS_BYTES_30 0x3030303030303030ULL
    #define KAIROS_BYTES_06 0x0606060606060606ULL
    """
    const uint64_t BYTES_HI "KAIROS_BYTES_HI"
    const uint64_t BYTES_30 "KAIROS_BYTES_30"
    const uint64_t BYTES_06 "KAIROS_BYTES_06"
    int __builtin_ctzll(unsigned long long) nogil


cdef inline uint64_t _parse_eight(uint64_t w) noexcept nogil:
    # Eight ASCII digits, first digit in the lowest byte -> their value (simdjson).
    w -= BYTES_30
    w = w * 10 + (w >> 8)
    return (((w & 0x000000FF000000FFULL) * 0x000F424000000064ULL)
            + (((w >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >> 32


cdef inline const uchar* _digits(const uchar* p, const uchar* e, uint64_t* mant,
                                 int* nd) noexcept nogil:
    """Skip the run of digits at ``p``, appending them to ``*mant`` while ``*nd`` <= 19."""
    cdef uint64_t w, bad, x = mant[0]
    cdef int k, n = nd[0]
    if _SWAR:
        while e - p >= 8:
            memcpy(&w, p, 8)
            # Non-zero bytes mark non-digits.  A carry out of a byte >= 0xFA can only disturb
            # the bytes after it, and only the first non-digit matters.
            bad = ((w & BYTES_HI) ^ BYTES_30) | (((w + BYTES_06) & BYTES_HI) ^ BYTES_30)
            k = 8 if bad == 0 else __builtin_ctzll(bad) >> 3
            if n + k > 19:
                break
            if k == 8:
                x = x * 100000000 + _parse_eight(w)
            elif k:
                # Keep the k digits, left-padded with '0's.
                x = x * _POW10I[k] + _parse_eight((w << (64 - 8 * k)) | (BYTES_30 >> (8 * k)))
            n += k
            p += k
            if k < 8:
                mant[0] = x
                nd[0] = n
                return p
    while p < e and _digit(p[0]):
        if n < 19:
            x = x * 10 + (p[0] - c'0')
        n += 1
        p += 1
    mant[0] = x
    nd[0] = n
    return p


cdef int _strtod(const uchar* start, Py_ssize_t n, double* dv) noexcept nogil:
    # glibc's strtod rounds correctly, like Python's float(); only the rare literal comes here.
    cdef char buf[MAX_LITERAL + 1]
    cdef char* endp
    if n > MAX_LITERAL:
        return LONG_LITERAL
    memcpy(buf, start, n)
    buf[n] = 0
    dv[0] = strtod(buf, &endp)
    if endp != buf + n:  # a locale with another decimal point
        return LONG_LITERAL
    return OK


cdef inline int _number(const uchar** pp, const uchar* e, int64_t* iv, double* dv) noexcept nogil:
    """Read a JSON number literal at ``*pp``.

    Returns LONG (no dot, no exponent; ``*iv`` set), DOUBLE (a dot; ``*dv`` set, correctly
    rounded) or minus a status.  Handles the common literals itself and hands everything else
    (exponents, 19 digits or more, syntax errors) to :func:`_number_any`.
    """
    cdef const uchar* p = pp[0]
    cdef const uchar* q
    cdef bint neg = False
    cdef uint64_t mant = 0
    cdef int nd = 0, frac
    cdef double d
    if p < e and p[0] == c'-':
        neg = True
        p += 1
    if p < e and c'1' <= p[0] <= c'9':
        p = _digits(p, e, &mant, &nd)
    elif p < e and p[0] == c'0':
        p += 1
    else:
        return _number_any(pp, e, iv, dv)
    if p < e and p[0] == c'.':
        q = p + 1
        frac = nd
        p = _digits(q, e, &mant, &nd)
        frac = nd - frac
        if p == q or nd > 19 or mant > (<uint64_t>1 << 53) or frac > 22 \
                or (p < e and (p[0] == c'e' or p[0] == c'E')):
            return _number_any(pp, e, iv, dv)
        # Clinger's fast path: both operands exact, so one IEEE division rounds correctly.
        d = <double>mant / _POW10[frac]
        dv[0] = -d if neg else d
        pp[0] = p
        return DOUBLE
    if nd >= 19 or (p < e and (p[0] == c'e' or p[0] == c'E')):
        return _number_any(pp, e, iv, dv)
    iv[0] = -<int64_t>mant if neg else <int64_t>mant
    pp[0] = p
    return LONG


cdef int _number_any(const uchar** pp, const uchar* e, int64_t* iv, double* dv) noexcept nogil:
    """:func:`_number` for any literal."""
    cdef const uchar* p = pp[0]
    cdef const uchar* start = p
    cdef bint neg = False, eneg = False
    cdef uint64_t mant = 0
    cdef int nd = 0      # digits, not counting an integer part of 0
    cdef int frac = 0    # digits after the dot
    cdef int64_t ex = 0
    cdef int e10, st
    cdef double d
    if p < e and p[0] == c'-':
        neg = True
        p += 1
    if p >= e:
        return -SYNTAX
    if p[0] == c'0':
        p += 1
    elif c'1' <= p[0] <= c'9':
        p = _digits(p, e, &mant, &nd)
    else:
        return -SYNTAX if neg else -BAD_VALUE
    if p >= e or (p[0] != c'.' and p[0] != c'e' and p[0] != c'E'):
        pp[0] = p
        if nd > 19 or (nd == 19 and mant > <uint64_t>0x7FFFFFFFFFFFFFFFULL + neg):
            return -INT_OVERFLOW
        iv[0] = <int64_t>(0 - mant) if neg else <int64_t>mant
        return LONG
    if p[0] != c'.':
        return -EXP_NO_DOT
    p += 1
    if p >= e or not _digit(p[0]):
        return -SYNTAX
    frac = nd
    p = _digits(p, e, &mant, &nd)
    frac = nd - frac
    if p < e and (p[0] == c'e' or p[0] == c'E'):
        p += 1
        if p < e and (p[0] == c'+' or p[0] == c'-'):
            eneg = p[0] == c'-'
            p += 1
        if p >= e or not _digit(p[0]):
            return -SYNTAX
        while p < e and _digit(p[0]):
            if ex < 100000:
                ex = ex * 10 + (p[0] - c'0')
            p += 1
        if eneg:
            ex = -ex
    pp[0] = p
    if mant == 0 and nd <= 19:
        d = 0.0
    elif nd <= 19 and mant <= (<uint64_t>1 << 53) and -22 <= ex - frac <= 22:
        # Clinger's fast path: both operands exact, so one IEEE operation rounds correctly.
        e10 = <int>(ex - frac)
        d = <double>mant
        if e10 < 0:
            d = d / _POW10[-e10]
        else:
            d = d * _POW10[e10]
    else:
        st = _strtod(start, p - start, &d)
        if st:
            return -st
        neg = False  # strtod read the sign
    if neg:
        d = -d
    if not isfinite(d):
        return -DOUBLE_OVERFLOW
    dv[0] = d
    return DOUBLE


cdef int _tags(Scan* s, bint* escaped) noexcept nogil:
    """The tags object at ``s.p`` ('{') -> rows of ``s.tags``."""
    cdef const uchar* p = _ws(s.p + 1, s.e)
    cdef const uchar* e = s.e
    cdef const uchar* ks
    cdef const uchar* ke
    cdef const uchar* vs
    cdef int64_t* row
    cdef int st
    if p < e and p[0] == c'}':
        return BAD_TAGS
    while True:
        if p >= e or p[0] != c'"':
            return SYNTAX
        ks = p
        st = _string(&p, e, escaped)
        if st:
            return st
        ke = p - 1
        if ke == ks + 1:
            return BAD_TAGS
        p = _ws(p, e)
        if p >= e or p[0] != c':':
            return SYNTAX
        p = _ws(p + 1, e)
        if p >= e or p[0] != c'"':
            return BAD_TAGS
        vs = p
        st = _string(&p, e, escaped)
        if st:
            return st
        if p - vs == 2:
            return BAD_TAGS
        if s.n_tag >= s.cap_tag:
            return CAPACITY
        row = s.tags + 4 * s.n_tag
        row[0] = ks + 1 - s.base
        row[1] = ke - s.base
        row[2] = vs + 1 - s.base
        row[3] = p - 1 - s.base
        s.n_tag += 1
        p = _ws(p, e)
        if p < e and p[0] == c',':
            p = _ws(p + 1, e)
        elif p < e and p[0] == c'}':
            s.p = p + 1
            return OK
        else:
            return SYNTAX


cdef int _datapoints(Scan* s, sid_t code0, int* kinds) noexcept nogil:
    """The datapoints array at ``s.p`` ('[') -> points of ``s``; ``kinds`` gets their kind bits.
    """
    cdef const uchar* p = _ws(s.p + 1, s.e)
    cdef const uchar* e = s.e
    cdef ts_t* ts = s.ts
    cdef word_t* val = s.val
    cdef sid_t* code = s.code
    cdef Py_ssize_t n = s.n_pt, cap = s.cap_pt
    cdef int64_t t, iv
    cdef double dv
    cdef int r, st = OK, seen = 0
    if p < e and p[0] == c']':
        s.p = p + 1
        return OK
    while True:
        if p >= e or p[0] != c'[':
            st = BAD_DATAPOINT
            break
        p = _ws(p + 1, e)
        r = _number(&p, e, &t, &dv)
        if r != LONG:
            st = BAD_TIMESTAMP if r == DOUBLE or r == -BAD_VALUE else -r
            break
        p = _ws(p, e)
        if p >= e or p[0] != c',':
            st = BAD_DATAPOINT
            break
        p = _ws(p + 1, e)
        r = _number(&p, e, &iv, &dv)
        if r < 0:
            st = -r
            break
        p = _ws(p, e)
        if p >= e or p[0] != c']':
            st = BAD_DATAPOINT
            break
        p = _ws(p + 1, e)
        if n >= cap:
            st = CAPACITY
            break
        ts[n] = t
        val[n] = iv if r == LONG else _bits(dv)
        code[n] = code0 + r
        seen |= 1 << r
        n += 1
        if p < e and p[0] == c',':
            p = _ws(p + 1, e)
        elif p < e and p[0] == c']':
            p += 1
            break
        else:
            st = SYNTAX
            break
    s.p = p
    s.n_pt = n
    kinds[0] |= seen
    return st


cdef int _key(const uchar* k, Py_ssize_t n) noexcept nogil:
    if n == 4:
        if memcmp(k, b"name", 4) == 0:
            return K_NAME
        if memcmp(k, b"tags", 4) == 0:
            return K_TAGS
        if memcmp(k, b"time", 4) == 0:
            return K_TIME
        if memcmp(k, b"type", 4) == 0:
            return K_TYPE
    elif n == 10 and memcmp(k, b"datapoints", 10) == 0:
        return K_DATAPOINTS
    elif n == 9 and memcmp(k, b"timestamp", 9) == 0:
        return K_TIMESTAMP
    elif n == 5 and memcmp(k, b"value", 5) == 0:
        return K_VALUE
    elif n == 3 and memcmp(k, b"ttl", 3) == 0:
        return K_TTL
    return 0


cdef inline int _resolve(int mtype, int r, int64_t* word) noexcept nogil:
    """Apply the metric's ``type`` to a value read as kind ``r``; returns the kind or -status."""
    cdef double d
    if mtype == LONG and r == DOUBLE:
        d = _double(word[0])
        if not (-9.2e18 < d < 9.2e18):
            return -LONG_RANGE
        word[0] = <int64_t>d
        return LONG
    if mtype == DOUBLE and r == LONG:
        word[0] = _bits(<double>word[0])
        return DOUBLE
    return r


cdef int _metric(Scan* s) noexcept nogil:
    """One metric object at ``s.p`` ('{')."""
    cdef const uchar* e = s.e
    cdef const uchar* p = _ws(s.p + 1, e)
    cdef const uchar* ks
    cdef const uchar* name_s = NULL
    cdef const uchar* name_e = NULL
    cdef const uchar* tags_s = NULL
    cdef const uchar* tags_e = NULL
    cdef Py_ssize_t o = s.n_obj
    cdef Py_ssize_t pt_start = s.n_pt
    cdef Py_ssize_t tag_first = s.n_tag
    cdef Py_ssize_t i, cnt
    cdef int seen = 0, key, st, r
    cdef int mtype = INFER, kinds = 0, single_kind = -1
    cdef int64_t ttl = 0, ts = 0, t, word = 0
    cdef double dv
    cdef bint name_esc = False, tags_esc = False, esc
    cdef int64_t* m
    cdef sid_t code0 = <sid_t>(2 * o)
    if o >= s.cap_obj:
        return CAPACITY
    if p < e and p[0] == c'}':
        return BAD_NAME
    while True:
        if p >= e or p[0] != c'"':
            return SYNTAX
        ks = p
        esc = False
        st = _string(&p, e, &esc)
        if st:
            return st
        key = 0 if esc else _key(ks + 1, p - ks - 2)
        if key == 0:
            return UNKNOWN_KEY
        if seen & key:
            return DUPLICATE_KEY
        seen |= key
        p = _ws(p, e)
        if p >= e or p[0] != c':':
            return SYNTAX
        p = _ws(p + 1, e)
        if p >= e:
            return SYNTAX
        if key == K_NAME:
            if p[0] != c'"':
                return BAD_NAME
            name_s = p + 1
            st = _string(&p, e, &name_esc)
            if st:
                return st
            name_e = p - 1
            if name_e == name_s:
                return BAD_NAME
        elif key == K_TAGS:
            if p[0] != c'{':
                return BAD_TAGS
            tags_s = p
            s.p = p
            st = _tags(s, &tags_esc)
            if st:
                return st
            p = tags_e = s.p
        elif key == K_DATAPOINTS:
            if p[0] != c'[':
                return BAD_DATAPOINT
            s.p = p
            st = _datapoints(s, code0, &kinds)
            if st:
                return st
            p = s.p
        elif key == K_TYPE:
            if p[0] != c'"':
                return BAD_TYPE
            ks = p
            esc = False
            st = _string(&p, e, &esc)
            if st:
                return st
            if p - ks == 6 and memcmp(ks + 1, b"long", 4) == 0:
                mtype = LONG
            elif p - ks == 8 and memcmp(ks + 1, b"double", 6) == 0:
                mtype = DOUBLE
            else:
                return BAD_TYPE
        elif key == K_VALUE:
            r = _number(&p, e, &word, &dv)
            if r < 0:
                return -r
            if r == DOUBLE:
                word = _bits(dv)
            single_kind = r
        else:  # timestamp, time, ttl: integer literals
            r = _number(&p, e, &t, &dv)
            if r != LONG:
                if r == -INT_OVERFLOW or r == -SYNTAX:
                    return -r
                return BAD_TTL if key == K_TTL else BAD_TIMESTAMP
            if key == K_TTL:
                if not (-2147483648 <= t <= 2147483647):
                    return BAD_TTL
                ttl = t
            else:
                ts = t
        p = _ws(p, e)
        if p < e and p[0] == c',':
            p = _ws(p + 1, e)
        elif p < e and p[0] == c'}':
            p += 1
            break
        else:
            return SYNTAX
    if not seen & K_NAME:
        return BAD_NAME
    if not seen & K_TAGS:
        return BAD_TAGS
    if (seen & K_TIME and seen & K_TIMESTAMP) \
            or (not (seen & (K_TIME | K_TIMESTAMP))) != (not (seen & K_VALUE)):
        return SINGLE_POINT
    if mtype != INFER and kinds:
        for i in range(pt_start, s.n_pt):
            r = _resolve(mtype, s.code[i] - code0, &s.val[i])
            if r < 0:
                return -r
            s.code[i] = code0 + r
        kinds = 1 << mtype
    if seen & K_VALUE:
        single_kind = _resolve(mtype, single_kind, &word)
        if single_kind < 0:
            return -single_kind
        if s.n_pt >= s.cap_pt:
            return CAPACITY
        # The single point is published before the datapoints, wherever its keys were.
        cnt = s.n_pt - pt_start
        if cnt:
            memmove(&s.ts[pt_start + 1], &s.ts[pt_start], cnt * sizeof(ts_t))
            memmove(&s.val[pt_start + 1], &s.val[pt_start], cnt * sizeof(word_t))
            memmove(&s.code[pt_start + 1], &s.code[pt_start], cnt * sizeof(sid_t))
        s.ts[pt_start] = ts
        s.val[pt_start] = word
        s.code[pt_start] = code0 + single_kind
        s.n_pt += 1
    m = s.meta + NMETA * o
    m[M_NAME_START] = name_s - s.base
    m[M_NAME_END] = name_e - s.base
    m[M_FLAGS] = (F_NAME_ESCAPED if name_esc else 0) | (F_TAGS_ESCAPED if tags_esc else 0)
    m[M_TAG_FIRST] = tag_first
    m[M_TAG_END] = s.n_tag
    m[M_TTL] = ttl
    m[M_SINGLE_KIND] = single_kind
    m[M_DP_KINDS] = kinds
    m[M_KINDS] = kinds | (1 << single_kind if single_kind >= 0 else 0)
    s.all_flags |= m[M_FLAGS]
    s.n_multi += m[M_KINDS] != 1 and m[M_KINDS] != 2
    m[M_TAGS_START] = tags_s - s.base
    m[M_TAGS_END] = tags_e - s.base
    s.n_obj = o + 1
    s.p = p
    return OK


cdef int _body(Scan* s) noexcept nogil:
    cdef const uchar* e = s.e
    cdef const uchar* p = _ws(s.p, e)
    cdef int st
    if p >= e:
        return EMPTY
    if p[0] == c'{':
        s.p = p
        st = _metric(s)
        if st:
            return st
        p = s.p
    elif p[0] == c'[':
        p = _ws(p + 1, e)
        if p < e and p[0] == c']':
            p += 1
        else:
            while True:
                if p >= e or p[0] != c'{':
                    return NOT_OBJECT
                s.p = p
                st = _metric(s)
                if st:
                    return st
                p = _ws(s.p, e)
                if p < e and p[0] == c',':
                    p = _ws(p + 1, e)
                elif p < e and p[0] == c']':
                    p += 1
                    break
                else:
                    return SYNTAX
    else:
        return NOT_OBJECT
    s.p = _ws(p, e)
    return SYNTAX if s.p != e else OK


def scan(const uchar[::1] body, ts_t[::1] ts, word_t[::1] val, sid_t[::1] code,
         int64_t[:, ::1] meta, int64_t[:, ::1] tags, int64_t[::1] counts):
    """Scan ``body`` into the caller-allocated arrays described in the module docstring.

    Parameters
    ----------
    body : bytes-like, uint8, shape (n,)
    ts, val : int64, shape (cap_pt,)
    code : int32, shape (cap_pt,)
    meta : int64, shape (cap_obj, N_META)
    tags : int64, shape (cap_tag, 4)
    counts : int64, shape (6,)
        Receives n_obj, n_pt, n_tag, the byte offset where scanning stopped, the OR of all
        flags and the number of metric objects without exactly one series.

    Returns
    -------
    int
        0, or the bail status (an index into ``STATUS_NAMES``).
    """
    cdef Scan s
    cdef int st
    if val.shape[0] != ts.shape[0] or code.shape[0] != ts.shape[0]:
        raise ValueError("ts, val and code must have the same length")
    if meta.shape[1] != NMETA or tags.shape[1] != 4 or counts.shape[0] != 6:
        raise ValueError("meta must have N_META columns, tags 4 and counts 6 elements")
    if body.shape[0] == 0:
        counts[:] = 0
        return EMPTY
    s.base = &body[0]
    s.p = s.base
    s.e = s.base + body.shape[0]
    s.ts = &ts[0] if ts.shape[0] else NULL
    s.val = &val[0] if val.shape[0] else NULL
    s.code = &code[0] if code.shape[0] else NULL
    s.meta = &meta[0, 0] if meta.shape[0] else NULL
    s.tags = &tags[0, 0] if tags.shape[0] else NULL
    s.cap_pt = ts.shape[0]
    s.cap_obj = meta.shape[0]
    s.cap_tag = tags.shape[0]
    s.n_pt = s.n_obj = s.n_tag = s.n_multi = 0
    s.all_flags = 0
    with nogil:
        st = _body(&s)
    counts[0] = s.n_obj
    counts[1] = s.n_pt
    counts[2] = s.n_tag
    counts[3] = s.p - s.base
    counts[4] = s.all_flags
    counts[5] = s.n_multi
    return st


def assign_series(const sid_t[::1] code, const sid_t[::1] lut, sid_t[::1] out):
    """``out[i] = lut[code[i]]``: series rows from the codes (2 * metric object + kind).

    Parameters
    ----------
    code : int32, shape (n,)
        Codes as written by :func:`scan`; every one must index ``lut``.
    lut : int32, shape (2 * n_obj,)
    out : int32, shape (n,)
    """
    cdef Py_ssize_t i, n = code.shape[0], m = lut.shape[0]
    cdef sid_t c
    if out.shape[0] != n:
        raise ValueError("out must have the length of code")
    with nogil:
        for i in range(n):
            c = code[i]
            if <size_t>c >= <size_t>m:
                with gil:
                    raise IndexError(f"code {c} at {i} is outside the table")
            out[i] = lut[c]
