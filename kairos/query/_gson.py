"""Gson's conversions of one decoded JSON value, with the texts of Java's exceptions.

KairosDB binds a query's JSON tree to Java beans with Gson 2.8 and reports Gson's and Java's
own exception texts (spec §3.6).  This module is the one place that knows them:

* what Gson calls a value (:func:`kairos.model.java.gson_token`: ``NUMBER``, ``BEGIN_OBJECT``, ...) and its
  ``Expected X but was Y at path P`` message (:func:`expected_but_was`);
* Gson's adapters for ``boolean``, ``int``, ``long``, ``double`` and ``String``
  (``gson_*``): numbers may arrive as strings (``"1"``, ``"0.95"``), ``int``/``long`` JSON
  numbers are truncated, strings for ``double`` go through Java's ``Double.parseDouble``
  (:func:`java_parse_double`, whose ``NumberFormatException`` text becomes the message) and
  booleans accept strings (``"true"`` in any case is true, any other string false);
* KairosDB's registered deserializers of its value types: time units, time zones, enums
  (``trim``, ``filter_op``: case-insensitive, exact names) and ``Duration``
  (``{"value": n, "unit": "..."}``), with KairosDB's ``<context>.<path> <message>`` wording
  (:func:`bean_message`).
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from zoneinfo import available_timezones

from kairos.errors import InvalidQuery
from kairos.model.java import TIME_UNITS, gson_as_string, gson_token

__all__ = [
    "NumberFormatError",
    "bean_message",
    "bind_duration",
    "check_time_zone",
    "duration_violations",
    "enum_ignore_case",
    "enum_lower_case",
    "expected_but_was",
    "gson_bool",
    "gson_double",
    "gson_int",
    "gson_long",
    "gson_string",
    "java_parse_double",
    "time_unit",
    "time_zone_ids",
]

_TIME_UNIT_ERROR = "is not a valid time unit, must be one of " + ",".join(TIME_UNITS)


# -- messages ----------------------------------------------------------------------------------


def bean_message(ctx: str, path: str, message: str) -> str:
    """KairosDB's ``BeanValidationException`` text: ``<context>.<path> <message>``."""
    return f"{ctx}.{path} {message}" if ctx else f"{path} {message}"


def expected_but_was(expected: str, v: object, path: str) -> InvalidQuery:
    """Gson's ``JsonSyntaxException`` wrapping a reader ``IllegalStateException``."""
    was = gson_token(v)
    return InvalidQuery(
        f"java.lang.IllegalStateException: Expected {expected} but was {was} at path {path}"
    )


def _bad_integer(s: str) -> InvalidQuery:
    """Gson's ``JsonSyntaxException`` wrapping ``Integer/Long.parseInt``'s exception."""
    return InvalidQuery(f'java.lang.NumberFormatException: For input string: "{s}"')


class NumberFormatError(ValueError):
    """Java's ``NumberFormatException`` from ``Double.parseDouble`` (Gson lets it through, and
    KairosDB reports ``<ctx>.<property> <message>``)."""


# -- Gson-style conversions of one JSON value --------------------------------------------------


def _wrap(n: int, bits: int) -> int:
    """Java's narrowing of an integer to ``bits`` (``BigDecimal.intValue()`` keeps the low bits)."""
    half = 1 << (bits - 1)
    return ((n + half) % (1 << bits)) - half


_JAVA_INTEGER = re.compile(r"[+-]?\d+")


def _java_integer(v: object, path: str, bits: int) -> int | None:
    """Gson's ``int``/``long`` adapter: numbers truncate toward zero, strings parse exactly."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise expected_but_was("NUMBER", v, path)
    if isinstance(v, int):
        return _wrap(v, bits)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _bad_integer(gson_as_string(v) or "")
        return _wrap(math.trunc(v), bits)
    if not _JAVA_INTEGER.fullmatch(v):
        raise _bad_integer(v)
    n = int(v)
    if not -(1 << (bits - 1)) <= n < (1 << (bits - 1)):
        raise _bad_integer(v)
    return n


_JAVA_SPACE = "".join(chr(c) for c in range(33))  # String.trim() drops every char <= ' '
_JAVA_DOUBLE = re.compile(
    r"""[+-]?(?:
        NaN | Infinity
      | (?P<dec>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[fFdD]?
      | (?P<hex>0[xX](?:[0-9a-fA-F]+\.?|[0-9a-fA-F]*\.[0-9a-fA-F]+)[pP][+-]?[0-9]+)[fFdD]?
    )""",
    re.VERBOSE,
)


def java_parse_double(s: str) -> float:
    """``Double.parseDouble``; raises :class:`NumberFormatError` with Java's message."""
    t = s.strip(_JAVA_SPACE)
    m = _JAVA_DOUBLE.fullmatch(t)
    if m is not None:
        sign = -1.0 if t.startswith("-") else 1.0
        if m["hex"] is not None:
            return sign * float.fromhex(m["hex"])
        if m["dec"] is not None:
            return sign * float(m["dec"])
        return sign * float(t.lstrip("+-").lower().replace("infinity", "inf"))
    if not t:
        raise NumberFormatError("empty String")
    # FloatingDecimal scans sign, then digits and points; a second point fails by itself.
    i = 1 if t[0] in "+-" else 0
    if i < len(t) and t[i] not in "NI" and t[i : i + 2] not in ("0x", "0X"):
        seen_point = False
        for c in t[i:]:
            if c == ".":
                if seen_point:
                    raise NumberFormatError("multiple points")
                seen_point = True
            elif not "0" <= c <= "9":
                break
    raise NumberFormatError(f'For input string: "{t}"')


def gson_bool(v: object, path: str = "$") -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):  # Gson 1.7 compatibility: Boolean.parseBoolean
        return v.lower() == "true"
    raise expected_but_was("BOOLEAN", v, path)


def gson_int(v: object, path: str = "$") -> int | None:
    return _java_integer(v, path, 32)


def gson_long(v: object, path: str = "$") -> int | None:
    return _java_integer(v, path, 64)


def gson_double(v: object, path: str = "$") -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise expected_but_was("NUMBER", v, path)
    if isinstance(v, str):
        return java_parse_double(v)
    return float(v)


def gson_string(v: object, path: str = "$") -> str | None:
    if isinstance(v, list | dict):
        raise expected_but_was("STRING", v, path)
    return gson_as_string(v)


def _as_text(v: object) -> str:
    """The string a ``JsonDeserializer`` sees via ``getAsString()`` (JSON text for others)."""
    s = gson_as_string(v)
    if s is not None:
        return s
    return json.dumps(v, separators=(",", ":"))


def time_unit(v: object, ctx: str) -> str | None:
    """``TimeUnitDeserializer``: a case-insensitive enum name, else KairosDB's message."""
    if v is None:
        return None
    s = _as_text(v)
    u = s.upper()
    if u not in TIME_UNITS:
        raise InvalidQuery(bean_message(ctx, s, _TIME_UNIT_ERROR))
    return u


def enum_ignore_case(v: object, ctx: str, names: tuple[str, ...]) -> str | None:
    """``EnumDeserializer`` (trim, filter_op), with its 'not a valid trim type' wording."""
    if v is None:
        return None
    s = _as_text(v)
    low = s.lower()
    if low in names:
        return low
    quoted = [f"'{n}'" for n in names]
    choices = ", ".join(quoted[:-1]) + " or " + quoted[-1]
    raise InvalidQuery(bean_message(ctx, s, f"is not a valid trim type, must be {choices}."))


def enum_lower_case(v: object, path: str, names: tuple[str, ...]) -> str | None:
    """``LowercaseEnumTypeAdapterFactory``: the exact lower-case name, anything else null."""
    if v is None:
        return None
    if isinstance(v, bool | list | dict):
        raise expected_but_was("STRING", v, path)
    s = gson_as_string(v)
    return s if s in names else None


# -- time zones --------------------------------------------------------------------------------


@cache
def time_zone_ids() -> tuple[str, ...]:
    """Accepted zone ids, sorted (Joda's ``getAvailableIDs()`` is a sorted set).

    ``localtime`` is left out: it names whatever zone the host happens to be in.
    """
    return tuple(sorted((available_timezones() - {"localtime", "posixrules"}) | {"UTC"}))


@cache
def _time_zone_set() -> frozenset[str]:
    return frozenset(time_zone_ids())


def check_time_zone(v: object, ctx: str) -> str | None:
    """``DateTimeZoneDeserializer``: ``None`` for JSON null, ``"UTC"`` for ``""``, else the id.

    Raises ``<ctx>.<tz> is not a valid time zone, must be one of [...]``.
    """
    if v is None:
        return None
    s = _as_text(v)
    if s == "":
        return "UTC"
    if s not in _time_zone_set():
        ids = ", ".join(time_zone_ids())
        raise InvalidQuery(
            bean_message(ctx, s, f"is not a valid time zone, must be one of [{ids}]")
        )
    return s


# -- Duration (sampling, relative times) -------------------------------------------------------


def bind_duration(v: object, ctx: str, path: str = "$") -> tuple[int, str | None] | None:
    """Gson binding of a ``Duration`` (``Sampling``, ``RelativeTime``): ``value`` and ``unit``
    in document order, other keys ignored; ``None`` for JSON null.  Not validated."""
    if v is None:
        return None
    if not isinstance(v, dict):
        raise expected_but_was("BEGIN_OBJECT", v, path)
    value, unit = 0, None  # Duration() starts at 0 / null
    for k, x in v.items():
        if k == "value":
            n = gson_long(x, f"{path}.value")
            if n is not None:  # a JSON null leaves a primitive field alone
                value = n
        elif k == "unit":
            unit = time_unit(x, ctx)
    return value, unit


def duration_violations(bound: tuple[int, str | None], ctx: str, prop: str) -> list[str]:
    """``@Min(0) value`` and ``@NotNull unit`` of a bound ``Duration``."""
    value, unit = bound
    errors = []
    if value < 0:
        errors.append(bean_message(ctx, f"{prop}.value", "must be greater than or equal to 0"))
    if unit is None:
        errors.append(bean_message(ctx, f"{prop}.unit", "may not be null"))
    return errors
