"""Histograms over HTTP as the ArpNetworking Grafana plugin (4.x) sends and reads them."""

from __future__ import annotations

import uuid

T0 = 1_700_000_040_000  # a whole minute
MIN = 60_000


def test_bins_histograms_merge_and_percentile_over_http(server, client) -> None:
    m = f"hh{uuid.uuid4().hex[:8]}"

    def hist(bins: dict, vmin: float, vmax: float, total: float) -> dict:
        count = sum(bins.values())
        return {
            "bins": bins,
            "precision": 7,
            "min": vmin,
            "max": vmax,
            "sum": total,
            "count": count,
        }

    body = [
        {
            "name": m,
            "type": "histogram",
            "datapoints": [
                [T0 + 1_000, hist({"1.0": 2, "2.0": 1}, 1.0, 2.01, 4.0)],
                [T0 + 2_000, hist({"2.0": 3, "4.0": 1}, 2.0, 4.02, 10.0)],
                [T0 + MIN + 5_000, hist({"8.0": 4}, 8.0, 8.05, 32.1)],
            ],
            "tags": {"host": "a"},
        }
    ]
    r = client.post("/api/v1/datapoints", json=body)
    assert r.status_code == 204, r.text
    server.wait_applied()

    # The plugin's request: numeric sampling value, upper-case unit, PERIOD alignment, merge
    # with its default precision 12.
    sampling = {"value": 1, "unit": "MINUTES"}
    query = {
        "start_absolute": T0,
        "end_absolute": T0 + 10 * MIN,
        "metrics": [
            {
                "name": m,
                "tags": {"host": ["a"]},
                "aggregators": [
                    {
                        "name": "merge",
                        "sampling": sampling,
                        "align_end_time": True,
                        "precision": 12,
                    }
                ],
            },
            {
                "name": m,
                "aggregators": [
                    {
                        "name": "percentile",
                        "sampling": sampling,
                        "percentile": 0.5,
                        "align_end_time": True,
                    }
                ],
            },
        ],
    }
    r = client.post("/api/v1/datapoints/query", json=query)
    assert r.status_code == 200, r.text
    merged_q, pct_q = r.json()["queries"]

    (res,) = merged_q["results"]
    assert res["group_by"] == [{"name": "type", "type": "histogram"}]
    assert res["tags"] == {"host": ["a"]}
    (t1, w1), (t2, w2) = res["values"]
    assert (t1, t2) == (T0 + MIN, T0 + 2 * MIN)
    # What the plugin's heatmap reads: an object with bins and a numeric precision (the
    # inputs' 7: merge never raises precision), plus min, max, sum and count.
    assert isinstance(w1["bins"], dict) and isinstance(w1["precision"], int)
    assert w1["bins"] == {"1.0": 2, "2.0": 4, "4.0": 1}
    assert (w1["precision"], w1["min"], w1["max"], w1["sum"], w1["count"]) == (
        7,
        1.0,
        4.02,
        14.0,
        7,
    )
    assert w2["bins"] == {"8.0": 4}
    assert (w2["min"], w2["max"], w2["sum"], w2["count"]) == (8.0, 8.05, 32.1, 4)
    for key in map(float, w1["bins"]):
        assert key in w1["boundaries"]  # each key is its bucket's lower edge

    (res,) = pct_q["results"]
    # Window 1: rank 3.5 of 7 is half-way into bin [2, 2.015625) (2 samples before, 4 in it).
    assert res["values"] == [[T0 + MIN, 2.0 + 0.375 * 0.015625], [T0 + 2 * MIN, 8.03125]]


def test_extension_aggregators_over_http(server, client) -> None:
    """The Grafana 4.x plugin's bin filter + percent_remaining, and the 400s of bad requests."""
    m = f"hx{uuid.uuid4().hex[:8]}"
    h = {"bins": {"1.0": 2, "1.5": 1, "2.0": 3, "3.0": 4}, "precision": 1, "min": 1.1}
    h |= {"max": 3.9, "sum": 24.0, "count": 10}
    body = [{"name": m, "type": "histogram", "datapoints": [[T0, h]], "tags": {"host": "a"}}]
    assert client.post("/api/v1/datapoints", json=body).status_code == 204
    server.wait_applied()

    def query(*aggregators: dict):
        doc = {
            "start_absolute": T0,
            "end_absolute": T0 + MIN,
            "metrics": [{"name": m, "aggregators": list(aggregators)}],
        }
        return client.post("/api/v1/datapoints/query", json=doc)

    # As the plugin sends it: every parameter a string.  gt 2.5 + discard keeps the bins
    # [1, 1.5) and [1.5, 2): 3 of the 10 samples.
    f = {"name": "filter", "filter_op": "GT", "threshold": "2.5"}
    r = query({**f, "filter_indeterminate_inclusion": "discard"}, {"name": "percent_remaining"})
    assert r.status_code == 200, r.text
    assert r.json()["queries"][0]["results"][0]["values"] == [[T0, 0.3]]

    r = query({**f, "filter_op": "ne", "filter_indeterminate_inclusion": "keep"})
    assert (r.status_code, r.json()) == (400, {"errors": ["Unsupported FilterOp Enum type"]})
    # A point exactly at S: the Joda year remainder of 0 ms is 0, so its window is (S - 1y, S].
    r = query({"name": "movingWindow", "sampling": {"value": 1, "unit": "years"}})
    assert r.status_code == 200, r.text
    assert [t for t, _ in r.json()["queries"][0]["results"][0]["values"]] == [T0]
    r = query({"name": "movingWindow", "sampling": {"value": 10**9, "unit": "years"}})
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith("movingWindow: a window boundary is out of")
