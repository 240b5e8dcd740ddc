"""KairosDB's own black-box HTTP cases, compared as its runner does (clients.md §5.1).

Per case: ``<metric_name>`` becomes a unique name, datapoints.json is posted (204), query.json
is run and compared with response.json: same number of queries and results, equal ``name``,
tags compared as sets, same number of values, equal timestamps, values with a decimal point
within ±0.01 and the others exactly.  ``test_emptyQuery`` encodes KairosDB 1.3.0's placeholder
result; Kairos follows HEAD (``"results": []``), as the fixtures' README says.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

pytestmark = pytest.mark.integration

CASES = ["test_aggregators", "test_groupBy", "test_verifyAddedDataPoints"]


def _load(path, metric: str):
    text = re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M)
    return json.loads(text.replace("<metric_name>", metric))


def _compare(got: dict, want: dict) -> None:
    assert len(got["queries"]) == len(want["queries"])
    for qi, (gq, wq) in enumerate(zip(got["queries"], want["queries"], strict=True)):
        assert len(gq["results"]) == len(wq["results"]), f"query {qi}: {gq['results']}"
        for g, w in zip(gq["results"], wq["results"], strict=True):
            assert g["name"] == w["name"]
            assert {k: set(v) for k, v in g["tags"].items()} == {
                k: set(v) for k, v in w["tags"].items()
            }
            assert len(g["values"]) == len(w["values"]), (
                f"query {qi}: {g['values']} != {w['values']}"
            )
            for (gt, gv), (wt, wv) in zip(g["values"], w["values"], strict=True):
                assert gt == wt, f"query {qi}"
                if isinstance(wv, float):
                    assert gv == pytest.approx(wv, abs=0.01), f"query {qi}"
                else:
                    assert gv == wv, f"query {qi}"


def run_case(server, client, kairos_fixtures, case: str) -> None:
    """Post a case's data points, compare the query's answer, delete with the same query and
    check nothing (not even the metric name) is left."""
    d = kairos_fixtures / "integration" / case
    metric = f"integration_test_{uuid.uuid4()}"
    r = client.post("/api/v1/datapoints", json=_load(d / "datapoints.json", metric))
    assert r.status_code == 204, r.text
    server.wait_applied()
    query = _load(d / "query.json", metric)
    r = client.post("/api/v1/datapoints/query", json=query)
    assert r.status_code == 200, r.text
    _compare(r.json(), _load(d / "response.json", metric))
    # Then, as KairosDB's runner does: delete with the same query, and nothing is left.
    r = client.post("/api/v1/datapoints/delete", json=query)
    assert r.status_code == 204, r.text
    after = client.post("/api/v1/datapoints/query", json=query).json()
    assert all(not res["values"] for qr in after["queries"] for res in qr["results"])
    assert metric not in client.get("/api/v1/metricnames").json()["results"]


@pytest.mark.parametrize("case", CASES)
def test_kairosdb_case(server, client, kairos_fixtures, case) -> None:
    run_case(server, client, kairos_fixtures, case)


def test_kairosdb_empty_query_follows_head(client, kairos_fixtures) -> None:
    q = _load(kairos_fixtures / "integration" / "test_emptyQuery" / "query.json", "name")
    r = client.post("/api/v1/datapoints/query", json=q)
    assert r.status_code == 200, r.text
    assert r.json() == {"queries": [{"sample_size": 0, "results": []}]}
