"""Golden tests for the query engine: hand-checked inputs and outputs (spec §4)."""

from __future__ import annotations

import json

import orjson
import pytest

from kairos.errors import KairosError, QueryFailed
from kairos.ingest.parser import parse_datapoints
from kairos.query.engine import run_query, run_tags_query
from kairos.query.model import parse_query
from kairos.storage.embedded.store import EmbeddedStore

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000


@pytest.fixture
def store(tmp_path):
    return EmbeddedStore(str(tmp_path), writer=True)


def put(store, metric, points, tags=None, type_=None):
    obj = {"name": metric, "datapoints": points, "tags": tags or {"h": "a"}}
    if type_:
        obj["type"] = type_
    r = parse_datapoints(json.dumps([obj]).encode())
    assert r.errors == []
    store.write(r.batch)


def q(store, metric, start=0, end=None, publish=None, now=10**13, time_zone=None, **metric_fields):
    doc = {"start_absolute": start, "metrics": [{"name": metric, **metric_fields}]}
    if end is not None:
        doc["end_absolute"] = end
    if time_zone is not None:
        doc["time_zone"] = time_zone
    # Serialise as KairosDB would print the response, then read it back.
    resp = run_query(store, parse_query(doc), publish=publish, now_ms=now)
    return json.loads(orjson.dumps(resp))["queries"][0]


def values(store, metric, **kw):
    res = q(store, metric, **kw)["results"]
    return [r["values"] for r in res]


def agg(name, value=1, unit="milliseconds", **props):
    return {"name": name, "sampling": {"value": value, "unit": unit}, **props}


def test_range_aggregators_on_aligned_minutes(store) -> None:
    # Points at 0:10, 0:50, 1:20, 3:05 (minutes:seconds); buckets are aligned to midnight.
    ts = [10_000, 50_000, MIN + 20_000, 3 * MIN + 5_000]
    put(store, "m", [[t, v] for t, v in zip(ts, [1, 3, 10, 4], strict=True)])
    m1 = {"value": 1, "unit": "minutes"}
    assert values(store, "m", aggregators=[{"name": "sum", "sampling": m1}]) == [
        [[10_000, 4], [80_000, 10], [185_000, 4]]
    ]
    assert values(store, "m", aggregators=[{"name": "avg", "sampling": m1}]) == [
        [[10_000, 2], [80_000, 10], [185_000, 4]]
    ]
    assert values(store, "m", aggregators=[{"name": "count", "sampling": m1}]) == [
        [[10_000, 2], [80_000, 1], [185_000, 1]]
    ]
    assert values(
        store, "m", aggregators=[{"name": "max", "sampling": m1, "align_start_time": True}]
    ) == [[[0, 3], [MIN, 10], [3 * MIN, 4]]]
    assert values(
        store, "m", aggregators=[{"name": "min", "sampling": m1, "align_end_time": True}]
    ) == [[[MIN, 1], [2 * MIN, 10], [4 * MIN, 4]]]
    # first keeps the value but takes the bucket's time; last keeps its own time unless aligned.
    assert values(store, "m", aggregators=[{"name": "first", "sampling": m1}]) == [
        [[10_000, 1], [80_000, 10], [185_000, 4]]
    ]
    assert values(store, "m", aggregators=[{"name": "last", "sampling": m1}]) == [
        [[50_000, 3], [80_000, 10], [185_000, 4]]
    ]
    assert values(
        store, "m", aggregators=[{"name": "last", "sampling": m1, "align_start_time": True}]
    ) == [[[0, 3], [MIN, 10], [3 * MIN, 4]]]


def test_unaligned_sampling_starts_at_query_start(store) -> None:
    put(store, "m", [[t, 1] for t in (1000, 1500, 2100, 2600)])
    got = values(
        store,
        "m",
        start=1100,
        aggregators=[agg("count", 1, "seconds", align_sampling=False, align_start_time=True)],
    )
    assert got == [[[1100, 1], [2100, 2]]]  # 1000 is before the query range


def test_points_before_the_origin_share_bucket_zero(store) -> None:
    # Java truncation toward zero: -0.5 units is bucket 0, like +0.5.
    put(store, "m", [[t, 1] for t in (5_500, 6_500, 7_200)])
    got = values(
        store, "m", aggregators=[agg("count", 1, "seconds", align_sampling=False, start_time=6_000)]
    )
    assert got == [[[5_500, 2], [7_200, 1]]]


def test_dev_percentile_least_squares(store) -> None:
    put(store, "m", [[2 * i, i + 1] for i in range(10)])
    ten_years = {"value": 10, "unit": "years"}
    (dev,) = values(store, "m", aggregators=[{"name": "dev", "sampling": ten_years}])
    assert dev[0][1] == pytest.approx(3.0276503540974917, abs=1e-12)
    (pos,) = values(
        store,
        "m",
        aggregators=[
            {"name": "dev", "sampling": ten_years, "return_type": "pos_sd", "dev_count": 2}
        ],
    )
    assert pos[0][1] == pytest.approx(5.5 + 2 * 3.0276503540974917)
    (p,) = values(
        store, "m", aggregators=[{"name": "percentile", "sampling": ten_years, "percentile": 0.5}]
    )
    assert p == [[0, 5.5]]  # pos = 0.5 * 11 = 5.5 -> v[4] + 0.5 * (v[5] - v[4])
    (p,) = values(
        store,
        "m",
        aggregators=[{"name": "percentile", "sampling": ten_years, "percentile": "0.95"}],
    )
    assert p == [[0, 10]]
    (ls,) = values(store, "m", aggregators=[{"name": "least_squares", "sampling": ten_years}])
    assert ls == [[0, 1], [18, 10]]


def test_least_squares_small_buckets_keep_their_points(store) -> None:
    put(store, "m", [[0, 5], [1000, 7], [1500, 9], [2000, 1], [2100, 2], [2200, 6]])
    got = values(store, "m", aggregators=[agg("least_squares", 1, "seconds")])
    assert got == [[[0, 5], [1000, 7], [1500, 9], [2000, 0.5], [2200, 5.5]]]


def test_desc_order_collapses_range_aggregation_into_one_bucket(store) -> None:
    put(store, "m", [[t, 1] for t in (0, MIN, 2 * MIN)])
    got = values(store, "m", order="desc", aggregators=[agg("count", 1, "minutes")])
    assert got == [[[2 * MIN, 3]]]


def test_calendar_days_across_dst(store) -> None:
    # New York, 2021-03-14 is a 23-hour day; 2021-11-07 a 25-hour day.
    start = 1615698000000  # 2021-03-14 00:00 EST (05:00 UTC)
    pts = [
        [start + 1 * HOUR, 1],
        [start + 22 * HOUR + 30 * MIN, 2],
        [start + 23 * HOUR + 30 * MIN, 3],
    ]
    put(store, "dst", pts)
    got = values(
        store,
        "dst",
        start=start,
        time_zone="America/New_York",
        aggregators=[agg("sum", 1, "days", align_start_time=True)],
    )
    # The first day ends after 23 hours: the last point is in the next day.
    assert got == [[[start, 3], [start + 23 * HOUR, 3]]]
    fall = 1636257600000  # 2021-11-07 00:00 EDT (04:00 UTC)
    put(store, "fall", [[fall + 24 * HOUR + 30 * MIN, 1], [fall + 25 * HOUR + 30 * MIN, 2]])
    got = values(
        store,
        "fall",
        start=fall,
        time_zone="America/New_York",
        aggregators=[agg("count", 1, "days", align_start_time=True)],
    )
    assert got == [[[fall, 1], [fall + 25 * HOUR, 1]]]


def test_months_and_weeks(store) -> None:
    jan1 = 1609459200000  # 2021-01-01T00:00Z (a Friday)
    feb1 = jan1 + 31 * DAY
    mar1 = feb1 + 28 * DAY
    put(store, "mo", [[jan1 + DAY, 1], [feb1 - 1, 2], [feb1, 3], [mar1 + 5, 4]])
    got = values(
        store,
        "mo",
        start=jan1,
        aggregators=[agg("sum", 1, "months", align_start_time=True, start_time=jan1 + 10 * DAY)],
    )
    assert got == [[[jan1, 3], [feb1, 3], [mar1, 4]]]
    got = values(
        store, "mo", start=jan1, aggregators=[agg("count", 1, "weeks", align_start_time=True)]
    )
    monday = jan1 - 4 * DAY  # 2020-12-28
    assert got[0][0] == [monday, 1]


def test_gaps_example_from_kairosdb(store) -> None:
    put(store, "g", [[1, 10], [4, 5], [5, 25]])
    got = values(store, "g", start=1, end=5, aggregators=[agg("gaps", 1, "milliseconds")])
    assert got == [[[1, 10], [2, None], [3, None], [4, 5], [5, 25]]]
    with pytest.raises(QueryFailed, match="No aggregator can be chained after"):
        q(store, "g", start=1, end=5, aggregators=[agg("gaps"), agg("sum")])


def test_pairwise_aggregators(store) -> None:
    put(store, "p", [[0, 1], [2000, 5], [3000, 2]])
    assert values(store, "p", aggregators=[{"name": "rate", "unit": "seconds"}]) == [
        [[2000, 2], [3000, -3]]
    ]
    assert values(store, "p", aggregators=[{"name": "sampler", "unit": "seconds"}]) == [
        [[2000, 2.5], [3000, 2]]
    ]
    assert values(store, "p", aggregators=[{"name": "diff"}]) == [[[2000, 4], [3000, -3]]]


def test_rate_with_equal_timestamps_fails_like_kairosdb(store) -> None:
    put(store, "r", [[1, 1], [1, 2.5]])  # a long and a double at the same time
    with pytest.raises(QueryFailed) as e:
        q(store, "r", aggregators=[{"name": "rate"}])
    assert str(e.value) == (
        "The rate aggregator cannot compute rate for data points with the same time stamp.  "
        "You must precede rate with another aggregator."
    )


def test_pointwise_aggregators(store) -> None:
    put(store, "w", [[1, 1], [2, 5], [3, 10], [4, 20]])
    assert values(store, "w", aggregators=[{"name": "div", "divisor": "2"}]) == [
        [[1, 0.5], [2, 2.5], [3, 5], [4, 10]]
    ]
    assert values(store, "w", aggregators=[{"name": "scale", "factor": 0.5}]) == [
        [[1, 0.5], [2, 2.5], [3, 5], [4, 10]]
    ]
    thresholds = [{"value": 5, "boundary": "inferior"}, {"value": 10}]
    assert values(store, "w", aggregators=[{"name": "score", "thresholds": thresholds}]) == [
        [[1, 0], [2, 1], [3, 1], [4, 2]]
    ]
    assert values(
        store, "w", aggregators=[{"name": "filter", "filter_op": "gt", "threshold": 5}]
    ) == [[[1, 1], [2, 5]]]
    # Core FilterAggregator: Gson reads a JSON string into its Object threshold as a String,
    # and a String threshold removes every numeric point (FilterAggregator.java 85-100).
    assert (
        values(store, "w", aggregators=[{"name": "filter", "filter_op": "LTE", "threshold": "5"}])
        == []
    )
    # The extensions' DelegatingFilterAggregator (named by filter_indeterminate_inclusion) has a
    # double threshold: the string is parsed as Double.parseDouble would.
    f = {"name": "filter", "filter_op": "LTE", "threshold": "5"}
    assert values(store, "w", aggregators=[{**f, "filter_indeterminate_inclusion": "keep"}]) == [
        [[3, 10], [4, 20]]
    ]
    assert values(
        store, "w", aggregators=[{**f, "filter_op": "ne", "filter_indeterminate_inclusion": "keep"}]
    ) == [[[2, 5]]]
    assert values(store, "w", aggregators=[{"name": "trim", "trim": "both"}]) == [[[2, 5], [3, 10]]]
    assert values(store, "w", aggregators=[{"name": "sma", "size": 2}]) == [
        [[2, 3], [3, 7.5], [4, 15]]
    ]


def test_chained_aggregators(store) -> None:
    put(store, "c", [[t, t] for t in range(0, 10)])
    got = values(store, "c", aggregators=[agg("sum", 2), agg("max", 10)])
    assert got == [[[0, 17]]]  # pairs 0+1, 2+3, ..., 8+9 -> max 17


def test_text_groups_skip_numeric_aggregators(store) -> None:
    put(store, "t", [[1, "a"], [2, "b"], [3, "c"]], type_="string")
    put(store, "t", [[1, 5]])
    res = q(store, "t", aggregators=[agg("sum", 10), agg("count", 10)])["results"]
    assert [(r["group_by"][-1]["type"], r["values"]) for r in res] == [
        ("number", [[1, 1]]),
        ("text", [[1, 3]]),
    ]
    res = q(store, "t", aggregators=[agg("first", 10)])["results"]
    assert res[1]["values"] == [[1, "a"]]


def test_group_by_time_value_bin_tag(store) -> None:
    put(store, "gb", [[i * 2, i + 1] for i in range(10)], tags={"host": "x"})
    put(store, "gb", [[100, 50]], tags={"host": "y"})
    res = q(
        store,
        "gb",
        end=20,
        group_by=[
            {
                "name": "time",
                "range_size": {"value": "2", "unit": "MILLISECONDS"},
                "group_count": "2",
            }
        ],
    )["results"]
    assert [r["group_by"][0]["group"]["group_number"] for r in res] == [0, 1]
    assert [v for _, v in res[0]["values"]] == [1, 3, 5, 7, 9]
    assert res[0]["group_by"][0] == {
        "name": "time",
        "range_size": {"value": 2, "unit": "MILLISECONDS"},
        "group_count": 2,
        "group": {"group_number": 0},
    }
    res = q(store, "gb", end=20, group_by=[{"name": "value", "range_size": 5}])["results"]
    assert [(r["group_by"][0]["group"]["group_number"], len(r["values"])) for r in res] == [
        (0, 4),
        (1, 5),
        (2, 1),
    ]
    res = q(store, "gb", end=20, group_by=[{"name": "bin", "bins": ["2", 4.5]}])["results"]
    assert res[0]["group_by"][0] == {"name": "bin", "bins": [2, 4.5], "group": {"bin_number": 0}}
    assert [len(r["values"]) for r in res] == [1, 3, 6]
    res = q(store, "gb", group_by=[{"name": "tag", "tags": ["host", "dc"]}])["results"]
    assert [r["group_by"] for r in res] == [
        [
            {"name": "tag", "tags": ["host", "dc"], "group": {"host": "x", "dc": ""}},
            {"name": "type", "type": "number"},
        ],
        [
            {"name": "tag", "tags": ["host", "dc"], "group": {"host": "y", "dc": ""}},
            {"name": "type", "type": "number"},
        ],
    ]
    assert [r["tags"] for r in res] == [{"host": ["x"]}, {"host": ["y"]}]


def test_limit_applies_before_aggregators(store) -> None:
    put(store, "l", [[t, 1] for t in range(10)])
    assert values(store, "l", limit=3, aggregators=[agg("count", 1, "years")]) == [[[0, 3]]]


def test_save_as_publishes_a_batch(store) -> None:
    put(store, "s", [[1, 1], [2, 2.5]], tags={"host": "a", "dc": "eu"})
    published = []
    got = q(
        store,
        "s",
        publish=published.append,
        group_by=[{"name": "tag", "tags": ["host"]}],
        aggregators=[{"name": "save_as", "metric_name": "s.copy", "tags": {"k": "v"}}],
    )
    assert got["results"][0]["values"] == [[1, 1], [2, 2.5]]
    (b,) = published
    assert set(b.metrics) == {"s.copy"}
    assert b.tags[0] == (("host", "a"), ("k", "v"), ("saved_from", "s"))
    assert sorted(b.ts.tolist()) == [1, 2]


def test_tags_query(store) -> None:
    put(store, "tq", [[1, 1]], tags={"host": "a", "dc": "eu"})
    put(store, "tq", [[1, 1]], tags={"host": "b"})
    resp = run_tags_query(
        store, parse_query({"start_absolute": 0, "metrics": [{"name": "tq"}, {"name": "none"}]})
    )
    assert resp == {
        "queries": [
            {"results": [{"name": "tq", "tags": {"dc": ["eu"], "host": ["a", "b"]}, "values": []}]},
            {"results": [{"name": "none", "tags": {}, "values": []}]},
        ]
    }


def test_errors_are_kairos_errors(store) -> None:
    put(store, "e", [[1, 1]])
    with pytest.raises(KairosError):
        q(
            store,
            "e",
            aggregators=[
                {"name": "percentile", "sampling": {"value": 1, "unit": "days"}, "percentile": 1.5}
            ],
        )


def test_query_point_limit_is_checked_before_reading(store) -> None:
    from kairos.errors import QueryTooLarge
    from kairos.query.engine import Limits

    put(store, "big", [[t, t] for t in range(100)])
    doc = {"start_absolute": 0, "metrics": [{"name": "big"}]}
    run_query(store, parse_query(doc), limits=Limits(max_points=100))
    with pytest.raises(QueryTooLarge, match="more than 99 data points"):
        run_query(store, parse_query(doc), limits=Limits(max_points=99))


def test_query_timeout(store) -> None:
    from kairos.errors import QueryTimeout
    from kairos.query.engine import Limits

    put(store, "slow", [[t, t] for t in range(10)])
    limits = Limits(timeout_ms=1)
    limits.deadline -= 1.0  # already past
    with pytest.raises(QueryTimeout, match="within 1 ms"):
        run_query(
            store, parse_query({"start_absolute": 0, "metrics": [{"name": "slow"}]}), limits=limits
        )


@pytest.mark.parametrize("hosts", [2, 5])  # the loser tree, and the aligned path (>= 4 series)
def test_merged_long_series_keep_exact_values(store, hosts) -> None:
    # Longs past 2**53 (not exact as doubles), longs that are, and a double beside them: the
    # merged stream orders by value at each timestamp and prints every long exactly.
    big = 2**60
    for h in range(hosts):
        put(store, "big", [[1000, big + h], [2000, big - h]], tags={"h": str(h)})
        put(store, "small", [[1000, 10 - h], [2000, h]], tags={"h": str(h)})
    put(store, "mixed", [[1000, 7], [2000, 1]], tags={"h": "a"})
    put(store, "mixed", [[1000, 2.5], [2000, 1.5]], tags={"h": "b"})
    for h in range(2, hosts):
        put(store, "mixed", [[1000, 9], [2000, 3]], tags={"h": str(h)})
    (got,) = values(store, "big")
    # Neighbouring longs past 2**53 round to equal doubles: ties keep the series order.
    as_double = [float(big + h) for h in range(hosts)]
    want_1000 = sorted(range(hosts), key=lambda h: as_double[h])
    assert got[:hosts] == [[1000, big + h] for h in want_1000]
    assert sorted(v for _, v in got[hosts:]) == sorted(big - h for h in range(hosts))
    assert [t for t, _ in got] == [1000] * hosts + [2000] * hosts
    (got,) = values(store, "small")
    assert got == [[1000, 10 - h] for h in reversed(range(hosts))] + [
        [2000, h] for h in range(hosts)
    ]
    (got,) = values(store, "mixed")
    assert got == [[1000, 2.5], [1000, 7]] + [[1000, 9]] * (hosts - 2) + [
        [2000, 1],
        [2000, 1.5],
    ] + [[2000, 3]] * (hosts - 2)


def test_result_tags_in_java_string_order(store) -> None:
    # Java compares UTF-16 code units: a supplementary character (a surrogate pair, 0xD83D...)
    # sorts before U+FF21, unlike Python's code-point order; ASCII agrees in both.
    from kairos.model.java import java_sorted

    assert java_sorted(["\uff21", "\U0001f600", "b", "a"]) == ["a", "b", "\U0001f600", "\uff21"]
    assert java_sorted(["b", "B", "a"]) == ["B", "a", "b"]
    for v in ("\uff21", "\U0001f600", "a"):
        put(store, "t", [[1, 1]], tags={"h": v})
    (res,) = q(store, "t")["results"]
    assert res["tags"] == {"h": ["a", "\U0001f600", "\uff21"]}


@pytest.mark.parametrize("seed", range(3))
def test_series_sharing_timestamps_bucket_once_with_the_same_results(store, monkeypatch, seed):
    """A group whose series share their timestamps is bucketed on each timestamp once; every
    range aggregator, alignment and unit gives what bucketing every merged point gives."""
    import numpy as np

    from kairos.query import kernels

    rng = np.random.default_rng(seed)
    ts = np.unique(rng.integers(0, 40 * DAY, 60)).tolist()
    for h in range(5):
        vals = np.round(rng.normal(0, 10, len(ts)), 1).tolist()
        put(store, "m", [list(p) for p in zip(ts, vals, strict=True)], tags={"h": str(h)})
    aggs = []
    for name in ("avg", "sum", "count", "first", "last", "min", "max", "dev", "percentile"):
        for unit, value in (("milliseconds", 3_600_000), ("days", 2), ("weeks", 1), ("months", 1)):
            for align in ({}, {"align_start_time": True}, {"align_end_time": True}):
                a = agg(name, value, unit, **align)
                if name == "percentile":
                    a["percentile"] = 0.9
                aggs.append(a)
    fast = [values(store, "m", aggregators=[a]) for a in aggs]
    monkeypatch.setattr(kernels, "shared_timestamps", lambda ts_list: False)
    slow = [values(store, "m", aggregators=[a]) for a in aggs]
    assert fast == slow
    assert all(len(v[0]) for v in fast)
