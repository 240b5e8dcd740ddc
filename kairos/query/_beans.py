"""KairosDB's processor beans: each aggregator and group-by class, its properties and how Gson
converts each one (``QueryParser.deserializeProperties``).

A :class:`Bean` walks a processor's JSON object in document order and converts every property
with the converter of its kind (:data:`KINDS`)::

    property -> no setter  -> "Property '<p>' was specified for object '<name>' but no ..."
             -> converter  -> the Java value, or Gson's / Java's exception text
                              (a value object is validated on its own: "<ctx>.sampling.value ...")

:func:`violations` is the bean validation that follows (every failing constraint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kairos.errors import InvalidQuery
from kairos.model.java import gson_as_string
from kairos.query._gson import (
    NumberFormatError,
    bean_message,
    bind_duration,
    check_time_zone,
    duration_violations,
    enum_ignore_case,
    enum_lower_case,
    expected_but_was,
    gson_bool,
    gson_double,
    gson_int,
    gson_long,
    gson_string,
    time_unit,
)
from kairos.query.spec import Sampling

__all__ = [
    "AGGREGATOR_BEANS",
    "GROUP_BY_BEANS",
    "KINDS",
    "Bean",
    "filter_bean",
    "processor_name",
    "violations",
]

_AGG_PKG = "org.kairosdb.core.aggregator."
_HISTOGRAM_AGG_PKG = "io.inscopemetrics.kairosdb.aggregators."  # the kairosdb-histograms plugin
_GROUP_BY_PKG = "org.kairosdb.core.groupby."


# -- compound property values ------------------------------------------------------------------


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
        raise expected_but_was("BEGIN_ARRAY", v, "$")
    out: list[tuple[float, str]] = []
    for i, t in enumerate(v):
        if t is None:  # Arrays.sort meets a null element
            raise InvalidQuery(_SETTER_FAILED.format(cls=cls, setter="setThresholds"))
        if not isinstance(t, dict):
            raise expected_but_was("BEGIN_OBJECT", t, f"$[{i}]")
        value, boundary = 0.0, "superior"
        for k, x in t.items():
            if k == "value":
                d = gson_double(x, f"$[{i}].value")
                if d is not None:
                    value = d
            elif k == "boundary":
                boundary = (
                    enum_lower_case(x, f"$[{i}].boundary", ("superior", "inferior")) or "superior"
                )
        out.append((value, boundary))
    # Threshold.compareTo: by value; on equal values an inferior boundary sorts first.
    out.sort(key=lambda th: (th[0], th[1] != "inferior"))
    return out


def _string_map(v: object, ctx: str, prop: str) -> dict[str, str] | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise expected_but_was("BEGIN_OBJECT", v, "$")
    out = {}
    for k, x in v.items():
        s = gson_string(x, f"$.{k}")
        if s is None:
            raise InvalidQuery(bean_message(ctx, f"{prop}.{k}", "may not be null"))
        out[k] = s
    return out


def _list(v: object, ctx: str, prop: str, convert: Callable[[object, str], Any]) -> list | None:
    """A Java array or ``List`` property (``tags``, ``bins``); null elements are refused."""
    if v is None:
        return None
    if not isinstance(v, list):
        raise expected_but_was("BEGIN_ARRAY", v, "$")
    out = []
    for i, x in enumerate(v):
        item = convert(x, f"$[{i}]")
        if item is None:
            raise InvalidQuery(bean_message(ctx, f"{prop}[{i}]", "may not be null"))
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
    has a ``double`` threshold instead: see ``filter_bean``.)
    """
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    raise InvalidQuery(bean_message(ctx, "threshold", "must be a number or a string"))


def _group_bys(v: object, cls: str) -> None:
    """``SaveAsAggregator.setGroupBys(List<GroupBy>)``: Gson cannot build an interface."""
    if v is None:
        raise InvalidQuery(_SETTER_FAILED.format(cls=cls, setter="setGroupBys"))
    if not isinstance(v, list):
        raise expected_but_was("BEGIN_ARRAY", v, "$")
    if any(x is not None for x in v):
        raise InvalidQuery(
            "Unable to invoke no-args constructor for interface org.kairosdb.plugin.GroupBy. "
            "Registering an InstanceCreator with Gson for this type may fix this problem."
        )


# -- beans ---------------------------------------------------------------------------------------

# A converter takes (JSON value, processor context, property name, Java class name).
Converter = Callable[[object, str, str, str], object]

KINDS: dict[str, Converter] = {
    "bool": lambda v, c, p, k: gson_bool(v),
    "int": lambda v, c, p, k: gson_int(v),
    "long": lambda v, c, p, k: gson_long(v),
    "double": lambda v, c, p, k: gson_double(v),
    "string": lambda v, c, p, k: gson_string(v),
    "zone": lambda v, c, p, k: check_time_zone(v, c),
    "unit": lambda v, c, p, k: time_unit(v, c),
    "duration": lambda v, c, p, k: _duration(v, c, p),
    "trim": lambda v, c, p, k: enum_ignore_case(v, c, ("first", "last", "both")),
    "filter_op": lambda v, c, p, k: enum_ignore_case(
        v, c, ("lte", "lt", "gte", "gt", "equal", "ne")
    ),
    "inclusion": lambda v, c, p, k: enum_lower_case(v, "$", ("keep", "discard")),
    "return_type": lambda v, c, p, k: enum_lower_case(v, "$", ("pos_sd", "neg_sd", "value")),
    "score_order": lambda v, c, p, k: enum_lower_case(v, "$", ("ascending", "descending")),
    "thresholds": lambda v, c, p, k: _thresholds(v, c, k),
    "threshold": lambda v, c, p, k: _filter_threshold(v, c),
    "string_map": lambda v, c, p, k: _string_map(v, c, p),
    "string_list": lambda v, c, p, k: _list(v, c, p, gson_string),
    "double_list": lambda v, c, p, k: _list(v, c, p, gson_double),
    "group_bys": lambda v, c, p, k: _group_bys(v, k),
    "class": lambda v, c, p, k: None,  # getClass(): read-only
}


@dataclass(frozen=True, slots=True)
class Bean:
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
                value = KINDS[kind](raw, ctx, prop, self.java_class)
            except NumberFormatError as e:
                raise InvalidQuery(bean_message(ctx, prop, str(e))) from None
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

AGGREGATOR_BEANS: dict[str, Bean] = {
    **{
        name: Bean(
            (_HISTOGRAM_AGG_PKG if cls.startswith("Histogram") else _AGG_PKG) + cls,
            {**_RANGE_PROPS, **_RANGE_EXTRA.get(name, {})},
            _RANGE_READ_ONLY,
        )
        for name, cls in _RANGE_CLASSES.items()
    },
    "diff": Bean(_AGG_PKG + "DiffAggregator", {}),
    "div": Bean(_AGG_PKG + "DivideAggregator", {"divisor": "double"}),
    "filter": Bean(
        _AGG_PKG + "FilterAggregator", {"filter_op": "filter_op", "threshold": "threshold"}
    ),
    "movingWindow": Bean(
        _HISTOGRAM_AGG_PKG + "MovingWindowAggregator", _RANGE_PROPS, _RANGE_READ_ONLY
    ),
    "percent_remaining": Bean(_HISTOGRAM_AGG_PKG + "HistogramPercentRemainingAggregator", {}),
    "rate": Bean(
        _AGG_PKG + "RateAggregator", {"sampling": "duration", "unit": "unit", "time_zone": "zone"}
    ),
    "sampler": Bean(_AGG_PKG + "SamplerAggregator", {"unit": "unit", "time_zone": "zone"}),
    "save_as": Bean(
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
    "scale": Bean(_AGG_PKG + "ScaleAggregator", {"factor": "double"}),
    "score": Bean(
        _AGG_PKG + "ScoreAggregator", {"thresholds": "thresholds", "order": "score_order"}
    ),
    "sma": Bean(_AGG_PKG + "SmaAggregator", {"size": "int"}),
    "trim": Bean(_AGG_PKG + "TrimAggregator", {"trim": "trim"}),
}

# kairosdb-extensions' DelegatingFilterAggregator, which replaces the core filter where the
# plugin is installed: its threshold is a primitive ``double`` (``setThreshold(double)``), so
# Gson reads a JSON string as ``Double.parseDouble`` does ("10" -> 10.0, "abc" -> 400), and it
# adds ``filter_indeterminate_inclusion``.  Only a request naming that property can have been
# written for it; any other ``filter`` gets the core bean.
_DELEGATING_FILTER = Bean(
    _HISTOGRAM_AGG_PKG + "DelegatingFilterAggregator",
    {
        "filter_op": "filter_op",
        "threshold": "double",
        "filter_indeterminate_inclusion": "inclusion",
    },
)


def filter_bean(item: dict) -> Bean:
    if "filter_indeterminate_inclusion" in item:
        return _DELEGATING_FILTER
    return AGGREGATOR_BEANS["filter"]


GROUP_BY_BEANS: dict[str, Bean] = {
    "tag": Bean(
        _GROUP_BY_PKG + "TagGroupBy",
        {"tags": "string_list", "start_date": "long"},
        {"class": "class", "tag_names": "string_list"},
    ),
    "time": Bean(
        _GROUP_BY_PKG + "TimeGroupBy",
        {"range_size": "duration", "group_count": "int", "start_date": "long"},
    ),
    "value": Bean(_GROUP_BY_PKG + "ValueGroupBy", {"range_size": "int", "start_date": "long"}),
    "bin": Bean(_GROUP_BY_PKG + "BinGroupBy", {"bins": "double_list", "start_date": "long"}),
}


def violations(*checks: tuple[bool, str]) -> None:
    """Bean validation: every failing constraint of the bean, in field declaration order."""
    errors = [message for failed, message in checks if failed]
    if errors:
        raise InvalidQuery(*errors)


def processor_name(item: object, ctx: str, family: str, j: int) -> str:
    """``name``, or ``<ctx>.<family>[j] must have a name`` (missing, null or empty)."""
    name = gson_as_string(item.get("name")) if isinstance(item, dict) else None
    if not name:
        raise InvalidQuery(bean_message(ctx, f"{family}[{j}]", "must have a name"))
    return name
