"""The JSON kernel (``jsonfmt.points_json``) equals its Python reference, digit for digit.

The reference is ``java_double`` (shortest digits from ``repr``) serialised by orjson, as in
``values_json``; ``shortest_decimals`` (the kernel's Schubfach digits) is also held to ``repr``
directly on random doubles of every kind.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal
from fractions import Fraction

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kairos._native.jsonfmt import log_scales, shortest_decimals
from kairos.errors import NonFiniteValue
from kairos.query._format import java_double, points_fragment

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def from_bits(b: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def ulps_from(x: float, k: int) -> float:
    """``x`` moved ``k`` representable doubles up (down if negative)."""
    for _ in range(abs(k)):
        x = math.nextafter(x, math.inf if k > 0 else -math.inf)
    return x


finite_bits = st.integers(0, 2**64 - 1).map(from_bits).filter(math.isfinite)
any_exponent = st.builds(
    lambda m, e: math.ldexp(m, e), st.floats(0.5, 1.0, exclude_max=True), st.integers(-1073, 1024)
)
subnormals = st.integers(1, 2**52 - 1).map(from_bits)
powers_of_two = st.builds(
    lambda e, k: ulps_from(math.ldexp(1.0, e), k), st.integers(-1074, 1023), st.integers(-2, 2)
)
boundaries = st.builds(
    ulps_from,
    st.sampled_from([1e-3, 1e7, 1e-4, 1e6, 1.0, 0.1, 1e15, 1e16, 1e17, 1e22, 1e23, 2.0**53]),
    st.integers(-4, 4),
)
integers = st.one_of(
    st.integers(-(2**53), 2**53), st.integers(-(2**70), 2**70), st.integers(2**53, 2**64)
).map(float)
two_decimals = st.integers(-(10**9), 10**9).map(lambda i: i / 100)
averages = st.lists(two_decimals, min_size=1, max_size=6).map(lambda v: sum(v) / len(v))
ties = st.integers(2**52, 2**53 - 1).map(lambda c: c / 4)  # x.25 and x.75 near 1e15
doubles = st.one_of(
    finite_bits,
    any_exponent,
    subnormals,
    powers_of_two,
    boundaries,
    integers,
    two_decimals,
    averages,
    ties,
    st.sampled_from([0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308]),
)
signed_doubles = st.builds(lambda x, neg: -x if neg else x, doubles, st.booleans())


def repr_decimal(x: float) -> tuple[int, int]:
    """``(digits, exponent)`` of ``repr(abs(x))``, trailing zeros moved into the exponent."""
    _, digits, exp = Decimal(repr(abs(x))).as_tuple()
    text = "".join(map(str, digits))
    zeros = len(text) - len(text.rstrip("0"))
    return int(text[: len(text) - zeros]), int(exp) + zeros


def kernel_decimals(x: np.ndarray) -> list[tuple[int, int]]:
    digits, exps = np.empty(len(x), np.int64), np.empty(len(x), np.int32)
    shortest_decimals(np.ascontiguousarray(x, np.float64), digits, exps)
    return list(zip(digits.tolist(), exps.tolist(), strict=True))


def reference(rows: list[tuple[int, float, int, bool]]) -> bytes:
    return orjson.dumps([[t, i if lg else java_double(x)] for t, x, i, lg in rows])


def kernel(rows: list[tuple[int, float, int, bool]]) -> bytes:
    ts = np.array([r[0] for r in rows], np.int64)
    f = np.array([r[1] for r in rows], np.float64)
    iv = np.array([r[2] for r in rows], np.int64)
    is_long = np.array([r[3] for r in rows], bool)
    return orjson.dumps(points_fragment(ts, f, iv, is_long))


@settings(max_examples=500)
@given(st.lists(st.tuples(I64, signed_doubles, I64, st.booleans()), max_size=30))
def test_points_json_matches_reference(rows) -> None:
    assert kernel(rows) == reference(rows)


@settings(max_examples=1000)
@given(signed_doubles)
def test_one_double_matches_reference(x: float) -> None:
    rows = [(0, x, 0, False)]
    assert kernel(rows) == reference(rows)


@settings(max_examples=1000)
@given(doubles.filter(lambda x: x != 0))
def test_shortest_decimals_match_repr(x: float) -> None:
    assert kernel_decimals(np.array([x])) == [repr_decimal(x)]


def random_doubles(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = n // 8
    parts = [
        rng.integers(0, 2**63, k, dtype=np.int64).view(np.float64),  # every exponent
        rng.integers(1, 2**52, k, dtype=np.int64).view(np.float64),  # subnormals
        10.0 ** rng.uniform(-3.5, 7.5, k),  # around the plain range
        np.round(rng.uniform(-1e5, 1e5, k), 2),
        np.round(50 + np.cumsum(rng.normal(0, 1, 6 * k)), 2).reshape(k, 6).mean(axis=1),
        rng.integers(-(2**62), 2**62, k).astype(np.float64),  # integers past 2**53
        rng.integers(2**52, 2**53, k).astype(np.float64) / 4,  # exact ties near 1e15
        np.ldexp(rng.uniform(0.5, 1, k), rng.integers(-1073, 1025, k)),
    ]
    x = np.concatenate(parts)
    return x[np.isfinite(x) & (x != 0)]


def test_shortest_decimals_match_repr_on_200k_random_doubles() -> None:
    # `python -c "from tests.property.test_jsonfmt import check; check(10**7, 1)"` runs
    # ten million by hand.
    check(200_000, 0)


def check(n: int, seed: int) -> None:
    x = random_doubles(n, seed)
    got = kernel_decimals(x)
    bad = [(v, g) for v, g in zip(x.tolist(), got, strict=True) if g != repr_decimal(v)]
    assert not bad, bad[:10]


def test_every_power_of_two_and_its_neighbours() -> None:
    p = np.ldexp(1.0, np.arange(-1074, 1024))
    x = np.concatenate([p, np.nextafter(p, 0), np.nextafter(p, np.inf)])
    x = x[np.isfinite(x) & (x != 0)]
    assert kernel_decimals(x) == [repr_decimal(v) for v in x.tolist()]


@pytest.mark.parametrize("first_of_binade", [False, True])
def test_log_scales_are_exact_for_every_exponent(first_of_binade: bool) -> None:
    for q in range(-1074, 972):
        k, h = log_scales(q, first_of_binade)
        width = Fraction(3, 4) * Fraction(2) ** q if first_of_binade else Fraction(2) ** q
        assert Fraction(10) ** k <= width < Fraction(10) ** (k + 1), q
        e = h - q - 3  # floor(log2(10**-k))
        assert Fraction(2) ** e <= Fraction(10) ** -k < Fraction(2) ** (e + 1), q


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (50.23, "50.23"),
        (50.23166666666667, "50.23166666666667"),
        (sum([50.23, 50.25, 50.22]) / 3, "50.23333333333333"),
        (1 / 3, "0.3333333333333333"),
        (0.001, "0.001"),
        (0.0012345, "0.0012345"),
        (math.nextafter(1e-3, 0), "9.999999999999998E-4"),
        (9999999.999999998, "9999999.999999998"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (-0.0, "-0"),
        (0.0, "0"),
        (-7.0, "-7"),
        (2.0**53, "9.007199254740992E15"),
        (1125899906842624.25, "1.1258999068426242E15"),  # tie: the even candidate
        (1125899906842624.75, "1.1258999068426248E15"),
        (5e-324, "5.0E-324"),
        (-2.2250738585072014e-308, "-2.2250738585072014E-308"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (1e23, "1.0E23"),
        (8.87116618824638e16, "8.87116618824638E16"),
    ],
)
def test_known_texts(x: float, text: str) -> None:
    rows = [(1, x, 0, False)]
    assert kernel(rows) == reference(rows) == f"[[1,{text}]]".encode()


def test_longest_texts_fit() -> None:
    # Every point at its longest: 20-byte timestamps and 24-byte values (the kernel writes with
    # fixed-size copies past each value and shrinks the buffer at the end).
    worst = [-2.2250738585072014e-308, -0.0012345678901234567, -1234567.8901234567]
    for n in range(1, 40):
        rows = [(-(2**63), worst[j % 3], -(2**63), j % 4 == 3) for j in range(n)]
        assert kernel(rows) == reference(rows)


def test_empty() -> None:
    z = np.empty(0, np.int64)
    assert orjson.dumps(points_fragment(z, np.empty(0), z, np.empty(0, bool))) == b"[]"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_double_aborts(bad: float) -> None:
    f = np.array([1.5, 2.5, bad])
    with pytest.raises(NonFiniteValue):
        points_fragment(np.arange(3), f, np.zeros(3, np.int64), np.zeros(3, bool))
    # ... but not where the point is a long
    out = points_fragment(np.arange(3), f, np.arange(3), np.array([0, 0, 1], bool))
    assert orjson.dumps(out) == b"[[0,1.5],[1,2.5],[2,2]]"


def test_timestamps_across_their_shared_leading_digits() -> None:
    # The kernel keeps the text of ts // 10**8 from one point to the next.
    ts = [0, 5, 99_999_999, 100_000_000, 100_000_001, 199_999_999, 200_000_000, -1, -(10**9)]
    ts += [10**12 - 1, 10**12, 2**63 - 1, 2**63 - 2, -(2**63), 1_700_000_000_000, 1_700_000_000_001]
    ts += list(range(1_699_999_999_990, 1_700_000_000_010))
    rows = [(t, 1.5, 7, j % 2 == 0) for j, t in enumerate(ts)]
    assert kernel(rows) == reference(rows)
