"""The histogram data type: JSON forms, statistics, merging and the byte encoding."""

from __future__ import annotations

import math
import pickle
import struct

import numpy as np
import pytest

from kairos.errors import BadRequest, InvalidHistogram
from kairos.model.histogram import Histogram, merge_all, percentiles

NAN = math.nan
INF = math.inf


def assert_hist(h: Histogram, boundaries: list[float], counts: list[int]) -> None:
    assert h.boundaries.dtype == np.float64
    assert h.counts.dtype == np.int64
    assert h.boundaries.tolist() == boundaries
    assert h.counts.tolist() == counts
    assert h.total_count == sum(counts)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# --------------------------------------------------------------------------- direct form


def test_direct_form_all_fields():
    h = Histogram.from_json(
        {
            "boundaries": [1, 2.5],
            "counts": [0, 3, 1],
            "total_count": 4,
            "sum": 6.5,
            "min": 1.5,
            "max": 2.75,
        }
    )
    assert_hist(h, [1.0, 2.5], [0, 3, 1])
    assert (h.sum, h.min, h.max, h.total_count) == (6.5, 1.5, 2.75, 4)
    assert isinstance(h.total_count, int)


def test_direct_form_without_overflow_bucket_appends_zero():
    h = Histogram.from_json({"boundaries": [1, 2, 3], "counts": [4, 5, 6]})
    assert_hist(h, [1.0, 2.0, 3.0], [4, 5, 6, 0])


def test_direct_form_optional_fields_and_integral_floats():
    h = Histogram.from_json(
        {"boundaries": [0.5], "counts": [3.0, 2], "min": None, "max": 7, "total_count": 5.0}
    )
    assert_hist(h, [0.5], [3, 2])
    assert math.isnan(h.sum) and math.isnan(h.min) and h.max == 7.0
    assert math.isnan(h.mean())


def test_direct_form_no_boundaries():
    assert_hist(Histogram.from_json({"boundaries": [], "counts": [7]}), [], [7])
    assert_hist(Histogram.from_json({"boundaries": [], "counts": []}), [], [0])


def test_direct_form_ignores_unknown_keys():
    h = Histogram.from_json({"boundaries": [1], "counts": [1, 1], "unit": "ms"})
    assert_hist(h, [1.0], [1, 1])


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2], "histogram must be a JSON object, got a list"),
        ("x", "histogram must be a JSON object, got a string"),
        (None, "histogram must be a JSON object, got null"),
        (
            {"foo": 1, "bar": 2},
            "histogram needs 'boundaries' and 'counts', 'buckets' (Prometheus) or 'bins' "
            "(Grafana); got keys: 'foo', 'bar'",
        ),
        (
            {},
            "histogram needs 'boundaries' and 'counts', 'buckets' (Prometheus) or 'bins' "
            "(Grafana); got keys: none",
        ),
        (
            {"boundaries": [1], "counts": [1, 1], "buckets": []},
            "histogram mixes the keys of several forms: 'boundaries'/'counts', 'buckets'",
        ),
        ({"boundaries": [1]}, "histogram has 'boundaries' but no 'counts'"),
        ({"counts": [1]}, "histogram has 'counts' but no 'boundaries'"),
        ({"boundaries": "1,2", "counts": [1]}, "histogram boundaries must be a list, got a string"),
        ({"boundaries": [1], "counts": {"a": 1}}, "histogram counts must be a list, got an object"),
        ({"boundaries": [1, "a"], "counts": [1]}, "histogram boundaries[1] is not a number: 'a'"),
        ({"boundaries": [None], "counts": [1]}, "histogram boundaries[0] is not a number: None"),
        ({"boundaries": [1], "counts": [0, "1"]}, "histogram counts[1] is not a number: '1'"),
        ({"boundaries": [1], "counts": [0, True]}, "histogram counts[1] is not a number: True"),
        ({"boundaries": [1], "counts": [0, -2]}, "histogram counts[1] is negative: -2"),
        ({"boundaries": [1], "counts": [1.5, 0]}, "histogram counts[0] is not an integer: 1.5"),
        ({"boundaries": [1], "counts": [NAN, 0]}, "histogram counts[0] is not an integer: nan"),
        (
            {"boundaries": [1], "counts": [2**63, 0]},
            "histogram counts[0] is larger than 2**63 - 1: 9223372036854775808",
        ),
        (
            {"boundaries": [1, 2, 3, 4, 5], "counts": [1, 2, 3]},
            "histogram counts has 3 entries but boundaries has 5 (expected 6)",
        ),
        (
            {"boundaries": [1], "counts": [1, 2, 3]},
            "histogram counts has 3 entries but boundaries has 1 (expected 2)",
        ),
        (
            {"boundaries": [1, 3, 2], "counts": [0, 0, 0, 0]},
            "histogram boundaries are not strictly increasing: boundaries[2] = 2.0 follows "
            "boundaries[1] = 3.0",
        ),
        (
            {"boundaries": [1, 1], "counts": [0, 0, 0]},
            "histogram boundaries are not strictly increasing: boundaries[1] = 1.0 follows "
            "boundaries[0] = 1.0",
        ),
        (
            {"boundaries": [1, NAN], "counts": [0, 0, 0]},
            "histogram boundaries[1] is not finite: nan",
        ),
        (
            {"boundaries": [-INF, 1], "counts": [0, 0, 0]},
            "histogram boundaries[0] is not finite: -inf",
        ),
        (
            {"boundaries": [1], "counts": [1, 3], "total_count": 5},
            "histogram total_count 5 does not equal the sum of counts 4",
        ),
        (
            {"boundaries": [1], "counts": [1, 3], "total_count": -4},
            "histogram total_count is negative: -4",
        ),
        (
            {"boundaries": [1], "counts": [1, 3], "min": 3, "max": 1},
            "histogram min 3.0 is greater than max 1.0",
        ),
        ({"boundaries": [1], "counts": [1, 3], "sum": "6"}, "histogram sum is not a number: '6'"),
        ({"boundaries": [1], "counts": [1, 3], "min": [1]}, "histogram min is not a number: [1]"),
        (
            {"boundaries": [1], "counts": [2**62, 2**62]},
            "histogram total count 9223372036854775808 is larger than 2**63 - 1",
        ),
    ],
)
def test_direct_form_rejections(obj, message):
    with pytest.raises(InvalidHistogram) as info:
        Histogram.from_json(obj)
    assert str(info.value) == message
    assert info.value.messages == [message]
    assert isinstance(info.value, BadRequest) and isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- Prometheus form


def test_prometheus_form():
    h = Histogram.from_json(
        {
            "buckets": [
                {"le": 1, "count": 0},
                {"le": "2", "count": 3},
                {"le": "+Inf", "count": 4},
            ],
            "count": 4,
            "sum": 6.5,
        }
    )
    assert_hist(h, [1.0, 2.0], [0, 3, 1])
    assert h.sum == 6.5 and math.isnan(h.min) and math.isnan(h.max)


def test_prometheus_form_unsorted_string_le():
    h = Histogram.from_json(
        {
            "buckets": [
                {"le": "Inf", "count": 10},
                {"le": "0.5", "count": 2},
                {"le": "1e1", "count": 9},
                {"le": 2.5, "count": 2},
            ]
        }
    )
    assert_hist(h, [0.5, 2.5, 10.0], [2, 0, 7, 1])


def test_prometheus_form_overflow_from_count():
    h = Histogram.from_json({"buckets": [{"le": 1, "count": 1}, {"le": 2, "count": 3}], "count": 7})
    assert_hist(h, [1.0, 2.0], [1, 2, 4])


def test_prometheus_form_without_inf_or_count():
    h = Histogram.from_json({"buckets": [{"le": 1, "count": 1}, {"le": 2, "count": 3}]})
    assert_hist(h, [1.0, 2.0], [1, 2, 0])


def test_prometheus_form_only_inf_and_empty():
    assert_hist(Histogram.from_json({"buckets": [{"le": "+Inf", "count": 5}]}), [], [5])
    assert_hist(Histogram.from_json({"buckets": [], "count": 3}), [], [3])
    assert_hist(Histogram.from_json({"buckets": []}), [], [0])


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"buckets": {"le": 1}}, "histogram buckets must be a list, got an object"),
        (
            {"buckets": [[1, 2]]},
            "histogram buckets[0] must be an object with 'le' and 'count', got a list",
        ),
        ({"buckets": [{"count": 1}]}, "histogram buckets[0] has no 'le'"),
        ({"buckets": [{"le": 1}]}, "histogram buckets[0] has no 'count'"),
        (
            {"buckets": [{"le": "abc", "count": 1}]},
            "histogram buckets[0].le is not a number: 'abc'",
        ),
        ({"buckets": [{"le": None, "count": 1}]}, "histogram buckets[0].le is not a number: None"),
        (
            {"buckets": [{"le": "-Inf", "count": 1}]},
            "histogram buckets[0].le must be a finite number or '+Inf', got '-Inf'",
        ),
        (
            {"buckets": [{"le": "NaN", "count": 1}]},
            "histogram buckets[0].le must be a finite number or '+Inf', got 'NaN'",
        ),
        (
            {"buckets": [{"le": -INF, "count": 1}]},
            "histogram buckets[0].le must be a finite number or '+Inf', got -inf",
        ),
        (
            {"buckets": [{"le": NAN, "count": 1}]},
            "histogram buckets[0].le must be a finite number or '+Inf', got nan",
        ),
        (
            {"buckets": [{"le": "1e999", "count": 1}]},
            "histogram buckets[0].le is out of the float64 range: '1e999'",
        ),
        ({"buckets": [{"le": 1, "count": -1}]}, "histogram buckets[0].count is negative: -1"),
        (
            {"buckets": [{"le": 1, "count": 0.5}]},
            "histogram buckets[0].count is not an integer: 0.5",
        ),
        (
            {"buckets": [{"le": 2, "count": 3}, {"le": 1, "count": 4}]},
            "histogram buckets are not cumulative: count 3 at le=2.0 is less than count 4 "
            "at le=1.0",
        ),
        (
            {"buckets": [{"le": 1, "count": 3}, {"le": "1.0", "count": 3}]},
            "histogram buckets[0] and buckets[1] have the same le 1.0",
        ),
        (
            {"buckets": [{"le": 1, "count": 3}, {"le": "+Inf", "count": 5}], "count": 6},
            "histogram +Inf bucket count 5 does not equal count 6",
        ),
        (
            {"buckets": [{"le": 1, "count": 3}, {"le": 2, "count": 5}], "count": 4},
            "histogram count 4 is less than the cumulative count 5 at le=2.0",
        ),
        ({"buckets": [], "count": "3"}, "histogram count is not a number: '3'"),
    ],
)
def test_prometheus_form_rejections(obj, message):
    with pytest.raises(InvalidHistogram) as info:
        Histogram.from_json(obj)
    assert str(info.value) == message


# --------------------------------------------------------------------------- Grafana form


def test_grafana_form():
    h = Histogram.from_json(
        {
            "bins": {"1.5": 3, "2.5": 1},
            "precision": 7,
            "min": 1.5,
            "max": 2.5,
            "sum": 6.5,
            "count": 4,
        }
    )
    # 1.5 = 1.1b * 2**0 covers [1.5, 1.5 + 2**-7); 2.5 = 1.01b * 2**1 covers [2.5, 2.5 + 2**-6).
    assert_hist(h, [1.5, 1.5078125, 2.5, 2.515625], [0, 3, 0, 1, 0])
    assert (h.sum, h.min, h.max) == (6.5, 1.5, 2.5)


def test_grafana_form_default_precision_negative_and_zero():
    h = Histogram.from_json({"bins": {"-1.5": 3, "0": 2, "2.5": 1}})
    # -1.5 covers (-1.5 - 2**-7, -1.5]; 0 covers [0, 0].
    assert_hist(h, [-1.5078125, -1.5, 0.0, 2.5, 2.515625], [0, 3, 2, 0, 1, 0])


def test_grafana_form_adjacent_bins_share_a_boundary():
    h = Histogram.from_json({"bins": {"1": 1, "1.5": 2.0, "-1": 4}, "precision": 1})
    assert_hist(h, [-1.5, -1.0, 1.0, 1.5, 2.0], [0, 4, 0, 1, 2, 0])


def test_grafana_form_large_and_small_keys():
    h = Histogram.from_json({"bins": {"1024": 1, "0.0625": 1}, "precision": 2})
    assert_hist(h, [0.0625, 0.078125, 1024.0, 1280.0], [0, 1, 0, 1, 0])


def test_grafana_form_empty():
    assert_hist(Histogram.from_json({"bins": {}, "count": 0}), [], [0])


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"bins": [[1, 2]]},
            "histogram bins must be an object mapping bucket to count, got a list",
        ),
        ({"bins": {"abc": 1}}, "histogram bins key 'abc' is not a decimal number"),
        ({"bins": {"nan": 1}}, "histogram bins key 'nan' is not a decimal number"),
        ({"bins": {"1_0": 1}}, "histogram bins key '1_0' is not a decimal number"),
        ({"bins": {"1e999": 1}}, "histogram bins key '1e999' is not finite"),
        (
            {"bins": {"1.7976931348623157e308": 1}, "precision": 1},
            "histogram bins key '1.7976931348623157e308' is too large: its bucket at precision 1 "
            "reaches past the float64 range",
        ),
        ({"bins": {"1": -1}}, "histogram bins['1'] is negative: -1"),
        ({"bins": {"1": "2"}}, "histogram bins['1'] is not a number: '2'"),
        (
            {"bins": {"1": 1}, "precision": 0},
            "histogram precision must be an integer in [1, 52], got 0",
        ),
        (
            {"bins": {"1": 1}, "precision": 53},
            "histogram precision must be an integer in [1, 52], got 53",
        ),
        (
            {"bins": {"1": 1}, "precision": 7.5},
            "histogram precision must be an integer in [1, 52], got 7.5",
        ),
        (
            {"bins": {"1": 1}, "precision": "7"},
            "histogram precision must be an integer in [1, 52], got '7'",
        ),
        (
            {"bins": {"1": 1}, "precision": True},
            "histogram precision must be an integer in [1, 52], got True",
        ),
        (
            {"bins": {"1": 2, "2": 3}, "count": 4},
            "histogram count 4 does not equal the sum of bin counts 5",
        ),
        ({"bins": {"1": 2, "1.0": 3}}, "histogram bins '1' and '1.0' are the same bucket"),
        ({"bins": {"0": 2, "-0": 3}}, "histogram bins '0' and '-0' are the same bucket"),
        (
            {"bins": {"1": 2, "1.25": 3}, "precision": 1},
            "histogram bins '1' and '1.25' overlap at precision 1",
        ),
        (
            {"bins": {"1": 2}, "min": 2, "max": 1},
            "histogram min 2.0 is greater than max 1.0",
        ),
    ],
)
def test_grafana_form_rejections(obj, message):
    with pytest.raises(InvalidHistogram) as info:
        Histogram.from_json(obj)
    assert str(info.value) == message


def test_looks_like():
    assert Histogram.looks_like({"boundaries": [], "counts": []})
    assert Histogram.looks_like({"buckets": []})
    assert Histogram.looks_like({"bins": {}, "precision": 7})
    assert not Histogram.looks_like({"boundaries": []})
    assert not Histogram.looks_like({"value": 1})
    assert not Histogram.looks_like([("bins", 1)])
    assert not Histogram.looks_like("bins")
    assert not Histogram.looks_like(None)


# --------------------------------------------------------------------------- statistics


@pytest.fixture
def h10() -> Histogram:
    return Histogram([10, 20, 30], [0, 4, 4, 2], sum=230.0, min=12.0, max=35.0)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.0, 12.0),  # lower edge 10 of the first non-empty bucket, clamped to min
        (0.2, 15.0),  # rank 2 of 4 in (10, 20]
        (0.4, 20.0),
        (0.5, 22.5),  # rank 5: 1 of 4 into (20, 30]
        (0.9, 32.5),  # rank 9: 1 of 2 into (30, max=35]
        (1.0, 35.0),
    ],
)
def test_percentile_hand_checked(h10, q, expected):
    assert h10.percentile(q) == expected


def test_percentile_unknown_extremes_use_outer_boundaries():
    h = Histogram([1, 2], [2, 0, 2])
    assert h.percentile(0.0) == 1.0
    assert h.percentile(0.5) == 1.0
    assert h.percentile(0.75) == 2.0
    assert h.percentile(1.0) == 2.0


def test_percentile_clamps_into_min_max():
    h = Histogram([0, 100], [0, 10, 0], min=40.0, max=50.0)
    assert h.percentile(0.1) == 40.0
    assert h.percentile(0.45) == 45.0
    assert h.percentile(0.9) == 50.0


def test_percentile_empty_and_without_boundaries():
    assert math.isnan(Histogram([1, 2], [0, 0, 0], min=1, max=2).percentile(0.5))
    assert Histogram([], [4], min=0, max=8).percentile(0.25) == 2.0
    assert Histogram([], [4], max=8).percentile(0.25) == 8.0
    assert math.isnan(Histogram([], [4]).percentile(0.25))


@pytest.mark.parametrize("q", [-0.1, 1.5, NAN, INF, True, "0.5", None])
def test_percentile_rejects_bad_q(h10, q):
    with pytest.raises(ValueError, match=r"percentile q must be a number in \[0, 1\], got "):
        h10.percentile(q)


def test_mean():
    assert Histogram([1], [1, 3], sum=10.0).mean() == 2.5
    assert math.isnan(Histogram([1], [0, 0], sum=0.0).mean())
    assert math.isnan(Histogram([1], [1, 3]).mean())


def test_merge_hand_checked():
    a = Histogram([1, 2], [1, 2, 3], sum=10.0, min=0.5, max=4.0)
    b = Histogram([2, 3], [4, 5, 6], sum=20.0, min=1.5, max=9.0)
    m = a.merge(b)
    assert_hist(m, [1.0, 2.0, 3.0], [1, 6, 5, 9])
    assert (m.sum, m.min, m.max) == (30.0, 0.5, 9.0)
    assert m == b.merge(a)
    # The inputs are untouched values.
    assert_hist(a, [1.0, 2.0], [1, 2, 3])


def test_merge_same_boundaries_adds_counts():
    a = Histogram([1, 2], [1, 2, 3], sum=1.0, min=0.0, max=3.0)
    m = a.merge(a)
    assert_hist(m, [1.0, 2.0], [2, 4, 6])
    assert (m.sum, m.min, m.max) == (2.0, 0.0, 3.0)


def test_merge_skips_statistics_of_empty_histograms():
    a = Histogram([1], [1, 1], sum=3.0, min=0.5, max=2.5)
    empty = Histogram([5], [0, 0])
    m = a.merge(empty)
    assert_hist(m, [1.0, 5.0], [1, 0, 1])
    assert (m.sum, m.min, m.max) == (3.0, 0.5, 2.5)
    assert m == empty.merge(a)


def test_merge_unknown_extremes_stay_unknown():
    a = Histogram([1], [1, 1], sum=3.0, min=0.5, max=2.5)
    b = Histogram([1], [1, 0], sum=1.0)
    m = a.merge(b)
    assert m.sum == 4.0 and math.isnan(m.min) and math.isnan(m.max)


def test_merge_total_overflow():
    a = Histogram([1], [2**62, 0])
    with pytest.raises(InvalidHistogram) as info:
        a.merge(a)
    assert str(info.value) == (
        "merged histogram total count 9223372036854775808 is larger than 2**63 - 1"
    )


def test_merge_type_error():
    with pytest.raises(TypeError, match="can only merge a Histogram, not dict"):
        Histogram([1], [0, 0]).merge({"boundaries": [1], "counts": [0, 0]})


def test_merge_all_and_percentiles_batches():
    hs = [
        Histogram([1, 2], [1, 2, 3], sum=1.0, min=0.0, max=3.0),
        Histogram([2, 4], [0, 5, 1], sum=2.0, min=1.0, max=5.0),
        Histogram([], [0]),
        Histogram([0.5], [7, 0], sum=4.0, min=-1.0, max=0.5),
    ]
    folded = hs[0].merge(hs[1]).merge(hs[2]).merge(hs[3])
    assert merge_all(hs) == folded
    assert_hist(folded, [0.5, 1.0, 2.0, 4.0], [7, 1, 2, 5, 4])
    assert (folded.sum, folded.min, folded.max) == (7.0, -1.0, 5.0)
    assert merge_all(hs[:1]) is hs[0]
    with pytest.raises(ValueError, match="merge_all needs at least one histogram"):
        merge_all([])
    for q in (0.0, 0.3, 0.5, 1.0):
        got = percentiles(hs, q)
        assert got.dtype == np.float64 and got.shape == (4,)
        assert all(same(g, h.percentile(q)) for g, h in zip(got, hs, strict=True))
    assert percentiles([], 0.5).shape == (0,)


def test_from_samples():
    h = Histogram.from_samples([0.5, 1, 1.5, 2, 3, 3.5, NAN], [1, 2, 3])
    assert_hist(h, [1.0, 2.0, 3.0], [2, 2, 1, 1])
    assert (h.sum, h.min, h.max) == (11.5, 0.5, 3.5)
    assert all(type(x) is float for x in (h.sum, h.min, h.max))


def test_from_samples_infinities_and_no_samples():
    h = Histogram.from_samples(np.array([-INF, INF, 0.0]), np.array([0.0]))
    assert_hist(h, [0.0], [2, 1])
    assert math.isnan(h.sum) and (h.min, h.max) == (-INF, INF)
    e = Histogram.from_samples([NAN, NAN], [1.0])
    assert_hist(e, [1.0], [0, 0])
    assert e.sum == 0.0 and math.isnan(e.min) and math.isnan(e.max)


def test_from_samples_bad_boundaries():
    with pytest.raises(InvalidHistogram, match=r"histogram boundaries\[1\] is not finite: inf"):
        Histogram.from_samples([1.0], [1.0, INF])
    with pytest.raises(ValueError, match="samples must be one-dimensional"):
        Histogram.from_samples([[1.0]], [1.0])


# --------------------------------------------------------------------------- value semantics


def test_constructor_copies_and_freezes():
    bounds = np.array([1.0, 2.0])
    counts = [1, 2, 3]
    h = Histogram(bounds, counts)
    bounds[0] = 0.0
    counts[0] = 9
    assert_hist(h, [1.0, 2.0], [1, 2, 3])
    with pytest.raises(ValueError, match="read-only"):
        h.counts[0] = 5
    with pytest.raises(ValueError, match="read-only"):
        h.boundaries[0] = 5.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([[1.0]], [0, 0]), "histogram boundaries must be one-dimensional, got (1, 1)"),
        ((["a"], [0, 0]), "histogram boundaries must be a list of numbers, got ['a']"),
        (([1.0], np.array([0, 1], dtype=np.uint64) - np.uint64(1)), "histogram counts[0] is "),
        (([1.0], np.array([0.0, 0.5])), "histogram counts[1] is not an integer: 0.5"),
        (([1.0], np.array([True, False])), "histogram counts must be a list of integers"),
    ],
)
def test_constructor_rejections(args, message):
    with pytest.raises(InvalidHistogram) as info:
        Histogram(*args)
    assert str(info.value).startswith(message)


def test_equality_and_canonical_values():
    a = Histogram([-0.0, 1.0], [1, 2, 3], sum=float("-nan"), min=-0.0)
    b = Histogram([0.0, 1.0], [1, 2, 3], sum=NAN, min=0.0)
    assert a == b
    assert a.to_bytes() == b.to_bytes()
    assert math.copysign(1.0, a.boundaries[0]) == 1.0
    assert a != Histogram([0.0, 1.0], [1, 2, 4], sum=NAN, min=0.0)
    assert a != Histogram([0.0, 1.0], [1, 2, 3], sum=1.0, min=0.0)
    assert a != "histogram"
    with pytest.raises(TypeError):
        hash(a)


def test_repr():
    h = Histogram([1, 2.5], [0, 3, 1], sum=6.5, min=1.5)
    assert (
        repr(h) == "Histogram(boundaries=[1.0, 2.5], counts=[0, 3, 1], sum=6.5, min=1.5, max=nan)"
    )
    big = Histogram(np.arange(20.0), np.ones(21, dtype=np.int64))
    assert repr(big).startswith(
        "Histogram(boundaries=[0.0, 1.0, 2.0, 3.0, ..., 16.0, 17.0, 18.0, 19.0], "
        "counts=[1, 1, 1, 1, ..., 1, 1, 1, 1], sum=nan"
    )


def test_pickle_round_trip():
    h = Histogram([1, 2.5], [0, 3, 1], sum=6.5, min=1.5, max=3.0)
    assert pickle.loads(pickle.dumps(h)) == h


# --------------------------------------------------------------------------- JSON output


def test_to_json():
    h = Histogram([1, 2.5], [0, 3, 1], sum=6.5, min=1.5)
    assert h.to_json() == {
        "boundaries": [1.0, 2.5],
        "counts": [0, 3, 1],
        "total_count": 4,
        "sum": 6.5,
        "min": 1.5,
    }
    assert Histogram.from_json(h.to_json()) == h
    assert Histogram([], [0]).to_json() == {"boundaries": [], "counts": [0], "total_count": 0}


# --------------------------------------------------------------------------- bytes


def test_to_bytes_documented_example():
    h = Histogram([1.0], [2, 300], sum=7.0, min=0.5, max=5.0)
    expected = bytes.fromhex(
        "01 01000000 000000000000f03f 02 ac02 0000000000001c40 000000000000e03f 0000000000001440"
    )
    assert h.to_bytes() == expected
    assert Histogram.from_bytes(expected) == h
    assert Histogram.from_bytes(bytearray(expected)) == h
    assert Histogram.from_bytes(memoryview(expected)) == h


def test_bytes_round_trip_extremes():
    h = Histogram([-1e308, 0.0, 5e-324, 1e308], [0, 2**63 - 4, 1, 1, 1], sum=-INF, min=-INF)
    b = h.to_bytes()
    assert len(b) == 5 + 8 * 4 + (1 + 9 + 1 + 1 + 1) + 24
    back = Histogram.from_bytes(b)
    assert back == h and back.to_bytes() == b
    assert back.total_count == 2**63 - 1
    nan_bytes = Histogram([], [0]).to_bytes()
    assert nan_bytes[-8:] == bytes.fromhex("000000000000f87f")


def _encode(
    n: int, bounds: list[float], counts: bytes, stats: tuple[float, float, float] = (0, 0, 0)
) -> bytes:
    return (
        struct.pack("<BI", 1, n)
        + struct.pack(f"<{len(bounds)}d", *bounds)
        + counts
        + struct.pack("<3d", *stats)
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "histogram encoding is 0 bytes, shorter than its 5-byte header"),
        (b"\x01\x00\x00", "histogram encoding is 3 bytes, shorter than its 5-byte header"),
        (
            b"\x02" + bytes(40),
            "unsupported histogram encoding version 2 (expected 1)",
        ),
        (
            b"\x01\xff\xff\xff\xff" + bytes(40),
            "histogram encoding is 45 bytes, too short for 4294967295 boundaries "
            "(at least 38654705685)",
        ),
        (
            _encode(1, [1.0], b"\x00")[:-1],
            "histogram encoding is 37 bytes, too short for 1 boundaries (at least 39)",
        ),
        (
            _encode(3, [1.0, 2.0, 3.0], (b"\xff" * 8 + b"\x7f") * 3 + b"\x80")[:-24],
            "histogram encoding ends inside counts[3]",
        ),
        (_encode(0, [], b"\xff" * 9 + b"\x01"), "histogram encoding passes 2**63 - 1 in counts[0]"),
        (
            _encode(1, [1.0], b"\x05\x80\x00"),
            "histogram encoding has a non-canonical varint for counts[1]",
        ),
        (
            _encode(0, [], b"\x01\x00"),
            "histogram encoding has 25 bytes after its counts (expected 24)",
        ),
        (
            _encode(0, [], b"\x81\x01")[:-1],
            "histogram encoding has 23 bytes after its counts (expected 24)",
        ),
        (_encode(1, [NAN], b"\x00\x00"), "histogram boundaries[0] is not finite: nan"),
        (
            _encode(2, [2.0, 1.0], b"\x00\x00\x00"),
            "histogram boundaries are not strictly increasing: boundaries[1] = 1.0 follows "
            "boundaries[0] = 2.0",
        ),
        (_encode(0, [], b"\x00", (0.0, 2.0, 1.0)), "histogram min 2.0 is greater than max 1.0"),
        (
            _encode(1, [1.0], b"\xff" * 8 + b"\x7f" + b"\x01"),
            "histogram total count 9223372036854775808 is larger than 2**63 - 1",
        ),
    ],
)
def test_from_bytes_garbage(data, message):
    with pytest.raises(InvalidHistogram) as info:
        Histogram.from_bytes(data)
    assert str(info.value) == message


@pytest.mark.parametrize("data", ["01", 5, None, [1, 0, 0, 0, 0]])
def test_from_bytes_type_error(data):
    with pytest.raises(TypeError, match="histogram bytes must be bytes-like"):
        Histogram.from_bytes(data)


def test_percentile_stays_inside_its_bucket_despite_rounding() -> None:
    # lo + 1.0 * (hi - lo) rounds to 0.0 here, above the bucket's upper edge -3e-285.
    h = Histogram.from_samples([0.0, -1.0], [-3.0197265326083642e-285])
    assert h.percentile(0.5) == -3.0197265326083642e-285
    assert h.percentile(0.5) <= h.percentile(0.75)


def test_query_output_with_bins_and_exact_buckets_reads_back_exactly() -> None:
    h = Histogram.from_json(
        {"boundaries": [1, 5], "counts": [2, 3, 1], "sum": 20, "min": 0.5, "max": 9}
    )
    out = {**h.to_json(), "bins": {"0.5": 2, "1.0": 3, "5.0": 1}, "precision": 52, "count": 6}
    assert Histogram.from_json(out) == h
