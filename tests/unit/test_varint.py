"""The Python varint helpers every encoder and reference shares (``kairos.model.varint``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kairos.model.varint import encode_uvarint, encode_uvarints, read_uvarint, unzigzag, zigzag


@given(st.integers(0, 2**70))
def test_uvarint_round_trip(u: int) -> None:
    b = encode_uvarint(u)
    assert all(x & 0x80 for x in b[:-1]) and b[-1] < 0x80
    assert read_uvarint(b + b"\xff", 0) == (u, len(b))


@given(st.integers(-(2**63), 2**63 - 1))
def test_zigzag_round_trip(v: int) -> None:
    u = zigzag(v)
    assert 0 <= u < 2**64
    assert unzigzag(u) == v
    assert u == (2 * v if v >= 0 else -2 * v - 1)


def test_known_bytes() -> None:
    assert encode_uvarint(0) == b"\x00"
    assert encode_uvarint(300) == b"\xac\x02"
    assert encode_uvarints([1, 300]) == b"\x01\xac\x02"
    assert read_uvarint(b"\x00\xac\x02", 1) == (300, 3)


def test_errors_name_the_position() -> None:
    with pytest.raises(ValueError) as e:
        read_uvarint(b"\x80\x80", 0)
    assert e.value.args == ("truncated", 2)
    with pytest.raises(ValueError) as e:
        read_uvarint(b"\x80\x80\x01", 0, end=2)
    assert e.value.args == ("truncated", 2)
    with pytest.raises(ValueError) as e:
        read_uvarint(b"\x80" * 11, 0, max_bytes=10)
    assert e.value.args == ("too long", 10)
    assert read_uvarint(b"\x80" * 9 + b"\x01", 0, max_bytes=10) == (1 << 63, 10)
