"""Poison points and client mistakes over HTTP (issue 14, items 2 and 11).

A point is either refused with a 400 that names it, or stored so that its metric can still be
queried; a client mistake is a 400 with a message, never a 500.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, free_port, start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    telnet, graphite = free_port(), free_port()
    s = start_server(
        tmp_path_factory.mktemp("poison") / "data",
        env={"KAIROSDB_TELNET_PORT": str(telnet), "KAIROSDB_GRAPHITE_PORT": str(graphite)},
        workers=1,
    )
    s.telnet_port, s.graphite_port = telnet, graphite  # type: ignore[attr-defined]
    yield s
    s.stop()


@pytest.fixture
def c(srv: Server) -> Iterator[httpx.Client]:
    with srv.client() as client:
        yield client


def post(c: httpx.Client, text: str) -> httpx.Response:
    """``text`` as the body; lone surrogates in it as their (invalid) UTF-8 bytes."""
    return c.post(
        "/api/v1/datapoints",
        content=text.encode("utf-8", "surrogatepass"),
        headers={"Content-Type": "application/json"},
    )


def query(c: httpx.Client, name: str) -> httpx.Response:
    return c.post(
        "/api/v1/datapoints/query",
        json={"start_absolute": 0, "metrics": [{"name": name}]},
    )


def values(c: httpx.Client, name: str) -> list:
    r = query(c, name)
    assert r.status_code == 200, r.text
    return [v for res in r.json()["queries"][0]["results"] for v in res["values"]]


# -- item 2: points that made their metric unqueryable -------------------------------------------


@pytest.mark.parametrize(
    ("value", "extra", "shown"),
    [
        ('"Infinity"', ',"type":"double"', "Infinity"),
        ('"-Infinity"', ',"type":"double"', "-Infinity"),
        ('"NaN"', ',"type":"double"', "NaN"),
        ("Infinity", "", "Infinity"),
        ("-Infinity", "", "-Infinity"),
        ("NaN", "", "NaN"),
        ("1.5e999", "", "Infinity"),  # past the double range: the scanner bails, Gson overflows
        ('"1e999"', ',"type":"double"', "Infinity"),
    ],
)
def test_non_finite_doubles_are_refused_naming_the_point(
    srv: Server, c: httpx.Client, value: str, extra: str, shown: str
) -> None:
    name = f"poison.nf.{abs(hash((value, extra)))}"
    body = (
        f'[{{"name":"{name}","tags":{{"a":"b"}}{extra},'
        f'"datapoints":[[1000,1.5],[2000,{value}],[3000,2.5]]}}]'
    )
    r = post(c, body)
    assert r.status_code == 400, r.text
    # KairosDB's counter: the index of the next point to publish (one was published before).
    assert r.json() == {
        "errors": [
            f"metric[0](name={name}).datapoints[1].value must be a finite number, not {shown}."
        ]
    }
    srv.wait_applied()
    # The other points are stored (a bad point skips only itself) and the metric answers.
    assert values(c, name) == [[1000, 1.5], [3000, 2.5]]


def test_single_point_non_finite_is_refused(c: httpx.Client) -> None:
    r = post(c, '{"name":"poison.single","timestamp":5,"value":Infinity,"tags":{"a":"b"}}')
    assert r.status_code == 400
    assert r.json() == {
        "errors": ["metric[0](name=poison.single).value must be a finite number, not Infinity."]
    }


def test_strings_spelling_non_finite_numbers_are_strings(srv: Server, c: httpx.Client) -> None:
    """Without a type, "NaN" and "Infinity" are text (not numeric to KairosDB): stored and read
    back as strings."""
    r = post(
        c,
        '[{"name":"poison.text","tags":{"a":"b"},'
        '"datapoints":[[1,"NaN"],[2,"Infinity"],[3,"-Infinity"],[4,"1e999"]]}]',
    )
    assert r.status_code == 204, r.text
    srv.wait_applied()
    assert values(c, "poison.text") == [[1, "NaN"], [2, "Infinity"], [3, "-Infinity"], [4, "1e999"]]


@pytest.mark.parametrize("escaped", [True, False])
def test_lone_surrogate_string_values_are_refused(
    srv: Server, c: httpx.Client, escaped: bool
) -> None:
    name = f"poison.surrogate.{escaped}"
    lone = "\\ud800" if escaped else "\ud800"  # a JSON escape, or the bytes ED A0 80
    r = post(
        c,
        f'[{{"name":"{name}","tags":{{"a":"b"}},"datapoints":[[1,"ok"],[2,"x{lone}"],[3,"y"]]}}]',
    )
    assert r.status_code == 400, r.text
    assert r.json() == {
        "errors": [
            f"metric[0](name={name}).datapoints[1].value must be valid Unicode, "
            "not a lone surrogate (\\ud800 at index 1)."
        ]
    }
    srv.wait_applied()
    assert values(c, name) == [[1, "ok"], [3, "y"]]


def test_lone_surrogates_in_names_and_tags_are_400(srv: Server, c: httpx.Client) -> None:
    cases = {
        '{"name":"poison.n\\ud800","tags":{"a":"b"},"datapoints":[[1,1]]}': (
            "metric[0].name must be valid Unicode, not a lone surrogate (\\ud800 at index 8)."
        ),
        '{"name":"poison.tk","tags":{"a\\udfff":"b"},"datapoints":[[1,1]]}': (
            "metric[0](name=poison.tk).tag[0].name must be valid Unicode, "
            "not a lone surrogate (\\udfff at index 1)."
        ),
        '{"name":"poison.tv","tags":{"a":"\\udc00"},"datapoints":[[1,1]]}': (
            "metric[0](name=poison.tv).tag[a].value must be valid Unicode, "
            "not a lone surrogate (\\udc00 at index 0)."
        ),
        # skip_validate skips KairosDB's checks, never this one
        '{"name":"poison.sv\\ud800","skip_validate":true,"tags":{"a":"b"},"datapoints":[[1,1]]}': (
            "metric[0].name must be valid Unicode, not a lone surrogate (\\ud800 at index 9)."
        ),
    }
    for body, message in cases.items():
        r = post(c, body)
        assert (r.status_code, r.json()) == (400, {"errors": [message]}), body
    # A message that quotes the client's text shows a surrogate as an escape (not a 500).
    r = post(c, '{"name":"poison.ty","type":"x\\ud800","tags":{"a":"b"},"datapoints":[[1,1]]}')
    assert (r.status_code, r.json()) == (
        400,
        {"errors": ["Unregistered data point type 'x\\ud800'"]},
    )
    srv.wait_applied()
    assert values(c, "poison.tk") == [] and values(c, "poison.tv") == []


def test_a_400_stores_nothing_past_a_syntax_error(srv: Server, c: httpx.Client) -> None:
    """KairosDB keeps the metric objects before a syntax error, not the broken one."""
    good = '{"name":"poison.before","tags":{"a":"b"},"datapoints":[[1,1]]}'
    for broken in (
        '{"name":"poison.broken\xff","tags":{"a":"b"},"datapoints":[[1,1]]}',  # not UTF-8
        '{"name":"poison.broken","tags":{"a":"b"},"datapoints":[[1,1]]',  # unterminated
    ):
        body = f"[{good},{broken}]".encode("latin-1")
        r = c.post("/api/v1/datapoints", content=body)
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0].startswith("Malformed JSON")
    srv.wait_applied()
    assert values(c, "poison.before") == [[1, 1]]
    names = c.get("/api/v1/metricnames").json()["results"]
    assert not [n for n in names if n.startswith("poison.broken")]


def test_telnet_and_graphite_refuse_non_finite_doubles(srv: Server, c: httpx.Client) -> None:
    port = srv.telnet_port  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"putm poison.tn 1000 1.5 a=b\n")
        s.sendall(b"putm poison.tn 2000 1.5e999 a=b\n")
        s.sendall(b"putm poison.tn 3000 -0x1.8p9999 a=b\n")
        s.sendall(b"putm poison.tn 4000 2.5 a=b\n")
        s.sendall(b"version\n")
        assert s.recv(100).startswith(b"KairosDB ")
    with socket.create_connection(("127.0.0.1", srv.graphite_port), timeout=10) as s:  # type: ignore[attr-defined]
        s.sendall(b"poison.gr 1.5 1\npoison.gr 1.5e999 2\npoison.gr 2.5 3\n")
    deadline = time.monotonic() + 10
    while len(values(c, "poison.gr")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.wait_applied()
    assert values(c, "poison.tn") == [[1000, 1.5], [4000, 2.5]]
    assert values(c, "poison.gr") == [[1000, 1.5], [3000, 2.5]]
    assert "value must be a finite number, not Infinity" in srv.log()
    assert "value must be a finite number, not -Infinity" in srv.log()


# -- item 11: client mistakes that answered 500 --------------------------------------------------


def test_deep_nesting_is_400(c: httpx.Client) -> None:
    for body in ("[" * 100_000, '[{"name":"x","tags":{"a":"b"},"datapoints":[[1,' + "[" * 100_000):
        r = c.post("/api/v1/datapoints", content=body)
        assert (r.status_code, r.json()) == (400, {"errors": ["Malformed JSON: nested too deeply"]})
    r = c.post("/api/v1/datapoints/query", content='{"metrics":' + "[" * 100_000)
    assert r.status_code == 400


@pytest.mark.parametrize("unit", ["milliseconds", "seconds", "days", "weeks", "months", "years"])
@pytest.mark.parametrize("which", ["start_relative", "end_relative"])
def test_huge_relative_times_are_400(c: httpx.Client, unit: str, which: str) -> None:
    q: dict = {"metrics": [{"name": "m"}], which: {"value": 2**63 - 1, "unit": unit}}
    if which == "end_relative":
        q["start_absolute"] = 0
    r = c.post("/api/v1/datapoints/query", json=q)
    if unit == "milliseconds" and which == "start_relative":
        # now - (2^63 - 1) ms is still a long: a valid query
        assert r.status_code == 200, r.text
        return
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0] in (
        f"{which}.value is out of range",
        "query.metric[0].end_time must be greater than the start time",
    )


def test_huge_time_group_by_range_is_not_a_500(srv: Server, c: httpx.Client) -> None:
    assert (
        post(c, '{"name":"poison.tgb","tags":{"a":"b"},"datapoints":[[1,1],[2,2]]}').status_code
        == 204
    )
    srv.wait_applied()

    def group(value: int) -> httpx.Response:
        rs = {"value": value, "unit": "days"}
        q = {
            "start_absolute": 0,
            "metrics": [
                {
                    "name": "poison.tgb",
                    "group_by": [{"name": "time", "range_size": rs, "group_count": 3}],
                }
            ],
        }
        return c.post("/api/v1/datapoints/query", json=q)

    # Java's long arithmetic: the range size in ms wraps, as KairosDB computes it.
    for value in (2**63 - 1, 10**12):
        r = group(value)
        assert r.status_code == 200, r.text
        (res,) = r.json()["queries"][0]["results"]
        assert res["values"] == [[1, 1], [2, 2]]
    # 2^62 days is 0 ms in a long: KairosDB's ArithmeticException, as a 400.
    r = group(2**62)
    assert (r.status_code, r.json()) == (400, {"errors": ["/ by zero"]})


def test_sampling_past_the_long_range_is_400(srv: Server, c: httpx.Client) -> None:
    body = json.dumps(
        {
            "name": "poison.edge",
            "tags": {"a": "b"},
            "datapoints": [[9223372036854775807, 1], [0, 2]],
        }
    )
    assert post(c, body).status_code == 204
    srv.wait_applied()
    q = {
        "start_absolute": -2000,
        "metrics": [
            {
                "name": "poison.edge",
                "aggregators": [{"name": "sum", "sampling": {"value": 1, "unit": "seconds"}}],
            }
        ],
    }
    r = c.post("/api/v1/datapoints/query", json=q)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0].startswith("sampling buckets cannot be computed")
    q["metrics"][0]["aggregators"][0]["sampling"]["unit"] = "years"  # past year 9999
    r = c.post("/api/v1/datapoints/query", json=q)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0] in (
        "too many calendar buckets in the query range",
        "timestamp -2000 is outside the calendar the sampling needs (years 1 to 9999)",
    )


def test_zero_sampling_is_400_with_kairosdb_message(srv: Server, c: httpx.Client) -> None:
    assert (
        post(c, '{"name":"poison.zero","tags":{"a":"b"},"datapoints":[[1,1]]}').status_code == 204
    )
    srv.wait_applied()
    q = {
        "start_absolute": 0,
        "metrics": [
            {
                "name": "poison.zero",
                "aggregators": [{"name": "sum", "sampling": {"value": 0, "unit": "seconds"}}],
            }
        ],
    }
    r = c.post("/api/v1/datapoints/query", json=q)
    assert (r.status_code, r.json()) == (400, {"errors": ["/ by zero"]})
