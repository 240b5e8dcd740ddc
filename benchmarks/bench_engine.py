"""asv benchmarks for the embedded engine: index lookup, block scan, end-to-end queries, and
writer applies (of batches, and of a parsed JSON body).

A fixed-seed store of 1,000 series (metric ``bench.cpu``, tags host: 100 values x dc: 10
values) x 2,000 two-decimal gauge points 10 s apart, built once (``setup_cache``) and compacted
into one block.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import orjson

from kairos.ingest import ingest_body
from kairos.model.batch import DOUBLE, Batch
from kairos.query.engine import run_query
from kairos.query.model import parse_query
from kairos.storage.embedded.store import EmbeddedStore

SEED = 7
SERIES = 1000
POINTS = 2000
T0 = 1_700_000_000_000
STEP = 10_000


def _batch(first: int, count: int, rng: np.random.Generator) -> Batch:
    ts = T0 + np.arange(first, first + count, dtype=np.int64) * STEP
    vals = np.round(50 + np.cumsum(rng.normal(0, 0.5, (SERIES, count)), axis=1), 2)
    return Batch(
        metrics=["bench.cpu"] * SERIES,
        tags=[(("dc", f"dc{s % 10}"), ("host", f"h{s // 10:03d}")) for s in range(SERIES)],
        kinds=np.full(SERIES, DOUBLE, np.uint8),
        ttls=np.zeros(SERIES, np.int32),
        series=np.repeat(np.arange(SERIES, dtype=np.int32), count),
        ts=np.tile(ts, SERIES),
        values=vals.view(np.int64).ravel(),
    )


def setup_cache() -> str:
    d = tempfile.mkdtemp(prefix="kairos-bench-engine-")
    rng = np.random.default_rng(SEED)
    store = EmbeddedStore(d, writer=True)
    for i, first in enumerate(range(0, POINTS, 200)):
        store.write_many([_batch(first, 200, rng)], {"bench.wal": i})
    store.compact()
    store.close()
    return d


class ReadSuite:
    timeout = 300

    def setup(self, d: str) -> None:
        self.store = EmbeddedStore(d)
        self.all = self.store.find_series("bench.cpu", {})
        self.one = self.store.find_series("bench.cpu", {"host": ["h042"], "dc": ["dc2"]})

    def teardown(self, d: str) -> None:
        self.store.close()

    def time_find_series_by_two_tags(self, d: str) -> None:
        self.store.find_series("bench.cpu", {"host": ["h042", "h043"], "dc": ["dc2", "dc3"]})

    def time_find_series_all(self, d: str) -> None:
        self.store.find_series("bench.cpu", {})

    def time_scan_all_series(self, d: str) -> None:
        self.store.read(self.all, -(2**62), 2**62)

    def peakmem_scan_all_series(self, d: str) -> None:
        self.store.read(self.all, -(2**62), 2**62)

    def time_read_one_series_one_hour(self, d: str) -> None:
        self.store.read(self.one, T0 + 3_600_000, T0 + 7_200_000)


class QuerySuite:
    """End to end in process: a KairosDB query over the cached store, serialised."""

    timeout = 300

    def setup(self, d: str) -> None:
        self.store = EmbeddedStore(d)
        end = T0 + POINTS * STEP
        self.group = parse_query(
            {
                "start_absolute": T0,
                "end_absolute": end,
                "metrics": [
                    {
                        "name": "bench.cpu",
                        "group_by": [{"name": "tag", "tags": ["dc"]}],
                        "aggregators": [{"name": "avg", "sampling": {"value": 1, "unit": "hours"}}],
                    }
                ],
            }
        )
        self.one = parse_query(
            {
                "start_absolute": T0,
                "end_absolute": end,
                "metrics": [
                    {
                        "name": "bench.cpu",
                        "tags": {"host": ["h042"]},
                        "aggregators": [
                            {"name": "max", "sampling": {"value": 1, "unit": "minutes"}}
                        ],
                    }
                ],
            }
        )

    def teardown(self, d: str) -> None:
        self.store.close()

    def time_group_by_tag_1h_avg_all_series(self, d: str) -> None:
        orjson.dumps(run_query(self.store, self.group))

    def peakmem_group_by_tag_1h_avg_all_series(self, d: str) -> None:
        orjson.dumps(run_query(self.store, self.group))

    def time_tag_filter_1m_max(self, d: str) -> None:
        orjson.dumps(run_query(self.store, self.one))


class WriteSuite:
    timeout = 300

    def setup(self, d: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="kairos-bench-write-")
        self.store = EmbeddedStore(self.dir, writer=True, fanout=1000)
        self.batches = [_batch(i * 10, 10, np.random.default_rng(i)) for i in range(10)]
        self.body = orjson.dumps(
            [
                {
                    "name": "bench.http",
                    "tags": {"host": f"h{s}"},
                    "datapoints": [[T0 + i * STEP, round(i * 0.37, 2)] for i in range(100)],
                }
                for s in range(100)
            ]
        )

    def teardown(self, d: str) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_apply_100k_points(self, d: str) -> None:
        self.store.write_many(self.batches, {"bench.wal": 1})

    def time_parse_and_apply_10k_point_body(self, d: str) -> None:
        self.store.write_many([ingest_body(self.body, 100_000).batch], {"bench.wal": 2})


if __name__ == "__main__":
    import time

    d = setup_cache()
    try:
        s = EmbeddedStore(d)
        sel = s.find_series("bench.cpu", {})
        t = time.perf_counter()
        s.read(sel, -(2**62), 2**62)
        dt = time.perf_counter() - t
        size = sum(e.stat().st_size for e in os.scandir(os.path.join(d, "segments")))
        print(
            f"scan {SERIES * POINTS / dt / 1e6:.1f} M points/s, {size / SERIES / POINTS:.3f} B/point"
        )
    finally:
        shutil.rmtree(d, ignore_errors=True)
