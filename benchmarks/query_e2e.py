"""End-to-end query timings on the embedded engine (one core, in-process, no HTTP).

    .venv/bin/python -m benchmarks.query_e2e [--points 10000000] [--series 10000]

Builds fixed-seed data sets in a temporary store through the writer's own path, then times
``run_query`` (selection, reads, grouping, aggregation, JSON-ready output) plus serialising the
response, and prints medians (for 1, also the time other than writing the values as JSON):

1. avg with 1-minute sampling over one series of ``--points`` points at 10 s intervals;
2. ``--series`` series x 1,000 points, group_by tag ``host`` (100 values) + 1-hour avg;
3. a Grafana-style dashboard of 20 queries (5 metrics x avg/max/rate/percentile, 1-minute
   sampling, tag filters) over the data of 2.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import orjson

from kairos.model.batch import BatchBuilder
from kairos.model.java import java_sorted_tags
from kairos.query.engine import Limits, run_query
from kairos.query.model import parse_query
from kairos.storage.embedded.store import EmbeddedStore

T0 = 1_700_000_000_000


def _write_series(
    store: EmbeddedStore, metric: str, tags: dict, ts: np.ndarray, vals: np.ndarray
) -> None:
    b = BatchBuilder()
    sid = b.series_id(metric, java_sorted_tags(tags), 1, 0)
    b.add(np.full(len(ts), sid, np.int32), ts, vals.astype(np.float64).view(np.int64))
    store.write(b.build())


def build_one_series(store: EmbeddedStore, n: int) -> None:
    rng = np.random.default_rng(1)
    ts = T0 + np.arange(n, dtype=np.int64) * 10_000
    vals = np.round(50 + np.cumsum(rng.normal(0, 1, n)), 2)
    for lo in range(0, n, 2_000_000):
        _write_series(
            store, "bench.one", {"host": "h0"}, ts[lo : lo + 2_000_000], vals[lo : lo + 2_000_000]
        )


def build_many_series(store: EmbeddedStore, n_series: int, per: int = 1000) -> None:
    rng = np.random.default_rng(2)
    ts = T0 + np.arange(per, dtype=np.int64) * 10_000
    b = BatchBuilder()
    chunk = 0
    for s in range(n_series):
        metric = f"bench.m{s % 5}"
        tags = java_sorted_tags({"host": f"host{s % 100}", "dc": ("eu", "us")[s % 2], "i": str(s)})
        sid = b.series_id(metric, tags, 1, 0)
        vals = np.round(rng.uniform(0, 100, per), 2)
        b.add(np.full(per, sid, np.int32), ts, vals.view(np.int64))
        chunk += per
        if chunk >= 2_000_000:
            store.write(b.build())
            b, chunk = BatchBuilder(), 0
    if chunk:
        store.write(b.build())


def timed(store: EmbeddedStore, queries: list[dict], repeat: int) -> tuple[float, float]:
    """Median seconds of the whole run (queries and serialised responses), and median seconds
    of it spent other than writing the response as JSON (selection, reads, merge, aggregation)."""
    parsed = [parse_query(q) for q in queries]
    times, inner = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        out = 0.0
        for q in parsed:
            limits = Limits()
            result = run_query(store, q, limits=limits)
            t_dump = time.perf_counter()
            orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)
            out += limits.format_seconds + time.perf_counter() - t_dump
            del result
        times.append(time.perf_counter() - t)
        inner.append(times[-1] - out)
    return statistics.median(times), statistics.median(inner)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        store = EmbeddedStore(d, writer=True, fanout=1000)
        build_one_series(store, args.points)
        build_many_series(store, args.series)
        end = T0 + args.points * 10_000
        q1 = {
            "start_absolute": T0,
            "end_absolute": end,
            "metrics": [
                {
                    "name": "bench.one",
                    "aggregators": [{"name": "avg", "sampling": {"value": 1, "unit": "minutes"}}],
                }
            ],
        }
        t1, a1 = timed(store, [q1], args.repeat)
        print(
            f"1. avg 1-min over {args.points:,} points: {t1 * 1e3:.0f} ms = {args.points / t1 / 1e6:.0f} M points/s"
            f" end to end; scanned and aggregated {a1 * 1e3:.0f} ms = {args.points / a1 / 1e6:.0f} M points/s"
        )
        q2 = {
            "start_absolute": T0,
            "end_absolute": end,
            "metrics": [
                {
                    "name": f"bench.m{i}",
                    "group_by": [{"name": "tag", "tags": ["host"]}],
                    "aggregators": [{"name": "avg", "sampling": {"value": 1, "unit": "hours"}}],
                }
                for i in range(5)
            ],
        }
        t2, _ = timed(store, [q2], args.repeat)
        print(
            f"2. {args.series:,} series x 1,000 points, group_by host + 1-hour avg: {t2 * 1e3:.0f} ms"
        )
        dash = []
        for i in range(5):
            for agg in ("avg", "max", "rate", "percentile"):
                a = {"name": agg, "sampling": {"value": 1, "unit": "minutes"}}
                if agg == "percentile":
                    a["percentile"] = 0.95
                if agg == "rate":
                    a = {"name": "rate", "unit": "seconds"}
                # rate needs one series (merged series share timestamps: KairosDB fails those)
                tags = (
                    {"i": str(i)}
                    if agg == "rate"
                    else {"dc": "eu", "host": [f"host{j}" for j in range(0, 100, 10)]}
                )
                dash.append(
                    {
                        "start_absolute": T0,
                        "end_absolute": end,
                        "metrics": [{"name": f"bench.m{i}", "tags": tags, "aggregators": [a]}],
                    }
                )
        t3, _ = timed(store, dash, args.repeat)
        print(f"3. dashboard of 20 queries: {t3 * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
