"""The CRC-32 kernel agrees with its reference, ``zlib.crc32``, folded or byte by byte."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kairos._native import crc

prop = settings(deadline=None, max_examples=300)


@pytest.fixture(params=[True, False], ids=["clmul", "bytes"])
def mode(request):
    yield crc.use_clmul(request.param)
    crc.use_clmul(True)


@prop
@given(
    st.binary(max_size=2000) | st.integers(0, 300).map(lambda n: bytes([0xFF]) * n),
    st.integers(0, 2**32 - 1),
)
def test_crc32_matches_zlib(data: bytes, value: int) -> None:
    for on in (True, False):
        crc.use_clmul(on)
        assert crc.crc32(data, value) == zlib.crc32(data, value)
    crc.use_clmul(True)


def test_every_length_around_the_folding_steps(mode) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, 300, np.uint8).tobytes()
    for n in range(300):
        assert crc.crc32(data[:n]) == zlib.crc32(data[:n]), n


@prop
@given(st.lists(st.binary(max_size=300), max_size=12), st.data())
def test_check_records_finds_the_first_bad_record(records, data) -> None:
    buf = b"".join(records) + b"tail"
    lengths = np.array([len(r) for r in records], np.int64)
    offsets = (np.cumsum(lengths) - lengths).astype(np.int64)
    crcs = np.array([zlib.crc32(r) for r in records], np.uint32)
    assert crc.check_records(buf, offsets, lengths, crcs) == -1
    if records:
        i = data.draw(st.integers(0, len(records) - 1))
        wrong = crcs.copy()
        wrong[i] ^= 1 << data.draw(st.integers(0, 31))
        bad = [j for j in range(len(records)) if wrong[j] != crcs[j]]
        assert crc.check_records(buf, offsets, lengths, wrong) == bad[0]
        past = lengths.copy()
        past[i] = len(buf) - offsets[i] + 1  # runs past the buffer
        assert crc.check_records(buf, offsets, past, crcs) == i


def test_check_records_rejects_mismatched_arrays() -> None:
    with pytest.raises(ValueError):
        crc.check_records(
            b"ab", np.zeros(2, np.int64), np.zeros(1, np.int64), np.zeros(2, np.uint32)
        )
