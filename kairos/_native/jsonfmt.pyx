"""``[[ts, value], ...]`` JSON text straight from arrays, numbers printed as KairosDB does.

Reference: ``kairos.query._format.values_json`` + ``java_double`` (Python), which a property
test holds this kernel to.  Only NaN and infinities go back to Python, through the
``special`` callback (which raises).

Shortest round-trip digits (Schubfach, R. Giulietti, "The Schubfach way to render doubles")
------------------------------------------------------------------------------------------
A finite double ``v = c * 2**q`` owns the rounding interval ``R`` of the reals that read back
as ``v``: half a gap either side (a quarter below when ``c = 2**52`` starts a binade), closed
when ``c`` is even (round-half-even reading), open when odd.  Its shortest decimal is the
member of ``R`` with the fewest significant digits, the closest to ``v`` among those, the even
one on an exact tie -- the digits of Python's ``repr``.

Scale by ``10**-k`` with ``k = floor(log10(width of R))``: the scaled width lies in [1, 10), so
``R`` holds at least one integer and at most one multiple of ten.  Every decimal shorter than
the scaled integers is a multiple of ten, so the answer is that multiple of ten if ``R`` holds
one, else whichever of ``s = floor(v * 10**-k)`` and ``s + 1`` is in ``R`` (the closer one if
both are).  ``4 * v * 10**-k`` and the two ends of ``R`` are computed from a 126-bit
``g = ceil(10**-k * 2**r)`` as ``g * (4c << h) / 2**128``, its fraction cut at 2**-64 and
then rounded to odd; comparing those against multiples of 4 gives the exact answers (the
paper proves this for its variant, with ``floor(...) + 1`` and a 63-bit fraction; this one is
held to ``repr`` by the tests on every exponent, every power of two, exact ties and tens of
millions of random doubles).  The table of ``g`` is built from Python integers at import.
For ``2**-10 <= v < 2**52`` (``-62 <= q < 0``, the plain range included) ``10**-k`` is an
integer below 2**64 and the three products are exact, from one 64 x 64-bit multiplication each.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.math cimport fabs, isfinite
from libc.string cimport memcpy
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t, uintptr_t


cdef extern from "Python.h":
    int _PyBytes_Resize(PyObject** s, Py_ssize_t newsize) except -1

cdef extern from *:
    """
    #include <sys/mman.h>
    static void kairos_advise_huge_pages(void* addr, size_t length) {
    #ifdef MADV_HUGEPAGE  /* Linux only; elsewhere the buffer just gets the usual pages */
        madvise(addr, length, MADV_HUGEPAGE);
    #endif
    }
    """
    void kairos_advise_huge_pages(void* addr, size_t length) nogil

cdef extern from *:
    ctypedef unsigned long long u128 "unsigned __int128"
    int __builtin_clzll(unsigned long long) nogil

cdef enum:
    VALUE_MAX = 24  # Java's longest double text: "-2.2250738585072014E-308"
    POINT_MAX = 48  # "[" + ts (<= 20 bytes) + "," + value + "],"
    SLACK = 16  # the 16-byte copy of a timestamp's leading digits may pass the last point
    HUGE = 2 * 1024 * 1024
    K_MIN = -324  # floor(log10(2**-1074)); 10**-k is tabled for k in [K_MIN, K_MAX]
    K_MAX = 292  # floor(log10(2**971))
    LOG10_2 = 1262611  # round(log10(2) * 2**22)
    LOG10_4_3 = 524035  # round(log10(4/3) * 2**22)

# g = _G_HI * 2**64 + _G_LO = ceil(10**-k * 2**(125 - e)) in [2**125, 2**126), with
# e = _E2[k - K_MIN] = floor(log2(10**-k)).  Exact for 10**-k = 1, 10, ..., 10**54, so that
# a value exactly halfway between two candidates is seen as a tie.
cdef uint64_t _G_HI[K_MAX - K_MIN + 1]
cdef uint64_t _G_LO[K_MAX - K_MIN + 1]
cdef int _E2[K_MAX - K_MIN + 1]
cdef uint64_t _POW10[20]


def _fill_tables():
    cdef int i
    p10 = 1
    for i in range(20):
        _POW10[i] = p10
        p10 *= 10
    for i in range(K_MAX - K_MIN + 1):
        j = -(i + K_MIN)  # the table holds 10**j
        if j >= 0:
            p = 10**j
            e = p.bit_length() - 1
            g = p << (125 - e) if e <= 125 else -(-p >> (e - 125))
        else:
            p = 10**-j
            e = -p.bit_length()  # p is no power of two: ceil(log2(p)) == its bit length
            g = -(-(1 << (125 - e)) // p)
        assert 1 << 125 <= g < 1 << 126
        _G_HI[i] = g >> 64
        _G_LO[i] = g & 0xFFFFFFFFFFFFFFFF
        _E2[i] = e


_fill_tables()


cdef const char* _PAIRS = (
    b"0001020304050607080910111213141516171819"
    b"2021222324252627282930313233343536373839"
    b"4041424344454647484950515253545556575859"
    b"6061626364656667686970717273747576777879"
    b"8081828384858687888990919293949596979899"
)


cdef inline void _digits8(char* p, uint32_t v) noexcept nogil:
    """Exactly 8 digits of ``v < 10**8`` into ``p[0:8]``."""
    cdef uint32_t hi = v // 10000, lo = v % 10000
    memcpy(p, _PAIRS + (hi // 100) * 2, 2)
    memcpy(p + 2, _PAIRS + (hi % 100) * 2, 2)
    memcpy(p + 4, _PAIRS + (lo // 100) * 2, 2)
    memcpy(p + 6, _PAIRS + (lo % 100) * 2, 2)


cdef inline void _utoa_at(char* end, uint64_t u) noexcept nogil:
    """Decimal text of ``u`` written so that it ends at ``end`` (exclusive)."""
    cdef uint64_t hi
    cdef uint32_t v
    while u >= 100000000:  # 8 digits at a time, then 32-bit arithmetic
        hi = u // 100000000
        end -= 8
        _digits8(end, <uint32_t>(u - hi * 100000000))
        u = hi
    v = <uint32_t>u
    while v >= 100:
        end -= 2
        memcpy(end, _PAIRS + (v % 100) * 2, 2)
        v //= 100
    if v >= 10:
        memcpy(end - 2, _PAIRS + v * 2, 2)
    else:
        (end - 1)[0] = <char>(48 + v)


cdef inline int _ndigits(uint64_t u) noexcept nogil:
    """How many decimal digits ``u`` has (1 for 0)."""
    cdef int t = ((64 - __builtin_clzll(u | 1)) * 1233) >> 12  # ~ bit length * log10(2)
    return t + ((u | 1) >= _POW10[t])


cdef inline int _itoa(char* out, int64_t v) noexcept nogil:
    """Decimal text of ``v`` into ``out`` (at least 20 bytes); returns its length."""
    cdef int n, k = 0
    cdef uint64_t u = <uint64_t>v
    if v < 0:
        out[0] = 45  # '-'
        k = 1
        u = 0 - u
    n = k + _ndigits(u)
    _utoa_at(out + n, u)
    return n


cdef inline void _huge_pages(char* p, Py_ssize_t size) noexcept nogil:
    """Ask for transparent huge pages under a large output buffer: the kernel then zeroes it
    in 2 MiB pages instead of faulting in 4 KiB ones (23 ms of system time -> 5 ms for
    1.67 M points here)."""
    cdef uintptr_t a = (<uintptr_t>p + HUGE - 1) & ~(<uintptr_t>HUGE - 1)
    cdef uintptr_t b = (<uintptr_t>p + size) & ~(<uintptr_t>HUGE - 1)
    if b > a:
        kairos_advise_huge_pages(<void*>a, b - a)


cdef inline uint64_t _rop(uint64_t ghi, uint64_t glo, uint64_t cp) noexcept nogil:
    """``g * cp / 2**128`` rounded to odd (the lowest bit says "inexact").

    Fraction bits below 2**-64 are ignored: they only hold the error of ``g`` (under
    ``cp / 2**128 < 2**-67``), which must not make an exact integer look inexact.
    """
    cdef u128 mid = <u128>ghi * cp + ((<u128>glo * cp) >> 64)
    return <uint64_t>(mid >> 64) | (<uint64_t>mid != 0)


cdef inline uint64_t _shift_odd(u128 x, int sh) noexcept nogil:
    """``x / 2**sh`` rounded to odd (exact: the lowest bit says "inexact")."""
    return <uint64_t>(x >> sh) | ((x & (((<u128>1) << sh) - 1)) != 0)


cdef inline uint64_t _shortest(double ax, int* exp10) noexcept nogil:
    """Shortest round-trip decimal of a finite ``ax > 0``: returns ``d``, sets ``exp10``;
    ``ax`` reads back from ``d * 10**exp10`` (``d`` may end in zeros)."""
    cdef uint64_t bits, m, c, cb, cbl, cbr, vb, vbl, vbr, s, t, sp10, tp10, ghi, glo, p10
    cdef int be, q, k, i, h, out, sh
    cdef bint upin, wpin
    cdef int64_t cmp
    memcpy(&bits, &ax, 8)
    be = <int>(bits >> 52) & 0x7FF
    m = bits & ((<uint64_t>1 << 52) - 1)
    if be:
        c = m | (<uint64_t>1 << 52)
        q = be - 1075
    else:
        c = m
        q = -1074
    out = <int>(c & 1)
    cb = c << 2
    cbr = cb + 2
    if m != 0 or be <= 1:
        cbl = cb - 2
        k = (q * LOG10_2) >> 22
    else:  # first of a binade: the gap below is half the gap above
        cbl = cb - 1
        k = (q * LOG10_2 - LOG10_4_3) >> 22
    if -62 <= q < 0:
        # 10**-k = 10**(1..19) fits in 64 bits: scale exactly, with one multiplication
        # (this covers 2**-10 <= v < 2**52, the plain range included).
        p10 = _POW10[-k]
        sh = -q
        vb = _shift_odd(<u128>cb * p10, sh)
        vbl = _shift_odd(<u128>cbl * p10, sh)
        vbr = _shift_odd(<u128>cbr * p10, sh)
    else:
        i = k - K_MIN
        h = q + _E2[i] + 3
        ghi = _G_HI[i]
        glo = _G_LO[i]
        vb = _rop(ghi, glo, cb << h)
        vbl = _rop(ghi, glo, cbl << h)
        vbr = _rop(ghi, glo, cbr << h)
    s = vb >> 2
    exp10[0] = k
    sp10 = (s // 10) * 10
    tp10 = sp10 + 10
    upin = vbl + out <= sp10 << 2
    wpin = (tp10 << 2) + out <= vbr
    if upin != wpin:  # the one multiple of ten in R
        exp10[0] = k + 1
        return sp10 // 10 + <uint64_t>wpin
    t = s + 1
    upin = vbl + out <= s << 2
    wpin = (t << 2) + out <= vbr
    if upin != wpin:
        return s if upin else t
    cmp = <int64_t>(vb - ((s + t) << 1))
    return s if cmp < 0 or (cmp == 0 and (s & 1) == 0) else t


cdef inline int _double_text(char* w, double x) noexcept nogil:
    """Java's text of a finite double into ``w``; returns its length (<= VALUE_MAX).

    The digits are written straight to ``w``, no further than the text's end (the integer part
    of a plain value over the first ones).
    """
    cdef double ax = fabs(x)
    cdef char* dg
    cdef int n, e, p, k = 0
    cdef uint64_t d
    cdef bint plain = ax >= 1e-3 and ax < 1e7
    if plain and x == <double><int64_t>x:
        return _itoa(w, <int64_t>x)
    if ax == 0.0:
        if 1.0 / x < 0:
            memcpy(w, b"-0", 2)
            return 2
        w[0] = 48
        return 1
    if x < 0:
        w[0] = 45
        k = 1
    d = _shortest(ax, &e)
    n = _ndigits(d)
    p = n + e  # the decimal point sits after digit p
    if plain and p <= 0:  # "0.00ddd"; -p <= 2
        memcpy(w + k, b"0.000000", 8)
        dg = w + k + 2 - p
    else:
        dg = w + k + 1  # one byte on, for the '.'
    _utoa_at(dg + n, d)
    while (dg + n - 1)[0] == 48:  # drop trailing zeros
        n -= 1
    if plain:
        if p <= 0:
            return k + 2 - p + n
        # The integer part is x's (no decimal that reads back as x crosses an integer, which
        # would be a double itself); not integral, so n > p.
        _utoa_at(w + k + p, <uint64_t>ax)
        w[k + p] = 46  # '.'
        return k + 1 + n
    w[k] = dg[0]
    w[k + 1] = 46
    if n > 1:
        k += n + 1
    else:
        w[k + 2] = 48  # "1.0E7"
        k += 3
    w[k] = 69  # 'E'
    return k + 1 + _itoa(w + k + 1, p - 1)


def shortest_decimals(const double[::1] x, int64_t[::1] digits, int32_t[::1] exps):
    """Shortest round-trip decimals ``digits * 10**exps`` of ``|x|`` (``x`` finite, nonzero).

    Parameters
    ----------
    x : float64 array, shape (n,)
    digits : int64 array, shape (n,)
        Output; no trailing zeros.
    exps : int32 array, shape (n,)
        Output.
    """
    cdef Py_ssize_t j
    cdef int e
    cdef uint64_t d
    with nogil:
        for j in range(x.shape[0]):
            d = _shortest(fabs(x[j]), &e)
            while d % 10 == 0:
                d //= 10
                e += 1
            digits[j] = <int64_t>d
            exps[j] = e


def log_scales(int q, bint first_of_binade):
    """``(k, h)`` the kernel uses for ``c * 2**q``: ``k = floor(log10(width of R))`` and
    the shift ``h`` of ``4c`` (test hook)."""
    cdef int k
    if not -1074 <= q <= 971:
        raise ValueError(f"no double has q = {q}")
    if first_of_binade:
        k = (q * LOG10_2 - LOG10_4_3) >> 22
    else:
        k = (q * LOG10_2) >> 22
    return k, q + _E2[k - K_MIN] + 3


def points_json(const int64_t[::1] ts, const double[::1] f, const int64_t[::1] iv,
                const uint8_t[::1] is_long, object special):
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
        Called for NaN and infinities; raises (KairosDB fails the query).
    """
    cdef Py_ssize_t j, n = ts.shape[0]
    cdef char* w
    cdef char* start
    cdef object out
    cdef PyObject* raw
    cdef double x
    cdef bytes sp
    cdef int64_t t, hi, hi_prev = -1
    cdef char hi_text[24]
    cdef int hi_len = 0
    # Written straight into the bytes object, which is shrunk in place at the end.
    out = PyBytes_FromStringAndSize(NULL, n * POINT_MAX + SLACK)
    start = PyBytes_AS_STRING(out)
    _huge_pages(start, n * POINT_MAX + SLACK)
    w = start
    w[0] = 91  # '['
    w += 1
    for j in range(n):
        w[0] = 91
        w += 1
        t = ts[j]
        if t >= 100000000:
            # Timestamps in a result share their leading digits: those are kept as text.
            hi = t // 100000000
            if hi != hi_prev:
                hi_prev = hi
                hi_len = _itoa(hi_text, hi)
            memcpy(w, hi_text, 16)  # hi has at most 11 digits
            _digits8(w + hi_len, <uint32_t>(t - hi * 100000000))
            w += hi_len + 8
        else:
            w += _itoa(w, t)
        w[0] = 44  # ','
        w += 1
        if is_long[j]:
            w += _itoa(w, iv[j])
        else:
            x = f[j]
            if isfinite(x):
                w += _double_text(w, x)
            else:
                sp = special(x)
                if len(sp) > VALUE_MAX:
                    raise ValueError(f"special text too long: {sp!r}")
                memcpy(w, <const char*>sp, len(sp))
                w += len(sp)
        w[0] = 93  # ']'
        w[1] = 44
        w += 2
    if n:
        w -= 1  # no comma after the last point
    w[0] = 93
    w += 1
    raw = <PyObject*>out
    Py_INCREF(out)
    out = None  # _PyBytes_Resize needs the only reference
    _PyBytes_Resize(&raw, w - start)  # on failure it frees the object and raises
    out = <object>raw
    Py_DECREF(out)
    return out
