"""Query JSON -> typed query: KairosDB's fixtures and messages (spec §3, §4, §9.1), real
client shapes (clients.md §1, §7) and the Java conversion rules behind them."""

from __future__ import annotations

import calendar
import json
from pathlib import Path

import pytest

from kairos.errors import InvalidQuery
from kairos.query._gson import NumberFormatError, java_parse_double, time_zone_ids
from kairos.query.model import Query, parse_query
from kairos.query.parse_aggregators import parse_aggregators, parse_group_by
from kairos.query.spec import (
    BinGroupBy,
    DivAgg,
    FilterAgg,
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

NOW = 1_700_000_000_000
CTX = "query.metric[0]"
UNITS = "MILLISECONDS,SECONDS,MINUTES,HOURS,DAYS,WEEKS,MONTHS,YEARS"
BAD_UNIT = f"is not a valid time unit, must be one of {UNITS}"


def load(fixtures: Path, name: str) -> object:
    text = (fixtures / "unit" / name).read_text()
    return json.loads("\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//")))


def error(doc: object) -> list[str]:
    with pytest.raises(InvalidQuery) as e:
        parse_query(doc, now_ms=NOW)
    assert e.value.status_code == 400
    return e.value.messages


def parse(doc: object) -> Query:
    return parse_query(doc, now_ms=NOW)


def aggs(*raw: dict, tz: str | None = None) -> list:
    return parse_aggregators(list(raw), CTX, tz)


def agg_error(*raw: dict, tz: str | None = None) -> list[str]:
    with pytest.raises(InvalidQuery) as e:
        parse_aggregators(list(raw), CTX, tz)
    return e.value.messages


def gb_error(*raw: dict) -> list[str]:
    with pytest.raises(InvalidQuery) as e:
        parse_group_by(list(raw), CTX)
    return e.value.messages


def zone_message(ctx: str, tz: str) -> str:
    return f"{ctx}.{tz} is not a valid time zone, must be one of [{', '.join(time_zone_ids())}]"


# -- KairosDB's fixtures (spec §9.1) -----------------------------------------------------------

FIXTURE_ERRORS = {
    "invalid-query-metric-absoluteEndTime-less-than-startTime.json": "query.metric[0].end_time must be greater than the start time",
    "invalid-query-metric-relativeEndTime-less-than-startTime.json": "query.metric[0].end_time must be greater than the start time",
    "invalid-query-metric-aggregators-div-divisor-zero.json": "query.metric[0].aggregators[0].m_divisor may not be zero",
    "invalid-query-metric-aggregators-div-no-divisor.json": "query.metric[0].aggregators[0].m_divisor may not be zero",
    "invalid-query-metric-aggregators-empty-name.json": "query.metric[0].aggregators[0] must have a name",
    "invalid-query-metric-aggregators-no-name.json": "query.metric[0].aggregators[0] must have a name",
    "invalid-query-metric-aggregators-percentile-no-percentile.json": "query.metric[0].aggregators[0].percentile may not be zero",
    "invalid-query-metric-aggregators-percentile-percentile-zero.json": "query.metric[0].aggregators[0].percentile may not be zero",
    "invalid-query-metric-aggregators-percentile-percentile.json": "query.metric[0].aggregators[0].percentile multiple points",
    "invalid-query-metric-aggregators-sampling-timezone.json": zone_message("query", "bogus"),
    "invalid-query-metric-aggregators-sampling-unit.json": f"query.metric[0].aggregators[0].bogus {BAD_UNIT}",
    "invalid-query-metric-aggregators-sampling-value.json": "query.metric[0].aggregators[0].sampling.value must be greater than or equal to 0",
    "invalid-query-metric-aggregators.json": "query.metric[0].aggregators[0].bogus invalid aggregators name",
    "invalid-query-metric-cache-time.json": "cache_time must be greater than or equal to 0",
    "invalid-query-metric-empty-name.json": "query.metric[0].name may not be empty",
    "invalid-query-metric-no-name.json": "query.metric[0].name may not be null",
    "invalid-query-metric-group_by-empty-name.json": "query.metric[0].group_by[1] must have a name",
    "invalid-query-metric-group_by-no-name.json": "query.metric[0].group_by[0] must have a name",
    "invalid-query-metric-group_by-tag-empty-tags.json": "query.metric[0].group_by[0].tags may not be empty",
    "invalid-query-metric-group_by-tag-missing-tags.json": "query.metric[0].group_by[0].tags may not be null",
    "invalid-query-metric-group_by-time-missing-group_count.json": "query.metric[0].group_by[0].groupCount must be greater than or equal to 1",
    "invalid-query-metric-group_by-time-missing-range_size.json": "query.metric[0].group_by[0].rangeSize may not be null",
    "invalid-query-metric-group_by-time-range_size_unit.json": f"query.metric[0].group_by[0].bogus {BAD_UNIT}",
    "invalid-query-metric-group_by-time-range_size_value.json": "query.metric[0].group_by[0].range_size.value must be greater than or equal to 0",
    "invalid-query-metric-group_by-value-range_size.json": "query.metric[0].group_by[0].range_size.value must be greater than or equal to 0",
    "invalid-query-metric-group_by.json": "query.metric[0].group_by[0].bogus invalid group_by name",
    "invalid-query-metric-no-metric.json": "query.metric[] must have a size of at least 1",
    "invalid-query-metric-no-start_date.json": "query.metric[0].start_time relative or absolute time must be set",
    "invalid-query-metric-relative-endTime-value.json": "end_relative.value must be greater than or equal to 0",
    "invalid-query-metric-relative-startTime-value.json": "start_relative.value must be greater than or equal to 0",
    "invalid-query-metric-relative-unit.json": f"query.bogus {BAD_UNIT}",
    "invalid-query-metric-tag-empty-name.json": "query.metric[0].tags[0] name must not be empty",
    "invalid-query-metric-tag-empty-value-in-array.json": "query.metric[0].tags[0].host value must not be null or empty",
    "invalid-query-metric-tag-empty-value.json": "query.metric[0].tags[0].host value must not be null or empty",
    "query-metric-null-tag-value.json": "query.metric[0].tags[0].host value must not be null or empty",
    "query-metric-null-tag-value-in-array.json": "query.metric[0].tags[0].host value must not be null or empty",
}
# KairosDB's test-only group-by "simpleTime" (the fixture's second group-by) is not registered
# in a real server, so these parse only once it is taken out (test_simple_time_fixtures).
SIMPLE_TIME = (
    "query-metric-absolute-dates-with-groupby.json",
    "invalid-query-metric-no-aggregators.json",
)
VALID = {
    "invalid-query-metric-aggregators-sum-no-sampling.json",
    "invalid-query-metric-aggregators-empty.json",
    *SIMPLE_TIME,
}
JSON_SYNTAX = {"invalid-query-metric-json.json"}  # rejected by the HTTP layer's JSON decoder


def test_every_query_fixture_is_covered(kairos_fixtures: Path) -> None:
    names = {p.name for p in (kairos_fixtures / "unit").glob("*query-metric*.json")}
    covered = set(FIXTURE_ERRORS) | VALID | JSON_SYNTAX | set(VALID_FIXTURES)
    assert names - covered == set()
    assert covered - names == set()


@pytest.mark.parametrize("name", sorted(FIXTURE_ERRORS))
def test_invalid_fixture_message(kairos_fixtures: Path, name: str) -> None:
    assert error(load(kairos_fixtures, name)) == [FIXTURE_ERRORS[name]]


SUM_1MS = RangeAgg(name="sum", sampling=Sampling(1, "MILLISECONDS"))
SUM_10MIN = RangeAgg(name="sum", sampling=Sampling(10, "MINUTES"))
VALID_FIXTURES = {
    "query-metric-absolute-dates.json": (784041330, 788879730, [SUM_1MS]),
    "query-metric-negative-absolute-dates.json": (-200, -100, [SUM_1MS]),  # value "1"
    "query-metric-no-tags.json": (784041330, 788879730, [SUM_1MS]),
    "query-metric-one-tag.json": (784041330, 788879730, []),
    "query-metric-two-tags.json": (784041330, 788879730, []),
    "query-metric-exclude-tags.json": (784041330, 788879730, []),
    "query-metric-start_absolute-before-epoch.json": (-1, 788879730, []),
    "query-metric-relative-startTime-before-epoch.json": (None, (1 << 63) - 1, [SUM_10MIN]),
}


@pytest.mark.parametrize("name", sorted(VALID_FIXTURES))
def test_valid_fixture(kairos_fixtures: Path, name: str) -> None:
    start, end, aggregators = VALID_FIXTURES[name]
    q = parse(load(kairos_fixtures, name))
    assert len(q.metrics) == 1
    m = q.metrics[0]
    if start is not None:
        assert q.start == start
    else:  # 200 years before NOW (2023-11-14T22:13:20Z), on a UTC calendar
        assert q.start == calendar.timegm((1823, 11, 14, 22, 13, 20)) * 1000
    assert q.end == end
    assert m.aggregators == aggregators
    assert m.group_by == []
    if "two-tags" in name or "exclude-tags" in name:
        assert m.tags["host"].values == {"bar", "foo"}
    if "one-tag" in name:
        assert m.tags["host"].values == {"bar"}
    if "no-tags" in name:
        assert m.tags == {}
    assert m.exclude_tags is ("exclude-tags" in name)


def test_sum_without_sampling_defaults_to_one_millisecond(kairos_fixtures: Path) -> None:
    q = parse(load(kairos_fixtures, "invalid-query-metric-aggregators-sum-no-sampling.json"))
    (agg,) = q.metrics[0].aggregators
    assert agg == RangeAgg(name="sum")
    assert agg.sampling == Sampling(1, "MILLISECONDS")
    assert agg.align_sampling is True
    assert (agg.align_start_time, agg.align_end_time, agg.trim) == (False, False, False)


def test_empty_aggregators_fixture(kairos_fixtures: Path) -> None:
    q = parse(load(kairos_fixtures, "invalid-query-metric-aggregators-empty.json"))
    assert q.metrics[0].aggregators == []
    assert q.metrics[0].group_by == []


@pytest.mark.parametrize("name", SIMPLE_TIME)
def test_simple_time_fixtures(kairos_fixtures: Path, name: str) -> None:
    doc = load(kairos_fixtures, name)
    assert error(doc) == ["query.metric[0].group_by[1].simpleTime invalid group_by name"]
    m = doc["metrics"][0]  # type: ignore[index]
    m["group_by"] = [g for g in m["group_by"] if g["name"] != "simpleTime"]
    q = parse(doc)
    want_aggs = [SUM_1MS] if "with-groupby" in name else []
    assert q.metrics[0].aggregators == want_aggs
    assert q.metrics[0].group_by == [ValueGroupBy(range_size=10)]
    assert (q.start, q.end) == (784041330, 788879730)


def test_time_zone_list_is_sorted_and_has_utc() -> None:
    ids = time_zone_ids()
    assert list(ids) == sorted(ids)
    assert {"UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"} <= set(ids)
    assert "localtime" not in ids


# -- real client shapes (clients.md §1 and §7) ----------------------------------------------


def test_grafana_3x_data_query() -> None:
    body = {
        "start_absolute": 1511861000000,
        "end_absolute": 1511893000000,
        "cache_time": 0,
        "metrics": [
            {
                "name": "cpu.load",
                "tags": {"host": ["a", "b"]},
                "limit": "0",
                "aggregators": [
                    {"name": "avg", "sampling": {"value": "1", "unit": "HOURS"}},
                    {
                        "name": "percentile",
                        "sampling": {"value": "30", "unit": "SECONDS"},
                        "percentile": "0.95",
                        "align_start_time": True,
                    },
                    {
                        "name": "max",
                        "sampling": {"value": "1500", "unit": "MILLISECONDS"},
                        "align_sampling": True,
                    },
                    {"name": "div", "divisor": "2"},
                    {"name": "scale", "factor": "2"},
                    {"name": "sma", "size": "5"},
                    {"name": "diff"},
                    {"name": "rate", "unit": "SECONDS"},
                    {"name": "rate", "unit": None},
                    {"name": "sampler", "unit": "MINUTES"},
                    {"name": "trim", "trim": "both"},
                ],
                "group_by": [
                    {"name": "tag", "tags": ["host", "dc"]},
                    {
                        "name": "time",
                        "group_count": "24",
                        "range_size": {"value": "1", "unit": "HOURS"},
                    },
                    {"name": "value", "range_size": "10"},
                ],
            }
        ],
    }
    m = parse(body).metrics[0]
    assert m.limit == 0
    assert m.aggregators == [
        RangeAgg(name="avg", sampling=Sampling(1, "HOURS")),
        RangeAgg(
            name="percentile",
            sampling=Sampling(30, "SECONDS"),
            percentile=0.95,
            align_start_time=True,
        ),
        RangeAgg(name="max", sampling=Sampling(1500, "MILLISECONDS"), align_sampling=True),
        DivAgg(divisor=2.0),
        ScaleAgg(factor=2.0),
        SmaAgg(size=5),
        PairAgg(name="diff"),
        PairAgg(name="rate", sampling=Sampling(1, "SECONDS")),
        PairAgg(name="rate", sampling=Sampling(1, "MILLISECONDS")),  # "unit": null: the default
        PairAgg(name="sampler", sampling=Sampling(1, "MINUTES")),
        TrimAgg(trim="both"),
    ]
    assert m.group_by == [
        TagGroupBy(tags=["host", "dc"]),
        TimeGroupBy(range_size=Sampling(1, "HOURS"), group_count=24),
        ValueGroupBy(range_size=10),
    ]


def test_grafana_builtin_lower_case_units_and_both_align_flags() -> None:
    body = {
        "start_relative": {"value": "6", "unit": "hours"},
        "metrics": [
            {
                "name": "m",
                "aggregators": [
                    {
                        "name": "sum",
                        "align_sampling": True,
                        "align_start_time": True,
                        "sampling": {"value": "5", "unit": "minutes"},
                    },
                    {"name": "rate", "unit": "minutes"},
                    {"name": "sampler", "unit": "seconds"},
                ],
            }
        ],
    }
    q = parse(body)
    assert q.start == NOW - 6 * 3_600_000
    assert q.metrics[0].aggregators == [
        RangeAgg(
            name="sum", sampling=Sampling(5, "MINUTES"), align_sampling=True, align_start_time=True
        ),
        PairAgg(name="rate", sampling=Sampling(1, "MINUTES")),
        PairAgg(name="sampler", sampling=Sampling(1, "SECONDS")),
    ]


def test_arp_4x_numbers_and_align_end_time() -> None:
    (agg,) = aggs(
        {"name": "avg", "sampling": {"value": 30, "unit": "MINUTES"}, "align_end_time": True},
        tz="Europe/Paris",
    )
    assert agg == RangeAgg(
        name="avg", sampling=Sampling(30, "MINUTES"), align_end_time=True, time_zone="Europe/Paris"
    )
    (f,) = aggs({"name": "filter", "filter_op": "GT", "threshold": 5})
    assert f == FilterAgg(op="gt", threshold=5.0)
    # kairosdb-extensions' delegating filter: filter_indeterminate_inclusion, default keep.
    (f,) = aggs(
        {
            "name": "filter",
            "filter_op": "GT",
            "threshold": 5,
            "filter_indeterminate_inclusion": "discard",
        }
    )
    assert f == FilterAgg(op="gt", threshold=5.0, inclusion="discard")
    # LowercaseEnumTypeAdapterFactory: only the exact lower-case names; others leave it null.
    for other in ("DISCARD", "Keep", "maybe", 1, None):
        (f,) = aggs({"name": "filter", "filter_op": "gt", "filter_indeterminate_inclusion": other})
        assert f == FilterAgg(op="gt", threshold=0.0, inclusion=None)
    # Its threshold is a double: Gson parses a JSON string (Grafana sends every parameter so).
    (f,) = aggs({"name": "filter", "threshold": "10", "filter_indeterminate_inclusion": "keep"})
    assert f == FilterAgg(op="equal", threshold=10.0)
    assert agg_error(
        {"name": "filter", "threshold": "ten", "filter_indeterminate_inclusion": "keep"}
    ) == [f'{CTX}.aggregators[0].threshold For input string: "ten"']
    assert agg_error(
        {"name": "filter", "threshold": [1], "filter_indeterminate_inclusion": "keep"}
    ) == ["java.lang.IllegalStateException: Expected NUMBER but was BEGIN_ARRAY at path $"]
    assert agg_error(
        {"name": "filter", "filter_op": "gt", "filter_indeterminate_inclusion": []}
    ) == ["java.lang.IllegalStateException: Expected STRING but was BEGIN_ARRAY at path $"]
    assert agg_error(
        {"name": "filter", "filter_op": "gt", "filter_indeterminate_inclusion": "keep", "bogus": 1}
    ) == [
        "Property 'bogus' was specified for object 'filter' but no matching setter was found "
        "on 'class io.inscopemetrics.kairosdb.aggregators.DelegatingFilterAggregator'"
    ]
    # Without that property the request is core KairosDB's: the core bean and its messages.
    assert agg_error({"name": "filter", "filter_op": "gt", "bogus": 1}) == [
        "Property 'bogus' was specified for object 'filter' but no matching setter was found "
        "on 'class org.kairosdb.core.aggregator.FilterAggregator'"
    ]


def test_extension_moving_window_and_percent_remaining() -> None:
    (mw, pr) = aggs(
        {"name": "movingWindow", "sampling": {"value": 1, "unit": "hours"}},
        {"name": "percent_remaining"},
    )
    assert mw == MovingWindowAgg(sampling=Sampling(1, "HOURS"))
    assert pr == PercentRemainingAgg()


@pytest.mark.parametrize("unit", ["HOURS", "hours", "Hours", "hOuRs"])
def test_units_are_case_insensitive(unit: str) -> None:
    (agg,) = aggs({"name": "sum", "sampling": {"value": 1, "unit": unit}})
    assert agg.sampling == Sampling(1, "HOURS")


@pytest.mark.parametrize("unit", ["hour", "h", "HOUR", "ms", "", " hours"])
def test_only_the_plural_unit_names(unit: str) -> None:
    assert agg_error({"name": "sum", "sampling": {"value": 1, "unit": unit}}) == [
        f"{CTX}.aggregators[0].{unit} {BAD_UNIT}"
    ]
    assert error({"start_relative": {"value": 1, "unit": unit}, "metrics": []}) == [
        f"query.{unit} {BAD_UNIT}"
    ]


def test_tags_query_shape_without_end() -> None:
    q = parse({"cache_time": 0, "metrics": [{"name": "m", "tags": {}}], "start_absolute": 0})
    assert (q.start, q.end, q.metrics[0].tags) == (0, (1 << 63) - 1, {})


# -- aggregators --------------------------------------------------------------------------------

JAVA_CLASSES = {
    "avg": "AvgAggregator",
    "count": "CountAggregator",
    "dev": "StdAggregator",
    "diff": "DiffAggregator",
    "div": "DivideAggregator",
    "filter": "FilterAggregator",
    "first": "FirstAggregator",
    "gaps": "DataGapsMarkingAggregator",
    "last": "LastAggregator",
    "least_squares": "LeastSquaresAggregator",
    "max": "MaxAggregator",
    "min": "MinAggregator",
    "percentile": "PercentileAggregator",
    "rate": "RateAggregator",
    "sampler": "SamplerAggregator",
    "save_as": "SaveAsAggregator",
    "scale": "ScaleAggregator",
    "score": "ScoreAggregator",
    "sma": "SmaAggregator",
    "sum": "SumAggregator",
    "trim": "TrimAggregator",
}


@pytest.mark.parametrize("name", sorted(JAVA_CLASSES))
def test_unknown_property_names_the_java_class(name: str) -> None:
    assert agg_error({"name": name, "bogus": 1}) == [
        f"Property 'bogus' was specified for object '{name}' but no matching setter was found "
        f"on 'class org.kairosdb.core.aggregator.{JAVA_CLASSES[name]}'"
    ]


def test_property_names_are_exact_snake_case() -> None:
    assert agg_error({"name": "sum", "alignSampling": True}) == [
        "Property 'alignSampling' was specified for object 'sum' but no matching setter was "
        "found on 'class org.kairosdb.core.aggregator.SumAggregator'"
    ]


def test_getter_without_setter_uses_the_other_wording() -> None:
    assert agg_error({"name": "sum", "_align_sampling": True}) == [
        "Property '_align_sampling' was specified for object 'sum' but no matching setter was "
        "found on 'org.kairosdb.core.aggregator.SumAggregator'"
    ]


def test_sampler_has_no_sampling_property() -> None:
    assert agg_error({"name": "sampler", "sampling": {"value": 1, "unit": "hours"}}) == [
        "Property 'sampling' was specified for object 'sampler' but no matching setter was "
        "found on 'class org.kairosdb.core.aggregator.SamplerAggregator'"
    ]


@pytest.mark.parametrize("name", ["SUM", "histogram", "drop", "js_sum", "simpleTime"])
def test_unregistered_aggregator_names(name: str) -> None:
    assert agg_error({"name": name}) == [f"{CTX}.aggregators[0].{name} invalid aggregators name"]


@pytest.mark.parametrize("entry", [{}, {"name": ""}, {"name": None}, {"sampling": {}}, 5])
def test_aggregator_must_have_a_name(entry: object) -> None:
    with pytest.raises(InvalidQuery) as e:
        parse_aggregators([{"name": "sum"}, entry], CTX, None)
    assert e.value.messages == [f"{CTX}.aggregators[1] must have a name"]


def test_only_the_first_failing_aggregator_is_reported() -> None:
    assert agg_error({"name": "div"}, {"name": "bogus"}) == [
        f"{CTX}.aggregators[0].m_divisor may not be zero"
    ]


def test_properties_fail_in_document_order() -> None:
    first_unit = {"name": "sum", "sampling": {"unit": "bogus", "value": "x"}}
    assert agg_error(first_unit) == [f"{CTX}.aggregators[0].bogus {BAD_UNIT}"]
    first_value = {"name": "sum", "sampling": {"value": "x", "unit": "bogus"}}
    assert agg_error(first_value) == ['java.lang.NumberFormatException: For input string: "x"']
    unknown_first = {"name": "percentile", "bogus": 1, "percentile": "0.7.1"}
    assert agg_error(unknown_first)[0].startswith("Property 'bogus'")


def test_range_aggregator_defaults_and_properties() -> None:
    (agg,) = aggs(
        {
            "name": "gaps",
            "sampling": {"value": "2", "unit": "days"},
            "align_sampling": "false",
            "align_start_time": "TRUE",
            "start_time": "5",
            "end_time": 10.7,
            "trim": True,
            "time_zone": "America/New_York",
        },
        tz="UTC",
    )
    assert agg == RangeAgg(
        name="gaps",
        sampling=Sampling(2, "DAYS"),
        align_sampling=False,
        align_start_time=True,
        start_time=5,
        end_time=10,  # Gson truncates a JSON number for a long
        trim=True,
        time_zone="America/New_York",
    )


def test_time_zone_of_aggregators() -> None:
    assert aggs({"name": "sum"}, tz="Asia/Tokyo")[0].time_zone == "Asia/Tokyo"
    assert aggs({"name": "rate"}, tz="Asia/Tokyo")[0].time_zone == "Asia/Tokyo"
    assert aggs({"name": "diff"}, tz="Asia/Tokyo")[0].time_zone is None
    assert aggs({"name": "sum"}, tz="")[0].time_zone == "UTC"
    assert aggs({"name": "sum", "time_zone": ""}, tz="Asia/Tokyo")[0].time_zone == "UTC"
    assert aggs({"name": "sum", "time_zone": None}, tz="Asia/Tokyo")[0].time_zone == "UTC"
    assert aggs({"name": "sum"})[0].time_zone is None
    assert agg_error({"name": "sum", "time_zone": "Mars/Olympus"}) == [
        zone_message(f"{CTX}.aggregators[0]", "Mars/Olympus")
    ]
    assert agg_error({"name": "rate", "time_zone": "utc"}) == [
        zone_message(f"{CTX}.aggregators[0]", "utc")
    ]


def test_sampling_validation() -> None:
    assert agg_error({"name": "sum", "sampling": None}) == [
        f"{CTX}.aggregators[0].m_sampling may not be null"
    ]
    assert agg_error({"name": "avg", "sampling": {"value": -1}}) == [
        f"{CTX}.aggregators[0].sampling.value must be greater than or equal to 0",
        f"{CTX}.aggregators[0].sampling.unit may not be null",
    ]
    assert agg_error({"name": "rate", "sampling": {"value": "-3", "unit": "days"}}) == [
        f"{CTX}.aggregators[0].sampling.value must be greater than or equal to 0"
    ]
    # A sampling without a value is 0 units (Duration's default): valid, divides by zero later.
    assert aggs({"name": "sum", "sampling": {"unit": "hours"}})[0].sampling == Sampling(0, "HOURS")


def test_rate_sampling_and_unit_apply_in_document_order() -> None:
    (a, b) = aggs(
        {"name": "rate", "unit": "hours", "sampling": {"value": 5, "unit": "minutes"}},
        {"name": "rate", "sampling": {"value": 5, "unit": "minutes"}, "unit": "hours"},
    )
    assert a.sampling == Sampling(5, "MINUTES")
    assert b.sampling == Sampling(1, "HOURS")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0.7.1", "multiple points"),
        ("1..2", "multiple points"),
        ("", "empty String"),
        ("   ", "empty String"),
        ("abc", 'For input string: "abc"'),
        (" 1e ", 'For input string: "1e"'),
        ("1.2e3.4", 'For input string: "1.2e3.4"'),
        ("0x", 'For input string: "0x"'),
        (".", 'For input string: "."'),
    ],
)
def test_percentile_strings_fail_like_double_parse_double(raw: str, message: str) -> None:
    assert agg_error({"name": "percentile", "percentile": raw}) == [
        f"{CTX}.aggregators[0].percentile {message}"
    ]


@pytest.mark.parametrize(
    ("raw", "value"),
    [("0.95", 0.95), (" .5 ", 0.5), ("5e-1", 0.5), ("0.25f", 0.25), ("0x1p-2", 0.25), ("1D", 1.0)],
)
def test_java_double_strings(raw: str, value: float) -> None:
    assert java_parse_double(raw) == value
    (agg,) = aggs({"name": "percentile", "percentile": raw})
    assert agg.percentile == value


def test_java_double_special_values() -> None:
    assert java_parse_double("-Infinity") == float("-inf")
    assert java_parse_double("NaN") != java_parse_double("NaN")
    with pytest.raises(NumberFormatError) as e:
        java_parse_double("nan")
    assert str(e.value) == 'For input string: "nan"'


def test_integer_properties_follow_gson() -> None:
    assert aggs({"name": "sma", "size": "7"})[0] == SmaAgg(size=7)
    assert aggs({"name": "sma", "size": 7.9})[0] == SmaAgg(size=7)
    assert aggs({"name": "sma", "size": 2**32 + 3})[0] == SmaAgg(size=3)  # int narrowing
    assert agg_error({"name": "sma", "size": "7.5"}) == [
        'java.lang.NumberFormatException: For input string: "7.5"'
    ]
    assert agg_error({"name": "sma", "size": "99999999999"}) == [
        'java.lang.NumberFormatException: For input string: "99999999999"'
    ]
    assert agg_error({"name": "sma", "size": True}) == [
        "java.lang.IllegalStateException: Expected NUMBER but was BOOLEAN at path $"
    ]
    assert agg_error({"name": "sum", "sampling": {"value": [1], "unit": "days"}}) == [
        "java.lang.IllegalStateException: Expected NUMBER but was BEGIN_ARRAY at path $.value"
    ]
    assert agg_error({"name": "sum", "sampling": "1"}) == [
        "java.lang.IllegalStateException: Expected BEGIN_OBJECT but was STRING at path $"
    ]


def test_booleans_follow_gson() -> None:
    (a, b, c) = aggs(
        {"name": "sum", "align_sampling": "false"},
        {"name": "sum", "align_start_time": "True"},
        {"name": "sum", "align_end_time": "yes"},  # Boolean.parseBoolean: anything else false
    )
    assert (a.align_sampling, b.align_start_time, c.align_end_time) == (False, True, False)
    assert agg_error({"name": "sum", "align_sampling": 1}) == [
        "java.lang.IllegalStateException: Expected BOOLEAN but was NUMBER at path $"
    ]
    # A JSON null keeps the default.
    assert aggs({"name": "sum", "align_sampling": None})[0].align_sampling is True


def test_percentile_and_divisor_may_not_be_zero() -> None:
    for raw in (0, 0.0, "0", "-0.0", None):
        assert agg_error({"name": "percentile", "percentile": raw}) == [
            f"{CTX}.aggregators[0].percentile may not be zero"
        ]
        assert agg_error({"name": "div", "divisor": raw}) == [
            f"{CTX}.aggregators[0].m_divisor may not be zero"
        ]


def test_dev_return_type_is_lower_case_only() -> None:
    got = aggs(
        {"name": "dev", "return_type": "pos_sd", "dev_count": "2"},
        {"name": "dev", "return_type": "neg_sd"},
        {"name": "dev", "return_type": "POS_SD"},  # null in Java: behaves as "value"
        {"name": "dev"},
    )
    assert [(a.return_type, a.dev_count) for a in got] == [
        ("pos_sd", 2),
        ("neg_sd", 1),
        ("value", 1),
        ("value", 1),
    ]


def test_score() -> None:
    (agg,) = aggs(
        {
            "name": "score",
            "thresholds": [
                {"value": 5, "boundary": "superior"},
                {"value": "5", "boundary": "inferior"},
                {"value": 1},
                {"value": 3, "boundary": "INFERIOR"},  # null in Java: compares as superior
            ],
            "order": "descending",
        }
    )
    # Sorted like Threshold.compareTo: by value, an inferior boundary first on a tie.
    assert agg == ScoreAgg(
        thresholds=[(1.0, "superior"), (3.0, "superior"), (5.0, "inferior"), (5.0, "superior")],
        order="descending",
    )
    assert aggs({"name": "score", "thresholds": []})[0] == ScoreAgg(thresholds=[])
    assert agg_error({"name": "score"}) == [f"{CTX}.aggregators[0].thresholds may not be null"]
    for order in ("ASCENDING", "Descending", None):
        assert agg_error({"name": "score", "thresholds": [], "order": order}) == [
            f"{CTX}.aggregators[0].order may not be null"
        ]
    assert agg_error({"name": "score", "thresholds": [{"value": "x"}]}) == [
        f'{CTX}.aggregators[0].thresholds For input string: "x"'
    ]
    assert agg_error({"name": "score", "thresholds": None}) == [
        "Call to org.kairosdb.core.aggregator.ScoreAggregator:setThresholds failed with message: null"
    ]


def test_trim_and_filter_enums() -> None:
    got = aggs(
        {"name": "trim", "trim": "FIRST"},
        {"name": "trim", "trim": "Last"},
        {"name": "trim"},
        {"name": "filter", "filter_op": "LTE"},
        {"name": "filter", "filter_op": "ne", "threshold": "abc"},
        {"name": "filter", "filter_op": "equal", "threshold": "12"},
    )
    assert got == [
        TrimAgg(trim="first"),
        TrimAgg(trim="last"),
        TrimAgg(trim=None),
        FilterAgg(op="lte", threshold=0.0),
        FilterAgg(op="ne", threshold="abc"),
        FilterAgg(op="equal", threshold="12"),  # Gson: a JSON string into Object is a String
    ]
    assert agg_error({"name": "trim", "trim": "middle"}) == [
        f"{CTX}.aggregators[0].middle is not a valid trim type, must be 'first', 'last' or 'both'."
    ]
    assert agg_error({"name": "filter", "filter_op": "above"}) == [
        f"{CTX}.aggregators[0].above is not a valid trim type, must be 'lte', 'lt', 'gte', "
        "'gt', 'equal' or 'ne'."
    ]
    assert agg_error({"name": "filter", "threshold": 1}) == [
        f"{CTX}.aggregators[0].filter_op may not be null"
    ]


def test_save_as() -> None:
    (agg,) = aggs(
        {
            "name": "save_as",
            "metric_name": "rollup",
            "tags": {"dc": "eu", "n": 1},
            "ttl": "60",
            "add_saved_from": False,
        }
    )
    assert agg == SaveAsAgg(
        metric_name="rollup", tags={"dc": "eu", "n": "1"}, ttl=60, add_saved_from=False
    )
    assert aggs({"name": "save_as", "metric_name": "x"})[0] == SaveAsAgg(metric_name="x")
    assert agg_error({"name": "save_as"}) == [f"{CTX}.aggregators[0].metric_name may not be null"]
    assert agg_error({"name": "save_as", "metric_name": "x", "tags_to_keep": ["a"]}) == [
        "Property 'tags_to_keep' was specified for object 'save_as' but no matching setter was "
        "found on 'org.kairosdb.core.aggregator.SaveAsAggregator'"
    ]


# -- group-bys ----------------------------------------------------------------------------------


def test_group_bys() -> None:
    got = parse_group_by(
        [
            {"name": "tag", "tags": ["host"]},
            {"name": "time", "range_size": {"value": 2, "unit": "Milliseconds"}, "group_count": 2},
            {"name": "value", "range_size": 5},
            {"name": "bin", "bins": ["2", 4, 6.5]},
            {"name": "tag", "tags": ["dc"]},  # kept; only the first tag group-by groups
            {
                "name": "time",
                "range_size": {"value": 1, "unit": "days"},
                "group_count": 7,
                "start_date": "100",
            },
        ],
        CTX,
    )
    assert got == [
        TagGroupBy(tags=["host"]),
        TimeGroupBy(range_size=Sampling(2, "MILLISECONDS"), group_count=2),
        ValueGroupBy(range_size=5),
        BinGroupBy(bins=[2.0, 4.0, 6.5]),
        TagGroupBy(tags=["dc"]),
        TimeGroupBy(range_size=Sampling(1, "DAYS"), group_count=7, start_date=100),
    ]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("tag", "TagGroupBy"),
        ("time", "TimeGroupBy"),
        ("value", "ValueGroupBy"),
        ("bin", "BinGroupBy"),
    ],
)
def test_group_by_unknown_property(name: str, cls: str) -> None:
    assert gb_error({"name": name, "bogus": 1}) == [
        f"Property 'bogus' was specified for object '{name}' but no matching setter was found "
        f"on 'class org.kairosdb.core.groupby.{cls}'"
    ]


def test_group_by_validation() -> None:
    g = f"{CTX}.group_by[0]"
    assert gb_error({"name": "time"}) == [
        f"{g}.rangeSize may not be null",
        f"{g}.groupCount must be greater than or equal to 1",
    ]
    assert gb_error({"name": "time", "range_size": None, "group_count": 1}) == [
        f"{g}.rangeSize may not be null"
    ]
    assert gb_error({"name": "time", "range_size": {"value": 1}, "group_count": 1}) == [
        f"{g}.range_size.unit may not be null"
    ]
    assert gb_error({"name": "value"}) == [f"{g}.rangeSize must be greater than or equal to 1"]
    assert gb_error({"name": "value", "range_size": "0"}) == [
        f"{g}.rangeSize must be greater than or equal to 1"
    ]
    assert gb_error({"name": "tag", "tags": None}) == [f"{g}.tags may not be null"]
    assert gb_error({"name": "tag", "tags": "host"}) == [
        "java.lang.IllegalStateException: Expected BEGIN_ARRAY but was STRING at path $"
    ]
    assert gb_error({"name": "bin", "bins": ["2", "x"]}) == [f'{g}.bins For input string: "x"']
    assert gb_error({"name": "bin"}) == [f"{g}.bins may not be null"]
    assert gb_error({"name": "type"}) == [f"{g}.type invalid group_by name"]


# -- the query and metric levels, and the order of checks ------------------------------------


def test_query_time_zone() -> None:
    base = {"start_absolute": 0, "metrics": [{"name": "m", "aggregators": [{"name": "sum"}]}]}
    assert parse(base).time_zone is None
    q = parse({**base, "time_zone": ""})
    assert q.time_zone == "UTC"
    assert q.metrics[0].aggregators[0].time_zone == "UTC"
    q = parse({**base, "time_zone": "Europe/Berlin"})
    assert q.time_zone == "Europe/Berlin"
    assert q.metrics[0].aggregators[0].time_zone == "Europe/Berlin"
    assert error({**base, "time_zone": "Europe/Nowhere"}) == [
        zone_message("query", "Europe/Nowhere")
    ]


def test_query_fields_fail_in_document_order_before_the_metrics() -> None:
    assert error({"time_zone": "x", "start_relative": {"value": 1, "unit": "y"}}) == [
        zone_message("query", "x")
    ]
    assert error({"start_relative": {"value": 1, "unit": "y"}, "time_zone": "x"}) == [
        f"query.y {BAD_UNIT}"
    ]
    assert error({"cache_time": -1, "end_relative": {"value": -1, "unit": "days"}}) == [
        "cache_time must be greater than or equal to 0",
        "end_relative.value must be greater than or equal to 0",
    ]
    assert error({"start_relative": {"value": 1}, "metrics": []}) == [
        "start_relative.unit may not be null"
    ]
    assert error({"start_absolute": "abc", "metrics": []}) == [
        'java.lang.NumberFormatException: For input string: "abc"'
    ]


def test_plugins() -> None:
    assert error({"start_absolute": 0, "plugins": [{}], "metrics": []}) == [
        "plugins[0] must have a name"
    ]
    assert error({"start_absolute": 0, "plugins": [{"name": "p"}]}) == [
        ".plugins[0].p invalid query plugin name"
    ]
    m = {"name": "m", "plugins": [{"name": "samplePlugin", "message": "hi"}]}
    assert error({"start_absolute": 0, "metrics": [m]}) == [
        "query.metric[0].plugins[0].samplePlugin invalid query plugin name"
    ]
    m = {"name": "m", "plugins": [{"message": "hi"}]}
    assert error({"start_absolute": 0, "metrics": [m]}) == [
        "query.metric[0].plugins[0] must have a name"
    ]
    assert parse({"start_absolute": 0, "plugins": [], "metrics": [{"name": "m", "plugins": []}]})


def test_metric_checks_follow_kairosdb_order() -> None:
    def first(m: dict, **top) -> list[str]:
        return error({**top, "metrics": [m]})

    # tags are checked while the metric is read, before its name
    assert first({"name": "", "tags": {"": "x"}}) == [
        "query.metric[0].tags[0] name must not be empty"
    ]
    # the name before the start time
    assert first({"name": ""}) == ["query.metric[0].name may not be empty"]
    assert first({}) == ["query.metric[0].name may not be null"]
    # group_by before aggregators, aggregators before plugins and order
    m = {
        "name": "m",
        "order": "up",
        "plugins": [{"name": "p"}],
        "aggregators": [{"name": "bogus"}],
        "group_by": [{"name": "bogus"}],
    }
    assert first(m, start_absolute=0) == ["query.metric[0].group_by[0].bogus invalid group_by name"]
    del m["group_by"]
    assert first(m, start_absolute=0) == [
        "query.metric[0].aggregators[0].bogus invalid aggregators name"
    ]
    del m["aggregators"]
    assert first(m, start_absolute=0) == ["query.metric[0].plugins[0].p invalid query plugin name"]
    del m["plugins"]
    assert first(m, start_absolute=0) == ["query.metric[0].order must be either 'asc' or 'desc'"]
    # the first failing metric wins
    doc = {"start_absolute": 0, "metrics": [{"name": "a"}, {"name": "b", "aggregators": [{}]}]}
    assert error(doc) == ["query.metric[1].aggregators[0] must have a name"]


def test_metric_fields_read_like_kairosdb() -> None:
    q = parse(
        {
            "start_absolute": 0,
            "metrics": [
                {
                    "name": "m",
                    "exclude_tags": "false",
                    "limit": "0",
                    "order": "DESC",
                    "tags": {"host": [], "dc": [1, True]},
                },
                {"name": 5, "exclude_tags": "TRUE", "aggregators": None, "group_by": None},
            ],
        }
    )
    a, b = q.metrics
    assert (a.exclude_tags, a.limit, a.order) == (False, 0, "desc")
    assert set(a.tags) == {"dc"}  # an empty value list adds no filter
    assert a.tags["dc"].values == {"1", "true"}
    assert (b.name, b.exclude_tags, b.aggregators, b.group_by) == ("5", True, [], [])
