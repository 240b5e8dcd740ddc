"""Doubles print as KairosDB prints them (Java ``Double.toString`` + org.json trimming)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from kairos.errors import NonFiniteValue
from kairos.query._format import java_double, values_json


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (55.0, "55"),
        (5.5, "5.5"),
        (13.0, "13"),
        (0.0, "0"),
        (-0.0, "-0"),
        (30.200000000000003, "30.200000000000003"),
        (1e7, "1.0E7"),
        (1.2345e8, "1.2345E8"),
        (1e-4, "1.0E-4"),
        (0.001, "0.001"),
        (9999999.5, "9999999.5"),
        (-1.5e-7, "-1.5E-7"),
        (1e300, "1.0E300"),
        (-123456789.0, "-1.23456789E8"),
    ],
)
def test_java_double(x: float, text: str) -> None:
    assert orjson.dumps(java_double(x)).decode() == text


@pytest.mark.parametrize("x", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_aborts_like_kairosdb(x: float) -> None:
    with pytest.raises(NonFiniteValue):
        java_double(x)


def test_values_json_vector_path_equals_scalar_path() -> None:
    rng = np.random.default_rng(7)
    v = np.concatenate([rng.normal(0, 1e4, 200).round(2), [1e7, 2.0, -0.0, 1e-5]])
    ts = np.arange(len(v), dtype=np.int64)
    assert orjson.dumps(values_json(ts, v, 1)) == orjson.dumps(
        [[int(t), java_double(x)] for t, x in zip(ts, v, strict=False)]
    )
    plain = rng.uniform(1, 100, 50) + 0.25
    assert orjson.dumps(values_json(ts[:50], plain, 1)) == orjson.dumps(
        [[int(t), java_double(x)] for t, x in zip(ts[:50], plain, strict=False)]
    )
