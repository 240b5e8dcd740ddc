"""Segment-reduction kernels agree bit for bit with their references (and with numpy, roughly)."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kairos._native import reduce as K
from kairos.query import _kernels_reference as R
from kairos.query import kernels

prop = settings(deadline=None, max_examples=300)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DBL_MAX = 1.7976931348623157e308

SPECIAL = st.sampled_from(
    [math.nan, math.inf, -math.inf, 1e308, -1e308, DBL_MAX, -DBL_MAX, 0.0, -0.0, 5e-324, 1e-300]
)
SMALL = st.integers(-5, 5).map(float)  # duplicates and exact cancellations
ANY_VALUE = st.one_of(st.floats(), SPECIAL, SMALL)
FINITE_VALUE = st.one_of(st.floats(-1e6, 1e6), SMALL)
OPS = ("sum", "min", "max", "avg", "count", "dev")


@st.composite
def layouts(draw, value=ANY_VALUE, max_segments: int = 20):
    """``(values, starts)``: random segments, one big segment, or many 1-point segments."""
    shape = draw(st.sampled_from(["random", "one", "points", "empty"]))
    if shape == "empty":
        lengths: list[int] = []
    elif shape == "one":
        lengths = [draw(st.integers(1, 150))]
    elif shape == "points":
        lengths = [1] * draw(st.integers(1, 40))
    else:
        lengths = draw(st.lists(st.integers(1, 12), max_size=max_segments))
    n = sum(lengths)
    values = np.array(draw(st.lists(value, min_size=n, max_size=n)), dtype=np.float64)
    starts = np.cumsum([0, *lengths[:-1]]).astype(np.int64) if lengths else np.zeros(0, np.int64)
    return values, starts


def assert_bits(a: np.ndarray, b: np.ndarray) -> None:
    """Same dtype, shape and bits; any NaN matches any NaN."""
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        assert (nan == np.isnan(b)).all(), (a, b)
        assert (a[~nan].view(np.int64) == b[~nan].view(np.int64)).all(), (a, b)
    else:
        assert (a == b).all(), (a, b)


# --------------------------------------------------------------------------- reductions


@prop
@given(layouts(), st.sampled_from(OPS))
def test_segment_reduce_matches_reference(layout, op) -> None:
    values, starts = layout
    assert_bits(kernels.segment_reduce(op, values, starts), R.segment_reduce(op, values, starts))


@prop
@given(layouts())
def test_segment_dev_mean_matches_reference(layout) -> None:
    values, starts = layout
    dev, mean = kernels.segment_dev_mean(values, starts)
    rdev, rmean = R.segment_dev_mean(values, starts)
    assert_bits(dev, rdev)
    assert_bits(mean, rmean)
    assert_bits(dev, kernels.segment_reduce("dev", values, starts))


@prop
@given(layouts(value=FINITE_VALUE))
def test_reductions_close_to_numpy(layout) -> None:
    values, starts = layout
    bounds = [*starts.tolist(), len(values)]
    segs = [values[lo:hi] for lo, hi in pairwise(bounds)]
    assert kernels.segment_reduce("count", values, starts).tolist() == [len(s) for s in segs]
    assert kernels.segment_reduce("min", values, starts).tolist() == [s.min() for s in segs]
    assert kernels.segment_reduce("max", values, starts).tolist() == [s.max() for s in segs]
    sums = kernels.segment_reduce("sum", values, starts)
    scale = [float(np.abs(s).sum()) for s in segs]
    for got, seg, sc in zip(sums, segs, scale, strict=True):
        assert abs(got - math.fsum(seg)) <= 1e-12 * sc
    devs = kernels.segment_reduce("dev", values, starts)
    for got, seg in zip(devs, segs, strict=True):
        want = float(np.std(seg, ddof=1)) if len(seg) > 1 else 0.0
        # The running mean of squares cancels catastrophically when the spread is tiny.
        spread = float(np.abs(seg).max()) if len(seg) else 0.0
        assert abs(got - want) <= 1e-6 * spread + 1e-9


def test_min_max_of_infinities_are_java_start_values() -> None:
    starts = np.array([0, 2], np.int64)
    vals = np.array([math.inf, math.inf, -math.inf, -math.inf])
    assert kernels.segment_reduce("min", vals, starts).tolist() == [DBL_MAX, -math.inf]
    assert kernels.segment_reduce("max", vals, starts).tolist() == [math.inf, -DBL_MAX]


# --------------------------------------------------------------------------- percentile

PERCENTILE = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 0.5, 0.25, 0.999]))


@prop
@given(layouts(), PERCENTILE)
def test_segment_percentile_matches_reference(layout, p) -> None:
    values, starts = layout
    assert_bits(
        kernels.segment_percentile(values, starts, p), R.segment_percentile(values, starts, p)
    )


ZEROS_AND_NAN = st.sampled_from([0.0, -0.0, math.nan, 1.0, -1.0, math.inf])


@prop
@given(layouts(value=ZEROS_AND_NAN), PERCENTILE)
def test_segment_percentile_orders_signed_zeros_and_nan(layout, p) -> None:
    # Few distinct values: the selected rank often falls on -0.0 next to 0.0 or on a NaN.
    values, starts = layout
    assert_bits(
        kernels.segment_percentile(values, starts, p), R.segment_percentile(values, starts, p)
    )
    assert_bits(
        kernels.segment_reduce("min", values, starts), R.segment_reduce("min", values, starts)
    )
    assert_bits(
        kernels.segment_reduce("max", values, starts), R.segment_reduce("max", values, starts)
    )


@prop
@given(layouts(value=FINITE_VALUE), PERCENTILE)
def test_segment_percentile_is_weibull_quantile(layout, p) -> None:
    values, starts = layout
    assume(len(values))
    got = kernels.segment_percentile(values, starts, p)
    bounds = [*starts.tolist(), len(values)]
    for g, lo, hi in zip(got, bounds[:-1], bounds[1:], strict=True):
        want = np.quantile(values[lo:hi], p, method="weibull")
        assert g == pytest.approx(want, rel=1e-9, abs=1e-9)


@prop
@given(st.lists(ANY_VALUE, min_size=1, max_size=3000), PERCENTILE)
def test_percentile_sort_on_long_segments(vals, p) -> None:
    # Long segments take the quicksort/heapsort path rather than insertion sort.
    values = np.array(vals * (1 + 400 // len(vals)), dtype=np.float64)
    starts = np.array([0], np.int64)
    assert_bits(
        kernels.segment_percentile(values, starts, p), R.segment_percentile(values, starts, p)
    )


def test_percentile_sort_adversarial_patterns() -> None:
    # Sorted, reversed, all equal, organ pipe, few distinct: depth-limited introsort stays exact.
    n = 5000
    base = np.arange(n, dtype=np.float64)
    patterns = [
        base,
        base[::-1].copy(),
        np.zeros(n),
        np.concatenate([base[: n // 2], base[: n // 2][::-1]]),
        np.tile([3.0, -0.0, 0.0, math.nan, 1.0], n // 5),
        np.random.default_rng(7).integers(0, 3, n).astype(np.float64),
    ]
    for values in patterns:
        starts = np.array([0, 17, n // 3], np.int64)
        for p in (0.0, 0.001, 0.3, 0.5, 0.97, 1.0):
            assert_bits(
                kernels.segment_percentile(values, starts, p),
                R.segment_percentile(values, starts, p),
            )


# --------------------------------------------------------------------------- least squares

TS = st.one_of(
    st.integers(-(10**13), 10**13),
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MAX, 0, -1, 1_700_000_000_000]),
)


@prop
@given(layouts(), st.data())
def test_segment_least_squares_matches_reference(layout, data) -> None:
    values, starts = layout
    n = len(values)
    mode = data.draw(st.sampled_from(["any", "sorted", "equal"]))
    ts = np.array(data.draw(st.lists(TS, min_size=n, max_size=n)), dtype=np.int64)
    if mode == "sorted":
        ts.sort()
    elif mode == "equal" and n:
        ts[:] = ts[0]
    first, last = kernels.segment_least_squares(ts, values, starts)
    rfirst, rlast = R.segment_least_squares(ts, values, starts)
    assert_bits(first, rfirst)
    assert_bits(last, rlast)


@prop
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=60),
    st.integers(-(10**12), 10**12),
    st.integers(1, 60_000),
)
def test_segment_least_squares_close_to_polyfit(vals, t0, step) -> None:
    n = len(vals)
    ts = t0 + step * np.arange(n, dtype=np.int64)
    values = np.array(vals)
    first, last = kernels.segment_least_squares(ts, values, np.array([0], np.int64))
    x = (ts - ts[0]).astype(np.float64)
    slope, icpt = np.polyfit(x, values, 1)
    # SimpleRegression works on absolute timestamps: the intercept (at ts = 0) cancels against
    # slope * ts, losing about eps * |slope * ts| -- KairosDB's own precision, mirrored.
    tol = 1e-6 * (float(np.abs(values).max()) + 1.0) + 1e-13 * abs(slope) * abs(float(ts[-1]))
    assert first[0] == pytest.approx(icpt, abs=tol)
    assert last[0] == pytest.approx(icpt + slope * x[-1], abs=tol)


def test_least_squares_degenerate_segments_are_nan() -> None:
    ts = np.array([5, 7, 7, 7, 1, 2], np.int64)
    values = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 3.0])
    first, last = kernels.segment_least_squares(ts, values, np.array([0, 1, 4], np.int64))
    assert np.isnan(first[:2]).all() and np.isnan(last[:2]).all()
    assert (first[2], last[2]) == (1.0, 3.0)


# --------------------------------------------------------------------------- bucketing

WIDTH = st.one_of(
    st.integers(1, 100),
    st.sampled_from([1000, 60_000, 3_600_000, 86_400_000, INT64_MAX, 2**63, 2**64 - 1, 2**70]),
    st.integers(1, 2**64),
)


def _overflows_alike(reference, kernel, *args):
    """The reference's answer, or None when it overflows and the kernel raised the same."""
    try:
        return reference(*args)
    except OverflowError as e:
        with pytest.raises(OverflowError, match=r"ts\[\d+\] - origin overflows int64") as got:
            kernel(*args)
        assert str(got.value) == str(e)
        return None


@prop
@given(st.lists(TS, max_size=50), TS, WIDTH)
def test_bucket_fixed_matches_reference(ts, origin, width) -> None:
    arr = np.array(ts, dtype=np.int64)
    want = _overflows_alike(R.bucket_fixed, kernels.bucket_fixed, arr, origin, width)
    if want is not None:
        assert_bits(kernels.bucket_fixed(arr, origin, width), want)


@prop
@given(st.lists(st.integers(-(10**6), 10**6), max_size=50), st.integers(1, 1000))
def test_bucket_fixed_truncates_toward_zero(ts, width) -> None:
    got = kernels.bucket_fixed(np.array(ts, dtype=np.int64), 0, width)
    assert got.tolist() == [int(t / width) for t in ts]
    # Bucket 0 spans (-width, width): the bucket just before the origin is merged into it.
    near = kernels.bucket_fixed(np.array([-width + 1, 0, width - 1, -width], np.int64), 0, width)
    assert near.tolist() == [0, 0, 0, -1]


@prop
@given(st.lists(TS, max_size=50), TS, WIDTH, st.booleans())
def test_bucket_runs_matches_reference(ts, origin, width, sort) -> None:
    # Sorted input (the engine's) and any order: runs of equal neighbouring bucket numbers.
    arr = np.array(sorted(ts) if sort else ts, dtype=np.int64)
    want = _overflows_alike(R.bucket_runs, kernels.bucket_runs, arr, origin, width)
    if want is not None:
        starts, keys = kernels.bucket_runs(arr, origin, width)
        assert_bits(starts, want[0])
        assert_bits(keys, want[1])


@prop
@given(st.integers(1, 10**4), st.integers(-(10**6), 10**6), st.integers(0, 3000))
def test_bucket_runs_dense_sorted_timestamps(width, origin, n) -> None:
    # Long sorted runs around the origin: the kernel's skipped divisions must not skip a bucket.
    arr = np.arange(origin - n, origin + n, dtype=np.int64)
    starts, keys = kernels.bucket_runs(arr, origin, width)
    want = R.bucket_runs(arr, origin, width)
    assert_bits(starts, want[0])
    assert_bits(keys, want[1])


KEY = st.one_of(st.integers(-3, 3), st.integers(INT64_MIN, INT64_MAX), st.just(INT64_MIN))


@prop
@given(st.lists(KEY, max_size=80), st.booleans())
def test_segment_starts_matches_reference(keys, sort) -> None:
    arr = np.array(sorted(keys) if sort else keys, dtype=np.int64)
    got = kernels.segment_starts(arr)
    assert_bits(got, R.segment_starts(arr))
    if len(arr):
        # The result is a valid layout: every reduction accepts it.
        assert kernels.segment_reduce("count", arr, got).sum() == len(arr)


# --------------------------------------------------------------------------- sma


@prop
@given(st.lists(ANY_VALUE, max_size=60), st.integers(1, 12))
def test_sma_exact_matches_reference(vals, size) -> None:
    values = np.array(vals, dtype=np.float64)
    assert_bits(kernels.sma(values, size, exact=True), R.sma(values, size))
    assert_bits(kernels.sma(values, size), R.sma(values, size))


@prop
@given(st.lists(ANY_VALUE, max_size=80), st.integers(1, 12))
def test_sma_running_matches_reference(vals, size) -> None:
    values = np.array(vals, dtype=np.float64)
    running = kernels.sma(values, size, exact=False)
    assert_bits(running, R.sma_running(values, size))
    # Every size-th window is resynchronised to KairosDB's exact sum.
    assert_bits(running[::size], R.sma(values, size)[::size])


@prop
@given(st.lists(FINITE_VALUE, min_size=1, max_size=300), st.integers(1, 40))
def test_sma_running_close_to_exact(vals, size) -> None:
    values = np.array(vals, dtype=np.float64)
    exact = kernels.sma(values, size, exact=True)
    running = kernels.sma(values, size, exact=False)
    scale = float(np.abs(values).max())
    np.testing.assert_allclose(running, exact, rtol=0, atol=4 * size * 2.3e-16 * scale + 1e-300)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("starts", "n", "message"),
    [
        ([], 3, "starts is empty but there are 3 values"),
        ([1], 3, r"starts\[0\] must be 0, got 1"),
        ([0, 2, 2], 3, r"starts\[2\] = 2 after starts\[1\] = 2"),
        ([0, 2, 1], 3, r"starts\[2\] = 1 after starts\[1\] = 2"),
        ([0, 3], 3, r"starts\[1\] = 3 leaves an empty last segment"),
    ],
)
def test_facade_rejects_bad_layouts(starts, n, message) -> None:
    values = np.zeros(n)
    for op in OPS:
        with pytest.raises(ValueError, match=message):
            kernels.segment_reduce(op, values, np.array(starts, np.int64))
    with pytest.raises(ValueError, match=message):
        kernels.segment_percentile(values, np.array(starts, np.int64), 0.5)
    with pytest.raises(ValueError, match=message):
        kernels.segment_least_squares(np.zeros(n, np.int64), values, np.array(starts, np.int64))


@pytest.mark.parametrize(
    ("starts", "n", "bad"),
    [([], 3, 0), ([1], 3, 0), ([0, 2, 2], 3, 1), ([0, 2, 1], 3, 1), ([0, 3], 3, 1), ([0, 1], 1, 1)],
)
def test_kernels_report_bad_layouts(starts, n, bad) -> None:
    values = np.zeros(n)
    s = np.array(starts, np.int64)
    out = np.full(len(starts), 7.0)
    for kernel in (K.segment_sum, K.segment_mean, K.segment_min, K.segment_max):
        assert kernel(values, s, out) == bad
    assert K.segment_dev(values, s, out, out.copy()) == bad
    assert K.segment_count(s, n, np.zeros(len(starts), np.int64)) == bad
    assert K.segment_percentile(values, s, 0.5, np.zeros(n, np.int64), out) == bad
    assert K.segment_least_squares(np.zeros(n, np.int64), values, s, out, out.copy()) == bad
    assert (out == 7.0).all()


def test_kernels_refuse_short_outputs() -> None:
    values = np.arange(5.0)
    starts = np.array([0, 2, 4], np.int64)
    short = np.full(2, 7.0)
    for kernel in (K.segment_sum, K.segment_mean, K.segment_min, K.segment_max):
        assert kernel(values, starts, short) == 2
    assert K.segment_dev(values, starts, np.zeros(3), short) == 2
    assert K.segment_count(starts, 5, np.zeros(2, np.int64)) == 2
    assert K.segment_least_squares(np.zeros(5, np.int64), values, starts, short, np.zeros(3)) == 2
    assert (
        K.segment_least_squares(np.zeros(4, np.int64), values, starts, np.zeros(3), np.zeros(3))
        == 0
    )
    assert (short == 7.0).all()
    ts = np.arange(5, dtype=np.int64)
    assert K.bucket_fixed(ts, 0, 0, np.zeros(5, np.int64)) == 0
    assert K.bucket_fixed(ts, 0, 10, np.zeros(4, np.int64)) == 0
    assert K.segment_starts(ts, np.zeros(5, np.int64)) == -1
    assert K.sma(values, 2, np.zeros(3)) == 0
    assert K.sma_running(values, 0, np.zeros(6)) == 0


def test_kernel_reports_short_scratch() -> None:
    out = np.zeros(2)
    assert (
        K.segment_percentile(np.arange(5.0), np.array([0, 2]), 0.5, np.zeros(2, np.int64), out) == 1
    )


def test_facade_argument_errors() -> None:
    with pytest.raises(ValueError, match="unknown segment reduction 'median'"):
        kernels.segment_reduce("median", [1.0], [0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="starts must be an integer array"):
        kernels.segment_reduce("sum", [1.0], [0.0])
    with pytest.raises(TypeError, match="values must be numeric"):
        kernels.segment_reduce("sum", ["a"], [0])
    with pytest.raises(ValueError, match="values must be 1-D"):
        kernels.segment_reduce("sum", [[1.0]], [0])
    for p in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"is not in \[0\.\.1\]"):
            kernels.segment_percentile([1.0], [0], p)
    with pytest.raises(ValueError, match="ts has 2 entries but values has 1"):
        kernels.segment_least_squares([1, 2], [1.0], [0])
    with pytest.raises(ValueError, match="bucket width must be positive, got 0"):
        kernels.bucket_fixed([1], 0, 0)
    with pytest.raises(ValueError, match="origin 9223372036854775808 does not fit in int64"):
        kernels.bucket_fixed([1], 2**63, 10)
    with pytest.raises(OverflowError, match=r"ts\[1\] - origin overflows int64"):
        kernels.bucket_fixed([0, INT64_MAX], -1, 10)
    with pytest.raises(ValueError, match="sma size must be at least 1, got 0"):
        kernels.sma([1.0], 0)
    with pytest.raises(ValueError, match=r"keys\[0\] = 18446744073709551615 does not fit"):
        kernels.segment_starts(np.array([2**64 - 1], np.uint64))


def test_long_values_are_converted_like_java() -> None:
    longs = np.array([2**53 + 1, 1, -(2**62)], np.int64)
    got = kernels.segment_reduce("sum", longs, [0])
    assert_bits(got, R.segment_reduce("sum", longs.astype(np.float64), [0]))
