"""K-way merge of time-sorted series into one stream (KairosDB's tournament merge, spec §3.4).

Every input series has ascending timestamps (unique within the series).  The merged order is
by timestamp, then by double value -- ``NaN`` after every number, ``-0.0`` equal to ``0.0``
(numpy's sort order) -- then by the series' position in the input list.  That is exactly
``np.lexsort((f, ts))`` over the concatenation (a stable sort), which is the reference
(``kairos.query._kernels_reference.merge_sorted``) that ``tests/property/test_merge_kernel.py``
holds this kernel to.

A loser tree over the ``k`` series costs ``ceil(log2 k)`` comparisons per output point, with
no sort of the concatenation.  When every series has the same timestamps (aligned collection)
the facade (``kairos.query.kernels.merge_sorted``) instead sorts each timestamp's ``k`` values
with numpy, filling the matrix through :func:`stack_columns`.
"""

cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp, memcpy
from libc.stdlib cimport free, malloc

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


def merge_sorted(list ts_list, list f_list):
    """Merge series ``(ts_list[j], f_list[j])`` into one stream.

    Parameters
    ----------
    ts_list : list of int64 C-contiguous arrays, each ascending
    f_list : list of float64 C-contiguous arrays, same lengths

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


cdef inline bint _plain(object a, int typenum, Py_ssize_t* n):
    # exactly an ndarray, 1-D, C-contiguous, of ``typenum``
    cdef cnp.ndarray arr
    if type(a) is not np.ndarray:
        return False
    arr = <cnp.ndarray>a
    if cnp.PyArray_NDIM(arr) != 1 or cnp.PyArray_TYPE(arr) != typenum:
        return False
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr):
        return False
    if not cnp.PyArray_ISNOTSWAPPED(arr):  # '>i8' has int64's type number too
        return False
    n[0] = cnp.PyArray_DIM(arr, 0)
    return True


def ready_pairs(list ts_list, list f_list):
    """Whether ``ts_list[j]`` and ``f_list[j]`` are all plain 1-D C-contiguous int64 and float64
    ndarrays, pairwise of one length (then the facade has nothing to convert or check)."""
    cdef Py_ssize_t j, n, m
    if len(ts_list) != len(f_list):
        return False
    for j in range(len(ts_list)):
        if not _plain(ts_list[j], cnp.NPY_INT64, &n) or not _plain(f_list[j], cnp.NPY_FLOAT64, &m):
            return False
        if n != m:
            return False
    return True


def shared_timestamps(list ts_list):
    """Whether ``ts_list`` holds arrays, every one a plain 1-D C-contiguous native int64
    ndarray, and all hold the same timestamps (the same buffer, or equal byte for byte)."""
    cdef const int64_t[::1] first
    cdef const int64_t[::1] other
    cdef Py_ssize_t j, n = 0, m
    if not ts_list:
        return False
    for j in range(len(ts_list)):
        if not _plain(ts_list[j], cnp.NPY_INT64, &m):
            return False
        if j == 0:
            n = m
        elif m != n:
            return False
    first = ts_list[0]
    for j in range(1, len(ts_list)):
        other = ts_list[j]
        if n and &other[0] != &first[0] and memcmp(&other[0], &first[0], n * 8) != 0:
            return False
    return True


cdef inline uint64_t _odd_bits(const double* col, Py_ssize_t n) noexcept nogil:
    # Top bit set when some value is NaN (magnitude bits above infinity's) or -0.0 (only the
    # sign bit): branch-free 64-bit integer arithmetic, which the compiler vectorizes.
    cdef Py_ssize_t i
    cdef uint64_t u, x, acc = 0
    cdef uint64_t SIGN = (<uint64_t>1) << 63, INF = 0x7FF0000000000000
    for i in range(n):
        memcpy(&u, &col[i], 8)
        x = u ^ SIGN  # 0 exactly for -0.0
        acc |= (INF - (u & ~SIGN)) | (~x & (x - 1))
    return acc


def stack_columns(list f_list, double[:, ::1] out):
    """``out[:, j] = f_list[j]`` for float64 arrays of ``out.shape[0]`` values; returns whether
    no value is NaN or ``-0.0`` (the values whose sorted order numpy's unstable sort could
    leave different from the stable one's)."""
    cdef const double[::1] col
    cdef Py_ssize_t j, i, n = out.shape[0], k = out.shape[1]
    cdef uint64_t bad = 0
    cdef const double* cols[8]
    cdef Py_ssize_t j0, w, c
    cdef double* row
    cdef list views = []
    if len(f_list) != k:
        raise ValueError(f"{len(f_list)} arrays for {k} columns")
    for j in range(k):
        col = f_list[j]
        if col.shape[0] != n:
            raise ValueError(f"array {j} has {col.shape[0]} values, expected {n}")
        views.append(col)
    if n == 0:
        return True
    # 8 columns at a time: each row's 64 bytes are written together (a column at a time
    # would touch every row's cache line k times).
    for j0 in range(0, k, 8):
        w = min(8, k - j0)
        for c in range(w):
            col = views[j0 + c]
            cols[c] = &col[0]
        with nogil:
            if w == 8:
                for i in range(n):
                    row = &out[i, j0]
                    row[0] = cols[0][i]
                    row[1] = cols[1][i]
                    row[2] = cols[2][i]
                    row[3] = cols[3][i]
                    row[4] = cols[4][i]
                    row[5] = cols[5][i]
                    row[6] = cols[6][i]
                    row[7] = cols[7][i]
                    bad |= _odd_bits(row, 8)
            else:
                for i in range(n):
                    row = &out[i, j0]
                    for c in range(w):
                        row[c] = cols[c][i]
                    bad |= _odd_bits(row, w)
    return (bad >> 63) == 0
