"""``kairos ingest`` and ``kairos query`` side by side on one embedded data directory."""

from __future__ import annotations

import httpx
import pytest

from kairos.app.gating import api_group
from kairos.config import load
from kairos.errors import ConfigError
from tests.conftest import start_server

pytestmark = pytest.mark.integration


def _forbidden(group: str) -> dict:
    return {"errors": [f"Forbidden: {group} API methods are disabled on this KairosDB instance."]}


def test_ingest_and_query_services_share_a_data_dir(tmp_path) -> None:
    data = tmp_path / "data"
    ingest = start_server(data, command="ingest", workers=1)
    query = start_server(data, command="query", workers=1)
    try:
        with (
            httpx.Client(base_url=ingest.url, timeout=30) as i,
            httpx.Client(base_url=query.url, timeout=30) as q,
        ):
            body = [{"name": "svc", "datapoints": [[1, 1], [2, 2.5]], "tags": {"t": "v"}}]
            assert i.post("/api/v1/datapoints", json=body).status_code == 204
            ingest.wait_applied()
            query.wait_applied()
            doc = {"start_absolute": 0, "metrics": [{"name": "svc"}]}
            r = q.post("/api/v1/datapoints/query", json=doc)
            assert r.status_code == 200
            assert r.json()["queries"][0]["results"][0]["values"] == [[1, 1], [2, 2.5]]
            assert q.get("/api/v1/metricnames").json() == {"results": ["svc"]}
            # Each service refuses the other's API group with KairosDB's exact 403 body.
            r = q.post("/api/v1/datapoints", json=body)
            assert (r.status_code, r.text) == (
                403,
                '{"errors": ["Forbidden: INGEST API methods are disabled on this KairosDB instance."]}',
            )
            r = q.post("/api/v1/datapoints/delete", json=doc)
            assert (r.status_code, r.json()) == (403, _forbidden("DELETE"))
            r = i.post("/api/v1/datapoints/query", json=doc)
            assert (r.status_code, r.json()) == (403, _forbidden("QUERY"))
            assert i.get("/api/v1/metricnames").status_code == 403
            # Ungated endpoints work on both.
            for c in (i, q):
                assert c.get("/api/v1/version").status_code == 200
                assert c.get("/health/live").status_code == 200
            # Deletes go to the ingest service (it runs the writer); the query service sees them.
            assert i.post("/api/v1/datapoints/delete", json=doc).status_code == 204
            query.wait_applied()
            assert (
                q.post("/api/v1/datapoints/query", json=doc).json()["queries"][0]["results"] == []
            )
    finally:
        query.stop()
        ingest.stop()


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        ("POST", "/api/v1/datapoints", "INGEST"),
        ("OPTIONS", "/api/v1/datapoints", "INGEST"),
        ("POST", "/api/v1/datapoints/query", "QUERY"),
        ("GET", "/api/v1/datapoints/query", "QUERY"),
        ("POST", "/api/v1/datapoints/query/tags", "QUERY"),
        ("GET", "/api/v1/metricnames", "QUERY"),
        ("POST", "/api/v1/datapoints/delete", "DELETE"),
        ("DELETE", "/api/v1/metric/a.b", "DELETE"),
        ("GET", "/api/v1/version", None),
        ("GET", "/api/v1/health/check", None),
        ("GET", "/api/v1/features", None),
    ],
)
def test_gating_table(method, path, group) -> None:
    assert api_group(method, path) == group


def test_service_defaults_and_server_type_validation() -> None:
    from kairos.cli import _SERVICES

    assert _SERVICES["ingest"][1:3] == ("INGEST,DELETE", "0.0.0.0:8080")
    assert _SERVICES["query"][1:4] == ("QUERY", "0.0.0.0:8081", "KAIROSDB_QUERY_BIND_ADDRESS")
    assert load(env={"KAIROSDB_SERVER_TYPE": "QUERY, DELETE"}).api_groups == {"QUERY", "DELETE"}
    assert load(env={}).api_groups == {"INGEST", "QUERY", "DELETE"}
    assert not load(env={"KAIROSDB_SERVER_TYPE": "QUERY"}).runs_writer
    with pytest.raises(ConfigError, match="server_type: must be ALL or a comma list"):
        load(env={"KAIROSDB_SERVER_TYPE": "READ"})
