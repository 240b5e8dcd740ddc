"""KairosDB's value rules for one JSON value: type inference and conversion (spec §2.2).

These functions see values as orjson/``json`` produced them.  They are the reference
semantics; the Cython kernel in ``kairos/_native/columnar.pyx`` handles the common cases in C
and calls back here for everything else.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal, InvalidOperation

from kairos.model.batch import DOUBLE, HISTOGRAM, KIND_BY_NAME, LONG, STRING
from kairos.model.java import LONG_MAX, LONG_MIN, gson_as_string, java_long

__all__ = [
    "MISSING",
    "Fatal",
    "JsonExpLong",
    "JsonNonFinite",
    "double_bits",
    "is_number",
    "json_as_string",
    "lone_surrogate",
    "non_finite_text",
    "to_double",
    "to_long",
]

_D = struct.Struct("<d")
_Q = struct.Struct("<q")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
"""A key absent from the JSON object (Java ``null``), as opposed to JSON ``null`` (``None``)."""


class Fatal(Exception):
    """A request-level failure: KairosDB aborts the whole parse here (Gson error or a 500)."""


class JsonExpLong(int):
    """A JSON number literal written with an exponent but no ``.`` (``1E5``).

    KairosDB classifies a data point value like this as a long (its text has no dot) and
    converts it through BigDecimal; ``as_float`` keeps the number itself for everywhere else
    (histogram fields such as ``"min": 5e-05``).
    """

    as_float: float

    def __new__(cls, value: int, as_float: float) -> JsonExpLong:
        obj = super().__new__(cls, value)
        obj.as_float = as_float
        return obj


class JsonNonFinite(float):
    """A JSON number that is no finite double: a literal past the double range (``1.5e999``)
    or one of the constants ``NaN``, ``Infinity``, ``-Infinity`` (which Gson reads leniently).

    KairosDB stores such a double and then fails every query on its metric (org.json refuses
    to write it), so Kairos refuses the point instead.  Not being an exact ``float`` also sends
    the value past the columnar kernel's fast path to :func:`convert_point`, which reports it.
    ``repr`` keeps the JSON spelling (what Gson's ``getAsString`` answers).
    """

    text: str

    def __new__(cls, value: float, text: str) -> JsonNonFinite:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def non_finite_text(x: float) -> str:
    """Java's ``Double.toString`` of a non-finite double: ``NaN``, ``Infinity``, ``-Infinity``."""
    if x != x:
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def lone_surrogate(s: str) -> str | None:
    """None when ``s`` encodes as UTF-8; else where its first lone surrogate is, in words.

    JSON escapes (``"\\ud800"``) and the bytes ``ED A0 80`` (which the stdlib decoder lets
    through) both make such strings; nothing can store or answer them as UTF-8.
    """
    if s.isascii():
        return None
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"a lone surrogate (\\u{ord(s[e.start]):04x} at index {e.start})"
    return None


def plain_numbers(v: object) -> object:
    """``v`` with every :class:`JsonExpLong` inside replaced by its float value."""
    if isinstance(v, JsonExpLong):
        return v.as_float
    if isinstance(v, dict):
        return {k: plain_numbers(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain_numbers(x) for x in v]
    return v


def double_bits(x: float) -> int:
    """The IEEE-754 bits of ``x`` as a signed int64 (the value word of a double point)."""
    return _Q.unpack(_D.pack(x))[0]


def is_number(s: str) -> bool:
    """``org.kairosdb.util.Util.isNumber``: digits with at most one dot, optional sign."""
    if not s:
        return False
    start = 0
    if s[0] in "+-.":
        start = 1
        if len(s) == 1:
            return False
    points = 0
    for c in s[start:]:
        if points > 1:
            return False
        if c == ".":
            points += 1
        if not (c.isdecimal() or c == "."):
            return False
    return s[-1] != "."


def json_as_string(v: object) -> str:
    """Gson ``JsonElement.getAsString`` for a primitive (or a one-element array)."""
    s = gson_as_string(v)
    if s is None:
        raise Fatal(f"{_java_kind(v)} is not a JSON primitive")
    return s


def _java_kind(v: object) -> str:
    if v is None:
        return "JsonNull"
    if isinstance(v, list):
        return "JsonArray"
    if isinstance(v, dict):
        return "JsonObject"
    return "JsonPrimitive"


def _parse_java_long(s: str) -> int:
    # Long.parseLong: optional sign, decimal digits, must fit in 64 bits.
    body = s[1:] if s[:1] in "+-" else s
    if not body or not all(c.isdecimal() for c in body):
        raise Fatal(f'For input string: "{s}"')
    v = int(s)
    if not LONG_MIN <= v <= LONG_MAX:
        raise Fatal(f'For input string: "{s}"')
    return v


def _parse_java_double(s: str) -> float:
    """``Double.parseDouble``: also ``NaN`` and ``[+-]Infinity`` (exactly so spelled), which
    the double factory would store and :func:`kairos.ingest.parser` then refuses."""
    t = s.strip()
    if t.lstrip("+-") in ("NaN", "Infinity") and len(t) - len(t.lstrip("+-")) <= 1:
        return float(t)
    if t.endswith(("d", "D", "f", "F")):
        t = t[:-1]
    if "_" in t or not t or any(w in t.lower() for w in ("inf", "nan")):
        raise Fatal(f'For input string: "{s}"')
    try:
        return float(t)
    except ValueError:
        raise Fatal(f'For input string: "{s}"') from None


def to_long(v: object) -> int:
    """Gson ``getAsLong`` as KairosDB's long factory calls it."""
    if isinstance(v, bool):
        raise Fatal(f'For input string: "{json_as_string(v)}"')
    if isinstance(v, int):
        return java_long(int(v))
    if isinstance(v, float):
        if math.isfinite(v):
            return java_long(int(v))
        raise Fatal(
            f'For input string: "{v if isinstance(v, JsonNonFinite) else non_finite_text(v)}"'
        )
    if isinstance(v, str):
        return _parse_java_long(v)
    if isinstance(v, list) and len(v) == 1:
        return to_long(v[0])
    raise Fatal(f"{_java_kind(v)} cannot be read as a long")


def to_double(v: object) -> float:
    """Gson ``getAsDouble`` as KairosDB's double factory calls it."""
    if isinstance(v, bool):
        raise Fatal(f'For input string: "{json_as_string(v)}"')
    if isinstance(v, JsonExpLong):
        return float(int(v))
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        return _parse_java_double(v)
    if isinstance(v, list) and len(v) == 1:
        return to_double(v[0])
    raise Fatal(f"{_java_kind(v)} cannot be read as a double")


def parse_float_literal(text: str) -> float | int:
    """``json.loads`` hook: keep KairosDB's dot-based long/double distinction for exponents."""
    if "." in text:
        x = float(text)
        return x if math.isfinite(x) else JsonNonFinite(x, text)
    try:
        return JsonExpLong(java_long(int(Decimal(text))), float(text))
    except (InvalidOperation, OverflowError, ValueError):
        x = float(text)
        return x if math.isfinite(x) else JsonNonFinite(x, text)


def parse_constant(name: str) -> JsonNonFinite:
    """``json.loads`` hook for the constants ``NaN``, ``Infinity`` and ``-Infinity``."""
    return JsonNonFinite(float(name), name)


def kind_of_type(type_name: str) -> int | None:
    """The kind registered for an API type name, or None (``Unregistered data point type``)."""
    return KIND_BY_NAME.get(type_name)


INVALID_TYPE = "value is an invalid type"

__all__ += [
    "DOUBLE",
    "HISTOGRAM",
    "INVALID_TYPE",
    "LONG",
    "STRING",
    "kind_of_type",
    "parse_constant",
    "parse_float_literal",
]
