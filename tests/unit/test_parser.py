"""The general ingest path against KairosDB's rules (spec §2), without HTTP."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from kairos.errors import PayloadTooLarge
from kairos.ingest import ingest_body
from kairos.ingest.parser import parse_datapoints
from kairos.model.batch import DOUBLE, LONG, STRING, Batch
from tests.ingest_cases import CASES, render


def materialize(batch: Batch) -> dict[str, list]:
    """{metric: [[ts, value], ...]} with the store's rules: last write wins per series."""
    per_series: dict[int, dict[int, object]] = {}
    for i in range(len(batch)):
        sid = int(batch.series[i])
        kind = int(batch.kinds[sid])
        word = int(batch.values[i])
        if kind == LONG:
            v: object = word
        elif kind == DOUBLE:
            v = struct.unpack("<d", struct.pack("<q", word))[0]
        else:
            v = batch.objects[word]
        per_series.setdefault(sid, {})[int(batch.ts[i])] = v
    out: dict[str, list] = {}
    for sid, points in per_series.items():
        out.setdefault(batch.metrics[sid], []).extend([t, v] for t, v in points.items())
    for v in out.values():
        v.sort(key=lambda p: (p[0], isinstance(p[1], str), 0 if isinstance(p[1], str) else p[1]))
    return out


@pytest.mark.parametrize(("case", "template", "errors", "stored"), CASES, ids=[c[0] for c in CASES])
def test_case(case: str, template: str, errors: list[str], stored: dict[str, list]) -> None:
    prefix = "p."
    body = render(template, prefix).encode()
    r = ingest_body(body, 10**6)  # the scanner when it takes the body, else the general path
    general = parse_datapoints(body)
    assert general.batch.equals(r.batch)
    assert r.errors == general.errors == [render(e, prefix) for e in errors]
    got = materialize(r.batch)
    for metric, values in stored.items():
        assert got.get(render(metric, prefix), []) == values
    assert set(got) <= {render(m, prefix) for m in stored}


def test_fixture_metrics_with_type(kairos_fixtures) -> None:
    body = (kairos_fixtures / "unit" / "json-metric-parser-metrics-with-type.json").read_bytes()
    r = parse_datapoints(body)
    assert r.errors == []
    got = materialize(r.batch)
    assert got == {
        "archive_file_tracked": [
            [1349109376, 123],
            [1349109377, 13.2],
            [1349109378, 23.1],
            [1349109378, "string_data"],
        ],
        "archive_file_search": [[1349109378, 321]],
        "archive_file_search_text": [[1349109378, "sweet"]],
    }
    kinds = {(b, int(k)) for b, k in zip(r.batch.metrics, r.batch.kinds, strict=True)}
    assert ("archive_file_tracked", STRING) in kinds
    assert ("archive_file_search_text", STRING) in kinds


@pytest.mark.parametrize(
    "name",
    [
        "multi-metric-long.json",
        "multi-metric-timestamp-zero.json",
        "multiple-datapoints-metric.json",
    ],
)
def test_valid_fixtures(kairos_fixtures, name: str) -> None:
    body = (kairos_fixtures / "unit" / name).read_bytes()
    r = parse_datapoints(body)
    assert r.errors == []
    expected = sum(
        len(m.get("datapoints", [])) + ("value" in m) for m in _as_list(json.loads(body))
    )
    assert len(r.batch) == expected


def _as_list(doc):
    return doc if isinstance(doc, list) else [doc]


def test_tags_sorted_in_java_string_order() -> None:
    # Java compares UTF-16 code units: upper case before lower case, U+FFFF-range after ASCII.
    r = parse_datapoints(
        b'{"name":"m","timestamp":1,"value":1,"tags":{"b":"1","B":"2","\xc3\xa9":"3","a":"4"}}'
    )
    assert r.batch.tags[0] == (("B", "2"), ("a", "4"), ("b", "1"), ("é", "3"))


def test_series_created_once_per_metric_object_and_kind() -> None:
    r = parse_datapoints(
        b'[{"name":"m","datapoints":[[1,1],[2,2],[3,3.5],[4,4]],"tags":{"t":"v"}}]'
    )
    assert r.batch.metrics == ["m", "m"]
    assert list(r.batch.kinds) == [LONG, DOUBLE]
    assert list(r.batch.series) == [0, 0, 1, 0]


def test_huge_integers_wrap_like_java_bigdecimal_longvalue() -> None:
    r = parse_datapoints(
        b'{"name":"m","timestamp":1,"value":18446744073709551617,"tags":{"t":"v"}}'
    )
    assert r.errors == []
    assert int(r.batch.values[0]) == 1


@pytest.mark.parametrize(
    ("literal", "stored"),
    [
        # A JSON number without a dot is a long, converted through BigDecimal.longValue():
        # 10**400 is a multiple of 2**64, so its low 64 bits -- what KairosDB stores -- are 0.
        ("1e400", 0),
        ("1E5", 100000),
        ("3e19", 3 * 10**19 - 2 * 2**64),  # wraps to -6893488147419103232
        ("-1e400", 0),
    ],
)
def test_exponent_longs_keep_their_low_64_bits_like_kairosdb(literal: str, stored: int) -> None:
    for body in (
        f'{{"name":"m","timestamp":1,"value":{literal},"tags":{{"t":"v"}}}}',
        f'[{{"name":"m","datapoints":[[1,{literal}]],"tags":{{"t":"v"}}}}]',
    ):
        r = ingest_body(body.encode(), 10)
        assert r.errors == []
        assert r.batch.kinds.tolist() == [LONG]
        assert int(r.batch.values[0]) == stored


def test_point_limit_is_checked_before_anything_is_produced() -> None:
    body = json.dumps(
        [{"name": "m", "datapoints": [[i, i] for i in range(11)], "tags": {"t": "v"}}]
    ).encode()
    with pytest.raises(PayloadTooLarge, match="maximum of 10"):
        parse_datapoints(body, max_points=10)
    assert len(parse_datapoints(body, max_points=11).batch) == 11


def test_syntax_error_keeps_metric_objects_before_it() -> None:
    r = parse_datapoints(b'[{"name":"ok","datapoints":[[1,2]],"tags":{"a":"b"}}, {"name": }]')
    assert len(r.errors) == 1 and r.errors[0].startswith("Malformed JSON")
    assert r.batch.metrics == ["ok"]


def test_non_numeric_timestamp_string_is_a_request_error() -> None:
    r = parse_datapoints(b'[{"name":"m","datapoints":[["abc",1]],"tags":{"a":"b"}}]')
    assert r.errors == ['For input string: "abc"']
    assert len(r.batch) == 0


def test_non_object_metric_is_a_request_error() -> None:
    r = parse_datapoints(b'[{"name":"m","datapoints":[[1,1]],"tags":{"a":"b"}}, 5]')
    assert r.errors == ["Expected BEGIN_OBJECT but was a primitive at path $[1]"]
    assert r.batch.metrics == ["m"]


def test_double_bits_are_exact() -> None:
    r = parse_datapoints(b'{"name":"m","timestamp":1,"value":-0.0,"tags":{"t":"v"}}')
    assert r.batch.kinds[0] == DOUBLE
    assert np.int64(r.batch.values[0]).view(np.float64) == 0.0
    assert np.signbit(np.int64(r.batch.values[0]).view(np.float64))
