# distutils: extra_compile_args = -ffp-contract=off
"""Segment reductions for the query engine: KairosDB's range aggregators, SMA and bucketing.

Layout
------
Every segment kernel reads one sorted-by-segment layout::

    values  float64[n]   the points, segment after segment
    starts  int64[m]     ascending segment offsets; starts[0] == 0 when m > 0
    segment i = values[starts[i]:starts[i + 1]], the last one ending at n

Segments are non-empty (``m == 0`` exactly when ``n == 0``).  Outputs are caller-allocated,
float64[m] unless stated.  Each kernel checks the layout and the output lengths before touching
``values`` (one pass over ``starts``) and returns ``-1``, or without writing anything the index
of the first segment that is empty, out of range or has no output slot; the facade validates
first, so a status is a bug, never a user error.

The facade is ``kairos.query.kernels``; the references in ``kairos.query._kernels_reference``
perform the same floating-point operations in the same order, and
``tests/property/test_reduce_kernels.py`` proves the results bit-identical.

Arithmetic
----------
The order of operations mirrors KairosDB (Java, strict IEEE-754 doubles) so results are
bit-identical to it, NaN payloads aside: sums start from ``0.0`` and add left to right (so a
sum of ``-0.0`` is ``+0.0``); min/max fold ``Math.min``/``Math.max`` from
``+/-Double.MAX_VALUE``; the deviation is StdAggregator's running-mean-of-squares formula; the
regression is commons-math ``SimpleRegression``.  ``-ffp-contract=off`` stops the C compiler
from fusing ``a * b + c`` into an FMA (its default on targets that have one, e.g. aarch64),
which Java never does.
"""

from libc.float cimport DBL_MAX
from libc.math cimport NAN, copysign, fabs, floor, isfinite, sqrt
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t, uint64_t
from libc.string cimport memcpy

from kairos._native._types cimport f64_t, ts_t

# 10 * Double.MIN_VALUE, SimpleRegression's "no variation in x" threshold (exact: 10 * 2**-1074).
cdef f64_t _TINY_SXX = 10.0 * 5e-324
cdef int64_t _SIGN_MASK = INT64_MAX
cdef uint64_t _NEG_ZERO_BITS = 0x8000000000000000


cdef Py_ssize_t _bad_segment(const int64_t[::1] starts, Py_ssize_t n,
                             Py_ssize_t slots) noexcept nogil:
    """-1 when ``starts`` is a valid layout for ``n`` values and the outputs have ``slots >= m``
    entries, else the first segment that is empty, out of range or without an output slot."""
    cdef Py_ssize_t m = starts.shape[0]
    cdef Py_ssize_t i
    cdef int64_t hi
    if m == 0:
        return -1 if n == 0 else 0
    if starts[0] != 0:
        return 0
    for i in range(m):
        if i >= slots:
            return i
        hi = starts[i + 1] if i + 1 < m else n
        if hi <= starts[i] or hi > n:
            return i
    return -1


cdef inline Py_ssize_t _end(const int64_t[::1] starts, Py_ssize_t i, Py_ssize_t m,
                            Py_ssize_t n) noexcept nogil:
    return starts[i + 1] if i + 1 < m else n


cdef inline f64_t _fold_min(const f64_t[::1] values, Py_ssize_t lo,
                            Py_ssize_t hi) noexcept nogil:
    """``min = Math.min(min, x)`` from ``Double.MAX_VALUE``, without data-dependent branches.

    ``Math.min`` is NaN if either side is, and takes -0.0 below 0.0; both are order-independent,
    so they are flagged in the loop and applied at the end (``x < r ? x : r`` is one minsd).
    """
    cdef Py_ssize_t j
    cdef f64_t x
    cdef f64_t r = DBL_MAX
    cdef uint64_t b
    cdef bint nan = False
    cdef bint negzero = False
    for j in range(lo, hi):
        x = values[j]
        r = x if x < r else r
        nan |= x != x
        memcpy(&b, &x, 8)
        negzero |= b == _NEG_ZERO_BITS
    if nan:
        return NAN
    if negzero and r == 0.0:
        return copysign(0.0, -1.0)
    return r


cdef inline f64_t _fold_max(const f64_t[::1] values, Py_ssize_t lo,
                            Py_ssize_t hi) noexcept nogil:
    """``max = Math.max(max, x)`` from ``-Double.MAX_VALUE`` (0.0 above -0.0, NaN wins)."""
    cdef Py_ssize_t j
    cdef f64_t x
    cdef f64_t r = -DBL_MAX
    cdef uint64_t b
    cdef bint nan = False
    cdef bint poszero = False
    for j in range(lo, hi):
        x = values[j]
        r = x if x > r else r
        nan |= x != x
        memcpy(&b, &x, 8)
        poszero |= b == 0
    if nan:
        return NAN
    if poszero and r == 0.0:
        return 0.0
    return r


def segment_sum(const f64_t[::1] values, const int64_t[::1] starts, f64_t[::1] out):
    """Per-segment sum, ``0.0 + v0 + v1 + ...`` left to right (SumAggregator).

    Parameters
    ----------
    values : float64 array, shape (n,)
    starts : int64 array, shape (m,)
        Segment offsets (module docstring).
    out : float64 array, shape (m,)
        Receives the sums.

    Returns
    -------
    int
        -1 on success, else the index of the first invalid segment (nothing written).
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t m = starts.shape[0]
    cdef Py_ssize_t i, j, hi
    cdef Py_ssize_t bad
    cdef f64_t s
    with nogil:
        bad = _bad_segment(starts, n, out.shape[0])
        if bad < 0:
            for i in range(m):
                hi = _end(starts, i, m, n)
                s = 0.0
                for j in range(starts[i], hi):
                    s += values[j]
                out[i] = s
    return bad


def segment_mean(const f64_t[::1] values, const int64_t[::1] starts, f64_t[::1] out):
    """Per-segment mean, the ``segment_sum`` divided by the count (AvgAggregator).

    Parameters
    ----------
    values : float64 array, shape (n,)
    starts : int64 array, shape (m,)
    out : float64 array, shape (m,)
        Receives the means.

    Returns
    -------
    int
        -1 on success, else the index of the first invalid segment (nothing written).
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t m = starts.shape[0]
    cdef Py_ssize_t i, j, hi
    cdef Py_ssize_t bad
    cdef f64_t s
    with nogil:
        bad = _bad_segment(starts, n, out.shape[0])
        if bad < 0:
            for i in range(m):
                hi = _end(starts, i, m, n)
                s = 0.0
                for j in range(starts[i], hi):
                    s += values[j]
                out[i] = s / <f64_t>(hi - starts[i])
    return bad


def segment_min(const f64_t[::1] values, const int64_t[::1] starts, f64_t[::1] out):
    """Per-segment ``Math.min`` fold from ``Double.MAX_VALUE`` (MinAggregator).

    NaN propagates; -0.0 is below 0.0; a segment of only ``+inf`` gives ``1.7976931348623157e308``
    (KairosDB's start value), not ``inf``.

    Parameters
    ----------
    values : float64 array, shape (n,)
    starts : int64 array, shape (m,)
    out : float64 array, shape (m,)

    Returns
    -------
    int
        -1 on success, else the index of the first invalid segment (nothing written).
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t m = starts.shape[0]
    cdef Py_ssize_t i, hi
    cdef Py_ssize_t bad
    with nogil:
        bad = _bad_segment(starts, n, out.shape[0])
        if bad < 0:
            for i in range(m):
                hi = _end(starts, i, m, n)
                out[i] = _fold_min(values, starts[i], hi)
    return bad


def segment_max(const f64_t[::1] values, const int64_t[::1] starts, f64_t[::1] out):
    """Per-segment ``Math.max`` fold from ``-Double.MAX_VALUE`` (MaxAggregator).

    NaN propagates; 0.0 is above -0.0; a segment of only ``-inf`` gives
    ``-1.7976931348623157e308``.

    Parameters
    ----------
    values : float64 array, shape (n,)
    starts : int64 array, shape (m,)
    out : float64 array, shape (m,)

    Returns
    -------
    int
        -1 on success, else the index of the first invalid segment (nothing written).
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t m = starts.shape[0]
    cdef Py_ssize_t i, hi
    cdef Py_ssize_t bad
    with nogil:
        bad = _bad_segment(starts, n, out.shape[0])
        if bad < 0:
            for i in range(m):
                hi = _end(starts, i, m, n)
                out[i] = _fold_max(values, starts[i], hi)
    return bad


def segment_count(const int64_t[::1] starts, Py_ssize_t n, int64_t[::1] out):
    """Per-segment number of points (CountAggregator, a Java long).

    Parameters
    ----------
    starts : int64 array, shape (m,)
    n : int
        Total number of points.
    out : int64 array, shape (m,)

    Returns
    -------
    int
        -1 on success, else the index of the first invalid segment (nothing written).
    """
    cdef Py_ssize_t m = starts.shape[0]
    cdef Py_ssize_t i
    cdef Py_ssize_t bad
    with nogil:
        bad = _bad_segment(starts, n, out.shape[0])
        if bad < 0:
            for i in range(m):
                out[i] = _end(starts, i, m, n) - starts[i]
    return bad


def segment_dev(const f64_t[::1] values, const int64_t[::1] starts, f64_t[::1] out_dev,
                f64_t[::1] out_mean):
    """Per-segment sample standard deviation exactly as KairosDB's StdAggregator computes it.

    For each point, with ``c`` the running count::

        mean += (x - mean) / c
        msq  += (x * x - msq) / c
        dev   = sqrt((msq * c - c * mean * mean) / (c - 1))

    and a NaN ``dev`` (a single point, a negative rounded variance, any NaN or overflow) becomes
    ``0.0``.  This is a running mean of squares, not Welford's update: it matches KairosDB to the
    bit and, like it, loses precision when the mean is large against the spread.

    Parameters
    ----------
    values : float64 array, shape (n,)
    starts : int64 array, shape (m,)
    out_dev : float64 array, shape (m,)
        Receives the deviations.
    out_mean : float64 array, shape (m,)
        Receives the running mean ``mean`` (what ``return_type`` pos_sd/neg_sd add the
        deviation to; it can differ from ``segment_mean`` in the last bits).

    Returns
    -------
    int
        -1 on success, else the index of the first invalid segment (nothing written).
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t m = starts.shape[0]
    cdef Py_ssize_t i, j, hi
    cdef Py_ssize_t bad
    cdef f64_t x, c, mean, msq, dev
    with nogil:
        bad = _bad_segment(starts, n, min(out_dev.shape[0], out_mean.shape[0]))
        if bad < 0:
            for i in range(m):
                hi = _end(starts, i, m, n)
                c = 0.0
                mean = 0.0
                msq = 0.0
                for j in range(starts[i], hi):
                    x = values[j]
                    c += 1.0
                    mean += (x - mean) / c
                    msq += (x * x - msq) / c
                # Java recomputes dev after every point; only the last one is kept.
                dev = sqrt((msq * c - c * mean * mean) / (c - 1.0))
                if dev != dev:
                    dev = 0.0
                out_dev[i] = dev
                out_mean[i] = mean
    return bad


cdef inline int64_t _key(f64_t x) noexcept nogil:
    """Signed integer with the order of ``Double.compare``: -0.0 < 0.0, every NaN last."""
    cdef int64_t k
    if x != x:
        return INT64_MAX
    memcpy(&k, &x, 8)
    return k ^ _SIGN_MASK if k < 0 else k


cdef inline f64_t _unkey(int64_t k) noexcept nogil:
    cdef f64_t x
    if k < 0:
        k = k ^ _SIGN_MASK
    memcpy(&x, &k, 8)
    return x


cdef void _heapsort(int64_t* a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t start, end, root, child
    cdef int64_t t
    start = n // 2
    end = n
    while end > 1:
        if start > 0:
            start -= 1
        else:
            end -= 1
            t = a[end]
            a[end] = a[0]
            a[0] = t
        root = start
        while True:
            child = 2 * root + 1
            if child >= end:
                break
            if child + 1 < end and a[child + 1] > a[child]:
                child += 1
            if a[root] >= a[child]:
                break
            t = a[root]
            a[root] = a[child]
            a[child] = t
            root = child


cdef void _sort(int64_t* a, Py_ssize_t n) noexcept nogil:
    """Introsort: median-of-three quicksort, heapsort past 2*log2(n) levels, insertion sort."""
    cdef Py_ssize_t depth = 0
    cdef Py_ssize_t k = n
    cdef Py_ssize_t i, j, mid
    cdef int64_t pivot, t
    while k > 1:
        depth += 2
        k >>= 1
    while n > 16:
        if depth == 0:
            _heapsort(a, n)
            return
        depth -= 1
        mid = (n - 1) >> 1
        if a[mid] < a[0]:
            t = a[mid]
            a[mid] = a[0]
            a[0] = t
        if a[n - 1] < a[0]:
            t = a[n - 1]
            a[n - 1] = a[0]
            a[0] = t
        if a[n - 1] < a[mid]:
            t = a[n - 1]
            a[n - 1] = a[mid]
            a[mid] = t
        pivot = a[mid]
        # Hoare partition: a[:j + 1] <= pivot <= a[j + 1:].
        i = -1
        j = n
        while True:
            i += 1
            while a[i] < pivot:
                i += 1
            j -= 1
            while a[j] > pivot:
                j -= 1
            if i >= j:
                break
            t = a[i]
            a[i] = a[j]
            a[j] = t
        # Recurse into the smaller half, loop on the larger: O(log n) stack.
        if j + 1 < n - j - 1:
            _sort(a, j + 1)
            a = a + j + 1
            n = n - j - 1
        else:
            _sort(a + j + 1, n - j - 1)
            n = j + 1
    for i in range(1, n):
        t = a[i]
        j = i - 1
        while j >= 0 and a[j] > t:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = t


def segment_percentile(const f64_t[::1] values, const int64_t[::1] starts, f64_t p,
                       int64_t[::1] scratch, f64_t[::1] out):
    """Per-segment exact percentile with KairosDB's interpolation (PercentileAggregator).

    Each segment is sorted in ``Arrays.sort(double[])`` order (-0.0 before 0.0, NaN last); with
    ``v`` the ``c`` sorted values and ``pos = p * (c + 1)``: ``pos < 1`` gives ``v[0]``,
    ``pos >= c`` gives ``v[c - 1]``, otherwise
    ``v[int(pos) - 1] + (pos - floor(pos)) * (v[int(pos)] - v[int(pos) - 1])``.  Exact for any
    segment size, where KairosDB samples a 1028-value reservoir above 1028 points.

    Parameters
    ----------
    values : float64 array, shape (n,)
    starts : int64 array, shape (m,)
    p : float
        In [0, 1] (not checked).
    scratch : int64 array, shape (>= the longest segment,)
        Work space; overwritten.
    out : float64 array, shape (m,)

    Returns
    -------
    int
        -1 on success, else the index of the first invalid segment, or of the first segment
        longer than ``scratch`` (``out`` then holds the segments before it).
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t m = starts.shape[0]
    cdef Py_ssize_t i, j, lo, hi, c, ip
    cdef Py_ssize_t bad
    cdef f64_t pos, lower, upper
    cdef int64_t* a
    with nogil:
        bad = _bad_segment(starts, n, out.shape[0])
        if bad < 0:
            for i in range(m):
                lo = starts[i]
                hi = _end(starts, i, m, n)
                c = hi - lo
                if c > scratch.shape[0]:
                    bad = i
                    break
                a = &scratch[0]
                for j in range(c):
                    a[j] = _key(values[lo + j])
                _sort(a, c)
                pos = p * <f64_t>(c + 1)
                if pos < 1.0:
                    out[i] = _unkey(a[0])
                elif pos >= <f64_t>c:
                    out[i] = _unkey(a[c - 1])
                else:
                    ip = <Py_ssize_t>pos
                    lower = _unkey(a[ip - 1])
                    upper = _unkey(a[ip])
                    out[i] = lower + (pos - floor(pos)) * (upper - lower)
    return bad


def segment_least_squares(const ts_t[::1] ts, const f64_t[::1] values, const int64_t[::1] starts,
                          f64_t[::1] out_first, f64_t[::1] out_last):
    """Per-segment OLS line (with intercept) at the segment's first and last timestamps.

    The fit is commons-math 3 ``SimpleRegression(true)`` on ``(double(ts), value)``: the
    Chan-Golub-LeVeque updates of ``addData``, ``slope = sumXY / sumXX`` and
    ``predict(x) = (sumY - slope * sumX) / n + slope * x``.  The slope, and so both
    predictions, is NaN for a 1-point segment and when ``|sumXX| < 10 * Double.MIN_VALUE``
    (every timestamp equal).

    Parameters
    ----------
    ts : int64 array, shape (n,)
        Timestamps in ms (any order).
    values : float64 array, shape (n,)
    starts : int64 array, shape (m,)
    out_first, out_last : float64 array, shape (m,)
        Receive the line's value at ``ts[starts[i]]`` and at the segment's last timestamp.

    Returns
    -------
    int
        -1 on success, else the index of the first invalid segment (nothing written).
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t m = starts.shape[0]
    cdef Py_ssize_t i, j, lo, hi
    cdef Py_ssize_t bad
    cdef f64_t c, x, y, dx, dy, fact1, fact2, sx, sy, sxx, sxy, xbar, ybar, slope, icpt
    cdef f64_t x0, x1
    if ts.shape[0] != n:
        return 0
    with nogil:
        bad = _bad_segment(starts, n, min(out_first.shape[0], out_last.shape[0]))
        if bad < 0:
            for i in range(m):
                lo = starts[i]
                hi = _end(starts, i, m, n)
                x0 = <f64_t>ts[lo]
                x1 = <f64_t>ts[hi - 1]
                xbar = x0
                ybar = values[lo]
                # SimpleRegression adds the first point to 0.0 too (-0.0 becomes 0.0).
                sx = 0.0 + x0
                sy = 0.0 + ybar
                sxx = 0.0
                sxy = 0.0
                c = 1.0
                for j in range(lo + 1, hi):
                    x = <f64_t>ts[j]
                    y = values[j]
                    fact1 = 1.0 + c
                    fact2 = c / (1.0 + c)
                    dx = x - xbar
                    dy = y - ybar
                    sxx += dx * dx * fact2
                    sxy += dx * dy * fact2
                    xbar += dx / fact1
                    ybar += dy / fact1
                    sx += x
                    sy += y
                    c += 1.0
                if c < 2.0 or fabs(sxx) < _TINY_SXX:
                    slope = NAN
                else:
                    slope = sxy / sxx
                icpt = (sy - slope * sx) / c
                out_first[i] = icpt + slope * x0
                out_last[i] = icpt + slope * x1
    return bad


def bucket_fixed(const ts_t[::1] ts, int64_t origin, uint64_t width, int64_t[::1] out):
    """Fixed-width bucket numbers ``k = (ts - origin) / width``, truncated toward zero.

    Java's long division (Joda ``getDifferenceAsLong`` then ``/ value``), so the bucket before
    the origin is merged into bucket 0: with width 10, ts - origin = -9..9 all give 0.

    Parameters
    ----------
    ts : int64 array, shape (n,)
    origin : int
        The bucket origin in ms.
    width : int
        Bucket width in ms, 1 <= width < 2**64 (not checked; widths past 2**63 are exact).
    out : int64 array, shape (n,)
        Receives the bucket numbers.

    Returns
    -------
    int
        -1 on success, else the index of the first timestamp for which ``ts - origin``
        overflows an int64 (Joda's ``safeSubtract`` throws there); ``out`` then holds the
        buckets before it.  0, with nothing written, when ``width == 0`` or ``out`` is short.
    """
    cdef Py_ssize_t n = ts.shape[0]
    cdef Py_ssize_t i
    cdef Py_ssize_t bad = -1
    cdef int64_t t, d
    cdef uint64_t q
    if width == 0 or out.shape[0] < n:
        return 0
    with nogil:
        for i in range(n):
            t = ts[i]
            d = <int64_t>(<uint64_t>t - <uint64_t>origin)
            if ((t ^ origin) < 0) and ((t ^ d) < 0):
                bad = i
                break
            if d >= 0:
                out[i] = <int64_t>(<uint64_t>d // width)
            else:
                q = (<uint64_t>0 - <uint64_t>d) // width
                out[i] = <int64_t>(<uint64_t>0 - q)
    return bad


cdef extern from *:
    ctypedef long long int128 "__int128"


cdef inline bint _bucket_of(int64_t t, int64_t origin, uint64_t width, int64_t* k) noexcept nogil:
    """``k = (t - origin) / width`` truncated (as :func:`bucket_fixed`); False on overflow."""
    cdef int64_t d = <int64_t>(<uint64_t>t - <uint64_t>origin)
    cdef uint64_t q
    if ((t ^ origin) < 0) and ((t ^ d) < 0):
        return False
    if d >= 0:
        k[0] = <int64_t>(<uint64_t>d // width)
    else:
        q = (<uint64_t>0 - <uint64_t>d) // width
        k[0] = <int64_t>(<uint64_t>0 - q)
    return True


def bucket_runs(const ts_t[::1] ts, int64_t origin, uint64_t width,
                int64_t[::1] starts, int64_t[::1] keys):
    """:func:`segment_starts` of :func:`bucket_fixed`'s output, in one pass without it.

    A bucket number is computed (one division) only when a timestamp leaves the current
    bucket's span of timestamps, so sorted input costs a comparison per point.

    Parameters
    ----------
    ts : int64 array, shape (n,)
        Any order (sorted is the fast case).
    origin, width : as :func:`bucket_fixed`.
    starts : int64 array, shape (cap,)
        Receives the ``r`` offsets where the bucket number changes (the first being 0).
    keys : int64 array, shape (cap,)
        Receives each run's bucket number.

    Returns
    -------
    int
        ``r`` >= 0; -1 when there are more than ``cap`` runs (or ``width == 0``);
        ``-2 - i`` when ``ts[i] - origin`` overflows an int64.
    """
    cdef Py_ssize_t n = ts.shape[0], cap = min(starts.shape[0], keys.shape[0])
    cdef Py_ssize_t i, r = 0, bad = -1
    cdef int64_t t, k = 0, lo64 = 1, hi64 = 0
    cdef int128 lo, hi, base, w = <int128>width
    if width == 0:
        return -1
    with nogil:
        for i in range(n):
            t = ts[i]
            if t < lo64 or t > hi64:
                if not _bucket_of(t, origin, width, &k):
                    bad = i
                    break
                if r == 0 or keys[r - 1] != k:
                    if r == cap:
                        r = -1
                        break
                    starts[r] = i
                    keys[r] = k
                    r += 1
                # The span of d = t - origin in bucket k (truncation merges -w < d < w into
                # 0), cut to int64 so that a d that would overflow is never inside it.
                base = <int128>k * w
                if k > 0:
                    lo, hi = base, base + w - 1
                elif k == 0:
                    lo, hi = base - w + 1, base + w - 1
                else:
                    lo, hi = base - w + 1, base
                if lo < <int128>INT64_MIN:
                    lo = <int128>INT64_MIN
                if hi > <int128>INT64_MAX:
                    hi = <int128>INT64_MAX
                lo += origin
                hi += origin
                # t is an int64: so are the bounds worth comparing with.
                lo64 = <int64_t>lo if lo > <int128>INT64_MIN else INT64_MIN
                hi64 = <int64_t>hi if hi < <int128>INT64_MAX else INT64_MAX
    return -2 - bad if bad >= 0 else r


def segment_starts(const int64_t[::1] keys, int64_t[::1] out):
    """Offsets where ``keys`` changes value (run boundaries), the first being 0.

    Parameters
    ----------
    keys : int64 array, shape (n,)
        Any order; equal neighbours form one run.
    out : int64 array, shape (n + 1,)
        Receives the ``r`` run starts in ``out[:r]`` and ``n`` in ``out[r]``.

    Returns
    -------
    int
        The number of runs ``r`` (0 for empty ``keys``), or -1 when ``out`` is too short.
    """
    cdef Py_ssize_t n = keys.shape[0]
    cdef Py_ssize_t i
    cdef Py_ssize_t c = 0
    if out.shape[0] < n + 1:
        return -1
    with nogil:
        if n > 0:
            out[0] = 0
            c = 1
            for i in range(1, n):
                # Branch-free: always store, advance only at a change.
                out[c] = i
                c += keys[i] != keys[i - 1]
        out[c] = n
    return c


def sma(const f64_t[::1] values, Py_ssize_t size, f64_t[::1] out):
    """Simple moving average of the last ``size`` values, bit-identical to SmaAggregator.

    ``out[k] = (0.0 + values[k] + ... + values[k + size - 1]) / size``: every window is summed
    afresh, left to right, as KairosDB does, which costs O(n * size).

    Parameters
    ----------
    values : float64 array, shape (n,)
    size : int
        Window length, >= 1.
    out : float64 array, shape (max(n - size + 1, 0),)
        Receives the average of the window ending at ``values[k + size - 1]``.

    Returns
    -------
    int
        -1 on success, 0 when ``size < 1`` or ``out`` is too short (nothing written).
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t k, j
    cdef f64_t s
    cdef f64_t fsize = <f64_t>size
    if size < 1 or out.shape[0] < n - size + 1:
        return 0
    with nogil:
        for k in range(n - size + 1):
            s = 0.0
            for j in range(k, k + size):
                s += values[j]
            out[k] = s / fsize
    return -1


def sma_running(const f64_t[::1] values, Py_ssize_t size, f64_t[::1] out):
    """Simple moving average in O(n) with a running sum, resynchronised to KairosDB's sum.

    The running sum keeps the finite values of the window (non-finite ones are counted).  The
    window is summed afresh, left to right (bit-identical to ``sma``), when it holds a
    non-finite value, when the running sum is not finite, and every ``size`` outputs, where the
    running sum is reset to it; so drift never spans more than two windows (error below about
    ``2 * size * eps * max|x|`` over those windows).  Amortised O(n) unless the data has many
    non-finite values.

    Parameters
    ----------
    values : float64 array, shape (n,)
    size : int
        Window length, >= 1.
    out : float64 array, shape (max(n - size + 1, 0),)

    Returns
    -------
    int
        -1 on success, 0 when ``size < 1`` or ``out`` is too short (nothing written).
    """
    cdef Py_ssize_t n = values.shape[0]
    cdef Py_ssize_t j, k, i
    cdef Py_ssize_t nonfinite = 0
    cdef f64_t s = 0.0
    cdef f64_t t, x
    cdef f64_t fsize = <f64_t>size
    if size < 1 or out.shape[0] < n - size + 1:
        return 0
    with nogil:
        for j in range(n):
            x = values[j]
            if isfinite(x):
                s += x
            else:
                nonfinite += 1
            if j >= size:
                x = values[j - size]
                if isfinite(x):
                    s -= x
                else:
                    nonfinite -= 1
            if j >= size - 1:
                k = j - size + 1
                if nonfinite != 0 or k % size == 0 or not isfinite(s):
                    t = 0.0
                    for i in range(k, j + 1):
                        t += values[i]
                    if nonfinite == 0:
                        s = t
                    out[k] = t / fsize
                else:
                    out[k] = s / fsize
    return -1
