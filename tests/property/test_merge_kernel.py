"""The k-way merge kernel agrees with its reference (``np.lexsort`` of the concatenation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kairos._native import merge as M
from kairos.query import _kernels_reference as R
from kairos.query import kernels

prop = settings(deadline=None, max_examples=300)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
VALUES = st.one_of(
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, -5e-324, 1.5]),
    st.sampled_from([-math.nan, float(np.frombuffer(b"\x01\0\0\0\0\0\xf8\x7f", "<f8")[0])]),
    st.integers(-3, 3).map(float),  # many equal values
)
TIMES = st.one_of(
    st.integers(0, 30),  # many equal timestamps across series
    st.sampled_from([INT64_MIN, INT64_MAX, -1, 0]),
    st.integers(INT64_MIN, INT64_MAX),
)


@st.composite
def members(draw):
    """Series with unique ascending timestamps; some share every timestamp."""
    k = draw(st.integers(0, 12))
    shared = draw(st.booleans())
    common = sorted(set(draw(st.lists(TIMES, max_size=15))))
    ts_list, f_list = [], []
    one = np.array(common, np.int64)  # shared by identity, as a store may return them
    same_object = shared and draw(st.booleans())
    for _ in range(k):
        ts = common if shared else sorted(set(draw(st.lists(TIMES, max_size=15))))
        ts_list.append(one if same_object else np.array(ts, np.int64))
        f_list.append(np.array(draw(st.lists(VALUES, min_size=len(ts), max_size=len(ts)))))
    if k and draw(st.booleans()):  # one series as lists and another dtype: converted first
        j = draw(st.integers(0, k - 1))
        ts_list[j] = ts_list[j].tolist()
        f_list[j] = f_list[j].tolist()
    return ts_list, f_list


def same(a: tuple, b: tuple) -> None:
    assert (a[0] == b[0]).all() and a[0].dtype == b[0].dtype == np.int64
    assert a[1].dtype == b[1].dtype == np.float64
    assert (a[1].view(np.int64) == b[1].view(np.int64)).all()  # -0.0 and NaN payloads too
    assert (a[2] == b[2]).all() and a[2].dtype == b[2].dtype == np.int64


@prop
@given(members())
def test_merge_matches_lexsort(m) -> None:
    ts_list, f_list = m
    same(kernels.merge_sorted(ts_list, f_list), R.merge_sorted(ts_list, f_list))


@prop
@given(members(), st.integers(0, 3), st.booleans())
def test_aligned_path_matches_lexsort(m, aligned_min_k, perm) -> None:
    """The shared-timestamps path (forced for small k here) gives the same order; without
    ``perm`` the values are still bit-identical (-0.0 and NaN payloads included)."""
    ts_list, f_list = m
    want = R.merge_sorted(ts_list, f_list)
    got = kernels.merge_sorted(ts_list, f_list, perm=perm, aligned_min_k=aligned_min_k)
    if perm:
        same(got, want)
    else:
        assert got[2] is None
        same((got[0], got[1], want[2]), want)


def test_loser_tree_matches_lexsort_on_shared_timestamps() -> None:
    rng = np.random.default_rng(3)
    ts = [np.arange(50, dtype=np.int64)] * 9
    fs = [np.round(rng.normal(0, 2, 50)) for _ in ts]
    fs[4][7] = -0.0
    same(M.merge_sorted(ts, fs), R.merge_sorted(ts, fs))


def test_merge_nan_and_signed_zero_order() -> None:
    ts = [np.array([5, 6], np.int64)] * 4
    fs = [
        np.array([math.nan, 0.0]),
        np.array([-0.0, 1.0]),
        np.array([1.0, -0.0]),
        np.array([-1.0, math.nan]),
    ]
    got = kernels.merge_sorted(ts, fs)
    same(got, R.merge_sorted(ts, fs))
    assert got[2].tolist() == [6, 2, 4, 0, 1, 5, 3, 7]


def test_merge_large_fanout() -> None:
    rng = np.random.default_rng(7)
    ts_list = [np.unique(rng.integers(0, 500, 300)) for _ in range(300)]
    f_list = [np.round(rng.normal(0, 3, len(t))) for t in ts_list]
    same(kernels.merge_sorted(ts_list, f_list), R.merge_sorted(ts_list, f_list))
    shared = [ts_list[0]] * 300  # the aligned path
    f_list = [np.round(rng.normal(0, 3, len(ts_list[0])), 1) for _ in range(300)]
    f_list[7][3] = np.nan
    f_list[9][3] = -0.0
    f_list[2][3] = 0.0
    same(kernels.merge_sorted(shared, f_list), R.merge_sorted(shared, f_list))
    got = kernels.merge_sorted(shared, f_list, perm=False)  # NaN and -0.0: the stable argsort
    assert (
        got[2] is None
        and (got[1].view(np.int64) == R.merge_sorted(shared, f_list)[1].view(np.int64)).all()
    )
    plain = [np.round(rng.normal(0, 3, len(shared[0])), 1) + 100 for _ in range(300)]
    got = kernels.merge_sorted(shared, plain, perm=False)  # the SIMD sort
    assert (got[1] == R.merge_sorted(shared, plain)[1]).all()


def test_merge_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="ascending"):
        kernels.merge_sorted([np.array([2, 1])], [np.array([0.0, 0.0])])
    with pytest.raises(ValueError, match="ascending"):  # aligned: the shared timestamps
        kernels.merge_sorted([np.array([2, 1])] * 5, [np.array([0.0, 0.0])] * 5)
    with pytest.raises(ValueError, match="timestamps but"):
        kernels.merge_sorted([np.array([1, 2])], [np.array([0.0])])
    with pytest.raises(ValueError):
        kernels.merge_sorted([np.array([1])], [])
    with pytest.raises(TypeError):
        M.merge_sorted([np.array([1], np.int32)], [np.array([0.0])])


def test_scratch_reuses_only_unreferenced_buffers() -> None:
    s = kernels.Scratch()
    a = s.take("f", 10, np.float64)
    a_base = id(a.base)  # (holding the base itself would keep it busy)
    del a
    b = s.take("f", 8, np.float64)  # nothing holds the first: the same buffer
    assert id(b.base) == a_base
    c = s.take("f", 8, np.float64)  # b (a view) still alive: a new buffer
    assert id(c.base) != a_base
    del b, c
    assert s.take("f", 20, np.float64).shape == (20,)  # larger: a new one
    # Merges through a scratch give the same result, and a kept result is never overwritten.
    rng = np.random.default_rng(5)
    ts = [np.arange(30, dtype=np.int64)] * 6
    first = [np.round(rng.normal(0, 3, 30), 1) for _ in ts]
    second = [np.round(rng.normal(0, 3, 30), 1) for _ in ts]
    kept = kernels.merge_sorted(ts, first, perm=False, scratch=s)
    want = R.merge_sorted(ts, first)
    again = kernels.merge_sorted(ts, second, perm=False, scratch=s)
    assert (kept[1] == want[1]).all() and (kept[0] == want[0]).all()
    assert (again[1] == R.merge_sorted(ts, second)[1]).all()
    del kept, again
    third = kernels.merge_sorted(ts, second, perm=False, scratch=s)
    assert (third[1] == R.merge_sorted(ts, second)[1]).all()


def test_arrays_in_the_other_byte_order_are_converted() -> None:
    ts = [np.arange(5, dtype=">i8"), np.arange(5, dtype=np.int64)]
    f = [np.arange(5, dtype=">f8"), np.arange(5.0)]
    same(kernels.merge_sorted(ts, f), R.merge_sorted(ts, f))
    assert not M.ready_pairs(ts, f) and not M.shared_timestamps(ts[:1] * 2)
    assert not M.shared_timestamps([])
    assert kernels.shared_timestamps([ts[1], ts[1].copy()])
