"""A metric's ``aggregators``, ``group_by`` and ``plugins`` JSON -> typed specs (spec §3.2, §4).

KairosDB's ``QueryParser`` turns each entry into a Java bean, and this module takes the same
steps so that the first failing item, and its message, are the same::

    entry -> "name" (missing/empty: "<ctx>.aggregators[j] must have a name")
          -> bean for that name (unknown: "<ctx>.aggregators[j].<name> invalid aggregators name")
          -> query-derived fields (the query time zone)
          -> every other property, in document order:
               no setter     -> "Property '<p>' was specified for object '<name>' but no ..."
               Gson converts -> JsonSyntaxException / NumberFormatException text
               value object  -> validated on its own ("<ctx>.sampling.value must be ...")
          -> bean validation, all violations of the bean ("<ctx>.m_divisor may not be zero")

Values are converted the way Gson 2.8 converts a JSON tree: numbers may arrive as strings
(``"1"``, ``"0.95"``), ``int``/``long`` JSON numbers are truncated, strings for ``double`` go
through Java's ``Double.parseDouble`` (its error text becomes the message), booleans accept
strings (``"true"`` in any case is true, any other string false) and time units, ``trim`` and
``filter_op`` are matched case-insensitively against the exact enum names.

Where Java answers a malformed entry with a 500 (a ``NullPointerException`` at run time, a
reflection error), Kairos answers 400 instead.  A JSON ``null`` keeps the property's default,
except where Java gives a 400 for it (``sampling``, ``tags``, ``range_size``, ``thresholds``,
``score.order``) or a meaning (``time_zone``: the JVM zone, i.e. UTC; ``trim``: none).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from kairos.errors import InvalidQuery
from kairos.model.java import TIME_UNITS
from kairos.query.spec import (
    RANGE_AGGREGATORS,
    Aggregator,
    BinGroupBy,
    DivAgg,
    FilterAgg,
    GroupBy,
    MovingWindowAgg,
    PairAgg,
    PercentRemainingAgg,
    RangeAgg,
    Sampling,
    SaveAsAgg,
    ScaleAgg,
    ScoreAgg,
    SmaAgg,
    TagGroupBy,
    TimeGroupBy,
    TrimAgg,
    ValueGroupBy,
)

__all__ = [
    "NumberFormatError",
    "bind_duration",
    "check_plugins",
    "check_time_zone",
    "duration_violations",
    "gson_bool",
    "gson_double",
    "gson_int",
    "gson_long",
    "gson_string",
    "java_parse_double",
    "java_string",
    "parse_aggregators",
    "parse_group_by",
    "time_zone_ids",
]

_AGG_PKG = "org.kairosdb.core.aggregator."
_HISTOGRAM_AGG_PKG = "io.inscopemetrics.kairosdb.aggregators."  # the kairosdb-histograms plugin
_GROUP_BY_PKG = "org.kairosdb.core.groupby."
_TIME_UNIT_ERROR = "is not a valid time unit, must be one of " + ",".join(TIME_UNITS)


# -- messages ----------------------------------------------------------------------------------


def _msg(ctx: str, path: str, message: str) -> str:
    """KairosDB's ``BeanValidationException`` text: ``<context>.<path> <message>``."""
    return f"{ctx}.{path} {message}" if ctx else f"{path} {message}"


def _token(v: object) -> str:
    """The Gson ``JsonToken`` a decoded JSON value starts with."""
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


def _expected(expected: str, v: object, path: str) -> InvalidQuery:
    """Gson's ``JsonSyntaxException`` wrapping a reader ``IllegalStateException``."""
    return InvalidQuery(
        f"java.lang.IllegalStateException: Expected {expected} but was {_token(v)} at path {path}"
    )


def _bad_integer(s: str) -> InvalidQuery:
    """Gson's ``JsonSyntaxException`` wrapping ``Integer/Long.parseInt``'s exception."""
    return InvalidQuery(f'java.lang.NumberFormatException: For input string: "{s}"')


class NumberFormatError(ValueError):
    """Java's ``NumberFormatException`` from ``Double.parseDouble`` (Gson lets it through, and
    KairosDB reports ``<ctx>.<property> <message>``)."""


# -- Gson-style conversions of one JSON value --------------------------------------------------


def java_string(v: object) -> str | None:
    """``JsonElement.getAsString()`` of a scalar (numbers keep their JSON spelling)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list) and len(v) == 1:  # a one-element JsonArray answers for its element
        return java_string(v[0])
    return None


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
        raise _expected("NUMBER", v, path)
    if isinstance(v, int):
        return _wrap(v, bits)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _bad_integer(java_string(v) or "")
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
    raise _expected("BOOLEAN", v, path)


def gson_int(v: object, path: str = "$") -> int | None:
    return _java_integer(v, path, 32)


def gson_long(v: object, path: str = "$") -> int | None:
    return _java_integer(v, path, 64)


def gson_double(v: object, path: str = "$") -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise _expected("NUMBER", v, path)
    if isinstance(v, str):
        return java_parse_double(v)
    return float(v)


def gson_string(v: object, path: str = "$") -> str | None:
    if isinstance(v, list | dict):
        raise _expected("STRING", v, path)
    return java_string(v)


def _as_text(v: object) -> str:
    """The string a ``JsonDeserializer`` sees via ``getAsString()`` (JSON text for others)."""
    s = java_string(v)
    if s is not None:
        return s
    return json.dumps(v, separators=(",", ":"))


def _unit(v: object, ctx: str) -> str | None:
    """``TimeUnitDeserializer``: a case-insensitive enum name, else KairosDB's message."""
    if v is None:
        return None
    s = _as_text(v)
    u = s.upper()
    if u not in TIME_UNITS:
        raise InvalidQuery(_msg(ctx, s, _TIME_UNIT_ERROR))
    return u


def _enum_ignore_case(v: object, ctx: str, names: tuple[str, ...]) -> str | None:
    """``EnumDeserializer`` (trim, filter_op), with its 'not a valid trim type' wording."""
    if v is None:
        return None
    s = _as_text(v)
    low = s.lower()
    if low in names:
        return low
    quoted = [f"'{n}'" for n in names]
    choices = ", ".join(quoted[:-1]) + " or " + quoted[-1]
    raise InvalidQuery(_msg(ctx, s, f"is not a valid trim type, must be {choices}."))


def _enum_lower_case(v: object, path: str, names: tuple[str, ...]) -> str | None:
    """``LowercaseEnumTypeAdapterFactory``: the exact lower-case name, anything else null."""
    if v is None:
        return None
    if isinstance(v, bool | list | dict):
        raise _expected("STRING", v, path)
    s = java_string(v)
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
        raise InvalidQuery(_msg(ctx, s, f"is not a valid time zone, must be one of [{ids}]"))
    return s


# -- compound property values ------------------------------------------------------------------


def bind_duration(v: object, ctx: str, path: str = "$") -> tuple[int, str | None] | None:
    """Gson binding of a ``Duration`` (``Sampling``, ``RelativeTime``): ``value`` and ``unit``
    in document order, other keys ignored; ``None`` for JSON null.  Not validated."""
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _expected("BEGIN_OBJECT", v, path)
    value, unit = 0, None  # Duration() starts at 0 / null
    for k, x in v.items():
        if k == "value":
            n = gson_long(x, f"{path}.value")
            if n is not None:  # a JSON null leaves a primitive field alone
                value = n
        elif k == "unit":
            unit = _unit(x, ctx)
    return value, unit


def duration_violations(bound: tuple[int, str | None], ctx: str, prop: str) -> list[str]:
    """``@Min(0) value`` and ``@NotNull unit`` of a bound ``Duration``."""
    value, unit = bound
    errors = []
    if value < 0:
        errors.append(_msg(ctx, f"{prop}.value", "must be greater than or equal to 0"))
    if unit is None:
        errors.append(_msg(ctx, f"{prop}.unit", "may not be null"))
    return errors


def _duration(v: object, ctx: str, prop: str) -> Sampling | None:
    """A property holding a ``Duration``: bound, then validated on its own (every violation)."""
    bound = bind_duration(v, ctx)
    if bound is None:
        return None
    errors = duration_violations(bound, ctx, prop)
    if errors:
        raise InvalidQuery(*errors)
    value, unit = bound
    assert unit is not None
    return Sampling(value, unit)


_SETTER_FAILED = "Call to {cls}:{setter} failed with message: null"


def _thresholds(v: object, ctx: str, cls: str) -> list[tuple[float, str]]:
    """``Threshold[]``, sorted the way ``ScoreAggregator.setThresholds`` sorts them.

    A boundary other than exactly ``superior``/``inferior`` is null in Java, which compares
    like ``superior`` except that an equal value makes Java fail (500); Kairos uses ``superior``.
    """
    if v is None:
        raise InvalidQuery(_SETTER_FAILED.format(cls=cls, setter="setThresholds"))
    if not isinstance(v, list):
        raise _expected("BEGIN_ARRAY", v, "$")
    out: list[tuple[float, str]] = []
    for i, t in enumerate(v):
        if t is None:  # Arrays.sort meets a null element
            raise InvalidQuery(_SETTER_FAILED.format(cls=cls, setter="setThresholds"))
        if not isinstance(t, dict):
            raise _expected("BEGIN_OBJECT", t, f"$[{i}]")
        value, boundary = 0.0, "superior"
        for k, x in t.items():
            if k == "value":
                d = gson_double(x, f"$[{i}].value")
                if d is not None:
                    value = d
            elif k == "boundary":
                boundary = (
                    _enum_lower_case(x, f"$[{i}].boundary", ("superior", "inferior")) or "superior"
                )
        out.append((value, boundary))
    # Threshold.compareTo: by value; on equal values an inferior boundary sorts first.
    out.sort(key=lambda th: (th[0], th[1] != "inferior"))
    return out


def _string_map(v: object, ctx: str, prop: str) -> dict[str, str] | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _expected("BEGIN_OBJECT", v, "$")
    out = {}
    for k, x in v.items():
        s = gson_string(x, f"$.{k}")
        if s is None:
            raise InvalidQuery(_msg(ctx, f"{prop}.{k}", "may not be null"))
        out[k] = s
    return out


def _list(v: object, ctx: str, prop: str, convert: Callable[[object, str], Any]) -> list | None:
    """A Java array or ``List`` property (``tags``, ``bins``); null elements are refused."""
    if v is None:
        return None
    if not isinstance(v, list):
        raise _expected("BEGIN_ARRAY", v, "$")
    out = []
    for i, x in enumerate(v):
        item = convert(x, f"$[{i}]")
        if item is None:
            raise InvalidQuery(_msg(ctx, f"{prop}[{i}]", "may not be null"))
        out.append(item)
    return out


def _filter_threshold(v: object, ctx: str) -> float | str | None:
    """Core ``FilterAggregator``'s ``Object`` threshold, as KairosDB reads it.

    ``FilterAggregator.java`` declares ``private Object m_threshold`` (line 128) with
    ``setThreshold(Object)`` (lines 140-143); ``QueryParser.deserializeProperties`` calls
    ``m_gson.fromJson(prop.getValue(), pd.getPropertyType())`` (``QueryParser.java`` lines
    499-504), and no type adapter is registered for ``Object`` (lines 82-94), so Gson's
    ``ObjectTypeAdapter`` turns a JSON number into a ``Double`` and a JSON string -- ``"10"``
    included -- into a ``String``.  ``FilterOperation.filterData`` (lines 85-100) then compares
    a string threshold with string points only and removes every point of another type.

    Java would silently drop every point for a boolean, array or object threshold; Kairos
    refuses it.  (The extensions' ``filter``, chosen by ``filter_indeterminate_inclusion``,
    has a ``double`` threshold instead: see ``_filter_bean``.)
    """
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    raise InvalidQuery(_msg(ctx, "threshold", "must be a number or a string"))


def _group_bys(v: object, cls: str) -> None:
    """``SaveAsAggregator.setGroupBys(List<GroupBy>)``: Gson cannot build an interface."""
    if v is None:
        raise InvalidQuery(_SETTER_FAILED.format(cls=cls, setter="setGroupBys"))
    if not isinstance(v, list):
        raise _expected("BEGIN_ARRAY", v, "$")
    if any(x is not None for x in v):
        raise InvalidQuery(
            "Unable to invoke no-args constructor for interface org.kairosdb.plugin.GroupBy. "
            "Registering an InstanceCreator with Gson for this type may fix this problem."
        )


# -- beans ---------------------------------------------------------------------------------------

# A converter takes (JSON value, processor context, property name, Java class name).
Converter = Callable[[object, str, str, str], object]

_KINDS: dict[str, Converter] = {
    "bool": lambda v, c, p, k: gson_bool(v),
    "int": lambda v, c, p, k: gson_int(v),
    "long": lambda v, c, p, k: gson_long(v),
    "double": lambda v, c, p, k: gson_double(v),
    "string": lambda v, c, p, k: gson_string(v),
    "zone": lambda v, c, p, k: check_time_zone(v, c),
    "unit": lambda v, c, p, k: _unit(v, c),
    "duration": lambda v, c, p, k: _duration(v, c, p),
    "trim": lambda v, c, p, k: _enum_ignore_case(v, c, ("first", "last", "both")),
    "filter_op": lambda v, c, p, k: _enum_ignore_case(
        v, c, ("lte", "lt", "gte", "gt", "equal", "ne")
    ),
    "inclusion": lambda v, c, p, k: _enum_lower_case(v, "$", ("keep", "discard")),
    "return_type": lambda v, c, p, k: _enum_lower_case(v, "$", ("pos_sd", "neg_sd", "value")),
    "score_order": lambda v, c, p, k: _enum_lower_case(v, "$", ("ascending", "descending")),
    "thresholds": lambda v, c, p, k: _thresholds(v, c, k),
    "threshold": lambda v, c, p, k: _filter_threshold(v, c),
    "string_map": lambda v, c, p, k: _string_map(v, c, p),
    "string_list": lambda v, c, p, k: _list(v, c, p, gson_string),
    "double_list": lambda v, c, p, k: _list(v, c, p, gson_double),
    "group_bys": lambda v, c, p, k: _group_bys(v, k),
    "class": lambda v, c, p, k: None,  # getClass(): read-only
}


@dataclass(frozen=True, slots=True)
class _Bean:
    """One KairosDB processor class: its bean properties (snake_case) and their kinds."""

    java_class: str
    writable: dict[str, str]
    read_only: dict[str, str] = field(default_factory=lambda: {"class": "class"})

    def properties(self, obj: dict, ctx: str, name: str) -> list[tuple[str, Any]]:
        """``QueryParser.deserializeProperties``: convert each property in document order."""
        out = []
        for prop, raw in obj.items():
            if prop == "name":
                continue
            kind = self.writable.get(prop)
            read_only = kind is None
            if read_only:
                kind = self.read_only.get(prop)
            if kind is None:
                raise InvalidQuery(
                    f"Property '{prop}' was specified for object '{name}' but no matching "
                    f"setter was found on 'class {self.java_class}'"
                )
            try:
                value = _KINDS[kind](raw, ctx, prop, self.java_class)
            except NumberFormatError as e:
                raise InvalidQuery(_msg(ctx, prop, str(e))) from None
            if read_only:  # a getter without a setter: the other wording (Class.getName())
                raise InvalidQuery(
                    f"Property '{prop}' was specified for object '{name}' but no matching "
                    f"setter was found on '{self.java_class}'"
                )
            out.append((prop, value))
        return out


_RANGE_PROPS = {
    "sampling": "duration",
    "align_start_time": "bool",
    "align_end_time": "bool",
    "align_sampling": "bool",
    "start_time": "long",
    "end_time": "long",
    "trim": "bool",
    "time_zone": "zone",
}
_RANGE_READ_ONLY = {"class": "class", "_align_sampling": "bool"}  # is_alignSampling()

_RANGE_CLASSES = {
    "apdex": "HistogramApdexAggregator",
    "avg": "AvgAggregator",
    "count": "CountAggregator",
    "dev": "StdAggregator",
    "first": "FirstAggregator",
    "gaps": "DataGapsMarkingAggregator",
    "last": "LastAggregator",
    "least_squares": "LeastSquaresAggregator",
    "max": "MaxAggregator",
    "merge": "HistogramMergeAggregator",
    "min": "MinAggregator",
    "percentile": "PercentileAggregator",
    "sum": "SumAggregator",
}
_RANGE_EXTRA = {
    "apdex": {"target": "double"},
    "merge": {"precision": "int"},
    "percentile": {"percentile": "double"},
    "dev": {"return_type": "return_type", "dev_count": "int"},
}

_AGGREGATOR_BEANS: dict[str, _Bean] = {
    **{
        name: _Bean(
            (_HISTOGRAM_AGG_PKG if cls.startswith("Histogram") else _AGG_PKG) + cls,
            {**_RANGE_PROPS, **_RANGE_EXTRA.get(name, {})},
            _RANGE_READ_ONLY,
        )
        for name, cls in _RANGE_CLASSES.items()
    },
    "diff": _Bean(_AGG_PKG + "DiffAggregator", {}),
    "div": _Bean(_AGG_PKG + "DivideAggregator", {"divisor": "double"}),
    "filter": _Bean(
        _AGG_PKG + "FilterAggregator", {"filter_op": "filter_op", "threshold": "threshold"}
    ),
    "movingWindow": _Bean(
        _HISTOGRAM_AGG_PKG + "MovingWindowAggregator", _RANGE_PROPS, _RANGE_READ_ONLY
    ),
    "percent_remaining": _Bean(_HISTOGRAM_AGG_PKG + "HistogramPercentRemainingAggregator", {}),
    "rate": _Bean(
        _AGG_PKG + "RateAggregator", {"sampling": "duration", "unit": "unit", "time_zone": "zone"}
    ),
    "sampler": _Bean(_AGG_PKG + "SamplerAggregator", {"unit": "unit", "time_zone": "zone"}),
    "save_as": _Bean(
        _AGG_PKG + "SaveAsAggregator",
        {
            "add_saved_from": "bool",
            "metric_name": "string",
            "tags": "string_map",
            "ttl": "int",
            "group_bys": "group_bys",
        },
        {"class": "class", "tags_to_keep": "string_list"},
    ),
    "scale": _Bean(_AGG_PKG + "ScaleAggregator", {"factor": "double"}),
    "score": _Bean(
        _AGG_PKG + "ScoreAggregator", {"thresholds": "thresholds", "order": "score_order"}
    ),
    "sma": _Bean(_AGG_PKG + "SmaAggregator", {"size": "int"}),
    "trim": _Bean(_AGG_PKG + "TrimAggregator", {"trim": "trim"}),
}

# kairosdb-extensions' DelegatingFilterAggregator, which replaces the core filter where the
# plugin is installed: its threshold is a primitive ``double`` (``setThreshold(double)``), so
# Gson reads a JSON string as ``Double.parseDouble`` does ("10" -> 10.0, "abc" -> 400), and it
# adds ``filter_indeterminate_inclusion``.  Only a request naming that property can have been
# written for it; any other ``filter`` gets the core bean.
_DELEGATING_FILTER = _Bean(
    _HISTOGRAM_AGG_PKG + "DelegatingFilterAggregator",
    {
        "filter_op": "filter_op",
        "threshold": "double",
        "filter_indeterminate_inclusion": "inclusion",
    },
)


def _filter_bean(item: dict) -> _Bean:
    if "filter_indeterminate_inclusion" in item:
        return _DELEGATING_FILTER
    return _AGGREGATOR_BEANS["filter"]


_GROUP_BY_BEANS: dict[str, _Bean] = {
    "tag": _Bean(
        _GROUP_BY_PKG + "TagGroupBy",
        {"tags": "string_list", "start_date": "long"},
        {"class": "class", "tag_names": "string_list"},
    ),
    "time": _Bean(
        _GROUP_BY_PKG + "TimeGroupBy",
        {"range_size": "duration", "group_count": "int", "start_date": "long"},
    ),
    "value": _Bean(_GROUP_BY_PKG + "ValueGroupBy", {"range_size": "int", "start_date": "long"}),
    "bin": _Bean(_GROUP_BY_PKG + "BinGroupBy", {"bins": "double_list", "start_date": "long"}),
}


def _violations(*checks: tuple[bool, str]) -> None:
    """Bean validation: every failing constraint of the bean, in field declaration order."""
    errors = [message for failed, message in checks if failed]
    if errors:
        raise InvalidQuery(*errors)


# -- aggregators ---------------------------------------------------------------------------------


def _range(name: str, props: list[tuple[str, Any]], ctx: str, tz: str | None) -> RangeAgg:
    agg = RangeAgg(name=name, time_zone=tz)
    if name == "percentile":
        agg.percentile = 0.0
    sampling: Sampling | None = agg.sampling
    for prop, v in props:
        if prop == "sampling":
            sampling = v  # null fails validation below
        elif prop == "time_zone":
            agg.time_zone = v if v is not None else "UTC"  # null: the JVM zone (UTC)
        elif prop == "return_type":
            agg.return_type = v if v is not None else "value"  # null behaves as "value"
        elif v is not None:
            setattr(agg, prop, v)
    _violations(
        (sampling is None, _msg(ctx, "m_sampling", "may not be null")),
        (name == "percentile" and agg.percentile == 0, _msg(ctx, "percentile", "may not be zero")),
        # The plugin's @Min(1) @Max(52) precision and @Min(0) target (NaN refused too).
        (
            name == "merge" and agg.precision < 1,
            _msg(ctx, "precision", "must be greater than or equal to 1"),
        ),
        (
            name == "merge" and agg.precision > 52,
            _msg(ctx, "precision", "must be less than or equal to 52"),
        ),
        (
            name == "apdex" and not agg.target >= 0,
            _msg(ctx, "target", "must be greater than or equal to 0"),
        ),
    )
    assert sampling is not None
    agg.sampling = sampling
    return agg


def _pair(name: str, props: list[tuple[str, Any]], tz: str | None) -> PairAgg:
    agg = PairAgg(name=name, time_zone=tz if name != "diff" else None)
    for prop, v in props:
        if prop == "time_zone":
            agg.time_zone = v if v is not None else "UTC"
        elif prop == "unit" and v is not None:
            agg.sampling = Sampling(1, v)
        elif prop == "sampling" and v is not None:
            agg.sampling = v
        # null sampling/unit: Java stores it and fails with a 500 on the first pair of
        # points; Kairos keeps the previous sampling (Grafana sends "unit": null).
    return agg


def _values(props: list[tuple[str, Any]]) -> dict[str, object]:
    """Last value of each property, JSON nulls left out (the default stays)."""
    return {p: v for p, v in props if v is not None}


def _build_aggregator(
    name: str, props: list[tuple[str, Any]], ctx: str, tz: str | None
) -> Aggregator:
    if name in RANGE_AGGREGATORS:
        return _range(name, props, ctx, tz)
    if name in ("rate", "sampler", "diff"):
        return _pair(name, props, tz)
    v = _values(props)
    if name == "div":
        divisor = float(v.get("divisor", 0.0))
        _violations((divisor == 0, _msg(ctx, "m_divisor", "may not be zero")))
        return DivAgg(divisor=divisor)
    if name == "scale":
        return ScaleAgg(factor=float(v.get("factor", 0.0)))
    if name == "score":
        given = dict(props)
        order = given.get("order", "ascending")
        thresholds = v.get("thresholds")
        _violations(
            (thresholds is None, _msg(ctx, "thresholds", "may not be null")),
            (order is None, _msg(ctx, "order", "may not be null")),
        )
        return ScoreAgg(thresholds=thresholds, order=order)
    if name == "filter":
        # Java leaves a missing filter_op null and fails with a 500 once data arrives; the
        # extensions' DelegatingFilterAggregator starts from EQUAL (an explicit null stays).
        given = dict(props)
        if "filter_indeterminate_inclusion" in given and "filter_op" not in given:
            v["filter_op"] = "equal"
        _violations(("filter_op" not in v, _msg(ctx, "filter_op", "may not be null")))
        # FilterIndeterminate goes through LowercaseEnumTypeAdapterFactory: only "keep" and
        # "discard" name a constant, anything else (null, "KEEP") leaves it null, which the
        # bin filter refuses once a histogram needs it (kairos.query.histograms.filter_bins).
        return FilterAgg(
            op=v["filter_op"],
            threshold=v.get("threshold", 0.0),
            inclusion=given.get("filter_indeterminate_inclusion", "keep"),
        )
    if name == "movingWindow":
        given = dict(props)
        sampling = v.get("sampling", Sampling())
        _violations(
            (
                "sampling" in given and given["sampling"] is None,
                _msg(ctx, "m_sampling", "may not be null"),
            ),
            # A zero-width window holds no point: Java's first next() throws
            # NoSuchElementException (a 500) as soon as the group has data.
            (sampling.value == 0, _msg(ctx, "sampling.value", "must be greater than 0")),
        )
        return MovingWindowAgg(
            sampling=sampling,
            align_sampling=v.get("align_sampling", False),
            start_time=v.get("start_time"),
            time_zone=(
                "UTC"
                if "time_zone" in given and given["time_zone"] is None
                else v.get("time_zone", tz)
            ),
        )
    if name == "percent_remaining":
        return PercentRemainingAgg()
    if name == "trim":
        return TrimAgg(trim=dict(props).get("trim"))
    if name == "sma":
        return SmaAgg(size=v.get("size", 0))  # 0 fails at run time
    assert name == "save_as"
    # Java publishes points under a null name and fails at run time; Kairos refuses it.
    _violations(("metric_name" not in v, _msg(ctx, "metric_name", "may not be null")))
    return SaveAsAgg(
        metric_name=v["metric_name"],
        tags=v.get("tags", {}),
        ttl=v.get("ttl", 0),
        add_saved_from=v.get("add_saved_from", True),
    )


def _processor_name(item: object, ctx: str, family: str, j: int) -> str:
    """``name``, or ``<ctx>.<family>[j] must have a name`` (missing, null or empty)."""
    name = java_string(item.get("name")) if isinstance(item, dict) else None
    if not name:
        raise InvalidQuery(_msg(ctx, f"{family}[{j}]", "must have a name"))
    return name


def parse_aggregators(raw: list, ctx: str, query_time_zone: str | None) -> list[Aggregator]:
    """Typed aggregators of one metric, in query order.

    Parameters
    ----------
    raw : list
        The metric's decoded ``aggregators`` array.
    ctx : str
        The metric's message context, e.g. ``query.metric[0]``.
    query_time_zone : str or None
        The query's validated ``time_zone`` (``None``: not given); copied into the range and
        rate/sampler aggregators unless they name their own.

    Raises
    ------
    InvalidQuery
        With KairosDB's message for the first failing aggregator.
    """
    tz = "UTC" if query_time_zone == "" else query_time_zone
    out: list[Aggregator] = []
    for j, item in enumerate(raw):
        name = _processor_name(item, ctx, "aggregators", j)
        qctx = f"{ctx}.aggregators[{j}]"
        bean = _AGGREGATOR_BEANS.get(name)
        if bean is None:
            raise InvalidQuery(_msg(qctx, name, "invalid aggregators name"))
        assert isinstance(item, dict)
        if name == "filter":
            bean = _filter_bean(item)
        out.append(_build_aggregator(name, bean.properties(item, qctx, name), qctx, tz))
    return out


# -- group-bys ---------------------------------------------------------------------------------


def _build_group_by(name: str, props: list[tuple[str, Any]], ctx: str) -> GroupBy:
    given = dict(props)
    v = _values(props)
    if name == "tag":
        tags = given.get("tags")
        _violations(
            (tags is None, _msg(ctx, "tags", "may not be null")),
            (tags == [], _msg(ctx, "tags", "may not be empty")),
        )
        return TagGroupBy(tags=tags)
    if name == "time":
        range_size = given.get("range_size")
        group_count = v.get("group_count", 0)
        _violations(
            (range_size is None, _msg(ctx, "rangeSize", "may not be null")),
            (group_count < 1, _msg(ctx, "groupCount", "must be greater than or equal to 1")),
        )
        return TimeGroupBy(
            range_size=range_size,
            group_count=group_count,
            start_date=v.get("start_date"),
        )
    if name == "value":
        range_size = v.get("range_size", 0)
        _violations((range_size < 1, _msg(ctx, "rangeSize", "must be greater than or equal to 1")))
        return ValueGroupBy(range_size=range_size)
    assert name == "bin"
    # Java fails with a 500 on the first numeric point when bins is missing or empty.
    bins = given.get("bins")
    _violations(
        (bins is None, _msg(ctx, "bins", "may not be null")),
        (bins == [], _msg(ctx, "bins", "may not be empty")),
    )
    return BinGroupBy(bins=bins)


def parse_group_by(raw: list, ctx: str) -> list[GroupBy]:
    """Typed group-bys of one metric, in query order.

    Every ``tag`` group-by is kept; the engine groups by the first one only, as KairosDB does.

    Raises
    ------
    InvalidQuery
        With KairosDB's message for the first failing group-by.
    """
    out: list[GroupBy] = []
    for j, item in enumerate(raw):
        name = _processor_name(item, ctx, "group_by", j)
        qctx = f"{ctx}.group_by[{j}]"
        bean = _GROUP_BY_BEANS.get(name)
        if bean is None:
            raise InvalidQuery(_msg(qctx, name, "invalid group_by name"))
        assert isinstance(item, dict)
        out.append(_build_group_by(name, bean.properties(item, qctx, name), qctx))
    return out


def check_plugins(raw: list, ctx: str) -> None:
    """Query or metric ``plugins``: none is registered, so any named plugin is invalid.

    ``ctx`` is ``""`` for the query-level array (KairosDB then prints ``plugins[0] ...`` and
    ``.plugins[0].<name> ...``) or the metric context.
    """
    for i, item in enumerate(raw):
        name = _processor_name(item, ctx, "plugins", i)
        raise InvalidQuery(_msg(f"{ctx}.plugins[{i}]", name, "invalid query plugin name"))
