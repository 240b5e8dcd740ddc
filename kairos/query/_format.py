"""JSON output exactly as KairosDB writes it (org.json over Java's ``Double.toString``).

Doubles: integral values print without decimals (``55.0`` -> ``55``); |x| >= 1e7 or < 1e-3
print in Java's exponent form (``1.0E7``, ``1.0E-4``); others print their shortest
round-trip digits.  NaN and infinities abort the query in KairosDB (500).
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import orjson

from kairos.errors import NonFiniteValue

__all__ = ["java_double", "points_fragment", "values_json"]


def java_double(x: float) -> int | float | orjson.Fragment:
    """A double as KairosDB would print it, in a form orjson serialises verbatim."""
    x = float(x)
    if not math.isfinite(x):
        raise NonFiniteValue(f"NaN or Infinity: {x}")
    ax = abs(x)
    if x == 0:
        return orjson.Fragment(b"-0") if math.copysign(1.0, x) < 0 else 0
    if 1e-3 <= ax < 1e7:
        return int(x) if x.is_integer() else x
    sign, digits, exp = Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    sci = len("".join(map(str, digits))) + int(exp) - 1
    mant = ds[0] + "." + (ds[1:] or "0")
    return orjson.Fragment(f"{'-' if sign else ''}{mant}E{sci}".encode())


def values_json(ts: np.ndarray, values: np.ndarray | list, kind: int) -> list:
    """``[[ts, value], ...]`` for one result, values printed KairosDB's way."""
    t = ts.tolist()
    if kind == 0:
        assert isinstance(values, np.ndarray)  # longs come as an int64 array
        return [list(p) for p in zip(t, values.tolist(), strict=True)]
    if kind == 1:
        assert isinstance(values, np.ndarray)  # doubles come as a float64 array
        v = values
        plain = np.isfinite(v) & (v != 0) & (np.abs(v) >= 1e-3) & (np.abs(v) < 1e7)
        integral = plain & (np.floor(v) == v)
        if plain.all() and not integral.any():
            return [list(p) for p in zip(t, v.tolist(), strict=True)]
        return [[a, java_double(b)] for a, b in zip(t, v.tolist(), strict=True)]
    return [list(p) for p in zip(t, values, strict=True)]


def _special(x: float) -> bytes:
    return orjson.dumps(java_double(x))


def points_fragment(
    ts: np.ndarray, f: np.ndarray, iv: np.ndarray, is_long: np.ndarray
) -> orjson.Fragment:
    """``[[ts, value], ...]`` of a number stream as pre-serialised JSON (Cython kernel).

    Equal to ``orjson.dumps`` of :func:`values_json`'s output point by point (the reference);
    ``iv`` holds the values of the points where ``is_long``.
    """
    from kairos._native.jsonfmt import points_json

    return orjson.Fragment(
        points_json(
            np.ascontiguousarray(ts, np.int64),
            np.ascontiguousarray(f, np.float64),
            np.ascontiguousarray(iv, np.int64),
            np.ascontiguousarray(is_long, np.uint8),
            _special,
        )
    )
