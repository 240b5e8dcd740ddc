"""kairosdb-extensions' aggregators through the query engine: the histogram bin ``filter``,
``percent_remaining`` and ``movingWindow``.  Every expected value is worked by hand from the
plugin's Java (``HistogramFilterAggregator``, ``HistogramPercentRemainingAggregator``,
``MovingWindowAggregator``); the derivations are in the comments.

Precision-1 bins used below: ``1.0`` holds [1, 1.5), ``1.5`` [1.5, 2), ``2.0`` [2, 3), ``3.0``
[3, 4), ``4.0`` [4, 6); a bin's inclusive upper bound is one ulp under the next key
(``binInclusiveBound``), and for a negative key the key is the upper bound.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from kairos.errors import BadRequest, InvalidQuery
from kairos.ingest.parser import parse_datapoints
from kairos.query import moving_window
from kairos.query.engine import run_query
from kairos.query.model import parse_query
from kairos.storage.embedded.store import EmbeddedStore

MIN = 60_000
UNDER_2 = 1.9999999999999998  # binInclusiveBound(1.5)
UNDER_3 = 2.9999999999999996  # binInclusiveBound(2.0)


@pytest.fixture
def store(tmp_path):
    return EmbeddedStore(str(tmp_path), writer=True)


def put(store, metric, points):
    r = parse_datapoints(
        json.dumps([{"name": metric, "datapoints": points, "tags": {"h": "a"}}]).encode()
    )
    assert r.errors == []
    store.write(r.batch)


def values(store, metric, *aggregators, start=0, end=None, **metric_fields):
    doc = {
        "start_absolute": start,
        "metrics": [{"name": metric, "aggregators": list(aggregators), **metric_fields}],
    }
    if end is not None:
        doc["end_absolute"] = end
    resp = run_query(store, parse_query(doc), now_ms=10**13)
    results = json.loads(orjson.dumps(resp))["queries"][0]["results"]
    return [res["values"] for res in results]


def hist(b, vmin, vmax, total_sum, count, precision=1):
    return {"bins": b, "precision": precision, "min": vmin, "max": vmax, "sum": total_sum}


def printed(v: dict) -> dict:
    """The plugin's fields of a printed histogram (Kairos adds its lossless form)."""
    return {k: v[k] for k in ("bins", "precision", "min", "max", "sum", "count")}


def bin_filter(op, threshold, inclusion="keep"):
    return {
        "name": "filter",
        "filter_op": op,
        "threshold": threshold,
        "filter_indeterminate_inclusion": inclusion,
    }


# H: 10 samples over four bins; SMALL: max 2.4, under any "gt 2.5"; BIG: all in [4, 6).
H = {**hist({"1.0": 2, "1.5": 1, "2.0": 3, "3.0": 4}, 1.1, 3.9, 24.0, 10), "count": 10}
SMALL = {**hist({"1.0": 1, "2.0": 1}, 1.2, 2.4, 3.6, 2), "count": 2}
BIG = {**hist({"4.0": 2}, 4.5, 5.0, 9.5, 2), "count": 2}


@pytest.fixture
def three(store):
    put(store, "h", [[1, H], [2, SMALL], [3, BIG]])
    return store


def test_bin_filter_gt_keep_and_discard(three) -> None:
    # gt 2.5 removes values above 2.5.  keep: a bin goes when both bounds are > 2.5, so only
    # [3, 4) goes; [2, 3) straddles and stays.  max was 3.9 > 2.5: it becomes the highest
    # kept bound, 3 - ulp; min stays.  sum = 1*2 + 1.5*1 + 2*3.  SMALL: 2.5 >= max, unchanged.
    # BIG loses its only bin and is dropped.
    (got,) = values(three, "h", bin_filter("gt", 2.5))
    assert [(t, printed(v)) for t, v in got] == [
        (1, {**hist({"1.0": 2, "1.5": 1, "2.0": 3}, 1.1, UNDER_3, 9.5, 6), "count": 6}),
        (2, SMALL),
    ]
    # discard: a bin goes when either bound is > 2.5, so [2, 3) goes too.
    (got,) = values(three, "h", bin_filter("gt", 2.5, "discard"))
    assert [(t, printed(v)) for t, v in got] == [
        (1, {**hist({"1.0": 2, "1.5": 1}, 1.1, UNDER_2, 3.5, 3), "count": 3}),
        (2, SMALL),
    ]


def test_bin_filter_lt_moves_min_to_the_lowest_kept_bin(three) -> None:
    # lt 1.5: [1, 1.5) lies wholly under 1.5 and goes.  min (1.1, 1.2) was under the threshold:
    # the lowest kept bound.  BIG: 1.5 <= its min, unchanged.
    (got,) = values(three, "h", bin_filter("lt", 1.5))
    assert [(t, printed(v)) for t, v in got] == [
        (1, {**hist({"1.5": 1, "2.0": 3, "3.0": 4}, 1.5, 3.9, 19.5, 8), "count": 8}),
        (2, {**hist({"2.0": 1}, 2.0, 2.4, 2.0, 1), "count": 1}),
        (3, BIG),
    ]


def test_bin_filter_equal(three) -> None:
    # equal + keep can never change a histogram (histNotChangedByThreshold).
    (got,) = values(three, "h", bin_filter("equal", 2.5))
    assert [(t, printed(v)) for t, v in got] == [(1, H), (2, SMALL), (3, BIG)]
    # equal + discard drops the bin holding 2.5; min 1.1 and max 3.9 lie in kept bins and stay.
    # SMALL (max 2.4 < 2.5) and BIG (min 4.5 > 2.5) cannot hold 2.5: unchanged.
    (got,) = values(three, "h", bin_filter("equal", 2.5, "discard"))
    assert [(t, printed(v)) for t, v in got] == [
        (1, {**hist({"1.0": 2, "1.5": 1, "3.0": 4}, 1.1, 3.9, 15.5, 7), "count": 7}),
        (2, SMALL),
        (3, BIG),
    ]


def test_bin_filter_negative_bins(store) -> None:
    # Negative keys are the bins' upper bounds: -1.0 holds (-1.5, -1.0], -1.5 (-2, -1.5].
    neg = {**hist({"-1.0": 2, "-1.5": 1, "2.0": 1}, -1.9, 2.5, -1.0, 4), "count": 4}
    put(store, "n", [[1, neg]])
    # gt -1.25, keep: only [2, 3) lies wholly above; max -> the kept bins' highest bound -1.0.
    (got,) = values(store, "n", bin_filter("gt", -1.25))
    assert printed(got[0][1]) == {
        **hist({"-1.5": 1, "-1.0": 2}, -1.9, -1.0, -3.5, 3),
        "count": 3,
    }
    # discard: (-1.5, -1.0] has its upper bound above -1.25 and goes as well.
    (got,) = values(store, "n", bin_filter("gt", -1.25, "discard"))
    assert printed(got[0][1]) == {**hist({"-1.5": 1}, -1.9, -1.5, -1.5, 1), "count": 1}


def test_bin_filter_numeric_string_threshold_and_number_groups(store) -> None:
    # The delegating filter's threshold is a double: "2.5" is 2.5 for histograms and numbers.
    put(store, "h", [[1, H]])
    put(store, "n", [[1, 1], [2, 3]])
    (got,) = values(store, "h", bin_filter("gt", "2.5", "discard"))
    assert printed(got[0][1])["bins"] == {"1.0": 2, "1.5": 1}
    assert values(store, "n", bin_filter("gt", "2.5")) == [[[1, 1]]]
    # The core filter (no filter_indeterminate_inclusion) keeps a String threshold, which
    # matches neither numbers nor histograms: every point goes.
    core = {"name": "filter", "filter_op": "gt", "threshold": "2.5"}
    assert values(store, "h", core) == []
    assert values(store, "n", core) == []


def test_percent_remaining(three) -> None:
    # Unfiltered histograms keep all their samples.
    assert values(three, "h", {"name": "percent_remaining"}) == [[[1, 1.0], [2, 1.0], [3, 1.0]]]
    # After the bin filter: H keeps 3 of 10 (gt 2.5 discard); SMALL is untouched; BIG is gone.
    assert values(three, "h", bin_filter("gt", 2.5, "discard"), {"name": "percent_remaining"}) == [
        [[1, 0.3], [2, 1.0]]
    ]
    # Two filters: lt 1.5 keeps 8 of the original 10; then gt 2.5 keep leaves 1.5 and 2.0,
    # 4 of the original 10 (not of 8).
    assert values(
        three,
        "h",
        bin_filter("lt", 1.5),
        bin_filter("gt", 2.5),
        {"name": "percent_remaining"},
        order="desc",
    ) == [[[2, 0.5], [1, 0.4]]]


def test_percent_remaining_after_merge_adds_the_original_counts(three) -> None:
    # HistogramMergeAggregator sums getOriginalCount(): after gt 2.5 discard H keeps 3 of 10,
    # SMALL 2 of 2, BIG is gone; merged in one window: 5 / 12.
    merge = {"name": "merge", "sampling": {"value": 1, "unit": "minutes"}}
    assert values(
        three, "h", bin_filter("gt", 2.5, "discard"), merge, {"name": "percent_remaining"}
    ) == [[[1, 5 / 12]]]
    # movingWindow re-emits the filtered histograms with their original counts.
    window = {"name": "movingWindow", "sampling": {"value": 1, "unit": "minutes"}}
    assert values(
        three, "h", bin_filter("gt", 2.5, "discard"), window, {"name": "percent_remaining"}
    ) == [[[MIN, 0.3], [MIN, 1.0]]]


def test_percent_remaining_passes_numbers_through(store) -> None:
    put(store, "n", [[1, 5]])
    assert values(store, "n", {"name": "percent_remaining"}) == [[[1, 5]]]


def test_empty_histogram_percent_remaining_is_minus_one(store) -> None:
    put(store, "e", [[1, {"bins": {}, "precision": 1, "count": 0}]])
    assert values(store, "e", {"name": "percent_remaining"}) == [[[1, -1.0]]]


@pytest.mark.parametrize(
    ("aggregators", "message"),
    [
        # HistogramFilterAggregator has no NE (IllegalStateException in Java).
        ([bin_filter("ne", 2.5)], "Unsupported FilterOp Enum type"),
        # "KEEP" is no lower-case enum name: Gson leaves the inclusion null.
        ([bin_filter("gt", 2.5, "KEEP")], "Unsupported FilterIndeterminateInclusion Enum type"),
        (
            [
                {"name": "gaps", "sampling": {"value": 1, "unit": "milliseconds"}},
                {"name": "percent_remaining"},
            ],
            "Cannot compute percent remaining of non histogram data point",
        ),
    ],
)
def test_bad_histogram_requests_are_400(three, aggregators, message) -> None:
    with pytest.raises(BadRequest) as e:
        values(three, "h", *aggregators, end=10)
    assert e.value.status_code == 400
    assert e.value.messages == [message]


def test_null_inclusion_is_fine_where_no_bin_is_judged(three) -> None:
    # gt 10 cannot change any of them (10 >= every max): the null inclusion is never read.
    (got,) = values(three, "h", bin_filter("gt", 10, "KEEP"))
    assert [t for t, _ in got] == [1, 2, 3]
    # ne on numbers is the core filter's.
    put(three, "n", [[1, 1], [2, 3]])
    assert values(three, "n", bin_filter("ne", 3)) == [[[2, 3]]]


# -- movingWindow --------------------------------------------------------------------------------


def mw(value, unit, **props):
    return {"name": "movingWindow", "sampling": {"value": value, "unit": unit}, **props}


@pytest.fixture
def minutes(store):
    # Query start S = 10m; points at 9.5m (read because the pre-processor reads from S - 2m),
    # 10m, 11m, 12.5m and 16m, valued 1..5.
    ts = [9 * MIN + 30_000, 10 * MIN, 11 * MIN, 12 * MIN + 30_000, 16 * MIN]
    put(store, "m", [[t, v] for v, t in enumerate(ts, 1)])
    return store


def test_moving_window_minutes(minutes) -> None:
    # Two-minute windows stepping one minute on the grid S + k minutes.  The first point
    # (9.5m): Joda's difference is trunc(-0.5) = 0, the remainder of -30 s is 30 s > 0, so
    # getStartRange = S + (1 - 2) = 9m: window (9m, 11m] takes 9.5m, 10m, 11m, emitted at 11m.
    # Then (10m, 12m] keeps 11m; (11m, 13m] holds 12.5m alone; (12m, 14m] again; (13m, 15m] is
    # empty, so the window jumps to getStartRange(16m) = 14m: (14m, 16m] takes 16m, the last.
    assert values(minutes, "m", mw(2, "minutes"), start=10 * MIN) == [
        [
            [11 * MIN, 1],
            [11 * MIN, 2],
            [11 * MIN, 3],
            [12 * MIN, 3],
            [13 * MIN, 4],
            [14 * MIN, 4],
            [16 * MIN, 5],
        ]
    ]


def test_moving_window_descending_order(minutes) -> None:
    # In descending order Java's first fill starts at the newest point: window
    # (getStartRange(16m), +2m] = (14m, 16m] keeps 16m and consumes every older point, dropping
    # them (they are not after 14m); the group then has no more points.
    assert values(minutes, "m", mw(2, "minutes"), start=10 * MIN, order="desc") == [[[16 * MIN, 5]]]


def test_moving_window_align_sampling_and_start_time(minutes) -> None:
    # start_time 10m 20s aligned to the minute is S = 10m again: the same windows.
    assert values(
        minutes,
        "m",
        mw(2, "minutes", align_sampling=True, start_time=10 * MIN + 20_000),
        start=10 * MIN,
    ) == values(minutes, "m", mw(2, "minutes"), start=10 * MIN)
    # Unaligned start_time 10m 20s: the grid is 10m20s + k minutes.  9.5m: difference
    # trunc(-50 s / 1m) = 0, remainder 10 s > 0 -> 1: window (9m20s, 11m20s] holds 9.5m, 10m,
    # 11m; (10m20s, 12m20s] keeps 11m; next, empty after the trim, jumps to
    # getStartRange(12.5m) = S + (3 - 2)m = 11m20s: (11m20s, 13m20s] holds 12.5m; (12m20s,
    # 14m20s] again; then (14m20s, 16m20s] takes 16m.
    s = 10 * MIN + 20_000
    assert values(minutes, "m", mw(2, "minutes", start_time=s), start=10 * MIN) == [
        [
            [s + MIN, 1],
            [s + MIN, 2],
            [s + MIN, 3],
            [s + 2 * MIN, 3],
            [s + 3 * MIN, 4],
            [s + 4 * MIN, 4],
            [s + 6 * MIN, 5],
        ]
    ]


def test_moving_window_empty_group(store) -> None:
    put(store, "m", [[1, 1]])
    assert values(store, "m", mw(1, "minutes"), start=10 * MIN) == []


def ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_moving_window_months(store) -> None:
    # S = the query start 2024-01-15 aligned to 2024-01-01; one-month windows; the read starts
    # at 2023-12-01.  2023-12-20: the month difference to S is 0, the remainder of the
    # duration -12 days (as an instant: 1969-12-20) is > 0, so the first window is (Jan 1,
    # Feb 1] and 2023-12-20 (not after Jan 1) is dropped; Jan 10 is emitted at Feb 1.  The next
    # window (Feb 1, Mar 1] is empty after the trim: it jumps to getStartRange(Feb 5) = Feb 1
    # (difference 1, remainder > 0 -> 2, minus 1) and takes Feb 5 and Feb 20.  Then Apr 10:
    # difference 3, remainder of 100 days (1970-04-11) > 0 -> 4: (Apr 1, May 1].
    days = [ms(2023, 12, 20), ms(2024, 1, 10), ms(2024, 2, 5), ms(2024, 2, 20), ms(2024, 4, 10)]
    put(store, "mo", [[t, v] for v, t in enumerate(days, 1)])
    got = values(store, "mo", mw(1, "months", align_sampling=True), start=ms(2024, 1, 15))
    assert got == [
        [
            [ms(2024, 2, 1), 2],
            [ms(2024, 3, 1), 3],
            [ms(2024, 3, 1), 4],
            [ms(2024, 5, 1), 5],
        ]
    ]


def test_moving_window_weeks(store) -> None:
    # S = Wednesday 2024-01-03 aligned to Monday 2024-01-01.  Joda's week remainder counts from
    # Mondays (the epoch is a Thursday: +3 days): the 1.5-day duration to Jan 2 12:00 leaves
    # 4.5 days > 0, so the first window is (Jan 1, Jan 8] with Jan 2 12:00 and Jan 8 00:00.
    # Jan 9 (difference 1, remainder > 0): (Jan 8, Jan 15].  Jan 20: (Jan 15, Jan 22].
    pts = [ms(2024, 1, 2, 12), ms(2024, 1, 8), ms(2024, 1, 9), ms(2024, 1, 20)]
    put(store, "w", [[t, v] for v, t in enumerate(pts, 1)])
    got = values(store, "w", mw(1, "weeks", align_sampling=True), start=ms(2024, 1, 3))
    assert got == [
        [
            [ms(2024, 1, 8), 1],
            [ms(2024, 1, 8), 2],
            [ms(2024, 1, 15), 3],
            [ms(2024, 1, 22), 4],
        ]
    ]


def test_moving_window_days_across_dst(store) -> None:
    # Europe/Paris days: 2024-03-31 is 23 hours long.  S = 2024-03-30 00:00 local (23:00 UTC
    # the day before); windows of one local day.  A point at 2024-03-31 12:00 UTC
    # (14:00 local) is in (Mar 31 00:00, Apr 1 00:00] local, which ends at 2024-03-31 22:00 UTC.
    tz = "Europe/Paris"
    put(store, "d", [[ms(2024, 3, 31, 12), 7]])
    got = values(
        store, "d", mw(1, "days", align_sampling=True, time_zone=tz), start=ms(2024, 3, 30, 6)
    )
    assert got == [[[ms(2024, 3, 31, 22), 7]]]


@pytest.mark.parametrize("unit", ["MILLISECONDS", "SECONDS", "MINUTES", "HOURS", "DAYS"])
def test_fixed_units_agree_with_the_joda_port(unit: str) -> None:
    rng = np.random.default_rng(7)
    u = {"MILLISECONDS": 1, "SECONDS": 1000, "MINUTES": 60_000, "HOURS": 3_600_000}.get(
        unit, 86_400_000
    )
    for _ in range(60):
        n = int(rng.integers(1, 5))
        start = int(rng.integers(-5 * u, 5 * u))
        ts = np.sort(rng.integers(start - (n + 1) * u, start + 12 * u, int(rng.integers(1, 30))))
        ts = np.repeat(ts, rng.integers(1, 3, len(ts)))  # duplicate timestamps too
        g = moving_window.grid(unit, n, False, start, "UTC")
        mw_start = moving_window.earliest_start(g)
        ts = ts[ts >= mw_start]  # what the pre-processor's read returns
        if not len(ts):
            continue
        want = moving_window.moving_window_joda(ts, g)
        got = moving_window.moving_window_fixed(ts, g.start, u, n)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize(
    ("agg", "message"),
    [
        ({"value": 0, "unit": "seconds"}, "must be greater than 0"),
        ({"value": -1, "unit": "seconds"}, "must be greater than or equal to 0"),
    ],
)
def test_moving_window_bad_width_is_400(minutes, agg, message) -> None:
    with pytest.raises(InvalidQuery) as e:
        values(minutes, "m", {"name": "movingWindow", "sampling": agg})
    assert e.value.status_code == 400
    assert e.value.messages == [f"query.metric[0].aggregators[0].sampling.value {message}"]


@pytest.mark.parametrize(
    "agg",
    [
        mw(10**9, "years"),
        mw(1, "months", start_time=2**62),
        mw(1, "months", start_time=-(2**62), align_sampling=True),
        mw(2**31 - 1, "hours", time_zone="Asia/Kolkata", start_time=2**62),
    ],
)
def test_moving_window_out_of_range_is_400(minutes, agg) -> None:
    with pytest.raises(BadRequest) as e:
        values(minutes, "m", agg, start=10 * MIN)
    assert e.value.status_code == 400
    assert e.value.messages == [
        "movingWindow: a window boundary is out of the supported time range"
        " (calendar units and time zones: years 1 to 9999)"
    ]


def test_moving_window_huge_fixed_units_are_exact(minutes) -> None:
    # 2**31 - 1 UTC days: Joda's arithmetic stays in range (about 5.9 million years), and so
    # does Kairos's (integers, no calendar).  The one window (S + (1 - N) days, S + 1 day]
    # holds every point (the first, 9.5m, is one unit late as ever).
    n = 2**31 - 1
    assert values(minutes, "m", mw(n, "days"), start=10 * MIN) == [
        [[10 * MIN + 86_400_000, v] for v in range(1, 6)]
    ]
    # One-second windows on a grid 2**62 ms before the epoch: -(2**62) is 96 past a whole
    # second (2**62 = ...387,904), so each point t (a whole second) lies in (t - 904, t + 96].
    s = -(2**62)
    assert values(minutes, "m", mw(1, "seconds", start_time=s), start=10 * MIN) == [
        [[t + 96, v] for v, t in enumerate([570_000, 600_000, 660_000, 750_000, 960_000], 1)]
    ]


def test_moving_window_far_start_time_in_range(minutes) -> None:
    # A start_time far after the points: every point is at or before the first window's start.
    # Java's first next() then finds its buffer empty (NoSuchElementException, a 500); Kairos
    # answers the empty group.
    assert values(minutes, "m", mw(1, "seconds", start_time=2**62), start=10 * MIN) == []
