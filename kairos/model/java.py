"""Java compatibility: the orders, ranges and units in which KairosDB thinks.

Kairos answers byte for byte like Java KairosDB, so every place that sorts strings, bounds a
long or converts a time unit takes the Java rule from here.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "CALENDAR_UNITS",
    "CHAR_MAX",
    "FIXED_UNIT_MS",
    "LONG_MAX",
    "LONG_MIN",
    "TIME_UNITS",
    "UNIT_MS",
    "gson_as_string",
    "gson_token",
    "java_key",
    "java_long",
    "java_sorted",
    "java_sorted_tags",
]

LONG_MIN = -(1 << 63)
"""``Long.MIN_VALUE``."""
LONG_MAX = (1 << 63) - 1
"""``Long.MAX_VALUE``."""
CHAR_MAX = "\uffff"
"""``Character.MAX_VALUE``: KairosDB's upper bound for a key prefix (``[p, p + CHAR_MAX)``)."""

TIME_UNITS = ("MILLISECONDS", "SECONDS", "MINUTES", "HOURS", "DAYS", "WEEKS", "MONTHS", "YEARS")
"""KairosDB's ``TimeUnit`` enum names, in its order."""

FIXED_UNIT_MS = {
    "MILLISECONDS": 1,
    "SECONDS": 1000,
    "MINUTES": 60_000,
    "HOURS": 3_600_000,
}
"""Units of a fixed length in every time zone, in milliseconds."""

UNIT_MS = {**FIXED_UNIT_MS, "DAYS": 86_400_000, "WEEKS": 7 * 86_400_000}
"""Units with a nominal length in milliseconds (days and weeks as 24 h and 7 x 24 h, as
KairosDB's relative times count them); months and years have none."""

CALENDAR_UNITS = ("DAYS", "WEEKS", "MONTHS", "YEARS")
"""Units that follow the calendar of a time zone when buckets are aligned."""


def java_long(x: int) -> int:
    """``x`` as a Java ``long`` would hold it: the low 64 bits, two's complement (Java's
    arithmetic wraps; ``BigDecimal.longValue()`` truncates the same way)."""
    x &= (1 << 64) - 1
    return x - (1 << 64) if x > LONG_MAX else x


def gson_token(v: object) -> str:
    """The name of Gson's ``JsonToken`` that a decoded JSON value starts with, as KairosDB's
    messages print it (``Expected a string but was BEGIN_ARRAY ...``)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "BOOLEAN"
    if isinstance(v, int | float):
        return "NUMBER"
    if isinstance(v, str):
        return "STRING"
    if isinstance(v, list):
        return "BEGIN_ARRAY"
    return "BEGIN_OBJECT"


def gson_as_string(v: object) -> str | None:
    """Gson's ``JsonElement.getAsString()`` of a decoded JSON scalar: numbers keep their JSON
    spelling, booleans are ``true``/``false``, a one-element array answers for its element;
    None for null, objects and other arrays (where Gson throws)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list) and len(v) == 1:
        return gson_as_string(v[0])
    return None


def java_key(s: str) -> bytes:
    """Sort key for Java ``String.compareTo`` order (UTF-16 code units).

    Big-endian UTF-16 bytes sort exactly as the code units do.
    """
    return s.encode("utf-16-be", "surrogatepass")


def java_sorted(strings: Iterable[str]) -> list[str]:
    """``strings`` in Java ``String.compareTo`` order: Python's own order when all are ASCII
    (the same there), else by :func:`java_key`."""
    out = list(strings)
    if all(s.isascii() for s in out):
        out.sort()
    else:
        out.sort(key=java_key)
    return out


def java_sorted_tags(tags: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Tags as a tuple of pairs in Java ``String.compareTo`` order of the names."""
    return tuple(sorted(tags.items(), key=lambda kv: java_key(kv[0])))
