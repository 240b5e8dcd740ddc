"""Hand-checked examples for the segment kernels, mostly KairosDB's own test numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kairos.query import kernels

ONE_TO_TEN = np.arange(1, 11, dtype=np.float64)
ONE = np.array([0], np.int64)
DBL_MAX = 1.7976931348623157e308


def reduce1(op: str, values) -> float:
    return kernels.segment_reduce(op, np.asarray(values, dtype=np.float64), ONE)[0]


def test_integration_numbers_one_to_ten() -> None:
    # src/integration-test: values 1..10 in one bucket.
    assert reduce1("sum", ONE_TO_TEN) == 55.0
    assert reduce1("avg", ONE_TO_TEN) == 5.5
    assert reduce1("min", ONE_TO_TEN) == 1.0
    assert reduce1("max", ONE_TO_TEN) == 10.0
    assert reduce1("dev", ONE_TO_TEN) == 3.0276503540974917
    count = kernels.segment_reduce("count", ONE_TO_TEN, ONE)
    assert count.dtype == np.int64 and count.tolist() == [10]


def test_least_squares_integration_numbers() -> None:
    # Values 1..10 two ms apart lie on a line: the fit returns the end values exactly.
    first, last = kernels.segment_least_squares(np.arange(0, 20, 2), ONE_TO_TEN, ONE)
    assert (first[0], last[0]) == (1.0, 10.0)


def test_least_squares_per_segment() -> None:
    ts = np.array([0, 1, 2, 100, 110, 120, 130], np.int64)
    values = np.array([0.0, 1.0, 5.0, 10.0, 10.0, 10.0, 10.0])
    first, last = kernels.segment_least_squares(ts, values, np.array([0, 3], np.int64))
    # Segment 0: slope 2.5, intercept -0.5 (normal equations by hand).
    assert first[0] == pytest.approx(-0.5, abs=1e-12) and last[0] == pytest.approx(4.5, abs=1e-12)
    assert (first[1], last[1]) == (10.0, 10.0)


def test_std_aggregator_test_numbers() -> None:
    # StdAggregatorTest: 0..9999 -> closeTo(2886.462, 0.44).
    assert reduce1("dev", np.arange(10_000)) == pytest.approx(2886.462, abs=0.44)


def test_dev_is_kairosdb_running_mean_of_squares() -> None:
    assert reduce1("dev", [42.0]) == 0.0
    assert reduce1("dev", [1.0, math.nan, 3.0]) == 0.0
    assert reduce1("dev", [1e200, 1e200]) == 0.0  # x * x overflows: NaN -> 0, like Java
    # Catastrophic cancellation of mean(x^2) - mean(x)^2: KairosDB answers 0.0 here, not 1.0.
    assert reduce1("dev", [1e8 + 1, 1e8 + 2, 1e8 + 3]) == 0.0
    dev, mean = kernels.segment_dev_mean([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], [0])
    assert dev[0] == pytest.approx(math.sqrt(32 / 7), rel=1e-15) and mean[0] == 5.0


def test_sum_starts_from_positive_zero() -> None:
    got = reduce1("sum", [-0.0, -0.0])
    assert got == 0.0 and math.copysign(1.0, got) == 1.0


def test_min_max_follow_java_math() -> None:
    assert math.isnan(reduce1("min", [1.0, math.nan, 0.0]))
    assert math.isnan(reduce1("max", [math.nan, 1.0]))
    assert math.copysign(1.0, reduce1("min", [0.0, -0.0])) == -1.0
    assert math.copysign(1.0, reduce1("max", [-0.0, 0.0])) == 1.0
    # Start values +-Double.MAX_VALUE cap infinities of the "wrong" sign.
    assert reduce1("min", [math.inf]) == DBL_MAX
    assert reduce1("max", [-math.inf]) == -DBL_MAX


def test_reductions_per_segment() -> None:
    values = np.array([1.0, 2.0, 3.0, 10.0, -4.0, 4.0])
    starts = np.array([0, 3, 4], np.int64)
    assert kernels.segment_reduce("sum", values, starts).tolist() == [6.0, 10.0, 0.0]
    assert kernels.segment_reduce("avg", values, starts).tolist() == [2.0, 10.0, 0.0]
    assert kernels.segment_reduce("count", values, starts).tolist() == [3, 1, 2]
    assert kernels.segment_reduce("dev", values, starts).tolist() == pytest.approx(
        [1.0, 0.0, math.sqrt(32.0)], rel=1e-15
    )


def test_empty_input() -> None:
    empty = np.zeros(0)
    none = np.zeros(0, np.int64)
    for op in ("sum", "min", "max", "avg", "count", "dev"):
        assert kernels.segment_reduce(op, empty, none).shape == (0,)
    assert kernels.segment_percentile(empty, none, 0.5).shape == (0,)
    first, last = kernels.segment_least_squares(none, empty, none)
    assert first.shape == last.shape == (0,)
    assert kernels.bucket_fixed(none, 0, 10).shape == (0,)
    assert kernels.segment_starts(none).shape == (0,)
    assert kernels.sma(empty, 3).shape == (0,)


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.0, 1.0), (0.05, 1.0), (0.25, 2.75), (0.5, 5.5), (0.9, 9.9), (0.95, 10.0), (1.0, 10.0)],
)
def test_percentile_kairosdb_formula(p, expected) -> None:
    # pos = p * 11: 0.55 < 1 -> v[0]; 2.75 -> v[1] + 0.75 * (v[2] - v[1]); 10.45 >= 10 -> v[9].
    shuffled = np.array([7.0, 3.0, 10.0, 1.0, 9.0, 2.0, 8.0, 5.0, 4.0, 6.0])
    assert kernels.segment_percentile(shuffled, ONE, p)[0] == expected


def test_percentile_nan_sorts_last_and_negative_zero_first() -> None:
    values = np.array([3.0, math.nan, 1.0, 2.0])
    assert kernels.segment_percentile(values, ONE, 0.0)[0] == 1.0
    assert kernels.segment_percentile(values, ONE, 0.5)[0] == 2.5  # pos 2.5 of [1, 2, 3, NaN]
    assert math.isnan(kernels.segment_percentile(values, ONE, 1.0)[0])
    zeros = np.array([0.0, -0.0])
    assert math.copysign(1.0, kernels.segment_percentile(zeros, ONE, 0.0)[0]) == -1.0
    assert math.copysign(1.0, kernels.segment_percentile(zeros, ONE, 1.0)[0]) == 1.0


def test_percentile_is_exact_above_the_reservoir_size() -> None:
    values = np.random.default_rng(1).permutation(np.arange(5000, dtype=np.float64))
    starts = np.array([0, 1000, 2000], np.int64)
    got = kernels.segment_percentile(values, starts, 0.5)
    want = [
        np.quantile(values[lo:hi], 0.5, method="weibull")
        for lo, hi in ((0, 1000), (1000, 2000), (2000, 5000))
    ]
    assert got.tolist() == want


def test_bucket_fixed_truncates_toward_zero() -> None:
    ts = np.array([975, 980, 981, 990, 999, 1000, 1009, 1010, 1019, 1020, -5], np.int64)
    got = kernels.bucket_fixed(ts, 1000, 10)
    # 991..1009 share bucket 0: the 9 ms before the origin are merged into it.
    assert got.tolist() == [-2, -2, -1, -1, 0, 0, 0, 1, 1, 2, -100]


def test_bucket_fixed_extremes() -> None:
    int64_min, int64_max = -(2**63), 2**63 - 1
    ts = np.array([int64_min, int64_max], np.int64)
    assert kernels.bucket_fixed(ts, 0, 1).tolist() == [int64_min, int64_max]
    assert kernels.bucket_fixed(ts, 0, 2**63).tolist() == [-1, 0]
    assert kernels.bucket_fixed(ts, 0, 2**80).tolist() == [0, 0]
    assert kernels.bucket_fixed(ts[:1], -1, 2**62).tolist() == [-1]
    with pytest.raises(OverflowError, match=r"ts\[0\] - origin overflows int64"):
        kernels.bucket_fixed(ts, 1, 10)


def test_segment_starts_runs() -> None:
    assert kernels.segment_starts([5, 5, 6, 6, 6, 2, 5]).tolist() == [0, 2, 5, 6]
    assert kernels.segment_starts([7]).tolist() == [0]
    assert kernels.segment_starts(np.arange(4)).tolist() == [0, 1, 2, 3]


def test_bucket_then_reduce_pipeline() -> None:
    ts = np.arange(0, 180_000, 10_000, dtype=np.int64)  # 18 points, 10 s apart
    values = np.arange(18, dtype=np.float64)
    starts = kernels.segment_starts(kernels.bucket_fixed(ts, 0, 60_000))
    assert starts.tolist() == [0, 6, 12]
    assert kernels.segment_reduce("sum", values, starts).tolist() == [15.0, 51.0, 87.0]


def test_sma_aggregator_test_numbers() -> None:
    # SmaAggregatorTest.test_doubleValues: size 3 -> 11.1, 8.1, ~3.067, ~4.067 (exact doubles).
    values = np.array([10.0, 20.3, 3.0, 1.0, 5.2, 6.0])
    got = kernels.sma(values, 3)
    assert got.tolist() == [11.1, 8.1, 3.0666666666666664, 4.066666666666666]
    assert kernels.sma(np.array([10, 20, 3, 1, 5, 6]), 3).tolist() == [11.0, 8.0, 3.0, 4.0]
    assert kernels.sma(values, 7).shape == (0,)
    assert kernels.sma(values, 1).tolist() == values.tolist()


def test_sma_running_recovers_after_infinities() -> None:
    values = np.array([1.0, math.inf, 2.0, 3.0, 4.0, 5.0, 6.0])
    for exact in (True, False):
        got = kernels.sma(values, 2, exact=exact)
        assert got.tolist() == [math.inf, math.inf, 2.5, 3.5, 4.5, 5.5]
    # Large windows default to the O(n) path; results stay within rounding of exact.
    big = np.random.default_rng(3).normal(size=5000)
    size = kernels.SMA_EXACT_MAX_SIZE + 1
    np.testing.assert_allclose(
        kernels.sma(big, size), kernels.sma(big, size, exact=True), atol=1e-13
    )
