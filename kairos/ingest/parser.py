"""The general ingest path: a KairosDB JSON body -> a validated :class:`Batch` plus errors.

It mirrors ``org.kairosdb.core.http.rest.json.DataPointsParser`` (spec §2): metric objects are
processed in order; validation messages accumulate; a metric object with a metric-level error
publishes nothing while a bad data point skips only itself; valid metric objects of a request
that also has errors are still stored.  A *fatal* error (what Gson or a Java exception would
abort the stream with) stops processing, keeps what earlier metric objects produced and
reports only that error.

Per-point work happens in :func:`kairos._native.columnar.convert_datapoints`; this module
handles requests and metric objects, and the rare points the kernel hands back
(:func:`convert_point`, which is also the kernel's reference implementation).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from kairos.errors import InvalidHistogram, PayloadTooLarge
from kairos.ingest._values import (
    INVALID_TYPE,
    MISSING,
    Fatal,
    JsonExpLong,
    double_bits,
    is_number,
    json_as_string,
    kind_of_type,
    lone_surrogate,
    non_finite_text,
    parse_constant,
    parse_float_literal,
    plain_numbers,
    to_double,
    to_long,
)
from kairos.model.batch import DOUBLE, HISTOGRAM, LONG, STRING, Batch, BatchBuilder
from kairos.model.java import gson_token, java_long, java_sorted_tags

__all__ = ["IngestResult", "convert_point", "count_points", "parse_datapoints", "parse_json"]

NO_CONTENT = "Invalid json. No content due to end of input."
INVALID_START = "Invalid start of json."


@dataclass(slots=True)
class IngestResult:
    """What one request produced: the batch to store and the messages for a 400."""

    batch: Batch
    errors: list[str] = field(default_factory=list)

    @property
    def n_points(self) -> int:
        return len(self.batch)


class _Ctx:
    """KairosDB's ``Context``: ``metric[i](name=x).attribute``."""

    __slots__ = ("index", "name")

    def __init__(self, index: int) -> None:
        self.index = index
        self.name: str | None = None

    def __call__(self, attribute: str | None = None) -> str:
        s = f"metric[{self.index}]"
        if self.name is not None:
            s += f"(name={self.name})"
        if attribute is not None:
            s += "." + attribute
        return s


class _PairsDict(dict):
    """A decoded object that remembers keys it saw twice (Gson rejects those in tag maps)."""

    __slots__ = ("duplicates",)
    duplicates: list[str]


def _pairs_hook(pairs: list[tuple[str, object]]) -> _PairsDict:
    d = _PairsDict(pairs)
    d.duplicates = [k for k, _ in pairs] if len(d) != len(pairs) else []
    if d.duplicates:
        seen: set[str] = set()
        d.duplicates = [k for k in d.duplicates if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    return d


def parse_json(body: bytes) -> object:
    """Decode a body as Gson would see it.

    The stdlib decoder is used rather than orjson because KairosDB's semantics need what orjson
    discards: the literal text of numbers (``1E5`` has no dot, so KairosDB stores a long;
    integers past 64 bits wrap) and duplicate keys (Gson rejects them in tag maps).  The
    common bodies never get here: the Cython scanner takes them.  Raises ``Fatal`` with a
    description of the syntax error.
    """
    try:
        return json.loads(
            body,
            parse_float=parse_float_literal,
            parse_constant=parse_constant,
            object_pairs_hook=_pairs_hook,
        )
    except (ValueError, RecursionError) as e:
        raise Fatal(_syntax_message(body, e)) from None


def _syntax_message(body: bytes, e: Exception) -> str:
    if isinstance(e, RecursionError):
        return "Malformed JSON: nested too deeply"
    if isinstance(e, UnicodeDecodeError):
        return f"Malformed JSON: the body is not UTF-8 (byte {e.start})"
    pos = getattr(e, "pos", None)
    if pos is None:
        return f"Malformed JSON: {e}"
    line = body.count(b"\n", 0, pos) + 1
    col = pos - (body.rfind(b"\n", 0, pos) + 1) + 1
    msg = getattr(e, "msg", str(e))
    return f"Malformed JSON: {msg} at line {line} column {col}"


def count_points(doc: object) -> int:
    """Points a decoded body would publish at most (for the per-request limit)."""
    objs = doc if isinstance(doc, list) else [doc]
    n = 0
    for o in objs:
        if isinstance(o, dict):
            dps = o.get("datapoints")
            if isinstance(dps, list):
                n += len(dps)
            if "value" in o:
                n += 1
    return n


def parse_datapoints(
    body: bytes, doc: object = MISSING, max_points: int | None = None
) -> IngestResult:
    """Validate and columnarize a ``POST /api/v1/datapoints`` body (already decompressed).

    ``doc`` may pass the already-decoded JSON.  More than ``max_points`` points raises
    ``PayloadTooLarge`` before anything is produced.
    """
    builder = BatchBuilder()
    errors: list[str] = []
    if doc is MISSING:
        stripped = body.strip()
        if not stripped:
            return IngestResult(builder.build(), [NO_CONTENT])
        if stripped[:1] not in (b"[", b"{"):
            # Gson peeks a non-array, non-object token: a validation error, not a syntax one,
            # provided the token itself is valid JSON.
            try:
                parse_json(stripped)
            except Fatal as e:
                return IngestResult(builder.build(), [str(e)])
            return IngestResult(builder.build(), [INVALID_START])
        try:
            doc = parse_json(body)
        except Fatal as e:
            r = _salvage_prefix(body, builder, str(e))
            if max_points is not None and len(r.batch) > max_points:
                raise _too_many(len(r.batch), max_points) from None
            return r
    if max_points is not None:
        n = count_points(doc)
        if n > max_points:
            raise _too_many(n, max_points)
    objs = doc if isinstance(doc, list) else [doc]
    if not isinstance(doc, list | dict):
        return IngestResult(builder.build(), [INVALID_START])
    try:
        for i, obj in enumerate(objs):
            _process_metric(obj, i, builder, errors)
    except Fatal as e:
        return IngestResult(builder.build(), [str(e)])
    return IngestResult(builder.build(), errors)


def _too_many(n: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Too many data points in one request: {n} exceeds the maximum of {limit} "
        "(KAIROSDB_MAX_BATCH_SIZE)"
    )


def _salvage_prefix(body: bytes, builder: BatchBuilder, message: str) -> IngestResult:
    """A syntax error in an array: KairosDB has already stored the metric objects before it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        # Only the objects wholly before the first bad byte were read.
        text = body[: e.start].decode("utf-8")
    dec = json.JSONDecoder(
        parse_float=parse_float_literal,
        parse_constant=parse_constant,
        object_pairs_hook=_pairs_hook,
    )
    i = len(text) - len(text.lstrip())
    if not text.startswith("[", i):
        return IngestResult(builder.build(), [message])
    i += 1
    errors: list[str] = []
    index = 0
    try:
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            try:
                obj, i = dec.raw_decode(text, i)
            except (ValueError, RecursionError):
                break
            _process_metric(obj, index, builder, errors)
            index += 1
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text) or text[i] != ",":
                break
            i += 1
    except Fatal as e:
        message = str(e)
    return IngestResult(builder.build(), [message])


# -- field readers: Gson's type adapters for NewMetric's fields --------------------------------


def _gson_string(v: object, path: str) -> str | None:
    if v is MISSING or v is None:
        return None
    if isinstance(v, list | dict):
        raise Fatal(f"Expected a string but was {gson_token(v)} at path {path}")
    return json_as_string(v)


def _gson_long(v: object, path: str, bits: int = 64) -> int | None:
    if v is MISSING or v is None:
        return None
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    what = "a long" if bits == 64 else "an int"
    if isinstance(v, (bool, list | dict)):
        raise Fatal(f"Expected {what} but was {gson_token(v)} at path {path}")
    if isinstance(v, str):
        try:
            r: int | float = int(v)
        except ValueError:
            try:
                r = float(v)
            except ValueError:
                raise Fatal(f"Expected {what} but was {v} at path {path}") from None
    else:
        r = cast("int | float", v)  # the JSON decoder's numbers
    if isinstance(r, float) and (not r.is_integer()):
        raise Fatal(f"Expected {what} but was {v} at path {path}")
    r = int(r)
    if not lo <= r < hi:
        raise Fatal(f"Expected {what} but was {v} at path {path}")
    return r


def _gson_bool(v: object, path: str) -> bool:
    if v is MISSING or v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return v.lower() == "true"
    raise Fatal(f"Expected a boolean but was {type(v).__name__.upper()} at path {path}")


def _gson_tags(v: object, path: str) -> dict[str, str | None]:
    if v is MISSING or v is None:
        return {}
    if not isinstance(v, dict):
        kind = "BEGIN_ARRAY" if isinstance(v, list) else "a primitive"
        raise Fatal(f"Expected BEGIN_OBJECT but was {kind} at path {path}")
    if isinstance(v, _PairsDict) and v.duplicates:
        raise Fatal(f"duplicate key: {v.duplicates[0]}")
    return {k: _gson_string(x, f"{path}.{k}") for k, x in v.items()}


# -- validation helpers (org.kairosdb.util.Validator) ------------------------------------------


def _not_null_or_empty_str(errors: list[str], name: str, value: str | None) -> bool:
    if value is None:
        errors.append(f"{name} may not be null.")
        return False
    if value == "":
        errors.append(f"{name} may not be empty.")
        return False
    return True


def _not_null_or_empty_json(errors: list[str], name: str, value: object) -> bool:
    if value is MISSING:
        errors.append(f"{name} may not be null.")
        return False
    if value is None:
        errors.append(f"{name} may not be empty.")
        return False
    if isinstance(value, list) and len(value) < 1:
        errors.append(f"{name} may not be an empty array.")
        return False
    if not isinstance(value, dict) and json_as_string(value) == "":
        errors.append(f"{name} may not be empty.")
        return False
    return True


# -- one metric object -------------------------------------------------------------------------


def _process_metric(obj: object, index: int, b: BatchBuilder, errors: list[str]) -> None:
    path = f"$[{index}]"
    if not isinstance(obj, dict):
        found = (
            "BEGIN_ARRAY" if isinstance(obj, list) else ("NULL" if obj is None else "a primitive")
        )
        raise Fatal(f"Expected BEGIN_OBJECT but was {found} at path {path}")
    name = _gson_string(obj.get("name", MISSING), path + ".name")
    ts_field = _gson_long(obj.get("timestamp", MISSING), path + ".timestamp")
    time_field = _gson_long(obj.get("time", MISSING), path + ".time")
    timestamp = time_field if time_field is not None else ts_field
    value = obj.get("value", MISSING)
    tags = _gson_tags(obj.get("tags", MISSING), path + ".tags")
    dps = obj.get("datapoints", MISSING)
    if dps is not MISSING and dps is not None and not isinstance(dps, list):
        raise Fatal(f"Expected BEGIN_ARRAY but was a primitive at path {path}.datapoints")
    validate = not _gson_bool(obj.get("skip_validate", MISSING), path + ".skip_validate")
    mtype = _gson_string(obj.get("type", MISSING), path + ".type")
    ttl = _gson_long(obj.get("ttl", MISSING), path + ".ttl", bits=32) or 0
    if isinstance(dps, list):
        for j, dp in enumerate(dps):
            if not isinstance(dp, list):
                raise Fatal(
                    f"Expected BEGIN_ARRAY but was a primitive at path {path}.datapoints[{j}]"
                )

    ctx = _Ctx(index)
    errs: list[str] = []
    if validate:
        if _not_null_or_empty_str(errs, ctx("name"), name) and lone_surrogate(name or "") is None:
            ctx.name = name
        if timestamp is not None:
            if mtype == "string":
                if value is MISSING:
                    errs.append(f"{ctx('value')} may not be null.")
            else:
                _not_null_or_empty_json(errs, ctx("value"), value)
        elif value is not MISSING and value is not None:
            errs.append(f"{ctx('timestamp')} may not be null.")
        if len(tags) < 1:
            errs.append(f"{ctx('tags count')} must be greater than or equal to 1.")
        else:
            for t, (k, v) in enumerate(tags.items()):
                label = str(t)
                if _not_null_or_empty_str(errs, f"{ctx()}.tag[{label}].name", k):
                    label = k
                _not_null_or_empty_str(errs, f"{ctx()}.tag[{label}].value", v)
    _check_unicode(errs, ctx, name, tags)
    if errs:
        errors.extend(errs)
        return

    metric = name if name is not None else ""
    # skip_validate lets a null tag value through unchecked, as before
    sorted_tags = java_sorted_tags(tags)  # type: ignore[arg-type]
    if timestamp is not None and value is not MISSING:
        r = _single_point(value, mtype, ctx, b, errors)
        if r is not None:
            kind, word = r
            sid = b.series_id(metric, sorted_tags, kind, ttl)
            b.add(
                np.array([sid], np.int32),
                np.array([timestamp], np.int64),
                np.array([word], np.int64),
            )
    if isinstance(dps, list) and dps:
        _convert_datapoints(dps, metric, sorted_tags, ttl, mtype, validate, ctx, b, errors)


def _check_unicode(
    errs: list[str], ctx: _Ctx, name: str | None, tags: dict[str, str | None]
) -> None:
    """Names and tags that UTF-8 cannot hold make the whole metric object an error (even with
    ``skip_validate``): neither the WAL nor a response can carry them."""
    if name is not None and (bad := lone_surrogate(name)) is not None:
        errs.append(f"{ctx('name')} must be valid Unicode, not {bad}.")
    for t, (k, v) in enumerate(tags.items()):
        bad = lone_surrogate(k)
        if bad is not None:
            errs.append(f"{ctx()}.tag[{t}].name must be valid Unicode, not {bad}.")
            continue
        if v is not None and (bad := lone_surrogate(v)) is not None:
            errs.append(f"{ctx()}.tag[{k or t}].value must be valid Unicode, not {bad}.")


def _single_point(
    value: object, mtype: str | None, ctx: _Ctx, b: BatchBuilder, errors: list[str]
) -> tuple[int, int] | None:
    return _typed_word(value, mtype, ctx, ctx, b, errors)


def _typed_word(
    value: object,
    type_name: str | None,
    ctx: _Ctx,
    value_ctx: _Ctx,
    b: BatchBuilder,
    errors: list[str],
) -> tuple[int, int] | None:
    """Infer or check the type and convert; None after recording a validation error."""
    if type_name is None:
        type_name = _infer_type(value)
        if type_name is None:
            errors.append(f"{ctx()} {INVALID_TYPE}")
            return None
    kind = kind_of_type(type_name)
    if kind is None:
        errors.append(f"Unregistered data point type '{type_name}'")
        return None
    try:
        return _make_word(kind, value, value_ctx, "value", b)
    except _PointError as e:
        errors.append(str(e))
        return None


def _infer_type(value: object) -> str | None:
    """``DataPointsParser.findType``; objects that look like histograms are histograms."""
    if isinstance(value, dict):
        from kairos.model.histogram import Histogram

        return "histogram" if Histogram.looks_like(value) else None
    if isinstance(value, list) or value is None:
        return None
    if isinstance(value, bool):
        return "string"
    if isinstance(value, JsonExpLong):
        return "long"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str) and is_number(value):
        return "double" if "." in value else "long"
    return "string"


def _make_word(
    kind: int, value: object, ctx: _Ctx, attribute: str, b: BatchBuilder
) -> tuple[int, int]:
    """The value word of a point of ``kind``; strings and histograms go to the object list."""
    if kind == LONG:
        return LONG, to_long(value)
    if kind == DOUBLE:
        x = to_double(value)
        if not math.isfinite(x):
            # KairosDB stores it, then every query on the metric fails ("NaN or Infinity").
            raise _PointError(
                f"{ctx(attribute)} must be a finite number, not {non_finite_text(x)}."
            )
        return DOUBLE, double_bits(x)
    if kind == STRING:
        if value is None:
            raise Fatal(f"{ctx(attribute)} may not be null.")
        if isinstance(value, dict) or (isinstance(value, list) and len(value) != 1):
            raise Fatal(f"{ctx()} {INVALID_TYPE}")
        text = json_as_string(value)
        bad = lone_surrogate(text)
        if bad is not None:
            raise _PointError(f"{ctx(attribute)} must be valid Unicode, not {bad}.")
        return STRING, b.add_object(text)
    # HISTOGRAM
    from kairos.model.histogram import Histogram

    if not isinstance(value, dict):
        raise Fatal(f"{ctx(attribute)} is an invalid histogram: expected a JSON object")
    try:
        h = Histogram.from_json(plain_numbers(value))
    except InvalidHistogram as e:
        raise _PointError(f"{ctx(attribute)} is an invalid histogram: {e}") from None
    return HISTOGRAM, b.add_object(h.to_bytes())


class _PointError(Exception):
    """A value that cannot be stored (a bad histogram, a non-finite double, a string that is
    not Unicode): a validation error that skips only its point."""


def convert_point(
    dp: list,
    counter: int,
    mtype: str | None,
    validate: bool,
    ctx: _Ctx,
    b: BatchBuilder,
    errors: list[str],
) -> tuple[int, int, int] | None:
    """One ``datapoints`` entry -> (kind, timestamp, word), or None after recording an error.

    The reference for the columnar kernel, which calls it for every entry it does not handle
    in C.  ``counter`` is KairosDB's ``datapoints[n]`` context index.
    """
    base = f"{ctx()}.datapoints[{counter}]"
    if len(dp) < 1:
        errors.append(f"{base}.timestamp cannot be null or empty.")
        return None
    if len(dp) < 2:
        errors.append(f"{base}.value cannot be null or empty.")
        return None
    ts_raw = dp[0]
    timestamp = None if ts_raw is None else to_long(ts_raw)
    if validate and timestamp is None:
        errors.append(f"{base}.timestamp may not be null.")
        return None
    type_name = mtype
    if len(dp) > 2:
        if dp[2] is None or isinstance(dp[2], list | dict):
            raise Fatal(f"{base}.type is not a JSON primitive")
        type_name = json_as_string(dp[2])
    value = dp[1]
    if type_name == "string":
        if value is None:
            errors.append(f"{base}.value may not be null.")
            return None
    elif not _not_null_or_empty_json(errors, f"{base}.value", value):
        return None
    r = _typed_word(value, type_name, ctx, _SubCtx(base), b, errors)
    if r is None:
        return None
    return r[0], java_long(timestamp if timestamp is not None else 0), r[1]


class _SubCtx(_Ctx):
    __slots__ = ("base",)

    def __init__(self, base: str) -> None:
        self.base = base

    def __call__(self, attribute: str | None = None) -> str:
        return self.base if attribute is None else f"{self.base}.{attribute}"


_MTYPE_KIND = {None: -1, "long": LONG, "double": DOUBLE}


def _convert_datapoints(
    dps: list,
    metric: str,
    tags: tuple,
    ttl: int,
    mtype: str | None,
    validate: bool,
    ctx: _Ctx,
    b: BatchBuilder,
    errors: list[str],
) -> None:
    from kairos._native.columnar import convert_datapoints

    n = len(dps)
    ts = np.empty(n, np.int64)
    words = np.empty(n, np.int64)
    kinds = np.empty(n, np.uint8)
    fast_kind = _MTYPE_KIND.get(mtype, -2)

    def slow(dp: list, counter: int) -> tuple[int, int, int] | None:
        return convert_point(dp, counter, mtype, validate, ctx, b, errors)

    m = convert_datapoints(dps, fast_kind, slow, ts, words, kinds)
    if m == 0:
        return
    ts, words, kinds = ts[:m], words[:m], kinds[:m]
    present = np.bincount(kinds, minlength=4)
    if np.count_nonzero(present) == 1:
        kind = int(kinds[0])
        sid = b.series_id(metric, tags, kind, ttl)
        b.add(np.full(m, sid, np.int32), ts, words)
        return
    sids = np.empty(m, np.int32)
    for k in np.nonzero(present)[0]:
        sids[kinds == k] = b.series_id(metric, tags, int(k), ttl)
    b.add(sids, ts, words)
