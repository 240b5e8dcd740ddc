"""The ingest fast path: a body of the common shape, scanned from bytes straight into a batch.

::

    body bytes --scanner.scan (nogil)--> ts/val/code arrays + per-object spans (meta, tags)
               --this module, per metric object--> names, sorted tags, series rows (lut)
               --scanner.assign_series--> series column --> BatchBuilder --> Batch

:func:`try_fast_parse` returns an :class:`IngestResult` only for bodies on which the general
path (:func:`kairos.ingest.parser.parse_datapoints`) reports no error, and then the identical
batch; on anything else it returns None (a *bail*) and the caller runs the general path.  It
never produces an error message itself.

Accepted: an array of metric objects (possibly empty) or one metric object, JSON whitespace
anywhere; per object the keys ``name`` (non-empty string), ``tags`` (non-empty object of
non-empty strings, no duplicate names), ``datapoints`` (array of ``[integer, number]``),
``timestamp`` or ``time`` (integer) together with ``value`` (number), ``ttl`` (integer within
int32) and ``type`` (``"long"`` or ``"double"``), in any order, each at most once.  Numbers:
an integer literal within int64 is a long, a literal with a dot (and maybe an exponent) is a
double; everything else bails (see ``STATUS_NAMES`` in ``kairos/_native/scanner.pyx``).
"""

from __future__ import annotations

import threading

import numpy as np
import orjson

from kairos._native import SID_DTYPE, TS_DTYPE, WORD_DTYPE
from kairos._native.scanner import N_META, STATUS_NAMES, assign_series, scan
from kairos.ingest.parser import IngestResult
from kairos.model.batch import BatchBuilder, Tags
from kairos.model.java import java_sorted_tags

__all__ = ["scan_status", "try_fast_parse"]

_NAME_ESCAPED = 1
_TAGS_ESCAPED = 2

# The shortest metric object the scanner accepts is {"name":"x","tags":{"a":"b"}} (29 bytes),
# the shortest tag "a":"b" (7) and the shortest point [0,0] (5), so these capacities are
# never exceeded by a body that does not bail for another reason.
_MIN_OBJECT = 29
_MIN_TAG = 7
_MIN_POINT = 5


class _Bail(Exception):
    pass


class _Scratch(threading.local):
    """Per-thread scanner output arrays, reused across calls.

    Freshly allocated upper-bound arrays cost more than the scan itself (glibc serves them
    with mmap, and every touched page faults), so the points are copied out at their exact
    length instead.
    """

    def __init__(self) -> None:
        self.size = -1
        self.counts = np.zeros(6, np.int64)
        self.arrays = _allocate(0)


# Bodies up to this size reuse the scratch arrays (which hold ~12 bytes per body byte).
_SCRATCH_MAX_BODY = 1 << 20


def _allocate(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cap_pt = n // _MIN_POINT + 1
    return (
        np.empty(cap_pt, TS_DTYPE),
        np.empty(cap_pt, WORD_DTYPE),
        np.empty(cap_pt, SID_DTYPE),
        np.empty((n // _MIN_OBJECT + 1, N_META), np.int64),
        np.empty((n // _MIN_TAG + 1, 4), np.int64),
    )


_scratch = _Scratch()


def _run(body: bytes) -> tuple[int, tuple[np.ndarray, ...], np.ndarray]:
    n = len(body)
    sc = _scratch
    if n > _SCRATCH_MAX_BODY:
        arrays = _allocate(n)
    else:
        if sc.size < n:
            sc.arrays = _allocate(max(n, 1 << 16))
            sc.size = max(n, 1 << 16)
        arrays = sc.arrays
    status = scan(body, *arrays, sc.counts)
    return status, arrays, sc.counts


def scan_status(body: bytes) -> str:
    """The scanner's verdict on ``body``: ``"ok"`` or the name of the bail reason.

    Only the kernel's verdict: :func:`try_fast_parse` also bails on duplicate tag names and
    escapes that do not decode (lone surrogates).
    """
    return STATUS_NAMES[_run(body)[0]]


def _text(body: bytes, start: int, end: int, escaped: bool) -> str:
    if not escaped:
        return body[start:end].decode()
    try:
        s = orjson.loads(body[start - 1 : end + 1])
    except orjson.JSONDecodeError:  # a lone surrogate: the general path reports it
        raise _Bail from None
    return s


def _tags(body: bytes, raw: bytes, rows: list[list[int]], escaped: bool) -> Tags:
    if escaped:
        d = {_text(body, ks, ke, True): _text(body, vs, ve, True) for ks, ke, vs, ve in rows}
    else:
        d = {body[ks:ke].decode(): body[vs:ve].decode() for ks, ke, vs, ve in rows}
    if len(d) != len(rows):
        raise _Bail  # duplicate tag names
    if not escaped and raw.isascii():
        # Java's UTF-16 order is code point order within the BMP, and names are unique.
        return tuple(sorted(d.items()))
    return java_sorted_tags(d)


def try_fast_parse(body: bytes) -> IngestResult | None:
    """Parse a common-shape ``POST /api/v1/datapoints`` body, or return None to bail.

    Parameters
    ----------
    body : bytes
        The request body, already decompressed (other bytes-like objects are copied).

    Returns
    -------
    IngestResult or None
        The same batch as ``parse_datapoints(body)`` with no errors, or None when the body is
        not of the fast shape (the general path must then parse it).
    """
    if type(body) is not bytes:
        body = bytes(body)  # slices of it key a dict
    status, (ts, val, code, meta, tagspan), counts = _run(body)
    if status:
        return None
    n_obj, n_pt, _, _, all_flags, n_multi = counts.tolist()
    ns, ne, flags, tf, tl, ttls, singles, dp_kinds, kinds, tags_s, tags_e = meta[:n_obj].T.tolist()
    try:
        if all_flags & _NAME_ESCAPED:
            names = [
                _text(body, s, e, f & _NAME_ESCAPED) for s, e, f in zip(ns, ne, flags, strict=True)
            ]
        else:
            names = [body[s:e].decode() for s, e in zip(ns, ne, strict=True)]
        # Tags objects repeat across metric objects: decode and sort each distinct one once.
        raws = [body[s:e] for s, e in zip(tags_s, tags_e, strict=True)]
        distinct = {
            raw: _tags(body, raw, tagspan[tf[i] : tl[i]].tolist(), flags[i] & _TAGS_ESCAPED)
            for raw, i in dict(zip(raws, range(n_obj), strict=True)).items()
        }
    except _Bail:
        return None
    tags = [distinct[raw] for raw in raws]
    b = BatchBuilder()
    if n_multi == 0:
        # The common case, one series per metric object: there is no call order to keep within
        # an object, and its points all have the same code, 2 * object + kind.
        sids = list(map(b.series_id, names, tags, [k >> 1 for k in kinds], ttls))
        lut = np.repeat(np.array(sids, SID_DTYPE), 2)
    else:
        lut = np.zeros(2 * n_obj, SID_DTYPE)
        series_id = b.series_id
        for o, name, t, ttl, single, dp in zip(
            range(n_obj), names, tags, ttls, singles, dp_kinds, strict=True
        ):
            # The general path's order: the single point's series, then datapoints' by kind.
            if single >= 0:
                lut[2 * o + single] = series_id(name, t, single, ttl)
            if dp & 1:
                lut[2 * o] = series_id(name, t, 0, ttl)
            if dp & 2:
                lut[2 * o + 1] = series_id(name, t, 1, ttl)
    if n_pt:
        series = np.empty(n_pt, SID_DTYPE)
        assign_series(code[:n_pt], lut, series)
        b.add(series, ts[:n_pt], val[:n_pt])
    batch = b.build()
    # ``build`` copies the chunks today; the batch must never alias the scratch arrays.
    if np.may_share_memory(batch.ts, ts):
        batch.ts = batch.ts.copy()
    if np.may_share_memory(batch.values, val):
        batch.values = batch.values.copy()
    return IngestResult(batch, [])
