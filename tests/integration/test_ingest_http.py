"""POST /api/v1/datapoints over real HTTP: every form, every message, gzip, limits."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest

from tests.ingest_cases import CASES, render

pytestmark = pytest.mark.integration

EARLY = -(10**15)


def query(client, metric: str, **extra) -> dict:
    body = {"start_absolute": EARLY, "metrics": [{"name": metric, **extra}]}
    r = client.post("/api/v1/datapoints/query", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def values_of(client, metric: str) -> list:
    out = []
    for res in query(client, metric)["queries"][0]["results"]:
        out.extend(res["values"])
    return sorted(
        out, key=lambda p: (p[0], isinstance(p[1], str), 0 if isinstance(p[1], str) else p[1])
    )


@pytest.mark.parametrize(("case", "template", "errors", "stored"), CASES, ids=[c[0] for c in CASES])
def test_case_over_http(server, client, case, template, errors, stored) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    r = client.post("/api/v1/datapoints", content=render(template, prefix).encode())
    if errors:
        assert r.status_code == 400, r.text
        assert r.json() == {"errors": [render(e, prefix) for e in errors]}
    else:
        assert r.status_code == 204, r.text
        assert r.content == b""
    server.wait_applied()
    for metric, values in stored.items():
        assert values_of(client, render(metric, prefix)) == values


def _body(prefix: str) -> bytes:
    return json.dumps(
        [{"name": f"{prefix}gz", "datapoints": [[1, 1], [2, 2.25]], "tags": {"t": "v"}}]
    ).encode()


@pytest.mark.parametrize(
    "headers",
    [{"Content-Encoding": "gzip"}, {"Content-Type": "application/gzip"}],
    ids=["content-encoding", "content-type"],
)
def test_gzip_both_spellings(server, client, headers) -> None:
    prefix = f"g{uuid.uuid4().hex[:8]}."
    r = client.post("/api/v1/datapoints", content=gzip.compress(_body(prefix)), headers=headers)
    assert r.status_code == 204, r.text
    server.wait_applied()
    assert values_of(client, f"{prefix}gz") == [[1, 1], [2, 2.25]]


def test_not_gzip_is_400(client) -> None:
    r = client.post(
        "/api/v1/datapoints", content=b"[not gzip]", headers={"Content-Type": "application/gzip"}
    )
    assert r.status_code == 400
    assert r.json() == {"errors": ["Not in GZIP format"]}


def test_gzip_bomb_is_413_naming_the_limit(tmp_path) -> None:
    from tests.conftest import start_server

    srv = start_server(tmp_path / "data", env={"KAIROSDB_MAX_BODY_MB": "1"}, workers=1)
    try:
        bomb = gzip.compress(b"[" + b" " * (64 << 20) + b"]", 9)  # 64 MiB of spaces, ~64 KiB
        with srv.client() as c:
            r = c.post("/api/v1/datapoints", content=bomb, headers={"Content-Encoding": "gzip"})
            assert r.status_code == 413
            assert r.json() == {
                "errors": ["Decompressed request body exceeds the maximum of 1048576 bytes"]
            }
            r = c.post("/api/v1/datapoints", content=b" " * (2 << 20))
            assert r.status_code == 413
            assert "errors" in r.json()
    finally:
        srv.stop()


def test_too_many_points_is_413_and_stores_nothing(tmp_path) -> None:
    from tests.conftest import start_server

    srv = start_server(tmp_path / "data", env={"KAIROSDB_MAX_BATCH_SIZE": "100"}, workers=1)
    try:
        with srv.client() as c:
            body = [{"name": "big", "datapoints": [[i, i] for i in range(101)], "tags": {"t": "v"}}]
            r = c.post("/api/v1/datapoints", json=body)
            assert r.status_code == 413
            assert r.json() == {
                "errors": [
                    "Too many data points in one request: 101 exceeds the maximum of 100 "
                    "(KAIROSDB_MAX_BATCH_SIZE)"
                ]
            }
            body[0]["datapoints"] = body[0]["datapoints"][:100]
            assert c.post("/api/v1/datapoints", json=body).status_code == 204
            srv.wait_applied()
            assert len(values_of(c, "big")) == 100
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("mode", "stored"), [("no_parse", False), ("parse_only", False), ("parse_and_store", True)]
)
def test_perf_mode(server, client, mode, stored) -> None:
    prefix = f"p{uuid.uuid4().hex[:8]}."
    r = client.post(f"/api/v1/datapoints?perf_mode={mode}", content=_body(prefix))
    assert r.status_code == 204
    server.wait_applied()
    assert bool(values_of(client, f"{prefix}gz")) is stored


def test_perf_mode_parse_only_still_validates(client) -> None:
    r = client.post("/api/v1/datapoints?perf_mode=parse_only", content=b'[{"name":""}]')
    assert r.status_code == 400


def test_bad_perf_mode(client) -> None:
    r = client.post("/api/v1/datapoints?perf_mode=bogus", content=b"[]")
    assert r.status_code == 400
    assert "perf_mode" in r.json()["errors"][0]


def test_no_content_type_needed_and_standard_headers(client) -> None:
    r = client.post("/api/v1/datapoints", content=b"[]", headers={"Content-Type": ""})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Cache-Control"] == "no-cache"


def test_sync_true_is_accepted(server, client) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}."
    r = client.post("/api/v1/datapoints?sync=true", content=_body(prefix))
    assert r.status_code == 204
    server.wait_applied()
    assert values_of(client, f"{prefix}gz") == [[1, 1], [2, 2.25]]


def test_round_trip_types_and_tags(server, client) -> None:
    m = f"rt{uuid.uuid4().hex[:8]}"
    # Written by hand: Python's json would print 1e+300, which KairosDB reads as a long.
    body = (
        f'[{{"name":"{m}","datapoints":[[1,9223372036854775807],[2,-9223372036854775808]],"tags":{{"host":"a"}}}},'
        f'{{"name":"{m}","datapoints":[[3,1.0E300],[4,1.5e-7],[5,12345678.5],[6,13.0]],"tags":{{"host":"b"}}}},'
        f'{{"name":"{m}","type":"string","datapoints":[[7,"h\u00e9llo \\"w\\""]],"tags":{{"host":"c"}}}}]'
    )
    assert client.post("/api/v1/datapoints", content=body.encode()).status_code == 204
    server.wait_applied()
    raw = client.post(
        "/api/v1/datapoints/query", json={"start_absolute": 0, "metrics": [{"name": m}]}
    ).text
    # Doubles print as Java does: 1.0E300, 1.5E-7, 1.23456785E7, and 13.0 as 13.
    assert (
        '"values":[[1,9223372036854775807],[2,-9223372036854775808],[3,1.0E300],[4,1.5E-7],'
        "[5,1.23456785E7],[6,13]]" in raw
    )
    doc = json.loads(raw)
    number, text = doc["queries"][0]["results"]
    assert number["group_by"] == [{"name": "type", "type": "number"}]
    assert number["tags"] == {"host": ["a", "b"]}
    assert text["group_by"] == [{"name": "type", "type": "text"}]
    assert text["values"] == [[7, 'héllo "w"']]
    assert doc["queries"][0]["sample_size"] == 7


def test_histogram_forms_round_trip(server, client) -> None:
    m = f"h{uuid.uuid4().hex[:8]}"
    body = [
        {
            "name": m,
            "datapoints": [
                [
                    1,
                    {
                        "boundaries": [1, 5],
                        "counts": [2, 3, 1],
                        "total_count": 6,
                        "sum": 20,
                        "min": 0.5,
                        "max": 9,
                    },
                ],
                [
                    2,
                    {
                        "buckets": [
                            {"le": 1, "count": 2},
                            {"le": "5", "count": 5},
                            {"le": "+Inf", "count": 6},
                        ],
                        "count": 6,
                        "sum": 20,
                    },
                ],
            ],
            "tags": {"t": "v"},
        },
        {
            "name": m,
            "type": "histogram",
            "timestamp": 3,
            "value": {
                "bins": {"1.5": 3, "2.5": 1},
                "precision": 7,
                "min": 1.5,
                "max": 2.5,
                "sum": 6.5,
                "count": 4,
            },
            "tags": {"t": "v"},
        },
    ]
    r = client.post("/api/v1/datapoints", json=body)
    assert r.status_code == 204, r.text
    server.wait_applied()
    res = query(client, m)["queries"][0]["results"]
    assert len(res) == 1
    assert res[0]["group_by"] == [{"name": "type", "type": "histogram"}]
    values = res[0]["values"]
    # The Grafana heatmap shape (bins, precision, count) plus the exact buckets.
    assert values[0] == [
        1,
        {
            "bins": {"0.5": 2, "1.0": 3, "5.0": 1},
            "precision": 52,
            "min": 0.5,
            "max": 9,
            "sum": 20,
            "count": 6,
            "boundaries": [1, 5],
            "counts": [2, 3, 1],
            "total_count": 6,
        },
    ]
    assert values[1] == [
        2,
        {
            "bins": {"0.9999999999999999": 2, "1.0": 3, "5.0": 1},  # one per bucket
            "precision": 52,
            "min": None,
            "max": None,
            "sum": 20,
            "count": 6,
            "boundaries": [1, 5],
            "counts": [2, 3, 1],
            "total_count": 6,
        },
    ]
    assert values[2][1]["bins"] == {"1.5": 3, "2.5": 1}
    assert values[2][1]["precision"] == 7
    assert values[2][1]["count"] == 4
    assert values[2][1]["counts"] == [0, 3, 0, 1, 0]
    # Query output posts back as the same histogram.
    again = [{"name": m + ".copy", "datapoints": [values[0]], "tags": {"t": "v"}}]
    assert client.post("/api/v1/datapoints", json=again).status_code == 204
    server.wait_applied()
    assert query(client, m + ".copy")["queries"][0]["results"][0]["values"][0] == values[0]


def test_histogram_exponent_numbers_keep_their_value(server, client) -> None:
    m = f"hx{uuid.uuid4().hex[:8]}"
    body = f'[{{"name":"{m}","type":"histogram","timestamp":1,"value":{{"boundaries":[1],"counts":[1,1],"min":5e-05,"max":2,"sum":2}},"tags":{{"t":"v"}}}}]'
    assert client.post("/api/v1/datapoints", content=body.encode()).status_code == 204
    server.wait_applied()
    assert query(client, m)["queries"][0]["results"][0]["values"][0][1]["min"] == 5e-05


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"boundaries": [1, 5], "counts": [1, 2, 3, 4]}, "counts"),
        ({"boundaries": [5, 1], "counts": [1, 2, 3]}, "increasing"),
        ({"boundaries": [1], "counts": [-1, 2]}, "negative"),
        ({"boundaries": [1], "counts": [1, 2], "total_count": 4}, "total_count"),
        ({"buckets": [{"le": 1, "count": 5}, {"le": 2, "count": 3}], "count": 5}, "count"),
    ],
)
def test_inconsistent_histograms_are_400_and_other_points_kept(
    server, client, value, reason
) -> None:
    m = f"hb{uuid.uuid4().hex[:8]}"
    body = [{"name": m, "datapoints": [[1, value], [2, 2]], "tags": {"t": "v"}}]
    r = client.post("/api/v1/datapoints", json=body)
    assert r.status_code == 400
    (msg,) = r.json()["errors"]
    assert msg.startswith(f"metric[0](name={m}).datapoints[0].value is an invalid histogram: ")
    assert reason in msg
    server.wait_applied()
    assert values_of(client, m) == [[2, 2]]
