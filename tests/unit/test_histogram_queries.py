"""Histogram aggregations through the query engine: hand-checked windows (item 4).

Every store is a real EmbeddedStore; responses go through orjson as the HTTP layer prints them.
"""

from __future__ import annotations

import json

import orjson
import pytest

from kairos.errors import InvalidQuery, QueryFailed
from kairos.ingest.parser import parse_datapoints
from kairos.model.histogram import Histogram
from kairos.query import histograms
from kairos.query.engine import run_query
from kairos.query.model import parse_query
from kairos.query.spec import RangeAgg
from kairos.storage.embedded.store import EmbeddedStore

MIN = 60_000
M1 = {"value": 1, "unit": "minutes"}
CTX = "query.metric[0].aggregators[0]"


@pytest.fixture
def store(tmp_path):
    return EmbeddedStore(str(tmp_path), writer=True)


def put(store, metric, points, tags=None):
    body = [{"name": metric, "datapoints": points, "tags": tags or {"h": "a"}}]
    r = parse_datapoints(json.dumps(body).encode())
    assert r.errors == []
    store.write(r.batch)


def results(store, metric, aggregators=(), **metric_fields):
    doc = {
        "start_absolute": 0,
        "metrics": [{"name": metric, "aggregators": list(aggregators), **metric_fields}],
    }
    resp = run_query(store, parse_query(doc), now_ms=10**13)
    return json.loads(orjson.dumps(resp))["queries"][0]["results"]


def values(store, metric, *aggregators, **metric_fields):
    (res,) = results(store, metric, aggregators, **metric_fields)
    return res["values"]


def bins(b, precision, vmin, vmax, total_sum, count):
    return {
        "bins": b,
        "precision": precision,
        "min": vmin,
        "max": vmax,
        "sum": total_sum,
        "count": count,
    }


# Window 0 (minute 0): two bins-form histograms at precisions 3 and 2.
H_P3 = bins({"1.375": 2, "1.5": 1}, 3, 1.4, 1.6, 4.25, 3)
H_P2 = bins({"1.0": 1, "1.5": 2}, 2, 1.1, 1.7, 4.5, 3)
# Window 1 (minute 1): a bins-form histogram and an explicit-boundary one.
H_2 = bins({"2.0": 1}, 2, 2.1, 2.4, 2.25, 1)
H_DIRECT = {"boundaries": [2, 3.3], "counts": [0, 2, 0], "min": 2.6, "max": 3.2, "sum": 5.75}


@pytest.fixture
def two_windows(store):
    put(store, "h", [[1_000, H_P3], [2_000, H_P2], [MIN + 1_000, H_2], [MIN + 2_000, H_DIRECT]])
    return store


# -- how values print ----------------------------------------------------------------------------


def test_bins_form_round_trips_exactly(store) -> None:
    # Negative, zero, positive and tiny keys at precision 3; 2**-14 prints as Java does.
    sent = bins(
        {"-2.5": 1, "0.0": 2, "1.25": 3, "6.0": 4, "6.103515625E-5": 5}, 3, -2.6, 6.5, 20.0, 15
    )
    put(store, "h", [[1, sent]])
    ((t, got),) = values(store, "h")
    assert t == 1
    assert {k: got[k] for k in sent} == sent
    assert list(got) == [
        "bins",
        "precision",
        "min",
        "max",
        "sum",
        "count",
        "boundaries",
        "counts",
        "total_count",
    ]
    # The lossless direct form is the one the bins parser stored.
    assert Histogram.from_json({k: got[k] for k in ("boundaries", "counts", "sum", "min", "max")})
    assert got["total_count"] == 15


def test_explicit_histogram_bins_are_lower_edges_at_precision_52(store) -> None:
    # Prometheus form: no min, so bucket 0 (-inf, 1] is keyed by its upper boundary and adds
    # up with bucket (1, 5]; the overflow bucket starts at 5.
    prom = {
        "buckets": [{"le": 1, "count": 2}, {"le": 5, "count": 5}, {"le": "+Inf", "count": 6}],
        "count": 6,
        "sum": 20,
    }
    direct = {"boundaries": [0.001, 2], "counts": [1, 0, 4], "min": 0.0005, "max": 9}
    put(store, "h", [[1, prom], [2, direct]])
    (a, b) = values(store, "h")
    assert a[1] == {
        # One entry per non-empty bucket: (-inf, 1] (min unknown) is keyed just below 1.
        **bins({"0.9999999999999999": 2, "1.0": 3, "5.0": 1}, 52, None, None, 20.0, 6),
        "boundaries": [1.0, 5.0],
        "counts": [2, 3, 1],
        "total_count": 6,
        "sum": 20.0,
    }
    assert b[1]["bins"] == {"5.0E-4": 1, "2.0": 4}  # bucket 0 starts at min
    assert b[1]["precision"] == 52
    assert b[1]["sum"] is None


@pytest.mark.parametrize(
    ("value", "want"),
    [
        # The first-hour issue's two cases: bucket 0 and bucket 1 used to share the key 1.0.
        (
            {"boundaries": [1, 5], "counts": [2, 3, 4]},
            {"0.9999999999999999": 2, "1.0": 3, "5.0": 4},
        ),
        (
            {"buckets": [{"le": 1, "count": 2}, {"le": "+Inf", "count": 6}], "count": 6, "sum": 30},
            {"0.9999999999999999": 2, "1.0": 4},
        ),
        # min exactly on the first boundary: still its own entry.
        (
            {"boundaries": [1, 5], "counts": [2, 3, 0], "min": 1, "max": 4},
            {"0.9999999999999999": 2, "1.0": 3},
        ),
        ({"boundaries": [-2.5, 0], "counts": [1, 0, 2]}, {"-2.5000000000000004": 1, "0.0": 2}),
    ],
)
def test_every_non_empty_bucket_has_its_own_bin(store, value, want) -> None:
    put(store, "h", [[1, value]])
    ((_, v),) = values(store, "h")
    assert v["bins"] == want
    assert sum(v["bins"].values()) == v["count"] == sum(v["counts"])


# -- merge -------------------------------------------------------------------------------------


def test_merge_per_window(two_windows) -> None:
    (w0, w1) = values(two_windows, "h", {"name": "merge", "sampling": M1})
    # Window 0, the plugin's way: keys truncated to min(52, 3, 2) = 2 bits, 1.375 -> 1.25.
    assert w0 == [
        1_000,
        {
            **bins({"1.0": 1, "1.25": 2, "1.5": 3}, 2, 1.1, 1.7, 8.75, 6),
            "boundaries": [1.0, 1.25, 1.5, 1.75],
            "counts": [0, 1, 2, 3, 0],
            "total_count": 6,
        },
    ]
    # Window 1 mixes an explicit histogram: the exact union merge, the (2, 3.3] count landing
    # in (2.5, 3.3], keyed by lower edges at precision 52.
    assert w1 == [
        MIN + 1_000,
        {
            **bins({"2.0": 1, "2.5": 2}, 52, 2.1, 3.2, 8.0, 3),
            "boundaries": [2.0, 2.5, 3.3],
            "counts": [0, 1, 2, 0],
            "total_count": 3,
        },
    ]


def test_merge_precision_truncates_bins_only(two_windows) -> None:
    (w0, w1) = values(
        two_windows,
        "h",
        {"name": "merge", "sampling": M1, "precision": 1, "align_start_time": True},
    )
    assert w0[0] == 0
    assert w0[1]["bins"] == {"1.0": 3, "1.5": 3}
    assert w0[1]["precision"] == 1
    assert w0[1]["boundaries"] == [1.0, 1.5, 2.0]
    assert w0[1]["counts"] == [0, 3, 3, 0]
    assert w1[0] == MIN
    assert w1[1]["counts"] == [0, 1, 2, 0]  # explicit boundaries: precision changes nothing
    assert w1[1]["precision"] == 52


def test_merge_then_percentile_chains(store) -> None:
    put(store, "h", [[1_000, H_P3], [2_000, H_P2]])
    p75 = {"name": "percentile", "sampling": M1, "percentile": 0.75}
    # Merged at precision 2: counts [0, 1, 2, 3, 0] over [1, 1.25, 1.5, 1.75]; rank 4.5 is
    # half-way through (1.5, 1.75].
    merged = values(store, "h", {"name": "merge", "sampling": M1, "precision": 2}, p75)
    assert merged == [[1_000, 1.625]]
    # Straight from the raw histograms the union keeps the finer 1.375 and 1.625 boundaries:
    # rank 4.5 is a quarter into (1.625, 1.75] (4 samples before it, 2 in it).
    assert values(store, "h", p75) == [[1_000, 1.65625]]


# -- numbers -----------------------------------------------------------------------------------


def test_count_sum_min_max_avg_per_window(two_windows) -> None:
    assert values(two_windows, "h", {"name": "count", "sampling": M1}) == [
        [1_000, 6],
        [MIN + 1_000, 3],
    ]
    assert values(two_windows, "h", {"name": "sum", "sampling": M1}) == [
        [1_000, 8.75],
        [MIN + 1_000, 8],
    ]
    assert values(two_windows, "h", {"name": "min", "sampling": M1}) == [
        [1_000, 1.1],
        [MIN + 1_000, 2.1],
    ]
    assert values(two_windows, "h", {"name": "max", "sampling": M1}) == [
        [1_000, 1.7],
        [MIN + 1_000, 3.2],
    ]
    assert values(two_windows, "h", {"name": "avg", "sampling": M1, "align_end_time": True}) == [
        [MIN, 8.75 / 6],
        [2 * MIN, 8 / 3],
    ]


def test_percentile_of_the_merged_window(two_windows) -> None:
    got = values(two_windows, "h", {"name": "percentile", "sampling": M1, "percentile": "0.5"})
    # Window 0 merged: boundaries [1, 1.25, 1.375, 1.5, 1.625, 1.75], counts
    # [0, 1, 0, 2, 1, 2, 0] (each source bin in the union bucket ending at its upper edge);
    # rank 3 is reached at the end of (1.375, 1.5].  Window 1: rank 1.5 is half-way through
    # (2.5, 3.3], clamped to [min, max] = [2.1, 3.2]: 2.5 + 0.25 * 0.8 = 2.7.
    assert got == [[1_000, 1.5], [MIN + 1_000, pytest.approx(2.7)]]


def test_empty_histograms_and_unknown_statistics(store) -> None:
    empty = {"boundaries": [1], "counts": [0, 0], "sum": 0, "min": 99, "max": 99}
    no_sum = {"boundaries": [1], "counts": [1, 1], "min": 0.5, "max": 1.5}
    with_sum = {"boundaries": [1], "counts": [1, 0], "sum": 0.5, "min": 0.5, "max": 0.5}
    put(store, "h", [[1_000, empty], [2_000, with_sum], [MIN + 1_000, empty], [2 * MIN, no_sum]])
    # An empty histogram adds no statistics next to a non-empty one; a window with only empty
    # ones has count 0 and no avg/percentile/apdex; an unknown sum yields no sum/avg point.
    assert values(store, "h", {"name": "count", "sampling": M1}) == [
        [1_000, 1],
        [MIN + 1_000, 0],
        [2 * MIN, 2],
    ]
    assert values(store, "h", {"name": "min", "sampling": M1}) == [
        [1_000, 0.5],
        [MIN + 1_000, 99],
        [2 * MIN, 0.5],
    ]
    assert values(store, "h", {"name": "sum", "sampling": M1}) == [[1_000, 0.5], [MIN + 1_000, 0]]
    assert values(store, "h", {"name": "avg", "sampling": M1}) == [[1_000, 0.5]]
    assert values(store, "h", {"name": "percentile", "sampling": M1, "percentile": 1}) == [
        [1_000, 0.5],
        [2 * MIN, 1.5],
    ]
    assert values(store, "h", {"name": "apdex", "sampling": M1}) == [[1_000, 1], [2 * MIN, 0.75]]


def test_apdex_splits_straddling_buckets(store) -> None:
    h = {"boundaries": [0.5, 1, 2, 4], "counts": [4, 4, 4, 4, 4], "min": 0.25, "max": 8}
    put(store, "h", [[1_000, h]])
    ten = {"value": 10, "unit": "minutes"}
    # T = 0.5 and 4T = 2 are boundaries: exact, (4 + 8 / 2) / 20.
    assert values(store, "h", {"name": "apdex", "sampling": ten, "target": 0.5}) == [[1_000, 0.4]]
    # T = 0.75 splits (0.5, 1] in half; 4T = 3 splits (2, 4] in half:
    # satisfied 4 + 2, tolerating 2 + 4 + 2 -> (6 + 4) / 20.
    assert values(store, "h", {"name": "apdex", "sampling": ten, "target": "0.75"}) == [
        [1_000, 0.5]
    ]
    # The default target is 1: satisfied 8, tolerating (1, 4] = 8 -> (8 + 4) / 20.
    assert values(store, "h", {"name": "apdex", "sampling": ten}) == [[1_000, 0.6]]
    # Bucket 0 starts at min and the overflow bucket ends at max: T = 0 satisfies nothing and
    # T = 8 everything.
    assert values(store, "h", {"name": "apdex", "sampling": ten, "target": 0}) == [[1_000, 0]]
    assert values(store, "h", {"name": "apdex", "sampling": ten, "target": 8}) == [[1_000, 1]]


def test_apdex_classifies_each_source_bucket_before_merging(store) -> None:
    # Merged, (0, 10] would share the boundary 5 of the other histogram and move to (5, 10];
    # apdex keeps it in (0, 10]: T = 2.5 satisfies a quarter of it.
    put(store, "h", [[1, {"boundaries": [0, 10], "counts": [0, 4, 0]}]])
    put(store, "h", [[2, {"boundaries": [5, 10], "counts": [0, 0, 0]}]])
    got = values(store, "h", {"name": "apdex", "sampling": M1, "target": 2.5})
    assert got == [[1, (1 + 3 / 2) / 4]]


# -- routing -----------------------------------------------------------------------------------


def test_number_groups_ignore_histogram_aggregators(store) -> None:
    put(store, "h", [[1_000, 2], [2_000, 4], [3_000, {"boundaries": [1], "counts": [1, 2]}]])

    def by_type(*aggregators):
        return {r["group_by"][-1]["type"]: r["values"] for r in results(store, "h", aggregators)}

    merge, count = {"name": "merge", "sampling": M1}, {"name": "count", "sampling": M1}
    assert by_type(merge, count) == {"histogram": [[3_000, 3]], "number": [[1_000, 2]]}
    # No min or max: bucket 0 is the point 1 and the overflow bucket too; T = 1 satisfies all.
    assert by_type({"name": "apdex", "sampling": M1}) == {
        "histogram": [[3_000, 1]],
        "number": [[1_000, 2], [2_000, 4]],
    }


def test_number_only_aggregators_leave_histograms_alone(store) -> None:
    h = {"boundaries": [1], "counts": [1, 2]}
    put(store, "h", [[1_000, h], [2_000, h]])
    got = values(store, "h", {"name": "dev", "sampling": M1}, {"name": "rate"})
    assert [t for t, _ in got] == [1_000, 2_000]
    assert got[0][1]["counts"] == [1, 2]


def test_gaps_nulls_are_skipped(store) -> None:
    put(store, "h", [[1_000, H_P2], [3 * MIN, H_P2]])
    got = values(
        store,
        "h",
        {"name": "gaps", "sampling": M1, "trim": True},
        {"name": "merge", "sampling": {"value": 1, "unit": "hours"}},
    )
    assert len(got) == 1
    assert got[0][1]["bins"] == {"1.0": 2, "1.5": 4}
    # gaps alone keeps its nulls in the histogram output.
    raw = values(store, "h", {"name": "gaps", "sampling": M1, "trim": True})
    assert [v is None for _, v in raw] == [False, True, True, False]


def test_desc_order_and_tag_groups(store) -> None:
    put(store, "h", [[1_000, H_P2], [MIN + 1_000, H_P2]], tags={"host": "a"})
    put(store, "h", [[2_000, H_2]], tags={"host": "b"})
    res = results(
        store,
        "h",
        [{"name": "count", "sampling": M1}],
        group_by=[{"name": "tag", "tags": ["host"]}],
    )
    assert [r["values"] for r in res] == [[[1_000, 3], [MIN + 1_000, 3]], [[2_000, 1]]]
    # Descending order: KairosDB's one-bucket quirk applies as for numbers.
    got = values(store, "h", {"name": "count", "sampling": M1}, order="desc", tags={"host": "a"})
    assert got == [[MIN + 1_000, 6]]


def test_percentile_out_of_range_fails_the_query(store) -> None:
    put(store, "h", [[1, H_P2]])
    with pytest.raises(QueryFailed, match=r"1\.5 is not in \[0\.\.1\]"):
        values(store, "h", {"name": "percentile", "sampling": M1, "percentile": 1.5})


# -- parsing -----------------------------------------------------------------------------------


def parse_agg(entry: dict):
    doc = {"start_absolute": 0, "metrics": [{"name": "h", "aggregators": [entry]}]}
    return parse_query(doc).metrics[0].aggregators[0]


def test_merge_and_apdex_parse_with_range_properties() -> None:
    got = parse_agg(
        {
            "name": "merge",
            "sampling": {"value": 5, "unit": "MINUTES"},
            "precision": "12",
            "align_end_time": True,
        }
    )
    assert isinstance(got, RangeAgg)
    assert (got.name, got.sampling.value, got.sampling.unit) == ("merge", 5, "MINUTES")
    assert (got.precision, got.align_end_time) == (12, True)
    assert parse_agg({"name": "merge"}).precision == 52
    assert parse_agg({"name": "apdex", "target": 0.5}).target == 0.5
    assert parse_agg({"name": "apdex", "target": None}).target == 1.0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "merge", "precision": 0}, "precision must be greater than or equal to 1"),
        ({"name": "merge", "precision": 53}, "precision must be less than or equal to 52"),
        ({"name": "apdex", "target": -1}, "target must be greater than or equal to 0"),
        ({"name": "apdex", "target": "NaN"}, "target must be greater than or equal to 0"),
    ],
)
def test_merge_and_apdex_validation(entry: dict, message: str) -> None:
    with pytest.raises(InvalidQuery) as e:
        parse_agg(entry)
    assert e.value.messages == [f"{CTX}.{message}"]


def test_unknown_property_names_the_plugin_class() -> None:
    with pytest.raises(InvalidQuery) as e:
        parse_agg({"name": "apdex", "percentile": 0.5})
    assert e.value.messages == [
        "Property 'percentile' was specified for object 'apdex' but no matching setter was found "
        "on 'class io.inscopemetrics.kairosdb.aggregators.HistogramApdexAggregator'"
    ]


# -- module-level helpers --------------------------------------------------------------------


def test_bins_of_recognises_only_exact_bins() -> None:
    parsed = Histogram.from_json(bins({"-3.0": 1, "0.0": 1, "1.5": 2}, 4, None, None, None, 4))
    keys, counts, precision = histograms.bins_of(parsed)
    assert keys.tolist() == [-3.0, 0.0, 1.5]
    assert counts.tolist() == [1, 1, 2]
    assert precision == 4
    assert histograms.bins_of(Histogram([1, 2], [0, 1, 0])) is None  # (1, 2]: no precision 0
    assert histograms.bins_of(Histogram([1, 1.5], [0, 1, 1])) is None  # overflow bucket
    assert histograms.bins_of(Histogram([1.1, 1.6], [0, 1, 0])) is None  # 1.1 is off the grid
    assert histograms.bins_of(Histogram([1], [3, 0])) is None  # (-inf, 1]
    assert histograms.bins_of(Histogram([0], [3, 0]))[2] == 52  # the zero bin alone


def test_merge_window_matches_merge_all_for_explicit_histograms() -> None:
    a = Histogram([1, 2, 4], [1, 2, 3, 4], sum=30.0, min=0.5, max=9.0)
    b = Histogram([2, 3], [5, 0, 1], sum=10.0, min=1.0, max=3.5)
    assert histograms.merge_window([a, b], 1) == a.merge(b)
