"""Histogram kernels: bucketing, count remapping, percentiles and the count varint codec.

The facade is ``kairos.model.histogram``; the reference implementations are in
``kairos.model._histogram_reference`` and ``tests/property/test_histogram_kernels.py`` proves
that the two agree.  Every kernel fills caller-allocated arrays and returns a status; none
allocates, validates its preconditions beyond what it needs to stay in bounds, or raises.

Buckets follow the OpenTelemetry explicit-bucket convention: with ``n`` strictly increasing
boundaries ``b`` there are ``n + 1`` buckets, bucket 0 = (-inf, b[0]], bucket i = (b[i-1], b[i]],
bucket n = (b[n-1], +inf).
"""

from libc.math cimport NAN, isfinite, isnan
from libc.stdint cimport INT64_MAX, int64_t, uint8_t, uint64_t

from kairos._native._types cimport f64_t

# Status codes returned by ``decode_varints`` (negated).
cdef enum:
    VARINT_TRUNCATED = 1
    VARINT_OVERFLOW = 2
    VARINT_NONCANONICAL = 3


def bucket_samples(const f64_t[::1] boundaries, const f64_t[::1] samples,
                   int64_t[::1] counts, f64_t[::1] stats):
    """Add each sample to its bucket and fold it into running sum/min/max.

    Parameters
    ----------
    boundaries : float64 array, shape (n,)
        Strictly increasing bucket upper bounds (not checked).
    samples : float64 array, shape (m,)
        Values to count; NaN samples are skipped.
    counts : int64 array, shape (n + 1,)
        Incremented in place (the caller zeroes it, or passes the counts of earlier chunks).
    stats : float64 array, shape (3,)
        ``[sum, min, max]`` updated in place with the non-NaN samples, summed left to right.
        Start from ``[0.0, +inf, -inf]``.

    Returns
    -------
    int
        The number of NaN samples skipped.
    """
    cdef Py_ssize_t n = boundaries.shape[0]
    cdef Py_ssize_t m = samples.shape[0]
    cdef Py_ssize_t k, base, size, half
    cdef Py_ssize_t skipped = 0
    cdef f64_t x
    cdef f64_t s = stats[0]
    cdef f64_t mn = stats[1]
    cdef f64_t mx = stats[2]
    with nogil:
        for k in range(m):
            x = samples[k]
            if isnan(x):
                skipped += 1
                continue
            # The number of boundaries < x, by a branchless lower bound: the compiler turns
            # the conditional into a cmov, which beats a mispredicted branch on random data.
            base = 0
            size = n
            while size > 1:
                half = size >> 1
                base = base + half if boundaries[base + half] < x else base
                size -= half
            if size == 1 and boundaries[base] < x:
                base += 1
            counts[base] += 1
            s += x
            if x < mn:
                mn = x
            if x > mx:
                mx = x
    stats[0] = s
    stats[1] = mn
    stats[2] = mx
    return skipped


cdef inline Py_ssize_t _remap(const f64_t[::1] src, const int64_t[::1] src_counts,
                              Py_ssize_t b0, Py_ssize_t n, Py_ssize_t c0,
                              const f64_t[::1] dst, int64_t[::1] out) noexcept nogil:
    """Remap one histogram (boundaries src[b0:b0+n], counts src_counts[c0:c0+n+1])."""
    cdef Py_ssize_t m = dst.shape[0]
    cdef Py_ssize_t i, j = 0
    cdef int64_t c
    for i in range(n):
        while j < m and dst[j] < src[b0 + i]:
            j += 1
        if j == m or dst[j] != src[b0 + i]:
            return i
        c = src_counts[c0 + i]
        if c > INT64_MAX - out[j]:
            return i
        out[j] += c
    c = src_counts[c0 + n]
    if c > INT64_MAX - out[m]:
        return n
    out[m] += c
    return -1


def remap_counts(const f64_t[::1] src_boundaries, const int64_t[::1] src_counts,
                 const f64_t[::1] dst_boundaries, int64_t[::1] out):
    """Add a histogram's counts into the buckets of a finer boundary set.

    Each source bucket's whole count goes to the target bucket ending at that source bucket's
    upper bound, and the overflow bucket to the overflow bucket, so the cumulative count at
    every source boundary is preserved exactly.

    Parameters
    ----------
    src_boundaries : float64 array, shape (n,)
        Strictly increasing (not checked).
    src_counts : int64 array, shape (n + 1,)
        Non-negative (not checked).
    dst_boundaries : float64 array, shape (m,)
        Strictly increasing superset of ``src_boundaries``.
    out : int64 array, shape (m + 1,)
        Non-negative counts, incremented in place.

    Returns
    -------
    int
        -1 on success, else the index of the first source bucket that could not be added:
        its upper bound is missing from ``dst_boundaries`` or its target count would pass
        2**63 - 1.  ``out`` then holds the buckets before it.
    """
    cdef Py_ssize_t r
    with nogil:
        r = _remap(src_boundaries, src_counts, 0, src_boundaries.shape[0], 0,
                   dst_boundaries, out)
    return r


def remap_counts_batch(const f64_t[::1] boundaries, const int64_t[::1] offsets,
                       const int64_t[::1] counts, const f64_t[::1] dst_boundaries,
                       int64_t[::1] out):
    """``remap_counts`` for k histograms stored back to back, accumulating into one output.

    Parameters
    ----------
    boundaries : float64 array, shape (offsets[k],)
        Histogram h's boundaries are ``boundaries[offsets[h]:offsets[h + 1]]``.
    offsets : int64 array, shape (k + 1,)
        Non-decreasing, ``offsets[0] == 0``.
    counts : int64 array, shape (offsets[k] + k,)
        Histogram h's counts are ``counts[offsets[h] + h:offsets[h + 1] + h + 1]``.
    dst_boundaries : float64 array, shape (m,)
        Strictly increasing superset of every histogram's boundaries.
    out : int64 array, shape (m + 1,)
        Incremented in place.

    Returns
    -------
    int
        -1 on success, else the index of the first histogram that could not be added.
    """
    cdef Py_ssize_t k = offsets.shape[0] - 1
    cdef Py_ssize_t h
    cdef Py_ssize_t r = -1
    with nogil:
        for h in range(k):
            if _remap(boundaries, counts, offsets[h], offsets[h + 1] - offsets[h],
                      offsets[h] + h, dst_boundaries, out) >= 0:
                r = h
                break
    return r


cdef f64_t _percentile(const f64_t[::1] b, const int64_t[::1] c, Py_ssize_t b0, Py_ssize_t n,
                       Py_ssize_t c0, f64_t mn, f64_t mx, f64_t q) noexcept nogil:
    cdef Py_ssize_t i
    cdef Py_ssize_t bucket = -1
    cdef int64_t total = 0
    cdef int64_t cum = 0
    cdef int64_t before = 0
    cdef f64_t rank, frac, lo, hi, v
    for i in range(n + 1):
        total += c[c0 + i]
    if total <= 0:
        return NAN
    rank = q * <f64_t>total
    # The first non-empty bucket whose cumulative count reaches the rank.
    for i in range(n + 1):
        if c[c0 + i] <= 0:
            continue
        before = cum
        cum += c[c0 + i]
        bucket = i
        if <f64_t>cum >= rank:
            break
    # Unknown (NaN) or infinite extremes fall back to the nearest finite edge.
    if n == 0:
        lo = mn if isfinite(mn) else mx
        hi = mx if isfinite(mx) else mn
        if not (isfinite(lo) and isfinite(hi)):
            return NAN
    else:
        if bucket == 0:
            lo = mn if isfinite(mn) else b[b0]
        else:
            lo = b[b0 + bucket - 1]
        if bucket == n:
            hi = mx if isfinite(mx) else b[b0 + n - 1]
        else:
            hi = b[b0 + bucket]
    frac = (rank - <f64_t>before) / <f64_t>c[c0 + bucket]
    if frac < 0.0:
        frac = 0.0
    elif frac > 1.0:
        frac = 1.0
    v = lo + frac * (hi - lo)
    if not isfinite(v):
        # hi - lo overflowed.
        v = lo * (1.0 - frac) + hi * frac
    # Rounding (lo + (hi - lo) can differ from hi) must not leave the bucket, or
    # percentiles would stop being monotone in q.
    if v < lo:
        v = lo
    if v > hi:
        v = hi
    if v < mn:
        v = mn
    if v > mx:
        v = mx
    return v


def percentile(const f64_t[::1] boundaries, const int64_t[::1] counts, f64_t vmin, f64_t vmax,
               f64_t q):
    """The q-quantile of one histogram by linear interpolation inside its bucket.

    The rank is ``q * total``; the bucket is the first non-empty one whose cumulative count
    reaches the rank.  Bucket 0's lower edge is ``vmin`` and the overflow bucket's upper edge is
    ``vmax`` (the outermost boundary when those are NaN or infinite); the result is clamped into
    ``[vmin, vmax]`` for whichever of them is not NaN.

    Parameters
    ----------
    boundaries : float64 array, shape (n,)
        Strictly increasing, finite (not checked).
    counts : int64 array, shape (n + 1,)
        Non-negative with a sum below 2**63 (not checked).
    vmin, vmax : float
        The smallest and largest sample, NaN when unknown.
    q : float
        In [0, 1] (not checked).

    Returns
    -------
    float
        NaN for an empty histogram (or no boundaries and no finite extreme).
    """
    cdef f64_t r
    with nogil:
        r = _percentile(boundaries, counts, 0, boundaries.shape[0], 0, vmin, vmax, q)
    return r


def percentile_batch(const f64_t[::1] boundaries, const int64_t[::1] offsets,
                     const int64_t[::1] counts, const f64_t[::1] mins, const f64_t[::1] maxs,
                     f64_t q, f64_t[::1] out):
    """``percentile`` of k histograms stored back to back (layout of ``remap_counts_batch``).

    Parameters
    ----------
    boundaries, offsets, counts
        As for ``remap_counts_batch``.
    mins, maxs : float64 array, shape (k,)
        Each histogram's extremes, NaN when unknown.
    q : float
        In [0, 1] (not checked).
    out : float64 array, shape (k,)
        Receives each histogram's percentile.
    """
    cdef Py_ssize_t k = offsets.shape[0] - 1
    cdef Py_ssize_t h
    with nogil:
        for h in range(k):
            out[h] = _percentile(boundaries, counts, offsets[h], offsets[h + 1] - offsets[h],
                                 offsets[h] + h, mins[h], maxs[h], q)


def encode_varints(const int64_t[::1] values, uint8_t[::1] out):
    """Write non-negative values as unsigned LEB128 varints (7 bits a byte, low bits first).

    Parameters
    ----------
    values : int64 array, shape (k,)
        Non-negative (not checked).
    out : uint8 array, shape (>= 9 * k,)
        Receives the encoding.

    Returns
    -------
    int
        The number of bytes written.
    """
    cdef Py_ssize_t i, pos = 0
    cdef uint64_t v
    with nogil:
        for i in range(values.shape[0]):
            v = <uint64_t>values[i]
            while v >= 0x80:
                out[pos] = <uint8_t>((v & 0x7F) | 0x80)
                pos += 1
                v >>= 7
            out[pos] = <uint8_t>v
            pos += 1
    return pos


def decode_varints(const uint8_t[::1] buf, Py_ssize_t pos, int64_t[::1] out,
                   int64_t[::1] where):
    """Read ``len(out)`` canonical unsigned LEB128 varints from ``buf`` starting at ``pos``.

    Parameters
    ----------
    buf : uint8 array, shape (size,)
        Untrusted input.
    pos : int
        Offset of the first varint, ``0 <= pos <= size``.
    out : int64 array, shape (k,)
        Receives the values.
    where : int64 array, shape (1,)
        On failure, receives the index of the value that could not be read.

    Returns
    -------
    int
        The offset just past the last varint, or a negative status: -1 the buffer ends inside
        a value, -2 a value exceeds 2**63 - 1, -3 a value has a redundant trailing zero byte.
    """
    cdef Py_ssize_t size = buf.shape[0]
    cdef Py_ssize_t i
    cdef Py_ssize_t status = 0
    cdef int shift
    cdef uint64_t v, byte
    with nogil:
        for i in range(out.shape[0]):
            v = 0
            shift = 0
            while True:
                if pos >= size:
                    status = -VARINT_TRUNCATED
                    break
                byte = buf[pos]
                pos += 1
                if shift == 63 and byte > 0:
                    # Only a 0 may follow 63 bits; anything else passes 2**63 - 1.
                    status = -VARINT_OVERFLOW
                    break
                v |= (byte & 0x7F) << shift
                if byte < 0x80:
                    if byte == 0 and shift > 0:
                        status = -VARINT_NONCANONICAL
                    break
                shift += 7
            if status != 0:
                where[0] = i
                break
            out[i] = <int64_t>v
    if status != 0:
        return status
    return pos
