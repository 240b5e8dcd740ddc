"""``[[ts, value], ...]`` JSON text straight from arrays, numbers printed as KairosDB does.

Reference: ``kairos.query._format.values_json`` + ``java_double`` (Python), which a property
test holds this kernel to.  Doubles outside Java's plain range (|x| >= 1e7 or < 1e-3, and
-0.0) are rare; their text comes from the ``special`` callback.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.math cimport fabs, floor, isfinite
from libc.string cimport memcpy
from libc.stdint cimport int64_t, uint8_t


cdef extern from "Python.h":
    int _PyBytes_Resize(PyObject** s, Py_ssize_t newsize) except -1

cdef enum:
    SPECIAL_MAX = 32  # Java's longest double text, "-2.2250738585072014E-308", is 24 bytes


cdef const char* _PAIRS = (
    b"0001020304050607080910111213141516171819"
    b"2021222324252627282930313233343536373839"
    b"4041424344454647484950515253545556575859"
    b"6061626364656667686970717273747576777879"
    b"8081828384858687888990919293949596979899"
)


cdef inline int _itoa(char* out, long long v) noexcept nogil:
    """Decimal text of ``v`` into ``out`` (at least 21 bytes); returns its length."""
    cdef char rev[24]
    cdef int n = 24, k = 0, d
    cdef unsigned long long u
    if v < 0:
        out[0] = 45  # '-'
        k = 1
        u = <unsigned long long>(-(v + 1)) + 1
    else:
        u = <unsigned long long>v
    while u >= 100:  # two digits at a time
        d = <int>(u % 100) * 2
        u //= 100
        n -= 2
        rev[n] = _PAIRS[d]
        rev[n + 1] = _PAIRS[d + 1]
    if u >= 10:
        d = <int>u * 2
        n -= 2
        rev[n] = _PAIRS[d]
        rev[n + 1] = _PAIRS[d + 1]
    else:
        n -= 1
        rev[n] = <char>(48 + u)
    memcpy(out + k, rev + n, 24 - n)
    return k + 24 - n


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
    cdef char* w
    cdef char* start
    cdef object out
    cdef PyObject* raw
    cdef double x, ax
    cdef bytes sp
    cdef Py_ssize_t pos = 1, tok, m = ftext.shape[0]
    cdef const unsigned char* ft = &ftext[0] if m else NULL
    # Room for every point: "[" ts "," value "]" "," with ts and integer values <= 20 bytes,
    # double tokens taken from ftext (whose total length is m) and special texts <= SPECIAL_MAX;
    # written straight into the bytes object, which is shrunk in place at the end.
    out = PyBytes_FromStringAndSize(NULL, n * (24 + SPECIAL_MAX) + m + 8)
    start = PyBytes_AS_STRING(out)
    w = start
    w[0] = 91  # '['
    w += 1
    for j in range(n):
        if j:
            w[0] = 44  # ','
            w += 1
        w[0] = 91
        w += 1
        w += _itoa(w, ts[j])
        w[0] = 44
        w += 1
        # The j-th token of ftext: [pos, tok).
        tok = pos
        while tok < m and ft[tok] != 44 and ft[tok] != 93:  # ',' ']'
            tok += 1
        if is_long[j]:
            w += _itoa(w, iv[j])
        else:
            x = f[j]
            ax = fabs(x)
            if isfinite(x) and x != 0.0 and ax >= 1e-3 and ax < 1e7:
                if floor(x) == x:
                    w += _itoa(w, <long long>x)
                else:
                    memcpy(w, ft + pos, tok - pos)
                    w += tok - pos
            elif x == 0.0 and isfinite(x) and not (1.0 / x < 0):
                w[0] = 48  # '0'
                w += 1
            else:
                sp = special(x)
                if len(sp) > SPECIAL_MAX:
                    raise ValueError(f"special text too long: {sp!r}")
                memcpy(w, <const char*>sp, len(sp))
                w += len(sp)
        w[0] = 93  # ']'
        w += 1
        pos = tok + 1
    w[0] = 93
    w += 1
    raw = <PyObject*>out
    Py_INCREF(out)
    out = None  # _PyBytes_Resize needs the only reference
    _PyBytes_Resize(&raw, w - start)  # on failure it frees the object and raises
    out = <object>raw
    Py_DECREF(out)
    return out
