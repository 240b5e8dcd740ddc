"""K-way merge of time-sorted series into one stream (KairosDB's tournament merge, spec §3.4).

Every input series has ascending timestamps (unique within the series).  The merged order is
by timestamp, then by double value -- ``NaN`` after every number, ``-0.0`` equal to ``0.0``
(numpy's sort order) -- then by the series' position in the input list.  That is exactly
``np.lexsort((f, ts))`` over the concatenation (a stable sort), which is the reference
(``kairos.query._kernels_reference.merge_sorted``) that ``tests/property/test_merge_kernel.py``
holds this kernel to.

A loser tree over the ``k`` series costs ``ceil(log2 k)`` comparisons per output point, with
no sort of the concatenation.  When every series has the same timestamps (aligned collection:
each timestamp is a run of ``k`` ties ordered by value) a stable LSD radix sort of the values'
order-preserving keys, then a counting pass by timestamp, gives the same order in a few
sequential passes.
"""

cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp, memcpy
from libc.stdlib cimport calloc, free, malloc

import numpy as np

cnp.import_array()


cdef struct Src:
    const int64_t* ts
    const double* f
    Py_ssize_t pos
    Py_ssize_t n
    Py_ssize_t base


cdef inline uint64_t _fkey(double x) noexcept nogil:
    """Order-preserving unsigned key of ``x``: NaN largest, ``-0.0`` equal to ``0.0``."""
    cdef uint64_t u
    if x != x:
        return 0xFFFFFFFFFFFFFFFFULL
    if x == 0.0:
        x = 0.0
    memcpy(&u, &x, 8)
    if u >> 63:
        return ~u
    return u | 0x8000000000000000ULL


cdef struct Key:
    uint64_t k   # timestamp, sign bit flipped (unsigned order)
    uint64_t u   # _fkey(value)
    uint64_t xi  # exhausted << 62 | source index: sorts exhausted sources last, then by index


cdef inline Key _head(const Src* s, Py_ssize_t j) noexcept nogil:
    """Sort key of source ``j``'s next point; exhausted sources sort after every point."""
    cdef Key key
    cdef Py_ssize_t p = s[j].pos
    if p < s[j].n:
        key.k = <uint64_t>s[j].ts[p] ^ 0x8000000000000000ULL
        key.u = _fkey(s[j].f[p])
        key.xi = <uint64_t>j
    else:
        key.k = 0xFFFFFFFFFFFFFFFFULL
        key.u = 0xFFFFFFFFFFFFFFFFULL
        key.xi = (<uint64_t>1 << 62) | <uint64_t>j
    return key


cdef inline bint _before(Key a, Key b) noexcept nogil:
    """Whether ``a`` sorts before ``b`` (no branches)."""
    return (a.k < b.k) | ((a.k == b.k) & ((a.u < b.u) | ((a.u == b.u) & (a.xi < b.xi))))


def merge_sorted(list ts_list, list f_list, Py_ssize_t radix_min_k=16):
    """Merge series ``(ts_list[j], f_list[j])`` into one stream.

    Parameters
    ----------
    ts_list : list of int64 C-contiguous arrays, each ascending
    f_list : list of float64 C-contiguous arrays, same lengths
    radix_min_k : int
        Fewest series for the radix path when all share their timestamps (below it the
        loser tree is faster); the result is the same either way.

    Returns
    -------
    (ts, f, perm) : int64[n], float64[n], int64[n]
        The merged points and, for each, its index in the concatenation of the inputs.
    """
    cdef Py_ssize_t k = len(ts_list), K = 1, j, total = 0
    cdef cnp.ndarray a, b
    cdef Src* src
    cdef Key* tree
    cdef Key* win
    if len(f_list) != k:
        raise ValueError("ts_list and f_list differ in length")
    while K < k:
        K *= 2
    src = <Src*>malloc(K * sizeof(Src))
    tree = <Key*>malloc(2 * K * sizeof(Key))
    win = <Key*>malloc(2 * K * sizeof(Key))
    if src == NULL or tree == NULL or win == NULL:
        free(src)
        free(tree)
        free(win)
        raise MemoryError()
    try:
        for j in range(K):
            src[j].ts = NULL
            src[j].f = NULL
            src[j].pos = 0
            src[j].n = 0
            src[j].base = total
            if j < k:
                a = ts_list[j]
                b = f_list[j]
                if (a.dtype != np.int64 or b.dtype != np.float64 or a.ndim != 1 or b.ndim != 1
                        or not a.flags.c_contiguous or not b.flags.c_contiguous):
                    raise TypeError("expected 1-d contiguous int64 ts and float64 f arrays")
                if a.shape[0] != b.shape[0]:
                    raise ValueError(f"series {j}: ts and f differ in length")
                src[j].ts = <const int64_t*>cnp.PyArray_DATA(a)
                src[j].f = <const double*>cnp.PyArray_DATA(b)
                src[j].n = a.shape[0]
                total += a.shape[0]
        ts_out = np.empty(total, np.int64)
        f_out = np.empty(total, np.float64)
        perm = np.empty(total, np.int64)
        if (max(2, radix_min_k) <= k < (1 << 31) and src[0].n < (1 << 31)
                and _shared_ts(src, k)):
            if _radix_shared(src, k, src[0].n,
                             <int64_t*>cnp.PyArray_DATA(ts_out), <double*>cnp.PyArray_DATA(f_out),
                             <int64_t*>cnp.PyArray_DATA(perm)) < 0:
                raise MemoryError()
            return ts_out, f_out, perm
        _run(src, K, tree, win, total,
             <int64_t*>cnp.PyArray_DATA(ts_out), <double*>cnp.PyArray_DATA(f_out),
             <int64_t*>cnp.PyArray_DATA(perm))
        return ts_out, f_out, perm
    finally:
        free(src)
        free(tree)
        free(win)


cdef void _run(Src* src, Py_ssize_t K, Key* tree, Key* win, Py_ssize_t total,
               int64_t* ts_out, double* f_out, int64_t* perm) noexcept nogil:
    """Loser tree: ``tree[node]`` holds the key that lost at ``node``, the winner is carried up
    in registers, so the loads along a leaf-to-root path do not wait on the comparisons."""
    cdef Py_ssize_t j, node, w, p
    cdef Key cand, other, lo
    cdef uint64_t m
    cdef Src* s
    for j in range(K):
        win[K + j] = _head(src, j)
    node = K - 1
    while node >= 1:
        cand = win[2 * node]
        other = win[2 * node + 1]
        if _before(other, cand):
            cand, other = other, cand
        win[node] = cand
        tree[node] = other
        node -= 1
    cand = win[1] if K > 1 else win[K]
    for _ in range(total):
        w = <Py_ssize_t>(cand.xi & 0x3FFFFFFFFFFFFFFFULL)
        s = &src[w]
        p = s.pos
        ts_out[0] = s.ts[p]
        f_out[0] = s.f[p]
        perm[0] = s.base + p
        ts_out += 1
        f_out += 1
        perm += 1
        s.pos = p + 1
        cand = _head(src, w)
        node = (w + K) >> 1
        while node >= 1:
            other = tree[node]
            # Branch-free select: m is all ones when ``other`` wins this match.
            m = 0 - <uint64_t>_before(other, cand)
            lo.k = (cand.k & m) | (other.k & ~m)
            lo.u = (cand.u & m) | (other.u & ~m)
            lo.xi = (cand.xi & m) | (other.xi & ~m)
            cand.k ^= lo.k ^ other.k
            cand.u ^= lo.u ^ other.u
            cand.xi ^= lo.xi ^ other.xi
            tree[node] = lo
            node >>= 1


cdef bint _shared_ts(const Src* src, Py_ssize_t k) noexcept nogil:
    """Whether all ``k`` sources have the same timestamps."""
    cdef Py_ssize_t j, n = src[0].n
    if n == 0:
        return False
    for j in range(1, k):
        if src[j].n != n or memcmp(src[j].ts, src[0].ts, n * sizeof(int64_t)) != 0:
            return False
    return True


cdef enum:
    RADIX_BITS = 11
    RADIX = 2048
    DIGITS = 6  # 6 x 11 bits cover a 64-bit key


cdef int _radix_shared(const Src* src, Py_ssize_t k, Py_ssize_t nts, int64_t* ts_out,
                       double* f_out, int64_t* perm) noexcept nogil:
    """Merge ``k`` sources that share their ``nts`` timestamps; -1 when out of memory.

    Point ``e = j * k + m`` is source ``m``'s ``j``-th point, carried as ``j << 32 | m``.
    A stable LSD radix sort by value key (skipping digits every key shares) keeps equal
    values in source order; a stable counting pass by ``j`` then puts each timestamp's run
    in place.
    """
    cdef Py_ssize_t total = k * nts, e, j, m, d, i, b, acc, c
    cdef uint64_t u
    cdef uint64_t* keys = <uint64_t*>malloc(total * sizeof(uint64_t))
    cdef uint64_t* keys2 = <uint64_t*>malloc(total * sizeof(uint64_t))
    cdef Py_ssize_t* idx = <Py_ssize_t*>malloc(total * sizeof(Py_ssize_t))
    cdef Py_ssize_t* idx2 = <Py_ssize_t*>malloc(total * sizeof(Py_ssize_t))
    cdef Py_ssize_t* cnt = <Py_ssize_t*>calloc(DIGITS * RADIX, sizeof(Py_ssize_t))
    cdef Py_ssize_t* fill = <Py_ssize_t*>calloc(nts, sizeof(Py_ssize_t))
    cdef Py_ssize_t* h
    cdef uint64_t* tk
    cdef Py_ssize_t* ti
    cdef int shift
    if keys == NULL or keys2 == NULL or idx == NULL or idx2 == NULL or cnt == NULL or fill == NULL:
        free(keys)
        free(keys2)
        free(idx)
        free(idx2)
        free(cnt)
        free(fill)
        return -1
    e = 0
    for j in range(nts):
        for m in range(k):
            u = _fkey(src[m].f[j])
            keys[e] = u
            idx[e] = (j << 32) | m  # shifts, not divisions, in the last pass
            for d in range(DIGITS):
                cnt[d * RADIX + <Py_ssize_t>((u >> (d * RADIX_BITS)) & (RADIX - 1))] += 1
            e += 1
    for d in range(DIGITS):
        h = cnt + d * RADIX
        shift = d * RADIX_BITS
        if h[<Py_ssize_t>((keys[0] >> shift) & (RADIX - 1))] == total:
            continue  # every key has this digit
        acc = 0
        for b in range(RADIX):
            c = h[b]
            h[b] = acc
            acc += c
        for e in range(total):
            u = keys[e]
            b = <Py_ssize_t>((u >> shift) & (RADIX - 1))
            i = h[b]
            h[b] = i + 1
            keys2[i] = u
            idx2[i] = idx[e]
        tk = keys
        keys = keys2
        keys2 = tk
        ti = idx
        idx = idx2
        idx2 = ti
    for e in range(total):
        i = idx[e]
        j = i >> 32
        m = i & <Py_ssize_t>0xFFFFFFFF
        c = j * k + fill[j]
        fill[j] += 1
        ts_out[c] = src[0].ts[j]
        f_out[c] = src[m].f[j]
        perm[c] = src[m].base + j
    free(keys)
    free(keys2)
    free(idx)
    free(idx2)
    free(cnt)
    free(fill)
    return 0
