"""The embedded engine end to end: bytes per point on disk, write and scan throughput.

    python -m benchmarks.engine_e2e [--series 1000] [--points 100000] [--set gauge,walk,counter]

Fixed-seed data sets (each ``--series`` x ``--points``, 10 s apart):

* ``gauge``   - two-decimal gauges, ``round(50 + cumsum(normal(0, 0.5)), 2)`` (doubles);
* ``walk``    - full-precision random-walk doubles;
* ``counter`` - monotonic counters, int64 increments of 0..1000 (longs).

For each set: the engine (writer side, one process) applies batches of 10,000 points (100 series
x 100 consecutive points at a time, the way a collector's batches arrive), ``--per-apply`` of
them per apply (the writer applies everything the WAL holds at once; 1 is the worst case: every
10,000 points cost a block, a manifest and their fsyncs), with the engine's own size-tiered
compactions as they happen -> write points/s; then everything is compacted
into one block -> bytes per point (the block files' size / points); then one reader process
reads and decodes every series over the whole range, 100 series per read -> scan points/s
(one core).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from kairos.model.batch import DOUBLE, LONG, Batch
from kairos.storage.embedded.store import EmbeddedStore

T0 = 1_700_000_000_000
STEP = 10_000
BATCH_SERIES = 100
BATCH_POINTS = 100


def values(kind: str, series: int, points: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "gauge":
        return np.round(50 + np.cumsum(rng.normal(0, 0.5, (series, points)), axis=1), 2)
    if kind == "walk":
        return 50 + np.cumsum(rng.normal(0, 0.5, (series, points)), axis=1)
    return np.cumsum(rng.integers(0, 1001, (series, points)), axis=1).astype(np.int64)


def batches(kind: str, vals: np.ndarray):
    series, points = vals.shape
    code = LONG if kind == "counter" else DOUBLE
    words = vals.view(np.int64) if code == DOUBLE else vals
    for first in range(0, points, BATCH_POINTS):
        ts = T0 + np.arange(first, min(first + BATCH_POINTS, points), dtype=np.int64) * STEP
        for s0 in range(0, series, BATCH_SERIES):
            ss = range(s0, min(s0 + BATCH_SERIES, series))
            b = Batch(
                metrics=[f"bench.{kind}"] * len(ss),
                tags=[(("host", f"h{s:05d}"),) for s in ss],
                kinds=np.full(len(ss), code, np.uint8),
                ttls=np.zeros(len(ss), np.int32),
                series=np.repeat(np.arange(len(ss), dtype=np.int32), len(ts)),
                ts=np.tile(ts, len(ss)),
                values=np.ascontiguousarray(
                    words[s0 : s0 + len(ss), first : first + len(ts)]
                ).ravel(),
            )
            yield b


def run(kind: str, series: int, points: int, seed: int, per_apply: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    vals = values(kind, series, points, rng)
    todo = list(batches(kind, vals))
    d = tempfile.mkdtemp(prefix=f"kairos-engine-{kind}-")
    try:
        store = EmbeddedStore(d, writer=True)
        t = time.perf_counter()
        for i in range(0, len(todo), per_apply):
            store.write_many(todo[i : i + per_apply], {"bench.wal": i})
        write_s = time.perf_counter() - t
        store.compact()
        size = sum(e.stat().st_size for e in os.scandir(os.path.join(d, "segments")))
        store.close()
        reader = EmbeddedStore(d)
        sel = reader.find_series(f"bench.{kind}", {})
        # 100 series per read (one query's worth): the whole set in one call would mostly
        # measure the first touch of gigabytes of fresh output memory.
        n = 0
        t = time.perf_counter()
        for i in range(0, len(sel), 100):
            data = reader.read(sel[i : i + 100], -(2**62), 2**62)
            n += sum(len(x.ts) for x in data)
            del data
        scan_s = time.perf_counter() - t
        assert n == series * points, (n, series * points)
        reader.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    total = series * points
    return {
        "set": kind,
        "points": total,
        "bytes_per_point": size / total,
        "write_points_per_s": total / write_s,
        "scan_points_per_s": total / scan_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--set", default="gauge,walk,counter")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--per-apply",
        type=int,
        default=1,
        help="batches per writer apply (the writer applies everything the WAL holds at once)",
    )
    args = ap.parse_args()
    print(
        f"{args.series} series x {args.points} points per set, "
        f"{args.per_apply} batch(es) of 10,000 points per apply"
    )
    for kind in args.set.split(","):
        r = run(kind, args.series, args.points, args.seed, args.per_apply)
        print(
            f"{r['set']:8s} {r['bytes_per_point']:6.3f} bytes/point  "
            f"write {r['write_points_per_s'] / 1e6:6.2f} M points/s  "
            f"scan {r['scan_points_per_s'] / 1e6:7.2f} M points/s"
        )


if __name__ == "__main__":
    main()
