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

Values are converted the way Gson 2.8 converts a JSON tree (:mod:`kairos.query._gson`),
property by property as each KairosDB class declares them (:mod:`kairos.query._beans`); this
module builds the typed specs from the converted values and runs the beans' validation.

Where Java answers a malformed entry with a 500 (a ``NullPointerException`` at run time, a
reflection error), Kairos answers 400 instead.  A JSON ``null`` keeps the property's default,
except where Java gives a 400 for it (``sampling``, ``tags``, ``range_size``, ``thresholds``,
``score.order``) or a meaning (``time_zone``: the JVM zone, i.e. UTC; ``trim``: none).
"""

from __future__ import annotations

from typing import Any

from kairos.errors import InvalidQuery
from kairos.query._beans import (
    AGGREGATOR_BEANS,
    GROUP_BY_BEANS,
    filter_bean,
    processor_name,
    violations,
)
from kairos.query._gson import bean_message
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

__all__ = ["check_plugins", "parse_aggregators", "parse_group_by"]


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
    violations(
        (sampling is None, bean_message(ctx, "m_sampling", "may not be null")),
        (
            name == "percentile" and agg.percentile == 0,
            bean_message(ctx, "percentile", "may not be zero"),
        ),
        # The plugin's @Min(1) @Max(52) precision and @Min(0) target (NaN refused too).
        (
            name == "merge" and agg.precision < 1,
            bean_message(ctx, "precision", "must be greater than or equal to 1"),
        ),
        (
            name == "merge" and agg.precision > 52,
            bean_message(ctx, "precision", "must be less than or equal to 52"),
        ),
        (
            name == "apdex" and not agg.target >= 0,
            bean_message(ctx, "target", "must be greater than or equal to 0"),
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


def _values(props: list[tuple[str, Any]]) -> dict[str, Any]:
    """Last value of each property, JSON nulls left out (the default stays); each already of
    its bean's type (``_beans``)."""
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
        violations((divisor == 0, bean_message(ctx, "m_divisor", "may not be zero")))
        return DivAgg(divisor=divisor)
    if name == "scale":
        return ScaleAgg(factor=float(v.get("factor", 0.0)))
    if name == "score":
        given = dict(props)
        order = given.get("order", "ascending")
        thresholds = v.get("thresholds")
        violations(
            (thresholds is None, bean_message(ctx, "thresholds", "may not be null")),
            (order is None, bean_message(ctx, "order", "may not be null")),
        )
        assert thresholds is not None  # violations() raised for null
        return ScoreAgg(thresholds=thresholds, order=order)
    if name == "filter":
        # Java leaves a missing filter_op null and fails with a 500 once data arrives; the
        # extensions' DelegatingFilterAggregator starts from EQUAL (an explicit null stays).
        given = dict(props)
        if "filter_indeterminate_inclusion" in given and "filter_op" not in given:
            v["filter_op"] = "equal"
        violations(("filter_op" not in v, bean_message(ctx, "filter_op", "may not be null")))
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
        violations(
            (
                "sampling" in given and given["sampling"] is None,
                bean_message(ctx, "m_sampling", "may not be null"),
            ),
            # A zero-width window holds no point: Java's first next() throws
            # NoSuchElementException (a 500) as soon as the group has data.
            (sampling.value == 0, bean_message(ctx, "sampling.value", "must be greater than 0")),
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
    violations(("metric_name" not in v, bean_message(ctx, "metric_name", "may not be null")))
    return SaveAsAgg(
        metric_name=v["metric_name"],
        tags=v.get("tags", {}),
        ttl=v.get("ttl", 0),
        add_saved_from=v.get("add_saved_from", True),
    )


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
        name = processor_name(item, ctx, "aggregators", j)
        qctx = f"{ctx}.aggregators[{j}]"
        bean = AGGREGATOR_BEANS.get(name)
        if bean is None:
            raise InvalidQuery(bean_message(qctx, name, "invalid aggregators name"))
        assert isinstance(item, dict)
        if name == "filter":
            bean = filter_bean(item)
        out.append(_build_aggregator(name, bean.properties(item, qctx, name), qctx, tz))
    return out


# -- group-bys ---------------------------------------------------------------------------------


def _build_group_by(name: str, props: list[tuple[str, Any]], ctx: str) -> GroupBy:
    given = dict(props)
    v = _values(props)
    if name == "tag":
        tags = given.get("tags")
        violations(
            (tags is None, bean_message(ctx, "tags", "may not be null")),
            (tags == [], bean_message(ctx, "tags", "may not be empty")),
        )
        assert tags is not None  # violations() raised for null
        return TagGroupBy(tags=tags)
    if name == "time":
        range_size = given.get("range_size")
        group_count = v.get("group_count", 0)
        violations(
            (range_size is None, bean_message(ctx, "rangeSize", "may not be null")),
            (
                group_count < 1,
                bean_message(ctx, "groupCount", "must be greater than or equal to 1"),
            ),
        )
        assert range_size is not None  # violations() raised for null
        return TimeGroupBy(
            range_size=range_size,
            group_count=group_count,
            start_date=v.get("start_date"),
        )
    if name == "value":
        range_size = v.get("range_size", 0)
        violations(
            (range_size < 1, bean_message(ctx, "rangeSize", "must be greater than or equal to 1"))
        )
        return ValueGroupBy(range_size=range_size)
    assert name == "bin"
    # Java fails with a 500 on the first numeric point when bins is missing or empty.
    bins = given.get("bins")
    violations(
        (bins is None, bean_message(ctx, "bins", "may not be null")),
        (bins == [], bean_message(ctx, "bins", "may not be empty")),
    )
    assert bins is not None  # violations() raised for null
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
        name = processor_name(item, ctx, "group_by", j)
        qctx = f"{ctx}.group_by[{j}]"
        bean = GROUP_BY_BEANS.get(name)
        if bean is None:
            raise InvalidQuery(bean_message(qctx, name, "invalid group_by name"))
        assert isinstance(item, dict)
        out.append(_build_group_by(name, bean.properties(item, qctx, name), qctx))
    return out


def check_plugins(raw: list, ctx: str) -> None:
    """Query or metric ``plugins``: none is registered, so any named plugin is invalid.

    ``ctx`` is ``""`` for the query-level array (KairosDB then prints ``plugins[0] ...`` and
    ``.plugins[0].<name> ...``) or the metric context.
    """
    for i, item in enumerate(raw):
        name = processor_name(item, ctx, "plugins", i)
        raise InvalidQuery(bean_message(f"{ctx}.plugins[{i}]", name, "invalid query plugin name"))
