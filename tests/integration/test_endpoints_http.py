"""CORS pre-flight, gzip responses, ``/features`` and the 1.2 ``tagnames``/``tagvalues``."""

from __future__ import annotations

import gzip
import json
import uuid

import httpx
import pytest

from kairos.model.java import java_key

pytestmark = pytest.mark.integration

PREFLIGHT = [
    "/api/v1/version",
    "/api/v1/metricnames",
    "/api/v1/datapoints",
    "/api/v1/datapoints/query",
    "/api/v1/datapoints/query/tags",
    "/api/v1/datapoints/delete",
    "/api/v1/metric/some.metric",
    "/api/v1/health/check",
    "/api/v1/health/status",
    "/api/v1/tagnames",
    "/api/v1/tagvalues",
]


def _raw(client: httpx.Client, method: str, path: str, **kw) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (not decoded)."""
    with client.stream(method, path, **kw) as r:
        return r, b"".join(r.iter_raw())


# -- CORS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PREFLIGHT)
def test_preflight_echoes_request_headers(client, path) -> None:
    r, body = _raw(
        client,
        "OPTIONS",
        path,
        headers={
            "Origin": "http://example.com",
            "Access-Control-Request-Headers": "content-type, x-custom",
            "Access-Control-Request-Method": "POST",
            "Accept-Encoding": "gzip",
        },
    )
    assert r.status_code == 200
    assert body == b""
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-custom"
    assert r.headers["Access-Control-Max-Age"] == "86400"
    assert r.headers["Access-Control-Allow_Method"] == "POST"
    assert "content-encoding" not in r.headers
    assert "vary" not in r.headers
    assert "content-type" not in r.headers  # KairosDB sends none (Sanic used to send "None")


@pytest.mark.parametrize("path", PREFLIGHT)
def test_preflight_without_request_headers(client, path) -> None:
    r = client.options(path)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Max-Age"] == "86400"
    assert "Access-Control-Allow_Method" not in r.headers
    assert "Access-Control-Allow-Headers" not in r.headers


def test_unknown_paths_name_the_path(client) -> None:
    for path in ("/", "/api/v1/nope"):
        r = client.get(path)
        assert r.status_code == 404
        assert r.json() == {"errors": [f"Requested URL {path} not found"]}


def test_bodies_of_get_and_delete_are_read_without_log_noise(server, client) -> None:
    """python-kairosdb sends ``{}`` with every request, GET and DELETE included."""
    mark = f"body-noise-{uuid.uuid4().hex}"
    for _ in range(3):
        r = client.request(
            "GET",
            "/api/v1/metricnames",
            content=b"{}",
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 200
        r = client.request("GET", "/api/v1/version", content=b'{"a": [1, 2, 3]}')
        assert r.status_code == 200
        r = client.request("DELETE", f"/api/v1/metric/{mark}", content=b"{}")
        assert r.status_code == 204
    client.get(f"/api/v1/metricnames?prefix={mark}")  # one more request after them
    assert "body not consumed" not in server.log()


def test_preflight_method_header_only(client) -> None:
    r = client.options("/api/v1/datapoints", headers={"Access-Control-Request-Method": "DELETE"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow_Method"] == "DELETE"
    assert "Access-Control-Allow-Headers" not in r.headers


def test_preflight_routes_leave_other_methods_alone(client) -> None:
    """OPTIONS and the real handlers share paths: neither may shadow the other (405)."""
    assert client.delete(f"/api/v1/metric/nope{uuid.uuid4().hex[:6]}").status_code not in (404, 405)
    assert client.post("/api/v1/datapoints/delete", content=b"{").status_code not in (404, 405)
    assert client.get("/api/v1/health/check").status_code == 204
    assert client.options("/api/v1/features").status_code == 405


# -- gzip ---------------------------------------------------------------------------------------


def test_gzip_when_accepted(client) -> None:
    plain = client.get("/api/v1/features", headers={"Accept-Encoding": "identity"})
    r, raw = _raw(client, "GET", "/api/v1/features", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Vary"] == "Accept-Encoding"
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert r.headers["Cache-Control"] == "no-cache"
    assert int(r.headers["Content-Length"]) == len(raw) < len(plain.content)
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == plain.content


def test_gzip_version_like_jetty(client) -> None:
    # MetricsResourceTest.testGzippedResponse
    r, raw = _raw(client, "GET", "/api/v1/version", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(raw).decode()
    assert text.startswith('{"version": "KairosDB ') and text.endswith('"}\n')


def test_gzip_post_query(server, client) -> None:
    m = f"gz{uuid.uuid4().hex[:8]}"
    points = [[i, i * 1.5] for i in range(1, 200)]
    assert (
        client.post(
            "/api/v1/datapoints", json=[{"name": m, "datapoints": points, "tags": {"h": "a"}}]
        ).status_code
        == 204
    )
    server.wait_applied()
    q = {"start_absolute": 0, "metrics": [{"name": m}]}
    r, raw = _raw(
        client,
        "POST",
        "/api/v1/datapoints/query",
        json=q,
        headers={"Accept-Encoding": "deflate, gzip;q=0.5"},
    )
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["queries"][0]["results"][0]["values"] == points


def test_no_gzip_when_not_accepted(client) -> None:
    for enc in ("identity", "deflate", "gzip;q=0"):
        r, raw = _raw(client, "GET", "/api/v1/features", headers={"Accept-Encoding": enc})
        assert r.status_code == 200
        assert "content-encoding" not in r.headers
        assert r.headers["Vary"] == "Accept-Encoding"  # Jetty varies on every candidate
        assert raw.startswith(b'[{"name":"group_by"')


def test_no_gzip_for_small_errors_and_empty(client) -> None:
    gz = {"Accept-Encoding": "gzip"}
    # Below Jetty's 32-byte minimum.
    r, raw = _raw(client, "GET", "/api/v1/metricnames", params={"prefix": "zz-none"}, headers=gz)
    assert raw == b'{"results":[]}'
    assert "content-encoding" not in r.headers
    assert r.headers["Vary"] == "Accept-Encoding"
    # Error statuses are never compressed.
    r, raw = _raw(client, "GET", "/api/v1/features/nothing-here-at-all", headers=gz)
    assert r.status_code == 404
    assert "content-encoding" not in r.headers and "vary" not in r.headers
    assert raw == b'{"errors":["Unknown feature \'nothing-here-at-all\'"]}'
    r, raw = _raw(client, "POST", "/api/v1/datapoints/query", content=b"[1,", headers=gz)
    assert r.status_code == 400
    assert "content-encoding" not in r.headers
    json.loads(raw)
    # 204 and non GET/POST methods.
    r, raw = _raw(client, "GET", "/api/v1/health/check", headers=gz)
    assert r.status_code == 204 and raw == b"" and "content-encoding" not in r.headers
    r, raw = _raw(client, "POST", "/api/v1/datapoints", json=[], headers=gz)
    assert r.status_code == 204 and raw == b"" and "content-encoding" not in r.headers


# -- features -----------------------------------------------------------------------------------

ALIGN_NOTE = (
    " Note that align_sampling, align_start_time, and align_end_time are mutually exclusive."
    " If more than one are set, unexpected results will occur."
)


def _bool(name, label, description):
    return {
        "name": name,
        "label": label,
        "description": description,
        "optional": False,
        "type": "boolean",
        "options": [],
        "defaultValue": "false",
        "autocomplete": "",
        "multiline": False,
        "validations": [],
    }


def _duration(name, label):
    return {
        "name": name,
        "label": label,
        "optional": False,
        "type": "Object",
        "multiline": False,
        "properties": [
            {
                "name": "value",
                "label": "Value",
                "description": "The number of units for the aggregation buckets",
                "optional": False,
                "type": "long",
                "options": [],
                "defaultValue": "1",
                "autocomplete": "",
                "multiline": False,
                "validations": [
                    {
                        "expression": "value >= 0",
                        "type": "js",
                        "message": "Value must be greater or equal to 0.",
                    }
                ],
            },
            {
                "name": "unit",
                "label": "Unit",
                "description": "The time unit for the sampling rate",
                "optional": False,
                "type": "enum",
                "options": [
                    "MILLISECONDS",
                    "SECONDS",
                    "MINUTES",
                    "HOURS",
                    "DAYS",
                    "WEEKS",
                    "MONTHS",
                    "YEARS",
                ],
                "defaultValue": "MILLISECONDS",
                "autocomplete": "",
                "multiline": False,
                "validations": [],
            },
        ],
    }


ALIGN_END = _bool(
    "align_end_time",
    "Align end time",
    "Setting this to true will cause the aggregation range to be aligned based on the sampling"
    " size. For example if your sample size is either milliseconds, seconds, minutes or hours"
    " then the start of the range will always be at the top of the hour. The difference between"
    " align_start_time and align_end_time is that align_end_time sets the timestamp for the"
    " datapoint to the beginning of the following period versus the beginning of the current"
    " period. As with align_start_time, setting this to true will cause your data to take the"
    " same shape when graphed as you refresh the data." + ALIGN_NOTE,
)
ALIGN_START = _bool(
    "align_start_time",
    "Align start time",
    "Setting this to true will cause the aggregation range to be aligned based on the sampling"
    " size. For example if your sample size is either milliseconds, seconds, minutes or hours"
    " then the start of the range will always be at the top of the hour. The effect of setting"
    " this to true is that your data will take the same shape when graphed as you refresh the"
    " data." + ALIGN_NOTE,
)
TRIM = _bool("trim", "Trim", " Trim off empty ranges before and after the actual data")

AVG = {
    "name": "avg",
    "label": "AVG",
    "description": "Averages the data points together.",
    "properties": [ALIGN_END, ALIGN_START, _duration("sampling", "Sampling"), TRIM],
}

# The percentile property exactly as Gson writes it: validations reversed, HTML escaped.
PERCENTILE_PROPERTY = (
    '{"name":"percentile","label":"Percentile",'
    '"description":"Data points returned will be in this percentile.","optional":false,'
    '"type":"double","options":[],"defaultValue":"0.1","autocomplete":"","multiline":false,'
    '"validations":[{"expression":"value \\u003c 1","type":"js",'
    '"message":"Percentile must be smaller than 1."},'
    '{"expression":"value \\u003e 0","type":"js","message":"Percentile must be greater than 0."}'
    "]}"
)

TIME = {
    "name": "time",
    "label": "Time",
    "description": "Groups data points in time ranges.",
    "properties": [
        {
            "name": "group_count",
            "label": "Count",
            "description": "The number of groups. This would typically be 7 to group by day of"
            " week.",
            "optional": False,
            "type": "int",
            "options": [],
            "defaultValue": "0",
            "autocomplete": "",
            "multiline": False,
            "validations": [
                {
                    "expression": "value > 0",
                    "type": "js",
                    "message": "Count must be greater than 0.",
                }
            ],
        },
        _duration("range_size", "Range Size"),
    ],
}

AGGREGATOR_NAMES = [
    "apdex", "avg", "count", "dev", "diff", "div", "filter", "first", "gaps", "last",
    "least_squares", "max", "merge", "min", "movingWindow", "percent_remaining", "percentile",
    "rate", "sampler", "save_as", "scale", "score", "sma", "sum", "trim",
]  # fmt: skip
# /features re-sorts each feature's processors by label (Java String order).
AGGREGATOR_LABEL_ORDER = [
    "avg", "apdex", "count", "dev", "diff", "div", "filter", "first", "gaps", "last",
    "least_squares", "max", "merge", "min", "movingWindow", "percent_remaining", "percentile",
    "rate", "score", "sma", "sampler", "save_as", "scale", "sum", "trim",
]  # fmt: skip


def test_features_list(client) -> None:
    r = client.get("/api/v1/features")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Pragma"] == "no-cache"
    doc = r.json()
    assert [(f["name"], f["label"], list(f)) for f in doc] == [
        ("group_by", "Group By", ["name", "label", "properties"]),
        ("aggregators", "Aggregator", ["name", "label", "properties"]),
    ]
    assert [p["name"] for p in doc[0]["properties"]] == ["bin", "tag", "time", "value"]
    assert [p["name"] for p in doc[1]["properties"]] == AGGREGATOR_LABEL_ORDER
    labels = {p["name"]: p["label"] for p in doc[1]["properties"]}
    assert labels["least_squares"] == "Least Squares"
    assert labels["save_as"] == "Save As"
    assert (labels["score"], labels["sma"]) == ("SCORE", "SMA")
    for feature in doc:
        for proc in feature["properties"]:
            assert list(proc) == ["name", "label", "description", "properties"]
            assert [p["label"] for p in proc["properties"]] == sorted(
                (p["label"] for p in proc["properties"]), key=java_key
            )
    by_name = {p["name"]: p for p in doc[1]["properties"]}
    assert by_name["avg"] == AVG
    assert by_name["diff"]["properties"] == []
    assert doc[0]["properties"][2] == TIME
    assert client.get("/api/v1/features/").json() == doc


def test_feature_by_name_is_case_insensitive_and_sorted_by_name(client) -> None:
    r = client.get("/api/v1/features/AggreGators")
    assert r.status_code == 200
    procs = r.json()
    assert [p["name"] for p in procs] == AGGREGATOR_NAMES
    assert procs[1] == AVG  # name order: apdex, avg, ...
    time = client.get("/api/v1/features/GROUP_BY").json()[2]
    assert time == TIME


def test_feature_gson_escaping(client) -> None:
    text = client.get("/api/v1/features/aggregators").text
    assert PERCENTILE_PROPERTY in text
    assert '"defaultValue":"\\u003cnew name\\u003e"' in text
    assert '"expression":"!value \\u0026\\u0026 value.length \\u003e 0"' in text
    assert "The name can\\u0027t be empty." in text
    assert '"expression":"value \\u003e\\u003d 0"' in text
    for c in "<>&='":
        assert c not in text
    procs = json.loads(text)
    pct = next(p for p in procs if p["name"] == "percentile")
    assert [p["name"] for p in pct["properties"]] == [
        "align_end_time", "align_start_time", "percentile", "sampling", "trim"
    ]  # fmt: skip
    filt = next(p for p in procs if p["name"] == "filter")["properties"]
    assert filt[0]["options"] == ["LTE", "LT", "GTE", "GT", "EQUAL", "NE"]
    assert filt[0]["defaultValue"] == "equal"
    assert (filt[1]["type"], filt[1]["defaultValue"]) == ("Object", "")


def test_unknown_feature_is_404(client) -> None:
    r = client.get("/api/v1/features/InTel")
    assert r.status_code == 404
    assert r.content == b'{"errors":["Unknown feature \'intel\'"]}'
    assert r.headers["Access-Control-Allow-Origin"] == "*"


# -- tagnames / tagvalues -----------------------------------------------------------------------


def test_tagnames_and_tagvalues(server, client) -> None:
    u = uuid.uuid4().hex[:8]
    # U+1F600 is a surrogate pair in UTF-16, so Java sorts it before U+FFFD.
    body = [
        {
            "name": f"tn{u}",
            "datapoints": [[1, 1]],
            "tags": {f"k{u}b": f"v{u}\ufffd", f"k{u}A": "x"},
        },
        {"name": f"tn{u}", "datapoints": [[1, 1]], "tags": {f"k{u}b": f"v{u}\U0001f600"}},
        {"name": f"tm{u}", "datapoints": [[1, 1]], "tags": {f"k{u}b": f"v{u}\ufffd"}},
    ]
    assert client.post("/api/v1/datapoints", json=body).status_code == 204
    server.wait_applied()
    r = client.get("/api/v1/tagnames")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-cache"
    names = r.json()["results"]
    assert names == sorted(set(names), key=java_key)
    assert [n for n in names if u in n] == [f"k{u}A", f"k{u}b"]
    values = client.get("/api/v1/tagvalues").json()["results"]
    assert values == sorted(set(values), key=java_key)
    assert [v for v in values if u in v] == [f"v{u}\U0001f600", f"v{u}\ufffd"]
    assert "x" in values
