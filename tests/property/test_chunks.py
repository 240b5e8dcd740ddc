"""The chunk codec's Cython kernels agree byte for byte with the reference and round-trip."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kairos.errors import ChunkError
from kairos.storage.embedded import _chunks_reference as R
from kairos.storage.embedded.chunks import (
    chunk_info,
    decode_chunk,
    decode_chunks,
    decode_series,
    encode_chunk,
)

prop = settings(deadline=None, max_examples=300)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

GAPS = st.one_of(
    st.integers(1, 20),
    st.sampled_from([10_000, 60_000]),  # regular
    st.integers(9_990, 10_010),  # jitter
    st.integers(1, 2**40),  # huge gaps
    st.integers(1, 2**62),
)


@st.composite
def timestamps(draw, n: int) -> np.ndarray:
    shape = draw(st.sampled_from(["regular", "jitter", "random"]))
    first = draw(st.one_of(st.integers(INT64_MIN, INT64_MAX), st.integers(-(10**13), 10**13)))
    if shape == "regular":
        gaps = [draw(GAPS)] * (n - 1)
    elif shape == "jitter":
        step = draw(st.integers(1, 100_000))
        gaps = [
            step + draw(st.integers(-step + 1, 1000)) if draw(st.booleans()) else step
            for _ in range(n - 1)
        ]
    else:
        gaps = draw(st.lists(GAPS, min_size=n - 1, max_size=n - 1))
    ts = [first]
    for g in gaps:
        ts.append(ts[-1] + g)
    assume(ts[-1] <= INT64_MAX)
    return np.array(ts, np.int64)


SPECIAL = [math.nan, -math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, -5e-324, 2.2e-308, 1e308]


@st.composite
def doubles(draw, n: int) -> np.ndarray:
    shape = draw(st.sampled_from(["bits", "floats", "special", "decimal", "almost", "walk"]))
    if shape == "bits":  # arbitrary bit patterns: NaN payloads, denormals, ...
        return np.frombuffer(draw(st.binary(min_size=8 * n, max_size=8 * n)), np.float64).copy()
    if shape == "floats":
        values = draw(st.lists(st.floats(), min_size=n, max_size=n))
    elif shape == "special":
        values = draw(st.lists(st.sampled_from(SPECIAL) | st.floats(-5, 5), min_size=n, max_size=n))
    elif shape in ("decimal", "almost"):
        k = draw(st.integers(0, 9))
        # up to 2**53, past the 2**51 where the AVX2 division hands over to the plain one
        edge = st.sampled_from([2**51 - 1, 2**51, -(2**51), -(2**51) - 1, 2**53, -(2**53)])
        ints = draw(
            st.lists(
                st.integers(-(10**12), 10**12) | st.integers(-(2**53), 2**53) | edge,
                min_size=n,
                max_size=n,
            )
        )
        values = [i / 10**k for i in ints]
        if shape == "almost":  # one value that defeats the decimal detection
            values[draw(st.integers(0, n - 1))] = draw(
                st.sampled_from([0.1 + 0.2, -0.0, math.nan, 1e300, 1 / 3])
            )
    else:
        step = draw(st.floats(0.001, 100))
        values = list(50 + np.cumsum(np.full(n, step) * draw(st.sampled_from([1, -1]))))
        values = [round(v, draw(st.sampled_from([2, 17]))) for v in values]
    return np.array(values, np.float64)


@st.composite
def longs(draw, n: int) -> np.ndarray:
    shape = draw(st.sampled_from(["any", "extremes", "counter", "constant"]))
    if shape == "any":
        return np.array(
            draw(st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=n, max_size=n)), np.int64
        )
    if shape == "extremes":
        pick = st.sampled_from([INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1])
        return np.array(draw(st.lists(pick, min_size=n, max_size=n)), np.int64)
    start = draw(st.integers(INT64_MIN, INT64_MAX))
    if shape == "constant":
        return np.full(n, start, np.int64)
    incs = np.array(draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n)), np.uint64)
    return (np.uint64(start % 2**64) + np.cumsum(incs, dtype=np.uint64)).view(np.int64)


@st.composite
def chunks(draw, max_size: int = 300) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.one_of(st.just(1), st.integers(1, 5), st.integers(1, max_size)))
    values = draw(st.one_of(doubles(n), longs(n)))
    return draw(timestamps(n)), values


def assert_same(ts: np.ndarray, values: np.ndarray, got: tuple[np.ndarray, np.ndarray]) -> None:
    got_ts, got_values = got
    assert got_ts.dtype == np.int64
    assert got_values.dtype == values.dtype
    assert got_ts.tolist() == ts.tolist()
    assert got_values.view(np.int64).tolist() == values.view(np.int64).tolist()  # bit for bit


@prop
@given(chunks())
def test_kernels_match_reference_and_round_trip(chunk) -> None:
    ts, values = chunk
    buf = encode_chunk(ts, values)
    assert buf == R.encode_chunk(ts, values)
    assert_same(ts, values, decode_chunk(buf))
    assert_same(ts, values, R.decode_chunk(buf))
    kind = 0 if values.dtype == np.int64 else 1
    assert chunk_info(buf) == R.chunk_info(buf) == (len(ts), kind, int(ts[0]), int(ts[-1]))


@prop
@given(chunks(max_size=40), st.data())
def test_decode_chunks_of_a_series(chunk, data) -> None:
    ts, values = chunk
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(ts) - 1)), max_size=4))))
    bounds = [0, *[c for c in cuts if c < len(ts)], len(ts)]
    bufs = [encode_chunk(ts[a:b], values[a:b]) for a, b in pairwise(bounds)]
    start = data.draw(st.integers(INT64_MIN, INT64_MAX) | st.sampled_from(ts.tolist()))
    end = data.draw(st.integers(INT64_MIN, INT64_MAX) | st.sampled_from(ts.tolist()))
    keep = (ts >= start) & (ts <= end)
    assert_same(ts[keep], values[keep], decode_chunks(bufs, start, end))


@prop
@given(chunks(max_size=40), st.data())
def test_corrupt_bytes_raise_chunk_error_or_decode(chunk, data) -> None:
    ts, values = chunk
    buf = bytearray(encode_chunk(ts, values))
    for _ in range(data.draw(st.integers(1, 4))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    corrupt = bytes(buf[:cut])
    try:
        got_ts, got_values = decode_chunk(corrupt)
    except ChunkError:
        return
    assert_same(*R.decode_chunk(corrupt), (got_ts, got_values))  # what decodes, decodes alike
    count, _, min_ts, max_ts = chunk_info(corrupt)
    assert len(got_ts) == len(got_values) == count
    assert got_ts[0] == min_ts and got_ts[-1] == max_ts


@prop
@given(chunks(max_size=40))
def test_every_truncation_raises(chunk) -> None:
    ts, values = chunk
    buf = encode_chunk(ts, values)
    for i in range(len(buf)):
        with pytest.raises(ChunkError):
            decode_chunk(buf[:i])


@st.composite
def many_series(draw) -> tuple[list[list[bytes]], list[tuple[np.ndarray, np.ndarray]]]:
    """Series of one kind: some sampled at the same instants (constant steps, one chunk),
    some with the same first/last timestamp and count but other steps, some of several
    chunks."""
    kind = draw(st.sampled_from([np.int64, np.float64]))
    grids = [
        np.arange(n, dtype=np.int64) * step + t0
        for n, step, t0 in [(5, 10, 0), (5, 10, 7), (1, 1, 3), (40, 1000, 10**12)]
    ]
    series, chunks_of = [], []
    for _ in range(draw(st.integers(0, 12))):
        shape = draw(st.sampled_from(["grid", "grid", "grid_cut", "same_ends", "several", "any"]))
        if shape in ("grid", "grid_cut"):
            ts = grids[draw(st.integers(0, len(grids) - 1))]
        elif shape == "same_ends":  # first/last/count of grid 0, but not constant steps
            ts = np.array([0, 10, 11, 30, 40], np.int64)
        else:
            ts = draw(timestamps(draw(st.integers(1, 30))))
        if kind is np.int64:
            values = np.array(
                draw(
                    st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=len(ts), max_size=len(ts))
                ),
                np.int64,
            )
        else:
            values = draw(doubles(len(ts)))
        cuts = [0, len(ts)]
        if shape == "grid_cut":  # several chunks, cut where other series may be cut too
            inner = draw(st.sampled_from([(2, 15), (2, 3), (15,), (3, 15)]))
            cuts = sorted({0, len(ts), *[c for c in inner if c < len(ts)]})
        if shape == "several" and len(ts) > 1:
            cuts = sorted({0, len(ts), *draw(st.lists(st.integers(1, len(ts) - 1), max_size=3))})
        chunks_of.append([encode_chunk(ts[a:b], values[a:b]) for a, b in pairwise(cuts)])
        series.append((ts, values))
    return chunks_of, series


@prop
@given(many_series())
def test_decode_series_matches_decoding_each_chunk(data) -> None:
    chunks_of, series = data
    bufs = [b for cs in chunks_of for b in cs]
    first = np.cumsum([0] + [len(cs) for cs in chunks_of[:-1]]).astype(np.int64)
    ts_of, values, bounds = decode_series(bufs, first[: len(chunks_of)])
    assert len(ts_of) == len(series) and len(bounds) == len(series) + 1
    seen: dict[tuple, np.ndarray] = {}
    for k, ((ts, vals), cs) in enumerate(zip(series, chunks_of, strict=True)):
        ref = [R.decode_chunk(b) for b in cs]
        got = (ts_of[k], values[bounds[k] : bounds[k + 1]])
        assert_same(np.concatenate([r[0] for r in ref]), np.concatenate([r[1] for r in ref]), got)
        assert_same(ts, vals, got)  # and what was encoded
        assert not ts_of[k].flags.writeable
        if all(c[0] & 0x08 == 0 for c in cs):  # constant steps in every chunk
            key = tuple(chunk_info(c)[::2] + chunk_info(c)[3:] for c in cs)
            assert ts_of[k] is seen.setdefault(key, ts_of[k])  # shared with the earliest
    owners: dict[int, tuple] = {}  # and never with a series whose chunks differ
    for k, cs in enumerate(chunks_of):
        key = tuple(chunk_info(c) for c in cs)
        assert owners.setdefault(id(ts_of[k]), key) == key


def test_decode_series_values_only_needs_constant_steps() -> None:
    # Two series with the same ends and count: the second's steps are not constant, so it
    # decodes its own timestamps; a values-only decode of such a chunk is refused.
    a = encode_chunk(np.array([0, 10, 20], np.int64), np.array([1, 2, 3], np.int64))
    b = encode_chunk(np.array([0, 5, 20], np.int64), np.array([4, 5, 6], np.int64))
    ts_of, values, _ = decode_series([a, b, a], np.array([0, 1, 2], np.int64))
    assert ts_of[1].tolist() == [0, 5, 20] and ts_of[2] is ts_of[0]
    assert values.tolist() == [1, 2, 3, 4, 5, 6, 1, 2, 3]
    from kairos._native import chunks as K

    ts, v = np.empty(3, np.int64), np.empty(3, np.int64)
    assert K.decode_list([b], np.array([2], np.uint8), ts, v) == (0, -3)
    with pytest.raises(ChunkError, match="mix"):
        decode_series(
            [a, encode_chunk(np.array([1], np.int64), np.array([1.5]))], np.array([0, 1], np.int64)
        )


def test_decode_series_shares_only_between_series_of_the_same_chunks() -> None:
    grid = np.arange(40, dtype=np.int64) * 1000
    vals = np.arange(40, dtype=np.int64)

    def cut(ts, *at):
        bounds = [0, *at, len(ts)]
        return [encode_chunk(ts[a:b], vals[: len(ts)][a:b]) for a, b in pairwise(bounds)]

    other = np.concatenate((grid[:2], grid[2:] + 3000))  # same first chunk, later ones differ
    series = [cut(grid, 2, 15), cut(grid, 2, 3), cut(grid, 2, 15), cut(other, 2, 15)]
    bufs = [b for s in series for b in s]
    first = np.array([0, 3, 6, 9], np.int64)
    ts_of, values, bounds = decode_series(bufs, first)
    assert ts_of[2] is ts_of[0]
    assert ts_of[1] is not ts_of[0] and ts_of[3] is not ts_of[0]
    for k, want in enumerate([grid, grid, grid, other]):
        assert ts_of[k].tolist() == want.tolist()
        assert values[bounds[k] : bounds[k + 1]].tolist() == vals.tolist()


def test_values_only_decoding_still_checks_the_constant_step() -> None:
    from kairos._native import chunks as K

    good = bytearray(encode_chunk(np.array([0, 10, 20], np.int64), np.array([1, 2, 3], np.int64)))
    assert good[1:4] == b"\x03\x00\x14"  # count 3, min_ts 0 (zigzag), span 20
    bad = bytes(good[:3]) + b"\x15" + bytes(good[4:])  # span 21: no step makes 3 points of it
    ts, v = np.empty(3, np.int64), np.empty(3, np.int64)
    for picked in (1, 2):
        assert K.decode_list([bad], np.array([picked], np.uint8), ts, v) == (0, -3)
    assert K.decode_list([bytes(good)], np.array([2], np.uint8), ts[:0], v) == (-1, 0)
    assert v.tolist() == [1, 2, 3]
