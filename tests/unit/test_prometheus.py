"""Prometheus remote write: the hand-written protobuf decoder and the mapping to a batch."""

from __future__ import annotations

import math
import struct

import cramjam
import numpy as np
import pytest

from kairos.errors import BadRequest, PayloadTooLarge
from kairos.ingest.prometheus import (
    NO_TAGS_PLACEHOLDER,
    ProtobufError,
    decode_write_request,
    decompress_snappy,
    to_batch,
    write_request_to_batch,
)
from kairos.model.batch import DOUBLE

# -- a tiny protobuf encoder ---------------------------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def ld(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def label(name: str, value: str) -> bytes:
    return ld(1, name.encode()) + ld(2, value.encode())


def sample(value: float, ts: int) -> bytes:
    return key(1, 1) + struct.pack("<d", value) + key(2, 0) + varint(ts)


def series(labels: dict[str, str], samples: list[tuple[float, int]], extra: bytes = b"") -> bytes:
    body = b"".join(ld(1, label(k, v)) for k, v in labels.items())
    body += b"".join(ld(2, sample(v, t)) for v, t in samples)
    return body + extra


def write_request(*ts: bytes, extra: bytes = b"") -> bytes:
    return b"".join(ld(1, t) for t in ts) + extra


def snappy(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


# -- decoding ------------------------------------------------------------------------------------


def test_round_trip_labels_and_samples():
    labels = {"__name__": "up", "job": "prometheus", "instance": "127.0.0.1:9090"}
    samples = [(float(i) * 0.5, 1_700_000_000_000 + i) for i in range(1000)]
    (ts,) = decode_write_request(write_request(series(labels, samples)))
    assert ts.labels == list(labels.items())
    assert ts.timestamps.dtype == np.int64 and ts.values.dtype == np.float64
    assert ts.timestamps.tolist() == [t for _, t in samples]
    assert ts.values.tolist() == [v for v, _ in samples]


def test_negative_and_extreme_timestamps():
    samples = [(1.0, -5), (2.0, (1 << 63) - 1), (3.0, -(1 << 63))]
    (ts,) = decode_write_request(write_request(series({"__name__": "m", "a": "b"}, samples)))
    assert ts.timestamps.tolist() == [-5, (1 << 63) - 1, -(1 << 63)]


def test_unknown_fields_are_ignored():
    unknown = (
        key(9, 0)
        + varint(300)
        + key(10, 1)
        + b"\0" * 8
        + key(11, 5)
        + b"\0" * 4
        + ld(12, b"whatever")
    )
    lab = ld(1, b"__name__") + unknown + ld(2, b"m")
    smp = unknown + key(1, 1) + struct.pack("<d", 7.0) + unknown + key(2, 0) + varint(42)
    exemplar = ld(3, label("trace_id", "abc") + sample(1.0, 1))
    histogram = ld(4, b"\x08\x01")
    ts_body = ld(1, lab) + ld(1, label("host", "h")) + ld(2, smp) + exemplar + histogram + unknown
    metadata = ld(3, key(1, 0) + varint(1) + ld(2, b"m") + ld(4, b"help"))
    (ts,) = decode_write_request(write_request(ts_body, extra=metadata + unknown))
    assert ts.labels == [("__name__", "m"), ("host", "h")]
    assert ts.timestamps.tolist() == [42] and ts.values.tolist() == [7.0]


def test_empty_request_and_empty_series():
    assert decode_write_request(b"") == []
    (ts,) = decode_write_request(write_request(b""))
    assert ts.labels == [] and ts.timestamps.shape == (0,)


GOOD = write_request(series({"__name__": "m", "a": "b"}, [(1.5, 1000), (2.5, 2000)]))


@pytest.mark.parametrize("cut", [1, 2, 5, len(GOOD) // 2, len(GOOD) - 1])
def test_truncated_input_is_a_clear_error(cut):
    with pytest.raises(ProtobufError, match="Invalid Prometheus remote write request"):
        decode_write_request(GOOD[:cut])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff" * 11, "varint"),  # endless varint
        (key(1, 2) + varint(100) + b"x", "runs past the end"),
        (key(5, 3), "unsupported wire type 3"),  # groups are not supported
        (b"\x00", "field number 0"),
        (key(1, 0) + varint(1), "WriteRequest.timeseries has wire type 0"),
        (write_request(ld(1, ld(1, b"\xff\xfe"))), "not valid UTF-8"),
        (write_request(ld(2, key(1, 0) + varint(1))), "Sample.value has wire type 0"),
        (write_request(ld(2, key(1, 1) + b"\0\0\0")), "truncated Sample.value"),
        (write_request(key(7, 1) + b"\0"), "truncated fixed-width"),
    ],
)
def test_garbage_is_a_clear_error(data, reason):
    with pytest.raises(ProtobufError, match=reason) as e:
        decode_write_request(data)
    assert e.value.status_code == 400


def test_random_garbage_never_crashes():
    rng = np.random.default_rng(7)
    for _ in range(500):
        data = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        try:
            decode_write_request(data)
        except ProtobufError:
            pass


# -- mapping to a batch --------------------------------------------------------------------------


def test_to_batch_maps_name_and_tags_and_drops_non_finite():
    req = write_request(
        series(
            {"__name__": "http_requests_total", "job": "api", "Instance": "x:1", "empty": ""},
            [(1.0, 1), (math.nan, 2), (math.inf, 3), (-math.inf, 4), (5.0, 5)],
        ),
        series({"__name__": "lonely"}, [(2.0, 10)]),
        series({"job": "nameless"}, [(3.0, 20)]),
        series({"__name__": "all_nan", "a": "b"}, [(math.nan, 30)]),
    )
    conv = to_batch(decode_write_request(req))
    b = conv.batch
    assert b.metrics == ["http_requests_total", "lonely"]
    # Java order: upper case before lower case; the empty-valued label is gone.
    assert b.tags == [(("Instance", "x:1"), ("job", "api")), (NO_TAGS_PLACEHOLDER,)]
    assert b.kinds.tolist() == [DOUBLE, DOUBLE]
    assert b.series.tolist() == [0, 0, 1]
    assert b.ts.tolist() == [1, 5, 10]
    assert b.values.view(np.float64).tolist() == [1.0, 5.0, 2.0]
    assert conv.dropped_series == 1
    assert conv.dropped_samples == 3 + 1 + 1
    assert conv.series == 3


def test_staleness_marker_is_dropped():
    stale = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
    conv = to_batch(
        decode_write_request(write_request(series({"__name__": "m", "a": "b"}, [(stale, 1)])))
    )
    assert len(conv.batch) == 0 and conv.dropped_samples == 1


def test_same_series_twice_shares_a_row():
    s = series({"__name__": "m", "b": "2", "a": "1"}, [(1.0, 1)])
    s2 = series({"a": "1", "__name__": "m", "b": "2"}, [(2.0, 2)])
    b = to_batch(decode_write_request(write_request(s, s2))).batch
    assert b.metrics == ["m"] and b.series.tolist() == [0, 0]


# -- snappy --------------------------------------------------------------------------------------


def test_snappy_round_trip_and_limits():
    body = snappy(GOOD)
    assert decompress_snappy(body, 1 << 20) == GOOD
    assert len(write_request_to_batch(body, 1 << 20).batch) == 2
    with pytest.raises(PayloadTooLarge):
        decompress_snappy(body, len(GOOD) - 1)
    bomb = snappy(b"\0" * (1 << 20))
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge) as e:
        write_request_to_batch(bomb, 1 << 16)
    assert e.value.status_code == 413


@pytest.mark.parametrize("body", [b"", b"\xff\xff\xff", b"\x05ab", GOOD])
def test_bad_snappy_is_400(body):
    with pytest.raises(BadRequest) as e:
        decompress_snappy(body, 1 << 20)
    assert e.value.status_code == 400
    assert "snappy" in str(e.value) or "empty body" in str(e.value)
