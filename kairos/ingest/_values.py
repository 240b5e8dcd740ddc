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
    "double_bits",
    "is_number",
    "json_as_string",
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
    t = s.strip()
    if t.endswith(("d", "D", "f", "F")) and not t.lower().endswith("inf"):
        t = t[:-1]
    if "_" in t or not t or t.lower() in ("inf", "-inf", "+inf", "nan", "-nan", "+nan"):
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
        raise Fatal(f'For input string: "{v}"')
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
        return float(text)
    try:
        return JsonExpLong(java_long(int(Decimal(text))), float(text))
    except (InvalidOperation, OverflowError, ValueError):
        return float(text)


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
    "parse_float_literal",
]
