"""asv benchmarks for the query engine's segment kernels (``kairos.query.kernels``).

One fixed-seed series of 10,000,000 float64 points 10 s apart (about 3.2 years), bucketed into
1-minute segments (6 points each, 1,666,667 segments): the shape of a range aggregator with
``sampling: 1 minute`` over a long scan.  ``python benchmarks/bench_reduce.py`` prints the
throughput of every kernel without asv.
"""

from __future__ import annotations

import numpy as np

from benchmarks._timing import best
from kairos.query import kernels

SEED = 20240611
N_POINTS = 10_000_000
STEP_MS = 10_000
WIDTH_MS = 60_000
START_MS = 1_700_000_000_000
REDUCTIONS = ["sum", "avg", "min", "max", "count", "dev", "percentile", "least_squares"]


def make_series(n: int = N_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, values)``: int64 ms timestamps 10 s apart, float64 random-walk gauge values."""
    rng = np.random.default_rng(SEED)
    ts = START_MS + STEP_MS * np.arange(n, dtype=np.int64)
    values = np.round(50.0 + np.cumsum(rng.normal(0.0, 1.0, n)), 2)
    return ts, values


def reduce_once(op: str, ts: np.ndarray, values: np.ndarray, starts: np.ndarray) -> None:
    if op == "percentile":
        kernels.segment_percentile(values, starts, 0.95)
    elif op == "least_squares":
        kernels.segment_least_squares(ts, values, starts)
    else:
        kernels.segment_reduce(op, values, starts)


class BucketSuite:
    """Bucket numbers and run boundaries of 10 M timestamps into 1-minute buckets."""

    timeout = 300

    def setup(self) -> None:
        self.ts, _ = make_series()
        self.origin = START_MS - START_MS % 1000
        self.keys = kernels.bucket_fixed(self.ts, self.origin, WIDTH_MS)

    def time_bucket_fixed(self) -> None:
        kernels.bucket_fixed(self.ts, self.origin, WIDTH_MS)

    def peakmem_bucket_fixed(self) -> None:
        kernels.bucket_fixed(self.ts, self.origin, WIDTH_MS)

    def time_segment_starts(self) -> None:
        kernels.segment_starts(self.keys)

    def time_bucket_runs(self) -> None:
        """What the engine calls for fixed units: both of the above in one pass."""
        kernels.bucket_runs(self.ts, self.origin, WIDTH_MS)

    def peakmem_segment_starts(self) -> None:
        kernels.segment_starts(self.keys)


class ReduceSuite:
    """One range sub-aggregation over 10 M points in 1-minute segments."""

    timeout = 300
    params = [REDUCTIONS]
    param_names = ["op"]

    def setup(self, op: str) -> None:
        self.ts, self.values = make_series()
        self.starts = kernels.segment_starts(kernels.bucket_fixed(self.ts, START_MS, WIDTH_MS))

    def time_reduce(self, op: str) -> None:
        reduce_once(op, self.ts, self.values, self.starts)

    def peakmem_reduce(self, op: str) -> None:
        reduce_once(op, self.ts, self.values, self.starts)


class SmaSuite:
    """Moving average over 10 M points: KairosDB-exact window sums and the O(n) running sum."""

    timeout = 300
    params = [[10, 100, 1000], [True, False]]
    param_names = ["size", "exact"]

    def setup(self, size: int, exact: bool) -> None:
        if exact and size > kernels.SMA_EXACT_MAX_SIZE:
            raise NotImplementedError("O(n * size): about 10 s a run")  # asv skips this case
        _, self.values = make_series()

    def time_sma(self, size: int, exact: bool) -> None:
        kernels.sma(self.values, size, exact=exact)

    def peakmem_sma(self, size: int, exact: bool) -> None:
        kernels.sma(self.values, size, exact=exact)


def main() -> None:
    ts, values = make_series()
    keys = kernels.bucket_fixed(ts, START_MS, WIDTH_MS)
    starts = kernels.segment_starts(keys)
    print(f"{N_POINTS:,} points, {len(starts):,} segments of 1 minute")
    runs = {
        "bucket_fixed": lambda: kernels.bucket_fixed(ts, START_MS, WIDTH_MS),
        "segment_starts": lambda: kernels.segment_starts(keys),
        "bucket_runs": lambda: kernels.bucket_runs(ts, START_MS, WIDTH_MS),
        **{op: (lambda op=op: reduce_once(op, ts, values, starts)) for op in REDUCTIONS},
        "sma(10)": lambda: kernels.sma(values, 10),
        "sma(1000, running)": lambda: kernels.sma(values, 1000, exact=False),
    }
    for name, fn in runs.items():
        t = best(fn, 5)
        print(f"{name:>20}: {t * 1e3:8.1f} ms  {N_POINTS / t / 1e6:8.1f} M points/s")


if __name__ == "__main__":
    main()
