"""Query benchmark: write a fixed data set, then replay a fixed set of KairosDB queries.

Data: metric ``perf.query.cpu``, ``hosts`` series (tags host, region, service and the run's
``perf_run``), one point every 10 s over ``hours`` hours ending now, values from a seeded
random walk.  Queries (all filtered on ``perf_run``): a raw one-hour range of one host, a
1-minute average over everything, a ``group_by`` tag host with a 1-hour average, the 99th
percentile in 5-minute buckets, and a per-second rate per host.  Each is replayed ``repeat`` times
round-robin; latency is measured per query name.
"""

from __future__ import annotations

import time

import numpy as np
import orjson

from kairos.perf.runner import (
    _connect,
    _get_json,
    _percentiles,
    _wal_backlog,
    check_reachable,
    drain,
)

__all__ = ["QUERY_NAMES", "query_set", "run_queries", "write_dataset"]

METRIC = "perf.query.cpu"
QUERY_NAMES = ("raw_range", "avg_1m", "group_by_host", "percentile_p99", "rate")


def write_dataset(url: str, run_id: str, seed: int, hosts: int, hours: float) -> dict:
    """POST the data set; returns its time range and point count once the server applied it."""
    rng = np.random.default_rng([seed, 77])
    end_ms = int(time.time() * 1000) // 10_000 * 10_000
    n = int(hours * 360)
    start_ms = end_ms - (n - 1) * 10_000
    ts = (start_ms + np.arange(n, dtype=np.int64) * 10_000).tolist()
    bodies: list[list[dict]] = []
    body: list[dict] = []
    in_body = 0
    for h in range(hosts):
        vals = np.round(50 + np.cumsum(rng.normal(0, 1, n)), 2).tolist()
        tags = {
            "host": f"host-{h:03d}",
            "region": ("us-east-1", "eu-west-1")[h % 2],
            "service": ("api", "worker", "search")[h % 3],
            "perf_run": run_id,
        }
        # Bodies of at most 5,000 points: under Kairos's default max_batch_size (10,000).
        for lo in range(0, n, 5000):
            dps = list(zip(ts[lo : lo + 5000], vals[lo : lo + 5000], strict=True))
            if in_body + len(dps) > 5000:
                bodies.append(body)
                body, in_body = [], 0
            body.append({"name": METRIC, "tags": tags, "datapoints": dps})
            in_body += len(dps)
    bodies.append(body)
    conn = _connect(url)
    try:
        for entries in bodies:
            conn.request(
                "POST",
                "/api/v1/datapoints",
                body=orjson.dumps(entries),
                headers={"Content-Type": "application/json"},
            )
            r = conn.getresponse()
            data = r.read()
            if r.status != 204:
                raise RuntimeError(f"writing the query data set failed: HTTP {r.status} {data!r}")
    finally:
        conn.close()
    q = {
        "start_absolute": start_ms,
        "end_absolute": end_ms,
        "metrics": [{"name": METRIC, "tags": {"perf_run": [run_id]}}],
    }

    def count() -> int:
        status, doc = _get_json(url, "/api/v1/datapoints/query", orjson.dumps(q))
        return int(doc["queries"][0]["sample_size"]) if status == 200 else -1

    drained = drain(url, count, 300)
    if _wal_backlog(url) is None:
        drained["drain_method"] += " (no wal_backlog_bytes)"
    return {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "points": hosts * n,
        "points_read_back": count(),
        **drained,
    }


def query_set(run_id: str, start_ms: int, end_ms: int) -> dict[str, dict]:
    """The fixed queries, by name (KairosDB query JSON)."""
    tags = {"perf_run": [run_id]}

    def q(metric: dict, start: int = start_ms) -> dict:
        return {"start_absolute": start, "end_absolute": end_ms, "metrics": [metric]}

    def agg(name: str, value: int, unit: str, **kw) -> dict:
        return {"name": name, "sampling": {"value": value, "unit": unit}, **kw}

    return {
        "raw_range": q(
            {"name": METRIC, "tags": {**tags, "host": ["host-000"]}},
            start=max(start_ms, end_ms - 3_600_000),
        ),
        "avg_1m": q({"name": METRIC, "tags": tags, "aggregators": [agg("avg", 1, "minutes")]}),
        "group_by_host": q(
            {
                "name": METRIC,
                "tags": tags,
                "group_by": [{"name": "tag", "tags": ["host"]}],
                "aggregators": [agg("avg", 1, "hours")],
            }
        ),
        "percentile_p99": q(
            {
                "name": METRIC,
                "tags": tags,
                "aggregators": [agg("percentile", 5, "minutes", percentile=0.99)],
            }
        ),
        # rate refuses merged series (equal timestamps): one group per host.
        "rate": q(
            {
                "name": METRIC,
                "tags": tags,
                "group_by": [{"name": "tag", "tags": ["host"]}],
                "aggregators": [{"name": "rate", "unit": "seconds"}],
            }
        ),
    }


def run_queries(
    url: str, *, repeat: int = 20, seed: int = 0, hosts: int = 20, hours: float = 6.0
) -> dict:
    """Write the data set to ``url`` and replay the queries; latency in ms per query name."""
    import secrets

    url = url.rstrip("/")
    check_reachable(url)
    run_id = secrets.token_hex(4)
    data = write_dataset(url, run_id, seed, hosts, hours)
    queries = {
        k: orjson.dumps(v) for k, v in query_set(run_id, data["start_ms"], data["end_ms"]).items()
    }
    lat: dict[str, list[float]] = {k: [] for k in queries}
    errors: dict[str, dict[str, int]] = {k: {} for k in queries}
    sample_size: dict[str, int] = {}
    conn = _connect(url)
    try:
        for _ in range(repeat):
            for name, body in queries.items():
                t0 = time.perf_counter()
                try:
                    conn.request(
                        "POST",
                        "/api/v1/datapoints/query",
                        body=body,
                        headers={"Content-Type": "application/json"},
                    )
                    r = conn.getresponse()
                    payload = r.read()
                    key = None if r.status == 200 else f"HTTP {r.status}"
                except (OSError, ConnectionError) as e:
                    key, payload = type(e).__name__, b""
                    conn.close()
                    conn = _connect(url)
                dt = time.perf_counter() - t0
                if key is None:
                    lat[name].append(dt)
                    sample_size[name] = orjson.loads(payload)["queries"][0]["sample_size"]
                else:
                    errors[name][key] = errors[name].get(key, 0) + 1
    finally:
        conn.close()
    return {
        "url": url,
        "run_id": run_id,
        "seed": seed,
        "repeat": repeat,
        "dataset": data,
        "queries": {
            name: {
                **_percentiles(np.array(lat[name])),
                "ok": len(lat[name]),
                "errors": errors[name],
                "sample_size": sample_size.get(name),
            }
            for name in queries
        },
    }
