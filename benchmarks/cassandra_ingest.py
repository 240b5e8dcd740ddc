"""Sustained ingest into Cassandra: Kairos's writer path next to a bare cassandra-driver loop.

    python benchmarks/cassandra_ingest.py --contact-points 127.0.0.1:9042 [--points 300000]
        [--http]

Three numbers from one run, on the same node and the same kind of rows (100 series x 100
points per 10,000-point batch, one row width):

* ``driver``  - the ceiling: pre-encoded ``data_points`` rows (key, column, value) inserted by
  a bare cassandra-driver loop with the same prepared statement, unlogged per-partition
  batches of 100 and 32 requests in flight; no index rows, no encoding.
* ``store``   - ``CassandraStore.write_many`` (what the writer stage calls): encoding, index
  rows, data rows, checkpoint.
* ``http``    - end to end (``--http``): JSON batches POSTed to a ``kairos serve`` on this
  Cassandra, timed until the writer has applied everything (``/health`` backlog 0).

Each uses a fresh keyspace.  Cassandra shares the machine's cores with Kairos.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid

import numpy as np
import orjson

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from kairos.config import load
from kairos.ingest.parser import parse_datapoints
from kairos.storage.cassandra import codec
from kairos.storage.cassandra.store import CassandraStore
from kairos.storage.cassandra.write import BATCH_ROWS

SERIES = 100
PER_SERIES = 100
T0 = 1_700_000_000_000


def bodies(points: int) -> list[bytes]:
    rng = np.random.default_rng(7)
    out = []
    n_batches = points // (SERIES * PER_SERIES)
    for b in range(n_batches):
        docs = []
        for s in range(SERIES):
            ts = T0 + (b * PER_SERIES + np.arange(PER_SERIES)) * 10
            vals = np.round(rng.normal(50, 10, PER_SERIES), 2)
            docs.append(
                {
                    "name": "bench.cpu",
                    "tags": {"host": f"h{s:03d}", "dc": "eu"},
                    "datapoints": [[int(t), float(v)] for t, v in zip(ts, vals, strict=True)],
                }
            )
        out.append(orjson.dumps(docs))
    return out


def config(contact_points: str, data_dir: str):
    return load(
        env={
            "KAIROSDB_DATASTORE": "cassandra",
            "KAIROSDB_CASSANDRA_CONTACT_POINTS": contact_points,
            "KAIROSDB_CASSANDRA_KEYSPACE": f"bench_{uuid.uuid4().hex[:8]}",
            "KAIROSDB_DATA_DIR": data_dir,
        }
    )


def bench_store(contact_points: str, batches: list) -> float:
    store = CassandraStore(config(contact_points, tempfile.mkdtemp()), writer=True)
    n = sum(len(b) for b in batches)
    t = time.perf_counter()
    for i, b in enumerate(batches):
        store.write_many([b], {"bench.wal": i})
    dt = time.perf_counter() - t
    store.close()
    return n / dt


def bench_driver(contact_points: str, batches: list) -> float:
    from cassandra.concurrent import execute_concurrent
    from cassandra.query import BatchStatement, BatchType

    store = CassandraStore(config(contact_points, tempfile.mkdtemp()), writer=True)
    session = store.session
    insert = session.prepare(
        f"INSERT INTO {store.keyspace}.data_points (key, column1, value) VALUES (?, ?, ?) "
        "USING TTL ? AND TIMESTAMP ?"
    )
    # Pre-encode every row outside the clock.
    work = []
    for b in batches:
        rows = []
        for s in range(b.n_series):
            idx = np.flatnonzero(b.series == s)
            ts = b.ts[idx]
            rt = int(codec.row_time(int(ts[0]), codec.DEFAULT_ROW_WIDTH))
            key = codec.encode_row_key(b.metrics[s], rt, codec.DOUBLE_TYPE, b.tags[s])
            cols = codec.encode_columns(ts, rt, codec.MILLISECONDS)
            vals = codec.encode_doubles(b.values[idx].view(np.float64))
            rows.append((key, cols, vals))
        work.append(rows)
    n = sum(len(b) for b in batches)
    wt = int(time.time() * 1000)
    t = time.perf_counter()
    for rows in work:
        stmts = []
        for key, cols, vals in rows:
            for lo in range(0, len(cols), BATCH_ROWS):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for c, v in zip(
                    cols[lo : lo + BATCH_ROWS], vals[lo : lo + BATCH_ROWS], strict=True
                ):
                    batch.add(insert, (key, c, v, 0, wt))
                stmts.append((batch, None))
        execute_concurrent(session, stmts, concurrency=32, raise_on_first_error=True)
    dt = time.perf_counter() - t
    store.close()
    return n / dt


def bench_http(contact_points: str, payloads: list[bytes]) -> float:
    import httpx

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from pathlib import Path

    from tests.conftest import start_server

    cfg = config(contact_points, tempfile.mkdtemp())
    env = {
        "KAIROSDB_DATASTORE": "cassandra",
        "KAIROSDB_CASSANDRA_CONTACT_POINTS": contact_points,
        "KAIROSDB_CASSANDRA_KEYSPACE": cfg.cassandra_keyspace,
        "KAIROSDB_WRITER_INTERVAL_MS": "20",
    }
    srv = start_server(Path(tempfile.mkdtemp()) / "data", env=env, workers=1)
    n = SERIES * PER_SERIES * len(payloads)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            t = time.perf_counter()
            for p in payloads:
                r = c.post("/api/v1/datapoints", content=p)
                assert r.status_code == 204, r.text
            srv.wait_applied(timeout=600)
            dt = time.perf_counter() - t
    finally:
        srv.stop()
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contact-points", default="127.0.0.1:9042")
    ap.add_argument("--points", type=int, default=300_000)
    ap.add_argument("--http", action="store_true", help="also measure end to end over HTTP")
    args = ap.parse_args()
    payloads = bodies(args.points)
    batches = [parse_datapoints(p).batch for p in payloads]
    print(f"{sum(len(b) for b in batches):,} points in {len(batches)} batches of 10,000")
    driver = bench_driver(args.contact_points, batches)
    print(f"driver ceiling:   {driver:12,.0f} points/s")
    store = bench_store(args.contact_points, batches)
    print(f"CassandraStore:   {store:12,.0f} points/s  ({store / driver:.2f} of the ceiling)")
    if args.http:
        http = bench_http(args.contact_points, payloads)
        print(f"HTTP end to end:  {http:12,.0f} points/s  ({http / driver:.2f} of the ceiling)")


if __name__ == "__main__":
    main()
