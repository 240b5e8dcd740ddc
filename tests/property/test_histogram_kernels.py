"""Histogram kernels agree with their references; merging and the byte encoding keep their laws."""

from __future__ import annotations

import math
import struct
from functools import reduce
from itertools import accumulate

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kairos._native import histogram as K
from kairos.errors import InvalidHistogram
from kairos.model._histogram_reference import (
    INT64_MAX,
    bucket_samples_ref,
    decode_varints_ref,
    encode_histogram_ref,
    encode_varints_ref,
    percentile_ref,
    remap_counts_ref,
)
from kairos.model.histogram import Histogram, merge_all, percentiles

prop = settings(deadline=None, max_examples=300)

FINITE = st.floats(allow_nan=False, allow_infinity=False)
ANY_FLOAT = st.floats()
HUGE = st.sampled_from([1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 0.0, -0.0])
BOUNDS = st.lists(st.one_of(FINITE, HUGE), unique=True, max_size=24).map(sorted)
SMALL_COUNT = st.integers(0, 5)
# Up to 25 of these sum below 2**63.
BIG_COUNT = st.one_of(SMALL_COUNT, st.integers(0, INT64_MAX // 32))
ANY_COUNT = st.one_of(SMALL_COUNT, st.integers(0, INT64_MAX), st.just(INT64_MAX))
VARINT_VALUE = st.one_of(
    st.integers(0, 300), st.integers(0, INT64_MAX), st.sampled_from([2**k - 1 for k in range(64)])
)


def f64(values) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def i64(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def same(a: float, b: float) -> bool:
    """Equal, both NaN, or (only on platforms that fuse multiply-add) within a few ulps."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def draw_subset(data: st.DataObject, values: list[float]) -> list[float]:
    if not values:
        return []
    return sorted(data.draw(st.lists(st.sampled_from(values), unique=True)))


@st.composite
def histograms(draw: st.DrawFn, bounds=BOUNDS, count=BIG_COUNT) -> Histogram:
    b = draw(bounds)
    counts = draw(st.lists(count, min_size=len(b) + 1, max_size=len(b) + 1))
    total_sum, lo, hi = draw(ANY_FLOAT), draw(ANY_FLOAT), draw(ANY_FLOAT)
    if lo > hi:
        lo, hi = hi, lo
    return Histogram(b, counts, sum=total_sum, min=lo, max=hi)


def cumulative_at(h: Histogram, x: float) -> int:
    """Samples in the buckets whose upper bound is <= x (x at or past every boundary)."""
    return sum(int(c) for b, c in zip(h.boundaries, h.counts, strict=False) if b <= x)


# --------------------------------------------------------------------------- bucketing


@prop
@given(st.data())
def test_bucket_samples_matches_reference(data):
    bounds = data.draw(BOUNDS)
    element = st.one_of(ANY_FLOAT, HUGE, *([st.sampled_from(bounds)] if bounds else []))
    samples = data.draw(st.lists(element, max_size=80))
    counts = np.zeros(len(bounds) + 1, dtype=np.int64)
    stats = f64([0.0, math.inf, -math.inf])
    skipped = K.bucket_samples(f64(bounds), f64(samples), counts, stats)
    ref_counts, ref_skipped, ref_sum, ref_min, ref_max = bucket_samples_ref(bounds, samples)
    assert counts.tolist() == ref_counts
    assert skipped == ref_skipped
    assert bits(stats[1]) == bits(ref_min) or stats[1] == ref_min
    assert bits(stats[2]) == bits(ref_max) or stats[2] == ref_max
    assert (math.isnan(stats[0]) and math.isnan(ref_sum)) or stats[0] == ref_sum


@prop
@given(BOUNDS, st.lists(ANY_FLOAT, max_size=40), st.integers(0, 40))
def test_bucket_samples_accumulates_over_chunks(bounds, samples, cut):
    whole = np.zeros(len(bounds) + 1, dtype=np.int64)
    whole_stats = f64([0.0, math.inf, -math.inf])
    K.bucket_samples(f64(bounds), f64(samples), whole, whole_stats)
    chunked = np.zeros(len(bounds) + 1, dtype=np.int64)
    chunk_stats = f64([0.0, math.inf, -math.inf])
    skipped = K.bucket_samples(f64(bounds), f64(samples[:cut]), chunked, chunk_stats)
    skipped += K.bucket_samples(f64(bounds), f64(samples[cut:]), chunked, chunk_stats)
    assert chunked.tolist() == whole.tolist()
    assert skipped == sum(math.isnan(x) for x in samples)
    assert bits(chunk_stats[0]) == bits(whole_stats[0])


@prop
@given(BOUNDS, st.lists(ANY_FLOAT, max_size=60))
def test_from_samples_matches_reference(bounds, samples):
    h = Histogram.from_samples(samples, bounds)
    ref_counts, skipped, ref_sum, ref_min, ref_max = bucket_samples_ref(bounds, samples)
    assert h.counts.tolist() == ref_counts
    assert h.total_count == len(samples) - skipped
    if h.total_count:
        assert same(h.sum, ref_sum) and h.min == ref_min and h.max == ref_max
    else:
        assert h.sum == 0.0 and math.isnan(h.min) and math.isnan(h.max)


# --------------------------------------------------------------------------- remapping


@prop
@given(st.data())
def test_remap_counts_matches_reference(data):
    dst = data.draw(BOUNDS)
    src = draw_subset(data, dst)
    src_counts = data.draw(st.lists(ANY_COUNT, min_size=len(src) + 1, max_size=len(src) + 1))
    initial = data.draw(st.lists(ANY_COUNT, min_size=len(dst) + 1, max_size=len(dst) + 1))
    out = i64(initial)
    status = K.remap_counts(f64(src), i64(src_counts), f64(dst), out)
    expected = [a + b for a, b in zip(initial, remap_counts_ref(src, src_counts, dst), strict=True)]
    if all(c <= INT64_MAX for c in expected):
        assert status == -1
        assert out.tolist() == expected
    else:
        assert status >= 0


@prop
@given(st.data())
def test_remap_counts_reports_missing_boundary(data):
    dst = data.draw(BOUNDS)
    extra = data.draw(FINITE.filter(lambda x: x not in dst))
    src = sorted([*draw_subset(data, dst), extra + 0.0])
    src_counts = data.draw(st.lists(SMALL_COUNT, min_size=len(src) + 1, max_size=len(src) + 1))
    status = K.remap_counts(f64(src), i64(src_counts), f64(dst), np.zeros(len(dst) + 1, np.int64))
    assert status == src.index(extra)
    try:
        remap_counts_ref(src, src_counts, dst)
    except KeyError:
        pass
    else:  # pragma: no cover - the reference must agree
        raise AssertionError("reference accepted a missing boundary")


@prop
@given(st.data())
def test_remap_counts_batch_equals_sequential(data):
    dst = data.draw(BOUNDS)
    k = data.draw(st.integers(0, 6))
    srcs = [draw_subset(data, dst) for _ in range(k)]
    counts = [
        data.draw(st.lists(BIG_COUNT, min_size=len(s) + 1, max_size=len(s) + 1)) for s in srcs
    ]
    sequential = np.zeros(len(dst) + 1, dtype=np.int64)
    for s, c in zip(srcs, counts, strict=True):
        if K.remap_counts(f64(s), i64(c), f64(dst), sequential) >= 0:
            assume(False)
    offsets = i64([0, *accumulate(len(s) for s in srcs)])
    flat_b = f64([x for s in srcs for x in s])
    flat_c = i64([x for c in counts for x in c])
    batched = np.zeros(len(dst) + 1, dtype=np.int64)
    assert K.remap_counts_batch(flat_b, offsets, flat_c, f64(dst), batched) == -1
    assert batched.tolist() == sequential.tolist()


# --------------------------------------------------------------------------- percentile


@prop
@given(st.data())
def test_percentile_matches_reference(data):
    bounds = data.draw(BOUNDS)
    counts = data.draw(st.lists(BIG_COUNT, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    lo, hi = data.draw(st.one_of(ANY_FLOAT, HUGE)), data.draw(st.one_of(ANY_FLOAT, HUGE))
    if lo > hi:
        lo, hi = hi, lo
    q = data.draw(st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.5, 1.0])))
    got = K.percentile(f64(bounds), i64(counts), lo, hi, q)
    assert same(got, percentile_ref(bounds, counts, lo, hi, q))


@prop
@given(st.lists(histograms(), max_size=6), st.floats(0.0, 1.0))
def test_percentile_batch_equals_single(hs, q):
    got = percentiles(hs, q)
    assert got.shape == (len(hs),)
    for value, h in zip(got.tolist(), hs, strict=True):
        assert bits(value) == bits(h.percentile(q))


@prop
@given(BOUNDS, st.lists(FINITE, min_size=1, max_size=60), st.lists(st.floats(0, 1), max_size=8))
def test_percentile_of_samples_is_monotone_and_bounded(bounds, samples, qs):
    h = Histogram.from_samples(samples, bounds)
    values = [h.percentile(q) for q in sorted(qs)]
    assert all(h.min <= v <= h.max for v in values)
    assert values == sorted(values)


# --------------------------------------------------------------------------- merging


MERGEABLE = histograms(count=st.one_of(SMALL_COUNT, st.integers(0, INT64_MAX // 64)))


@prop
@given(MERGEABLE, MERGEABLE)
def test_merge_preserves_totals_and_cumulative_counts(a, b):
    m = a.merge(b)
    assert m.total_count == a.total_count + b.total_count == int(m.counts.sum())
    assert set(a.boundaries.tolist()) | set(b.boundaries.tolist()) == set(m.boundaries.tolist())
    for x in m.boundaries.tolist():
        assert cumulative_at(m, x) == cumulative_at(a, x) + cumulative_at(b, x)
    # At a source boundary the other source's contribution is whatever it has below it; an
    # empty other side shows the source's own cumulative counts are kept exactly.
    alone = a.merge(Histogram(b.boundaries, np.zeros(len(b.counts), dtype=np.int64)))
    for x in a.boundaries.tolist():
        assert cumulative_at(alone, x) == cumulative_at(a, x)
    assert m == b.merge(a)


@prop
@given(MERGEABLE, MERGEABLE)
def test_merge_counts_match_reference_remap(a, b):
    m = a.merge(b)
    union = sorted(set(a.boundaries.tolist()) | set(b.boundaries.tolist()))
    ra = remap_counts_ref(a.boundaries.tolist(), a.counts.tolist(), union)
    rb = remap_counts_ref(b.boundaries.tolist(), b.counts.tolist(), union)
    assert m.counts.tolist() == [x + y for x, y in zip(ra, rb, strict=True)]


@prop
@given(st.lists(histograms(count=st.integers(0, INT64_MAX // 256)), min_size=1, max_size=6))
def test_merge_all_equals_fold(hs):
    assert merge_all(hs) == reduce(Histogram.merge, hs)


# --------------------------------------------------------------------------- varints and bytes


@prop
@given(st.lists(VARINT_VALUE, max_size=40))
def test_varints_match_reference(values):
    buf = np.zeros(9 * len(values), dtype=np.uint8)
    size = K.encode_varints(i64(values), buf)
    encoded = bytes(buf[:size])
    assert encoded == encode_varints_ref(values)
    out = np.zeros(len(values), dtype=np.int64)
    assert K.decode_varints(encoded, 0, out, np.zeros(1, np.int64)) == size
    assert out.tolist() == values


@prop
@given(st.binary(max_size=40), st.integers(0, 8))
def test_decode_varints_of_garbage_matches_reference(buf, count):
    out = np.zeros(count, dtype=np.int64)
    where = np.zeros(1, dtype=np.int64)
    status = K.decode_varints(buf, 0, out, where)
    codes = {"truncated": -1, "overflow": -2, "noncanonical": -3}
    try:
        values, end = decode_varints_ref(buf, 0, count)
    except ValueError as error:
        assert status == codes[error.args[0]]
        assert where[0] == error.args[1]
    else:
        assert status == end
        assert out.tolist() == values


@prop
@given(histograms(count=st.one_of(SMALL_COUNT, st.integers(0, INT64_MAX // 32))))
def test_bytes_round_trip_bit_exact(h):
    data = h.to_bytes()
    assert data == encode_histogram_ref(
        h.boundaries.tolist(), h.counts.tolist(), h.sum, h.min, h.max
    )
    back = Histogram.from_bytes(data)
    assert back == h
    assert back.to_bytes() == data
    assert back.boundaries.tobytes() == h.boundaries.tobytes()
    assert back.counts.tobytes() == h.counts.tobytes()
    assert [bits(x) for x in (back.sum, back.min, back.max)] == [
        bits(x) for x in (h.sum, h.min, h.max)
    ]


@prop
@given(st.binary(max_size=120))
def test_from_bytes_of_random_bytes_never_crashes(data):
    try:
        h = Histogram.from_bytes(data)
    except InvalidHistogram:
        return
    assert Histogram.from_bytes(h.to_bytes()) == h


@prop
@given(histograms(), st.data())
def test_from_bytes_of_corrupted_encoding_never_crashes(h, data):
    raw = bytearray(h.to_bytes())
    action = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if action == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif action == "truncate":
        del raw[data.draw(st.integers(0, len(raw) - 1)) :]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=10))
    try:
        Histogram.from_bytes(bytes(raw))
    except InvalidHistogram:
        pass


# --------------------------------------------------------------------------- JSON

JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["+Inf", "-Inf", "1e3", "0", "-0", "1.5", "nan", "1e999", "7"]),
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)
NUMBERS = st.lists(st.one_of(st.integers(-3, 10), FINITE, JSON_SCALAR), max_size=6)
FORMS = st.one_of(
    st.fixed_dictionaries(
        {"boundaries": NUMBERS, "counts": NUMBERS},
        optional={"total_count": JSON_SCALAR, "sum": JSON_SCALAR, "min": JSON, "max": JSON},
    ),
    st.fixed_dictionaries(
        {
            "buckets": st.lists(
                st.fixed_dictionaries(
                    {"le": JSON_SCALAR, "count": st.one_of(st.integers(0, 9), JSON_SCALAR)}
                ),
                max_size=5,
            )
        },
        optional={"count": JSON_SCALAR, "sum": JSON_SCALAR},
    ),
    st.fixed_dictionaries(
        {"bins": st.dictionaries(JSON_SCALAR.map(str), st.one_of(st.integers(0, 9), JSON))},
        optional={"precision": JSON_SCALAR, "count": JSON_SCALAR, "min": JSON, "max": JSON},
    ),
    JSON,
)


@prop
@given(FORMS)
def test_from_json_raises_only_invalid_histogram(obj):
    try:
        h = Histogram.from_json(obj)
    except InvalidHistogram as error:
        assert str(error).startswith("histogram ")
        return
    assert Histogram.looks_like(obj)
    assert h.counts.shape == (h.boundaries.shape[0] + 1,)
    assert np.all(np.diff(h.boundaries) > 0) and np.all(h.counts >= 0)


@prop
@given(histograms())
def test_json_round_trip(h):
    back = Histogram.from_json(h.to_json())
    assert back.boundaries.tolist() == h.boundaries.tolist()
    assert back.counts.tolist() == h.counts.tolist()
    for field in ("sum", "min", "max"):
        value = getattr(h, field)
        assert same(getattr(back, field), value if math.isfinite(value) else math.nan)


@prop
@given(histograms())
def test_prometheus_form_round_trip(h):
    cumulative = list(accumulate(h.counts.tolist()))
    buckets = [
        {"le": str(b), "count": c} for b, c in zip(h.boundaries.tolist(), cumulative, strict=False)
    ]
    buckets.append({"le": "+Inf", "count": cumulative[-1]})
    back = Histogram.from_json({"buckets": buckets[::-1], "count": h.total_count})
    assert back.boundaries.tolist() == h.boundaries.tolist()
    assert back.counts.tolist() == h.counts.tolist()
