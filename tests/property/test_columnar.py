"""The columnar kernel equals its Python reference (``parser.convert_point`` per entry)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kairos._native.columnar import convert_datapoints
from kairos.ingest._values import Fatal
from kairos.ingest.parser import _MTYPE_KIND, _Ctx, convert_point
from kairos.model.batch import BatchBuilder

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
scalars = st.one_of(
    I64,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**63, 2**64 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.5, -2.5, 9.3e18, -9.3e18, 1e300]),
    st.text(max_size=6),
    st.sampled_from(["12", "-5", "12.5", "+3", ".5", "abc", "", "1e5", "0.000000"]),
    st.none(),
    st.booleans(),
)
values = st.one_of(scalars, st.lists(scalars, max_size=2), st.just({"a": 1}))
entry = st.one_of(
    st.tuples(I64, values).map(list),
    st.tuples(scalars, values).map(list),
    st.tuples(I64, values, st.sampled_from(["long", "double", "string", "bogus"])).map(list),
    st.lists(scalars, max_size=1),
)
mtypes = st.sampled_from([None, "long", "double", "string", "bogus"])


def run(dps, mtype, validate, use_kernel):
    b = BatchBuilder()
    errors: list[str] = []
    ctx = _Ctx(0)
    ctx.name = "m"
    try:
        if use_kernel:
            n = len(dps)
            ts, words, kinds = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.uint8)

            def slow(dp, counter):
                return convert_point(dp, counter, mtype, validate, ctx, b, errors)

            m = convert_datapoints(dps, _MTYPE_KIND.get(mtype, -2), slow, ts, words, kinds)
            out = list(zip(kinds[:m].tolist(), ts[:m].tolist(), words[:m].tolist(), strict=True))
        else:
            out = []
            for dp in dps:
                r = convert_point(dp, len(out), mtype, validate, ctx, b, errors)
                if r is not None:
                    out.append(r)
    except Fatal as e:
        return ("fatal", str(e))
    return out, errors, b.batch.objects


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entry, max_size=12), mtypes, st.booleans())
def test_kernel_matches_reference(dps, mtype, validate) -> None:
    assert run(dps, mtype, validate, True) == run(dps, mtype, validate, False)


@given(st.lists(st.tuples(I64, st.one_of(I64, st.floats())).map(list), max_size=50))
def test_plain_numeric_entries_never_call_back(dps) -> None:
    n = len(dps)
    ts, words, kinds = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.uint8)

    def slow(dp, counter):
        raise AssertionError(f"slow path taken for {dp!r}")

    assert convert_datapoints(dps, -1, slow, ts, words, kinds) == n
    for (t, v), t2, w, k in zip(dps, ts, words, kinds, strict=True):
        assert t2 == t
        if isinstance(v, int):
            assert (k, w) == (0, v)
        else:
            assert k == 1
            assert np.int64(w).view(np.float64).tobytes() == np.float64(v).tobytes()


def test_empty_list() -> None:
    z = np.empty(0, np.int64)
    assert convert_datapoints([], -1, None, z, z, np.empty(0, np.uint8)) == 0


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            I64,
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False),
                st.sampled_from([0.0, -0.0, 1e7, 9999999.5, 1e-3, 0.00099, 55.0, -1e22, 5e-324]),
            ),
            I64,
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_points_json_matches_reference(rows) -> None:
    import orjson

    from kairos.query._format import java_double, points_fragment

    ts = np.array([r[0] for r in rows], np.int64)
    f = np.array([r[1] for r in rows], np.float64)
    iv = np.array([r[2] for r in rows], np.int64)
    is_long = np.array([r[3] for r in rows], bool)
    expected = orjson.dumps([[t, i if lg else java_double(x)] for t, x, i, lg in rows])
    assert orjson.dumps(points_fragment(ts, f, iv, is_long)) == expected


def test_points_json_rejects_non_finite() -> None:
    from kairos.errors import NonFiniteValue
    from kairos.query._format import points_fragment

    with pytest.raises(NonFiniteValue):
        points_fragment(np.array([1]), np.array([np.nan]), np.zeros(1, np.int64), np.zeros(1, bool))
