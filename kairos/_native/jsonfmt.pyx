"""``[[ts, value], ...]`` JSON text straight from arrays, numbers printed as KairosDB does.

Reference: ``kairos.query._format.values_json`` + ``java_double`` (Python), which a property
test holds this kernel to.  Doubles outside Java's plain range (|x| >= 1e7 or < 1e-3, and
-0.0) are rare; their text comes from the ``special`` callback.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.math cimport fabs, floor, isfinite
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy
from libc.stdint cimport int64_t, uint8_t

cdef struct Buf:
    char* p
    Py_ssize_t n
    Py_ssize_t cap


cdef int _grow(Buf* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = b.cap
    cdef char* q
    if b.n + extra <= cap:
        return 0
    while cap < b.n + extra:
        cap = cap * 2 + 64
    q = <char*>realloc(b.p, cap)
    if q == NULL:
        raise MemoryError()
    b.p = q
    b.cap = cap
    return 0


cdef int _put(Buf* b, const char* s, Py_ssize_t k) except -1:
    _grow(b, k)
    memcpy(b.p + b.n, s, k)
    b.n += k
    return 0


cdef inline int _itoa(char* out, long long v) noexcept nogil:
    """Decimal text of ``v`` into ``out`` (at least 21 bytes); returns its length."""
    cdef char rev[24]
    cdef int n = 0, k = 0
    cdef unsigned long long u
    if v < 0:
        out[k] = 45  # '-'
        k += 1
        u = <unsigned long long>(-(v + 1)) + 1
    else:
        u = <unsigned long long>v
    while True:
        rev[n] = <char>(48 + u % 10)
        n += 1
        u //= 10
        if u == 0:
            break
    while n:
        n -= 1
        out[k] = rev[n]
        k += 1
    return k


def points_json(const int64_t[::1] ts, const double[::1] f, const int64_t[::1] iv,
                const uint8_t[::1] is_long, object special, const unsigned char[::1] ftext):
    """The JSON array text of the points.

    Parameters
    ----------
    ts : int64 array, shape (n,)
    f : float64 array, shape (n,)
        Values of double points.
    iv : int64 array, shape (n,)
        Values of long points (used where ``is_long``).
    is_long : uint8 array, shape (n,)
    special : callable(float) -> bytes
        Text of a double outside the plain range (exponent forms, -0.0); raises for NaN/inf.
    ftext : bytes
        ``orjson.dumps(f)``: its shortest round-trip digits (Ryu) are Java's for plain-range
        values, and far cheaper than formatting each double here.
    """
    cdef Py_ssize_t j, n = ts.shape[0]
    cdef Buf b
    cdef char tmp[48]
    cdef int k
    cdef double x, ax
    cdef bytes sp
    cdef Py_ssize_t pos = 1, tok, m = ftext.shape[0]
    b.p = NULL
    b.n = 0
    b.cap = 0
    _grow(&b, n * 24 + 2)
    try:
        _put(&b, b"[", 1)
        for j in range(n):
            if j:
                _put(&b, b",", 1)
            tmp[0] = 91  # '['
            k = 1 + _itoa(tmp + 1, ts[j])
            tmp[k] = 44  # ','
            _put(&b, tmp, k + 1)
            if is_long[j]:
                k = _itoa(tmp, iv[j])
                tmp[k] = 93  # ']'
                _put(&b, tmp, k + 1)
                while pos < m and ftext[pos] != 44 and ftext[pos] != 93:
                    pos += 1
                pos += 1
                continue
            # The j-th token of ftext: [pos, tok).
            tok = pos
            while tok < m and ftext[tok] != 44 and ftext[tok] != 93:  # ',' ']'
                tok += 1
            x = f[j]
            ax = fabs(x)
            if isfinite(x) and x != 0.0 and ax >= 1e-3 and ax < 1e7:
                if floor(x) == x:
                    k = _itoa(tmp, <long long>x)
                    tmp[k] = 93
                    _put(&b, tmp, k + 1)
                else:
                    _put(&b, <const char*>&ftext[pos], tok - pos)
                    _put(&b, b"]", 1)
            elif x == 0.0 and isfinite(x) and not (1.0 / x < 0):
                _put(&b, b"0]", 2)
            else:
                sp = special(x)
                _put(&b, sp, len(sp))
                _put(&b, b"]", 1)
            pos = tok + 1
        _put(&b, b"]", 1)
        return PyBytes_FromStringAndSize(b.p, b.n)
    finally:
        free(b.p)
