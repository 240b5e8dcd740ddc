# cython: freethreading_compatible = False
"""Columnar conversion of decoded ``datapoints`` lists into typed arrays.

The facade is ``kairos.ingest.parser._convert_datapoints``; the reference semantics for every
entry is ``kairos.ingest.parser.convert_point``, which this kernel calls for any entry it does
not handle in C (three elements, nulls, strings, exotic numbers, errors).
"""

from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.list cimport PyList_CheckExact, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from libc.math cimport isfinite
from libc.string cimport memcpy

from kairos._native._types cimport kind_t, ts_t, word_t

cdef enum:
    LONG = 0
    DOUBLE = 1
    INFER = -1


cdef inline word_t _bits(double d) noexcept nogil:
    cdef word_t w
    memcpy(&w, &d, 8)
    return w


def convert_datapoints(list dps, int fast_kind, object slow,
                       ts_t[::1] ts_out, word_t[::1] word_out, kind_t[::1] kind_out):
    """Fill ``ts_out``/``word_out``/``kind_out`` (each of length ``len(dps)``) from ``dps``.

    Parameters
    ----------
    dps : list of list
        The metric object's ``datapoints`` entries, as decoded JSON.
    fast_kind : int
        -1 to infer each point's type, 0 (long) or 1 (double) for the metric's ``type``; any
        other value sends every entry to ``slow``.
    slow : callable(entry, counter) -> (kind, ts, word) or None
        Handles one entry the kernel does not; None means it recorded an error.

    Returns
    -------
    int
        Number of points written (a prefix of the output arrays).
    """
    cdef Py_ssize_t i, n = PyList_GET_SIZE(dps)
    cdef Py_ssize_t m = 0
    cdef object entry, r
    cdef object t, v
    cdef long long ts, iv
    cdef int overflow
    cdef double d
    cdef bint done
    if ts_out.shape[0] < n or word_out.shape[0] < n or kind_out.shape[0] < n:
        raise ValueError("output arrays are shorter than the input list")
    for i in range(n):
        entry = <object>PyList_GET_ITEM(dps, i)
        done = False
        if (fast_kind == INFER or fast_kind == LONG or fast_kind == DOUBLE) \
                and PyList_CheckExact(entry) and PyList_GET_SIZE(entry) == 2:
            t = <object>PyList_GET_ITEM(entry, 0)
            v = <object>PyList_GET_ITEM(entry, 1)
            if PyLong_CheckExact(t):
                ts = PyLong_AsLongLongAndOverflow(t, &overflow)
                if overflow == 0:
                    if PyLong_CheckExact(v):
                        iv = PyLong_AsLongLongAndOverflow(v, &overflow)
                        if overflow == 0:
                            if fast_kind == DOUBLE:
                                word_out[m] = _bits(<double>iv)
                                kind_out[m] = DOUBLE
                            else:
                                word_out[m] = iv
                                kind_out[m] = LONG
                            done = True
                    elif PyFloat_CheckExact(v):
                        d = PyFloat_AS_DOUBLE(v)
                        if fast_kind == LONG:
                            if isfinite(d) and -9.2e18 < d < 9.2e18:
                                word_out[m] = <word_t>d
                                kind_out[m] = LONG
                                done = True
                        else:
                            word_out[m] = _bits(d)
                            kind_out[m] = DOUBLE
                            done = True
                    if done:
                        ts_out[m] = ts
                        m += 1
                        continue
        r = slow(entry, m)
        if r is not None:
            kind_out[m] = <kind_t>r[0]
            ts_out[m] = <ts_t>r[1]
            word_out[m] = <word_t>r[2]
            m += 1
    return m
