"""The ingest fast path on hand-written bodies: accepted shapes and every bail reason."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from kairos._native.scanner import N_META, STATUS_NAMES, assign_series, scan
from kairos.ingest.fast import scan_status, try_fast_parse
from kairos.ingest.parser import IngestResult, parse_datapoints
from kairos.model.batch import DOUBLE, LONG
from tests.ingest_cases import CASES, render


def bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def fast_equals_general(body: bytes) -> IngestResult:
    fast = try_fast_parse(body)
    assert fast is not None, scan_status(body)
    general = parse_datapoints(body)
    assert general.errors == []
    assert fast.errors == []
    assert fast.batch.equals(general.batch), (fast.batch, general.batch)
    return fast


def test_typical_body_values() -> None:
    body = (
        b'[{"name":"metric.17","tags":{"host":"h1","dc":"eu"},'
        b'"datapoints":[[1700000000000,12.25],[1700000010000,13.5]]},'
        b'{"name":"metric.18","tags":{"host":"h1","dc":"eu"},"datapoints":[[1700000000000,7]]}]'
    )
    b = fast_equals_general(body).batch
    assert b.metrics == ["metric.17", "metric.18"]
    assert b.tags == [(("dc", "eu"), ("host", "h1"))] * 2
    assert b.kinds.tolist() == [DOUBLE, LONG]
    assert b.ttls.tolist() == [0, 0]
    assert b.series.tolist() == [0, 0, 1]
    assert b.ts.tolist() == [1700000000000, 1700000010000, 1700000000000]
    assert b.values.tolist() == [bits(12.25), bits(13.5), 7]


ACCEPTED = [
    b"[]",
    b" \n[\t]\r\n",
    b'{"name":"m","tags":{"a":"b"}}',
    b'{"name":"m","timestamp":1234,"value":4321,"tags":{"foo":"bar"}}',
    b'{"name":"m","time":-5,"value":-0.0,"tags":{"foo":"bar"}}',
    b'{"name":"m","tags":{"a":"b"},"ttl":-7,"datapoints":[[0,1]]}',
    b'{"name":"m","tags":{"a":"b"},"ttl":2147483647,"datapoints":[]}',
    # Both forms: the single point comes first, wherever its keys are.
    b'{"datapoints":[[6,2],[7,2.5]],"tags":{"t":"v"},"value":1.5,"name":"m","timestamp":5}',
    # Mixed kinds: the long series is created first, the points keep their order.
    b'{"name":"m","tags":{"a":"b"},"datapoints":[[1,1.5],[2,2],[3,3.5],[4,4]]}',
    b'{"name":"m","tags":{"a":"b"},"value":2.5,"timestamp":1,"datapoints":[[1,1],[2,2.5]]}',
    # The type applies to every point, even when it comes after them.
    b'{"name":"m","tags":{"a":"b"},"datapoints":[[1,1],[2,-2.9],[3,9.1e18]],"type":"long"}',
    b'{"name":"m","tags":{"a":"b"},"datapoints":[[1,1],[2,2.5]],"type":"double"}',
    b'{"name":"m","tags":{"a":"b"},"type":"double","time":1,"value":9007199254740993}',
    b'{"name":"m","tags":{"a":"b"},"type":"long","time":1,"value":-0.5}',
    # The same series in several objects is one series row.
    b'[{"name":"m","tags":{"a":"b","c":"d"},"datapoints":[[1,1]]},'
    b'{"name":"m","tags":{"c":"d","a":"b"},"datapoints":[[2,2]]},'
    b'{"name":"m","tags":{"a":"b","c":"d"},"ttl":5,"datapoints":[[3,3]]}]',
    # Numbers.
    b'{"name":"m","tags":{"a":"b"},"datapoints":[[9223372036854775807,-9223372036854775808],'
    b"[-9223372036854775808,9223372036854775807],[1,0.1],[2,1.0],[3,1],[4,-0],[5,0.0],"
    b"[6,1.5E3],[7,2.5e-3],[8,1.7976931348623157e308],[9,4.9e-324],[10,1.0e-400],"
    b"[11,0.30000000000000004],[12,123456789012345678901234.5],[13,9007199254740993.0]]}",
    # Strings: unicode, escapes, ':' and '=' in tags; Java order for tag names beyond the BMP.
    '{"name":"m\u00e9\U0001f600:=","tags":{"h=o:st":"a=b:c","\uffff":"1","\U0001f600":"2"}}'.encode(),
    b'{"name":"m\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/","tags":{"\\uffff":"1","\\ud83d\\ude00":"2"},'
    b'"datapoints":[[1,1]]}',
    # Whitespace everywhere.
    b' [ { "name" : "m" , "tags" : { "a" : "b" } , "datapoints" : [ [ 1 , 2 ] , [ 3 , 4.5 ] ] } ] ',
]


@pytest.mark.parametrize("body", ACCEPTED)
def test_accepted(body: bytes) -> None:
    fast_equals_general(body)


def test_java_tag_order() -> None:
    body = '{"name":"m","tags":{"\uffff":"1","\U0001f600":"2"},"datapoints":[[1,1]]}'.encode()
    assert fast_equals_general(body).batch.tags == [(("\U0001f600", "2"), ("\uffff", "1"))]


def test_single_point_first_and_kind_order() -> None:
    body = b'{"datapoints":[[6,2],[7,2.5]],"tags":{"t":"v"},"value":1.5,"name":"m","timestamp":5}'
    b = fast_equals_general(body).batch
    assert b.kinds.tolist() == [DOUBLE, LONG]
    assert b.series.tolist() == [0, 1, 0]
    assert b.ts.tolist() == [5, 6, 7]
    assert b.values.tolist() == [bits(1.5), 2, bits(2.5)]


def test_type_after_datapoints() -> None:
    body = b'{"name":"m","tags":{"a":"b"},"datapoints":[[1,1],[2,-2.9]],"type":"long"}'
    b = fast_equals_general(body).batch
    assert b.kinds.tolist() == [LONG]
    assert b.values.tolist() == [1, -2]


BASE = '{"name":"m","tags":{"a":"b"},%s}'


def dp(points: str) -> bytes:
    return (BASE % f'"datapoints":{points}').encode()


BAILS = [
    ("empty", b""),
    ("empty", b" \r\n\t"),
    ("syntax", b'{"name":"m","tags":{"a":"b"},"datapoints":[[1,2]]'),
    ("syntax", b'{"name":"m","tags":{"a":"b"},"datapoints":[[1,2]]} x'),
    ("syntax", b"[] []"),
    ("not_object", b'[{"name":"m","tags":{"a":"b"}},]'),
    ("syntax", b'{"name" "m","tags":{"a":"b"}}'),
    ("syntax", dp("[[1,2]x]")),
    ("bad_datapoint", dp("[[1,01]]")),
    ("syntax", dp("[[1,1.]]")),
    ("syntax", dp("[[1,-]]")),
    ("not_object", b"[1]"),
    ("not_object", b"[[]]"),
    ("not_object", b'"x"'),
    ("not_object", b"null"),
    ("unknown_key", (BASE % '"skip_validate":true').encode()),
    ("unknown_key", (BASE % '"other":1').encode()),
    ("unknown_key", b'{"n\\u0061me":"m","tags":{"a":"b"}}'),
    ("duplicate_key", (BASE % '"name":"n"').encode()),
    ("duplicate_key", (BASE % '"datapoints":[[1,2]],"datapoints":[]').encode()),
    ("duplicate_key", (BASE % '"time":1,"value":2,"value":3').encode()),
    ("bad_name", b'{"tags":{"a":"b"}}'),
    ("bad_name", b"{}"),
    ("bad_name", b'{"name":"","tags":{"a":"b"}}'),
    ("bad_name", b'{"name":1,"tags":{"a":"b"}}'),
    ("bad_name", b'{"name":null,"tags":{"a":"b"}}'),
    ("bad_tags", b'{"name":"m"}'),
    ("bad_tags", b'{"name":"m","tags":{}}'),
    ("bad_tags", b'{"name":"m","tags":null}'),
    ("bad_tags", b'{"name":"m","tags":[]}'),
    ("bad_tags", b'{"name":"m","tags":{"a":1}}'),
    ("bad_tags", b'{"name":"m","tags":{"":"b"}}'),
    ("bad_tags", b'{"name":"m","tags":{"a":""}}'),
    ("bad_string", b'{"name":"m\xff","tags":{"a":"b"}}'),
    ("bad_string", b'{"name":"m\xc0\x80","tags":{"a":"b"}}'),
    ("bad_string", b'{"name":"m\xed\xa0\x80","tags":{"a":"b"}}'),
    ("bad_string", b'{"name":"m\xf4\x90\x80\x80","tags":{"a":"b"}}'),
    ("bad_string", b'{"name":"m\xe2\x82","tags":{"a":"b"}}'),
    ("bad_string", b'{"name":"m\x01","tags":{"a":"b"}}'),
    ("bad_string", b'{"name":"m\\x","tags":{"a":"b"}}'),
    ("bad_string", b'{"name":"m\\u12g4","tags":{"a":"b"}}'),
    ("bad_datapoint", dp("[[1]]")),
    ("bad_datapoint", dp("[[1,2,3]]")),
    ("bad_datapoint", dp('[[1,2,"long"]]')),
    ("bad_datapoint", dp("[1]")),
    ("bad_datapoint", dp("[[]]").replace(b"[[]]", b"[[1,2],]")),
    ("bad_datapoint", dp("{}")),
    ("bad_datapoint", dp("null")),
    ("bad_timestamp", dp("[[1.5,2]]")),
    ("bad_timestamp", dp("[[null,2]]")),
    ("bad_timestamp", dp('[["1",2]]')),
    ("bad_timestamp", (BASE % '"timestamp":1.0,"value":1').encode()),
    ("bad_timestamp", (BASE % '"time":"1","value":1').encode()),
    ("bad_value", dp("[[1,null]]")),
    ("bad_value", dp('[[1,"2"]]')),
    ("bad_value", dp("[[1,true]]")),
    ("bad_value", dp("[[1,[2]]]")),
    ("bad_value", dp("[[1,{}]]")),
    ("bad_value", (BASE % '"timestamp":1,"value":"x"').encode()),
    ("exp_no_dot", dp("[[1,1e5]]")),
    ("exp_no_dot", dp("[[1,-1E+5]]")),
    ("exp_no_dot", dp("[[1e3,1]]")),
    ("int_overflow", dp("[[1,9223372036854775808]]")),
    ("int_overflow", dp("[[1,-9223372036854775809]]")),
    ("int_overflow", dp("[[9223372036854775808,1]]")),
    ("int_overflow", dp("[[1,123456789012345678901234567890]]")),
    ("int_overflow", (BASE % '"ttl":99999999999999999999').encode()),
    ("double_overflow", dp("[[1,1.8e308]]")),
    ("double_overflow", dp("[[1,-1.0e400]]")),
    ("long_range", (BASE % '"type":"long","datapoints":[[1,9.3e18]]').encode()),
    ("long_range", (BASE % '"type":"long","time":1,"value":-1.0e19').encode()),
    ("long_literal", dp("[[1,1" + "0" * 70 + ".5]]")),
    ("bad_ttl", (BASE % '"ttl":2147483648').encode()),
    ("bad_ttl", (BASE % '"ttl":-2147483649').encode()),
    ("bad_ttl", (BASE % '"ttl":1.5').encode()),
    ("bad_ttl", (BASE % '"ttl":"5"').encode()),
    ("bad_type", (BASE % '"type":"string"').encode()),
    ("bad_type", (BASE % '"type":"bogus"').encode()),
    ("bad_type", (BASE % '"type":1').encode()),
    ("bad_type", (BASE % '"type":"lon\\u0067"').encode()),
    ("single_point", (BASE % '"value":1').encode()),
    ("single_point", (BASE % '"timestamp":1').encode()),
    ("single_point", (BASE % '"time":1,"timestamp":2,"value":3').encode()),
]


@pytest.mark.parametrize(
    ("reason", "body"), BAILS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(BAILS)]
)
def test_bails(reason: str, body: bytes) -> None:
    assert scan_status(body) == reason
    assert try_fast_parse(body) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"name":"m","tags":{"a":"b","a":"c"},"datapoints":[[1,1]]}',
        b'{"name":"m","tags":{"a":"b","\\u0061":"c"},"datapoints":[[1,1]]}',
        b'{"name":"m\\ud800","tags":{"a":"b"},"datapoints":[[1,1]]}',
        b'{"name":"m","tags":{"a":"\\udc00"},"datapoints":[[1,1]]}',
    ],
)
def test_facade_bails(body: bytes) -> None:
    """Duplicate tag names and undecodable escapes pass the kernel; the facade bails."""
    assert scan_status(body) == "ok"
    assert try_fast_parse(body) is None


@pytest.mark.parametrize(("case", "template"), [c[:2] for c in CASES], ids=[c[0] for c in CASES])
def test_ingest_cases(case: str, template: str) -> None:
    """The shared KairosDB ingest cases: the fast path bails or agrees with the general path."""
    body = render(template, "fast.").encode()
    fast = try_fast_parse(body)
    if fast is not None:
        general = parse_datapoints(body)
        assert general.errors == []
        assert fast.batch.equals(general.batch)


def test_capacity_bounds_hold_for_minimal_bodies() -> None:
    """The output capacities derived from the body length suffice for the densest bodies."""
    objs = b"[" + b",".join([b'{"name":"x","tags":{"a":"b"}}'] * 500) + b"]"
    tags = b'{"name":"x","tags":{' + b",".join([b'"%d":"b"' % i for i in range(10)]) + b"}}"
    points = b'{"name":"x","tags":{"a":"b"},"datapoints":[' + b",".join([b"[0,0]"] * 1000) + b"]}"
    single = b"[" + b",".join([b'{"name":"x","tags":{"a":"b"},"time":0,"value":0}'] * 100) + b"]"
    for body in (objs, tags, points, single):
        fast_equals_general(body)


def test_large_body_without_scratch() -> None:
    dps = b",".join(b"[%d,%d.5]" % (i, i) for i in range(120_000))
    body = b'{"name":"m","tags":{"a":"b"},"datapoints":[' + dps + b"]}"
    assert len(body) > 1 << 20
    b = fast_equals_general(body).batch
    assert len(b) == 120_000


def test_results_do_not_alias_scratch() -> None:
    first = try_fast_parse(b'{"name":"m","tags":{"a":"b"},"datapoints":[[1,2],[3,4]]}')
    try_fast_parse(b'{"name":"n","tags":{"a":"b"},"datapoints":[[5,6],[7,8]]}')
    assert first is not None
    assert first.batch.ts.tolist() == [1, 3]
    assert first.batch.values.tolist() == [2, 4]


def test_scan_reports_capacity_and_checks_shapes() -> None:
    body = b'{"name":"m","tags":{"a":"b"},"datapoints":[[1,2],[3,4]]}'
    counts = np.zeros(6, np.int64)
    meta = np.empty((1, N_META), np.int64)
    tags = np.empty((1, 4), np.int64)

    def run(cap_pt: int, meta: np.ndarray = meta, tags: np.ndarray = tags) -> str:
        ts, val = np.empty(cap_pt, np.int64), np.empty(cap_pt, np.int64)
        return STATUS_NAMES[scan(body, ts, val, np.empty(cap_pt, np.int32), meta, tags, counts)]

    assert run(2) == "ok"
    assert counts.tolist()[:3] == [1, 2, 1]
    assert run(1) == "capacity"
    assert run(2, meta=np.empty((0, N_META), np.int64)) == "capacity"
    assert run(2, tags=np.empty((0, 4), np.int64)) == "capacity"
    with pytest.raises(ValueError, match="same length"):
        scan(
            body,
            np.empty(2, np.int64),
            np.empty(3, np.int64),
            np.empty(2, np.int32),
            meta,
            tags,
            counts,
        )
    with pytest.raises(ValueError, match="N_META"):
        scan(
            body,
            *(np.empty(2, np.int64),) * 2,
            np.empty(2, np.int32),
            np.empty((1, 3), np.int64),
            tags,
            counts,
        )


def test_assign_series() -> None:
    code = np.array([0, 1, 3, 0], np.int32)
    out = np.empty(4, np.int32)
    assign_series(code, np.array([7, 8, 9, 10], np.int32), out)
    assert out.tolist() == [7, 8, 10, 7]
    with pytest.raises(IndexError):
        assign_series(
            np.array([4], np.int32), np.array([7, 8, 9, 10], np.int32), np.empty(1, np.int32)
        )
