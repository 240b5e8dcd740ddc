"""Read-back and metadata endpoints over real HTTP."""

from __future__ import annotations

import json
import uuid

import pytest

pytestmark = pytest.mark.integration


def _seed(server, client, metric: str) -> None:
    body = [
        {"name": metric, "datapoints": [[1, 1], [2, 2], [3, 3]], "tags": {"host": "a", "dc": "eu"}},
        {"name": metric, "datapoints": [[2, 20], [4, 40]], "tags": {"host": "b", "dc": "us"}},
        {"name": metric, "datapoints": [[5, 50]], "tags": {"host": "c"}},
    ]
    assert client.post("/api/v1/datapoints", json=body).status_code == 204
    server.wait_applied()


def _values(client, body: dict) -> dict:
    r = client.post("/api/v1/datapoints/query", json=body)
    assert r.status_code == 200, r.text
    return r.json()["queries"][0]


def test_tag_filters_time_range_limit_order(server, client) -> None:
    m = f"q{uuid.uuid4().hex[:8]}"
    _seed(server, client, m)
    q = _values(client, {"start_absolute": 0, "metrics": [{"name": m}]})
    assert q["sample_size"] == 6
    assert q["results"][0]["values"] == [[1, 1], [2, 2], [2, 20], [3, 3], [4, 40], [5, 50]]
    assert q["results"][0]["tags"] == {"dc": ["eu", "us"], "host": ["a", "b", "c"]}
    q = _values(
        client, {"start_absolute": 0, "metrics": [{"name": m, "tags": {"host": ["a", "c"]}}]}
    )
    assert q["results"][0]["values"] == [[1, 1], [2, 2], [3, 3], [5, 50]]
    q = _values(
        client, {"start_absolute": 0, "metrics": [{"name": m, "tags": {"dc": "us", "host": "b"}}]}
    )
    assert q["results"][0]["values"] == [[2, 20], [4, 40]]
    q = _values(
        client, {"start_absolute": 0, "metrics": [{"name": m, "tags": {"host": "regex:[ab]"}}]}
    )
    assert len(q["results"][0]["values"]) == 5
    q = _values(client, {"start_absolute": 2, "end_absolute": 4, "metrics": [{"name": m}]})
    assert [t for t, _ in q["results"][0]["values"]] == [2, 2, 3, 4]
    q = _values(
        client, {"start_absolute": 0, "metrics": [{"name": m, "order": "desc", "limit": 2}]}
    )
    assert q["results"][0]["values"] == [[5, 50], [4, 40]]
    q = _values(
        client, {"start_absolute": 0, "metrics": [{"name": m, "limit": "2", "exclude_tags": True}]}
    )
    assert q["results"][0]["values"] == [[1, 1], [2, 2]]
    assert "tags" not in q["results"][0]
    q = _values(
        client,
        {"start_absolute": 0, "metrics": [{"name": m, "alias": "x", "tags": {"host": "zz"}}]},
    )
    assert q == {"sample_size": 0, "results": []}
    q = _values(
        client, {"start_relative": {"value": "1", "unit": "DAYS"}, "metrics": [{"name": m}]}
    )
    assert q["results"] == []  # everything is from 1970


def test_get_query(server, client) -> None:
    m = f"q{uuid.uuid4().hex[:8]}"
    _seed(server, client, m)
    r = client.get(
        "/api/v1/datapoints/query",
        params={
            "query": json.dumps({"start_absolute": 0, "metrics": [{"name": m, "alias": "al"}]})
        },
    )
    assert r.status_code == 200
    res = r.json()["queries"][0]["results"][0]
    assert list(res) == ["name", "alias", "group_by", "tags", "values"]
    r = client.get("/api/v1/datapoints/query")
    assert r.status_code == 400
    assert r.json() == {"errors": ["query json must not be null or empty"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"start_absolute": 0}, "query.metric[] must have a size of at least 1"),
        (
            {"metrics": [{"name": "m"}]},
            "query.metric[0].start_time relative or absolute time must be set",
        ),
        (
            {"start_absolute": 5, "end_absolute": 1, "metrics": [{"name": "m"}]},
            "query.metric[0].end_time must be greater than the start time",
        ),
        (
            {"start_absolute": 0, "cache_time": -1, "metrics": [{"name": "m"}]},
            "cache_time must be greater than or equal to 0",
        ),
        (
            {"start_relative": {"value": -1, "unit": "days"}, "metrics": [{"name": "m"}]},
            "start_relative.value must be greater than or equal to 0",
        ),
        (
            {"start_relative": {"value": 1, "unit": "bogus"}, "metrics": [{"name": "m"}]},
            "query.bogus is not a valid time unit, must be one of MILLISECONDS,SECONDS,MINUTES,HOURS,DAYS,WEEKS,MONTHS,YEARS",
        ),
        ({"start_absolute": 0, "metrics": [{"name": ""}]}, "query.metric[0].name may not be empty"),
        (
            {"start_absolute": 0, "metrics": [{"name": "m", "tags": {"": "x"}}]},
            "query.metric[0].tags[0] name must not be empty",
        ),
        (
            {"start_absolute": 0, "metrics": [{"name": "m", "tags": {"host": [None]}}]},
            "query.metric[0].tags[0].host value must not be null or empty",
        ),
        (
            {"start_absolute": 0, "metrics": [{"name": "m", "order": "up"}]},
            "query.metric[0].order must be either 'asc' or 'desc'",
        ),
        ([1, 2], "query must be a JSON object"),
    ],
)
def test_query_validation(client, body, message) -> None:
    r = client.post("/api/v1/datapoints/query", json=body)
    assert r.status_code == 400
    assert r.json() == {"errors": [message]}


def test_malformed_query_json(client) -> None:
    r = client.post("/api/v1/datapoints/query", content=b'{"start_absolute": ')
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith("Malformed JSON")


def test_metricnames_prefix(server, client) -> None:
    p = f"mn{uuid.uuid4().hex[:6]}"
    body = [
        {"name": f"{p}.{x}", "datapoints": [[1, 1]], "tags": {"t": "v"}} for x in ("b", "a", "B")
    ]
    assert client.post("/api/v1/datapoints", json=body).status_code == 204
    server.wait_applied()
    r = client.get("/api/v1/metricnames", params={"prefix": p})
    assert r.status_code == 200
    assert r.json() == {"results": [f"{p}.B", f"{p}.a", f"{p}.b"]}
    assert f"{p}.a" in client.get("/api/v1/metricnames").json()["results"]


def test_version(client) -> None:
    r = client.get("/api/v1/version")
    assert r.status_code == 200
    assert r.text.startswith('{"version": "KairosDB ') and r.text.endswith('"}\n')


def test_health_endpoints(client) -> None:
    assert client.get("/api/v1/health/check").status_code == 204
    r = client.get("/api/v1/health/status")
    assert r.status_code == 200
    assert r.json() == ["Datastore-Query: OK", "Disk: OK", "Writer: OK", "WAL: OK"]
    h = client.get("/health").json()
    assert h["status"] == "healthy"
    assert h["checks"]["Writer"]["state"] == "running"
    assert client.get("/health/ready").status_code == 200
    assert client.get("/health/live").json() == {"status": "alive"}


def test_unknown_path_is_404_with_errors_body(client) -> None:
    r = client.get("/api/v3/nothing")
    assert r.status_code == 404
    assert "errors" in r.json()


def test_writer_applies_after_restart(tmp_path) -> None:
    """Data acknowledged before a clean shutdown is readable after the restart."""
    from tests.conftest import start_server

    srv = start_server(tmp_path / "data", workers=1)
    with srv.client() as c:
        assert (
            c.post(
                "/api/v1/datapoints",
                json=[{"name": "r", "datapoints": [[1, 1]], "tags": {"t": "v"}}],
            ).status_code
            == 204
        )
    assert srv.stop() == 0
    srv = start_server(tmp_path / "data", workers=1)
    try:
        srv.wait_applied()
        with srv.client() as c:
            res = c.post(
                "/api/v1/datapoints/query", json={"start_absolute": 0, "metrics": [{"name": "r"}]}
            ).json()
            assert res["queries"][0]["results"][0]["values"] == [[1, 1]]
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("env", "param", "synced"),
    [
        ({}, None, False),
        ({}, "true", True),
        ({"KAIROSDB_DEFAULT_SYNC": "true"}, None, True),
        ({"KAIROSDB_DEFAULT_SYNC": "true"}, "false", False),
    ],
)
def test_sync_precedence_param_over_env_over_default(tmp_path, env, param, synced) -> None:
    from tests.conftest import start_server

    srv = start_server(tmp_path / "data", env=env, workers=1)
    try:
        with srv.client() as c:
            url = "/api/v1/datapoints" + (f"?sync={param}" if param else "")
            assert (
                c.post(
                    url, json=[{"name": "s", "datapoints": [[1, 1]], "tags": {"t": "v"}}]
                ).status_code
                == 204
            )
            wal = c.get("/health").json()["checks"]["WAL"]
            assert wal["appends"] == 1
            assert wal["synced_appends"] == int(synced)
    finally:
        srv.stop()


def test_delete_honours_tag_filter_and_time_range(server, client) -> None:
    m = f"del{uuid.uuid4().hex[:8]}"
    _seed(server, client, m)
    body = {"start_absolute": 2, "end_absolute": 3, "metrics": [{"name": m, "tags": {"host": "a"}}]}
    assert client.post("/api/v1/datapoints/delete", json=body).status_code == 204
    q = _values(client, {"start_absolute": 0, "metrics": [{"name": m}]})
    # Only host=a's points at 2 and 3 are gone; host=b's point at 2 stays (KairosDB #509/#446).
    assert q["results"][0]["values"] == [[1, 1], [2, 20], [4, 40], [5, 50]]
    assert m in client.get("/api/v1/metricnames", params={"prefix": m}).json()["results"]


def test_delete_metric_removes_everything_and_the_name(server, client) -> None:
    m = f"dm{uuid.uuid4().hex[:6]}/with space"
    assert (
        client.post(
            "/api/v1/datapoints",
            json=[{"name": m, "datapoints": [[1, 1], [10**13, 2]], "tags": {"t": "v"}}],
        ).status_code
        == 204
    )
    server.wait_applied()
    from urllib.parse import quote

    r = client.delete(f"/api/v1/metric/{quote(m, safe='')}")
    assert r.status_code == 204
    assert _values(client, {"start_absolute": 0, "metrics": [{"name": m}]})["results"] == []
    assert m not in client.get("/api/v1/metricnames").json()["results"]
    # New data brings the name back.
    assert (
        client.post(
            "/api/v1/datapoints", json=[{"name": m, "datapoints": [[3, 3]], "tags": {"t": "v"}}]
        ).status_code
        == 204
    )
    server.wait_applied()
    assert _values(client, {"start_absolute": 0, "metrics": [{"name": m}]})["results"][0][
        "values"
    ] == [[3, 3]]


def test_delete_validates_like_a_query(client) -> None:
    r = client.post("/api/v1/datapoints/delete", json={"metrics": [{"name": "x"}]})
    assert r.status_code == 400
    assert r.json() == {
        "errors": ["query.metric[0].start_time relative or absolute time must be set"]
    }


def test_query_point_limit_over_http(tmp_path) -> None:
    from tests.conftest import start_server

    srv = start_server(tmp_path / "data", env={"KAIROSDB_QUERY_MAX_POINTS": "5"}, workers=1)
    try:
        with srv.client() as c:
            pts = [[t, t] for t in range(6)]
            assert (
                c.post(
                    "/api/v1/datapoints",
                    json=[{"name": "lim", "datapoints": pts, "tags": {"t": "v"}}],
                ).status_code
                == 204
            )
            srv.wait_applied()
            r = c.post(
                "/api/v1/datapoints/query",
                json={"start_absolute": 0, "end_absolute": 4, "metrics": [{"name": "lim"}]},
            )
            assert r.status_code == 200
            r = c.post(
                "/api/v1/datapoints/query", json={"start_absolute": 0, "metrics": [{"name": "lim"}]}
            )
            assert r.status_code == 400
            assert r.json()["errors"][0].startswith("Query would read more than 5 data points")
    finally:
        srv.stop()
