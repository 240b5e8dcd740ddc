"""The writer process's peak memory applying a WAL backlog, against points and series held.

    .venv/bin/python -m benchmarks.writer_memory --points 20000000 --series 1000 [--rounds 2]

Writes ``--points`` points over ``--series`` series (100-point runs of each series, 10,000-point
batches, timestamps 10 s apart and never repeated) into WAL files the way HTTP workers do
(``WalWriter``, 64 MiB files), then runs the writer in a fresh process until it has applied
all of it (``Writer.drain``, compactions included) and prints its peak RSS (``VmHWM``), the
time the drain took, and the points and series stored.  With ``--rounds N`` the backlog is
written and applied N times into the same store, so the later rounds show the peak against a
larger store.  ``KAIROSDB_*`` variables (e.g. ``KAIROSDB_WRITER_MAX_MEMORY_MB``) reach the writer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import orjson

from kairos.model.batch import DOUBLE, Batch
from kairos.storage.records import encode_batch
from kairos.storage.wal import WalWriter

BATCH_POINTS = 10_000
RUN = 100  # consecutive points of one series in a batch


def write_backlog(data_dir: str, points: int, series: int, t0: int) -> None:
    """``points`` points over ``series`` series into fresh WAL files under ``data_dir``."""
    rng = np.random.default_rng(7)
    wal = WalWriter(data_dir)
    per_batch = BATCH_POINTS // RUN
    runs = points // RUN
    for first in range(0, runs, per_batch):
        n = min(per_batch, runs - first)
        idx = np.arange(first, first + n)
        sids = idx % series
        rounds = idx // series  # how many runs of this series came before
        metrics = [f"bench.metric.{s % 10}" for s in sids.tolist()]
        tags = [(("host", f"host-{s}"), ("dc", ("eu", "us", "ap")[s % 3])) for s in sids.tolist()]
        ts = (t0 + (rounds[:, None] * RUN + np.arange(RUN)) * 10_000).reshape(-1)
        vals = np.round(50 + rng.normal(0, 1, n * RUN), 2)
        batch = Batch(
            metrics=metrics,
            tags=tags,
            kinds=np.full(n, DOUBLE, np.uint8),
            ttls=np.zeros(n, np.int32),
            series=np.repeat(np.arange(n, dtype=np.int32), RUN),
            ts=ts.astype(np.int64),
            values=vals.view(np.int64),
        )
        wal.append(encode_batch(batch))
    wal.close()


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def apply_backlog(data_dir: str) -> dict:
    """In this (fresh) process: apply the whole WAL as the writer process does."""
    from kairos.config import load
    from kairos.storage.writer import Writer

    config = load(data_dir=data_dir)
    w = Writer(config)
    t0 = time.perf_counter()
    w.drain()
    seconds = time.perf_counter() - t0
    store = w.store
    store.refresh()
    manifest = store._view.manifest
    out = {
        "peak_rss_mb": round(_peak_rss_bytes() / 2**20, 1),
        "drain_s": round(seconds, 2),
        "applied_points": w.applied_points,
        "stored_points": sum(s["rows"] for s in manifest["segments"]),
        "series": manifest["series_count"],
        "blocks": len(manifest["segments"]),
    }
    store.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20_000_000)
    ap.add_argument("--series", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--data-dir", help="keep the store here (default: a temporary directory)")
    ap.add_argument("--apply", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.apply:
        print(orjson.dumps(apply_backlog(args.apply)).decode())
        return 0
    tmp = args.data_dir or tempfile.mkdtemp(prefix="kairos-writer-mem-")
    try:
        for r in range(args.rounds):
            t0 = 1_700_000_000_000 + r * (args.points // args.series + RUN) * 10_000
            write_backlog(tmp, args.points, args.series, t0)
            wal_mb = sum(
                os.path.getsize(os.path.join(tmp, "wal", f))
                for f in os.listdir(os.path.join(tmp, "wal"))
                if f.endswith(".wal")
            )
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.writer_memory", "--apply", tmp],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            res = orjson.loads(out.strip().splitlines()[-1])
            res = {"round": r, "wal_mb": round(wal_mb / 2**20, 1), **res}
            res["load_average"] = [round(x, 2) for x in os.getloadavg()]
            print(orjson.dumps(res).decode(), flush=True)
    finally:
        if not args.data_dir:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
