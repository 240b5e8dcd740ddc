"""Feature metadata: what ``/api/v1/features`` says about aggregators and group-bys (spec §4.9).

KairosDB builds this document by reflection over the ``@FeatureComponent`` / ``@FeatureProperty``
/ ``@FeatureCompoundProperty`` annotations of its processor classes and serialises it with a
default ``Gson``.  The annotations are transcribed here as data; :func:`_processor` and
:func:`_property` apply the rules KairosDB's reflection applies:

* a component label defaults to its name split on ``_``, each word capitalised;
* a property's name has a leading ``m_`` stripped (done in the data below), its type is the
  annotation's or the Java field's (``enum`` for enum fields, whose ``options`` are then the
  constant names, ``array`` for arrays and collections), its default the annotation's or the
  Java default of the field type (``0``, ``0.0``, ``false``, ``""``, ``[]``);
* validations come out in reverse annotation order;
* properties are sorted by label, compound sub-properties in their explicit order;
* processors are sorted by name inside a feature (``/features/{feature}``) and then again by
  label when wrapped in the feature list (``/features``) -- the two orders differ for
  ``SCORE``/``SMA``/``Sampler``...;
* Gson omits null fields and HTML-escapes ``<``, ``>``, ``&``, ``=`` and ``'`` as ``\\u003c``
  etc.

The encoded documents are built once and cached: they never change at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import orjson

from kairos.model.java import TIME_UNITS, java_key

__all__ = ["FEATURES", "feature_json", "features_json"]


@dataclass(frozen=True, slots=True)
class Validation:
    expression: str
    message: str
    type: str = "js"


@dataclass(frozen=True, slots=True)
class Prop:
    """One ``@FeatureProperty``, with the values KairosDB's reflection resolves."""

    name: str
    label: str
    description: str
    type: str
    default: str
    options: tuple[str, ...] = ()
    autocomplete: str = ""
    optional: bool = False
    multiline: bool = False
    validations: tuple[Validation, ...] = ()  # annotation order


@dataclass(frozen=True, slots=True)
class Compound:
    """One ``@FeatureCompoundProperty``: an object-valued property with sub-properties."""

    name: str
    label: str
    properties: tuple[Prop, ...]  # the annotation's explicit order


@dataclass(frozen=True, slots=True)
class Component:
    """One ``@FeatureComponent`` (an aggregator or a group-by)."""

    name: str
    description: str
    properties: tuple[Prop | Compound, ...] = ()
    label: str = ""  # empty: derived from the name


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    label: str
    components: tuple[Component, ...]


# -- shared property sets ---------------------------------------------------------------------


# org.kairosdb.core.datastore.Duration (and its subclass aggregator.Sampling).
_DURATION = (
    Prop(
        "value",
        "Value",
        "The number of units for the aggregation buckets",
        "long",
        "1",
        validations=(Validation("value >= 0", "Value must be greater or equal to 0."),),
    ),
    Prop(
        "unit",
        "Unit",
        "The time unit for the sampling rate",
        "enum",
        "MILLISECONDS",
        options=TIME_UNITS,
    ),
)
_SAMPLING = Compound("sampling", "Sampling", _DURATION)

_ALIGN_NOTE = (
    " Note that align_sampling, align_start_time, and align_end_time are mutually exclusive."
    " If more than one are set, unexpected results will occur."
)
# RangeAggregator's annotated fields (align_sampling is not annotated).
_RANGE = (
    _SAMPLING,
    Prop(
        "align_start_time",
        "Align start time",
        "Setting this to true will cause the aggregation range to be aligned based on the"
        " sampling size. For example if your sample size is either milliseconds, seconds,"
        " minutes or hours then the start of the range will always be at the top of the hour."
        " The effect of setting this to true is that your data will take the same shape when"
        " graphed as you refresh the data." + _ALIGN_NOTE,
        "boolean",
        "false",
    ),
    Prop(
        "align_end_time",
        "Align end time",
        "Setting this to true will cause the aggregation range to be aligned based on the"
        " sampling size. For example if your sample size is either milliseconds, seconds,"
        " minutes or hours then the start of the range will always be at the top of the hour."
        " The difference between align_start_time and align_end_time is that align_end_time"
        " sets the timestamp for the datapoint to the beginning of the following period versus"
        " the beginning of the current period. As with align_start_time, setting this to true"
        " will cause your data to take the same shape when graphed as you refresh the data."
        + _ALIGN_NOTE,
        "boolean",
        "false",
    ),
    Prop(
        "trim",
        "Trim",
        " Trim off empty ranges before and after the actual data",
        "boolean",
        "false",
    ),
)


def _gt0(what: str) -> tuple[Validation, ...]:
    return (Validation("value > 0", f"{what} must be greater than 0."),)


AGGREGATORS = (
    Component("avg", "Averages the data points together.", _RANGE, label="AVG"),
    Component("count", "Counts the number of data points.", _RANGE),
    Component("dev", "Calculates the standard deviation of the time series.", _RANGE),
    Component("diff", "Computes the difference between successive data points."),
    Component(
        "div",
        "Divides each data point by a divisor.",
        (
            Prop(
                "divisor",
                "Divisor",
                "The value each data point is divided by.",
                "double",
                "1",
                validations=_gt0("Divisor"),
            ),
        ),
    ),
    Component(
        "filter",
        "Filters datapoints according to filter operation with a null data point.",
        (
            Prop(
                "filter_op",
                "Filter operation",
                "The operation performed for each data point.",
                "enum",
                "equal",
                # The field's enum constants win over the annotation's lower-case options.
                options=("LTE", "LT", "GTE", "GT", "EQUAL", "NE"),
            ),
            Prop(
                "threshold",
                "Threshold",
                "The value the operation is performed on. If the operation is lt, then a null"
                " data point is returned if the data point is less than the threshold.",
                "Object",
                "",
            ),
        ),
    ),
    Component("first", "Returns the first value data point for the time range.", _RANGE),
    Component(
        "gaps", "Marks gaps in data according to sampling rate with a null data point.", _RANGE
    ),
    Component("last", "Returns the last value data point for the time range.", _RANGE),
    Component(
        "least_squares",
        "Returns a best fit line through the datapoints using the least squares algorithm.",
        _RANGE,
    ),
    Component(
        "apdex",
        "Computes the Apdex score of histograms: (satisfied + tolerating / 2) / total.",
        (
            *_RANGE,
            Prop(
                "target",
                "Target",
                "Samples at or below the target are satisfied, up to four times it tolerating.",
                "double",
                "1.0",
                validations=(Validation("value >= 0", "Target must be greater or equal to 0."),),
            ),
        ),
    ),
    Component("max", "Returns the maximum value data point for the time range.", _RANGE),
    Component(
        "merge",
        "Merges the histograms of each sampling window into one.",
        (
            *_RANGE,
            Prop(
                "precision",
                "Precision",
                "Mantissa bits kept in the merged bins' keys.",
                "int",
                "52",
                validations=(
                    Validation("value >= 1", "Precision must be at least 1."),
                    Validation("value <= 52", "Precision must be at most 52."),
                ),
            ),
        ),
    ),
    Component("min", "Returns the minimum value data point for the time range.", _RANGE),
    # kairosdb-extensions: MovingWindowAggregator inherits RangeAggregator's annotated fields.
    Component("movingWindow", "Creates a moving window of datapoints", _RANGE),
    Component(
        "percent_remaining",
        "Calculates the percent remaining of the original data points in a histogram",
    ),
    Component(
        "percentile",
        "Finds the percentile of the data range.",
        (
            *_RANGE,
            Prop(
                "percentile",
                "Percentile",
                "Data points returned will be in this percentile.",
                "double",
                "0.1",
                validations=(
                    Validation("value > 0", "Percentile must be greater than 0."),
                    Validation("value < 1", "Percentile must be smaller than 1."),
                ),
            ),
        ),
    ),
    Component("rate", "Computes the rate of change for the data points.", (_SAMPLING,)),
    Component(
        "sampler",
        "Computes the sampling rate of change for the data points.",
        (
            Prop(
                "unit",
                "Time Unit",
                "Time unit of sampling",
                "enum",
                "milliseconds",
                options=TIME_UNITS,
            ),
        ),
    ),
    Component(
        "save_as",
        "Saves the results to a new metric.",
        (
            Prop(
                "metric_name",
                "Save As",
                "The name of the new metric.",
                "String",
                "<new name>",
                validations=(Validation("!value && value.length > 0", "The name can't be empty."),),
            ),
        ),
    ),
    Component(
        "scale",
        "Scales each data point by a factor.",
        (
            Prop(
                "factor",
                "Factor",
                "The value to scale each data point by.",
                "double",
                "0.0",
                validations=_gt0("Factor"),
            ),
        ),
    ),
    Component(
        "score",
        "Scores the data based on a set of thresholds. Each data point will be mapped to a value"
        " between 0 and n where n is the number of thresholds.",
        (
            Prop("thresholds", "Thresholds", "A set of thresholds", "array", "[]"),
            Prop(
                "order",
                "Order",
                "The order by which scores are assigned",
                "enum",
                "ascending",
                options=("ASCENDING", "DESCENDING"),
            ),
        ),
        label="SCORE",
    ),
    Component(
        "sma",
        "Simple moving average.",
        (
            Prop(
                "size",
                "Size",
                "The period of the moving average. This is the number of data point to use each"
                " time the average is calculated.",
                "int",
                "10",
                validations=_gt0("Size"),
            ),
        ),
        label="SMA",
    ),
    Component("sum", "Adds data points together.", _RANGE),
    Component(
        "trim",
        "Trims off the first, last or both (first and last) data points from the results.",
        (
            Prop(
                "trim",
                "Trim",
                "Which data point to trim",
                "enum",
                "both",
                options=("FIRST", "LAST", "BOTH"),
            ),
        ),
    ),
)

GROUP_BYS = (
    Component(
        "bin",
        "Groups data points by bins or buckets.",
        (
            Prop(
                "bins",
                "Bin Values",
                "List of bin values. For example, if the list of bins is 10, 20, 30, then values"
                " less than 10 are placed in the first group, values between 10-19 into the"
                " second group, and so forth.",
                "array",
                "[]",
                validations=(
                    Validation("value.length > 0", "The list can't be empty."),
                    Validation(
                        "value.every((n) => !isNaN(parseFloat(n)) && isFinite(n))",
                        "The list must contain only numbers.",
                    ),
                ),
            ),
        ),
    ),
    Component(
        "tag",
        "Groups data points by tag names.",
        (
            Prop(
                "tags",
                "Tags",
                "A list of tags to group by.",
                "array",
                "[]",
                autocomplete="tags",
                validations=(Validation("value.length > 0", "Tags can't be empty."),),
            ),
        ),
    ),
    Component(
        "time",
        "Groups data points in time ranges.",
        (
            Compound("range_size", "Range Size", _DURATION),
            Prop(
                "group_count",
                "Count",
                "The number of groups. This would typically be 7 to group by day of week.",
                "int",
                "0",
                validations=_gt0("Count"),
            ),
        ),
    ),
    Component(
        "value",
        "Groups data points by value.",
        (
            Prop(
                "range_size",
                "Target Size",
                "The range for each value. For example, if the range size is 10, then values"
                " between 0-9 are placed in the first group, values between 10-19 into the second"
                " group, and so forth.",
                "int",
                "0",
                validations=(
                    Validation("value >= 0", "Target size must be greater or equal than 0."),
                ),
            ),
        ),
    ),
)

# KairosFeatureProcessor's order: group-bys, then aggregators.
FEATURES = (
    Feature("group_by", "Group By", GROUP_BYS),
    Feature("aggregators", "Aggregator", AGGREGATORS),
)


# -- JSON -------------------------------------------------------------------------------------


def _label(c: Component) -> str:
    if c.label:
        return c.label
    return " ".join(w[:1].upper() + w[1:] for w in c.name.lower().split("_"))


def _property(p: Prop | Compound) -> dict:
    # Keys in the Java class's field order, which is Gson's output order.
    if isinstance(p, Compound):
        return {
            "name": p.name,
            "label": p.label,
            "optional": False,
            "type": "Object",
            "multiline": False,
            "properties": [_property(s) for s in p.properties],
        }
    return {
        "name": p.name,
        "label": p.label,
        "description": p.description,
        "optional": p.optional,
        "type": p.type,
        "options": list(p.options),
        "defaultValue": p.default,
        "autocomplete": p.autocomplete,
        "multiline": p.multiline,
        "validations": [
            {"expression": v.expression, "type": v.type, "message": v.message}
            for v in reversed(p.validations)
        ],
    }


def _processor(c: Component) -> dict:
    props = sorted(c.properties, key=lambda p: java_key(p.label))
    return {
        "name": c.name,
        "label": _label(c),
        "description": c.description,
        "properties": [_property(p) for p in props],
    }


def _processors(f: Feature) -> list[dict]:
    return [_processor(c) for c in sorted(f.components, key=lambda c: java_key(c.name))]


# Gson's HTML-safe escaping; these characters only ever occur inside JSON strings.
_GSON_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in "<>&='"}


def _gson(obj: object) -> bytes:
    return orjson.dumps(obj).decode().translate(_GSON_ESCAPES).encode()


@cache
def features_json() -> bytes:
    """The body of ``GET /api/v1/features``: every feature with its processors by label."""
    features: list[dict[str, object]] = [
        {
            "name": f.name,
            "label": f.label,
            "properties": sorted(_processors(f), key=lambda p: java_key(p["label"])),
        }
        for f in FEATURES
    ]
    return _gson(features)


@cache
def _feature_bodies() -> dict[str, bytes]:
    return {f.name.lower(): _gson(_processors(f)) for f in FEATURES}


def feature_json(feature: str) -> bytes | None:
    """The body of ``GET /api/v1/features/{feature}`` (case-insensitive), None if unknown."""
    return _feature_bodies().get(feature.lower())
