"""Parsing a ``POST /api/v1/datapoints`` body: fast path vs general path vs bare ``orjson.loads``.

The body is 100 series x 100 points (10,000 points, ~260 KB) from a fixed seed: 70 % of the
series are gauges with two-decimal values, the rest integer counters.  Run directly
(``python benchmarks/bench_ingest.py``) to print the median points/s of each.
"""

from __future__ import annotations

import random

import orjson

from kairos.ingest.fast import try_fast_parse
from kairos.ingest.parser import parse_datapoints

N_SERIES = 100
N_POINTS = 100
SEED = 20240611


def make_body(n_series: int = N_SERIES, n_points: int = N_POINTS, seed: int = SEED) -> bytes:
    """A typical ingest body, as a collector would send it (compact JSON)."""
    rng = random.Random(seed)
    objs = []
    for i in range(n_series):
        t0 = 1_700_000_000_000 + rng.randrange(0, 10_000)
        if rng.random() < 0.7:
            level = rng.uniform(0, 1000)
            values: list[float | int] = [round(level + rng.gauss(0, 5), 2) for _ in range(n_points)]
        else:
            start = rng.randrange(0, 10**9)
            values = [start + j * rng.randrange(1, 1000) for j in range(n_points)]
        objs.append(
            {
                "name": f"metric.{i % 25}",
                "tags": {"host": f"h{i // 25}", "dc": rng.choice(["eu", "us"])},
                "datapoints": [[t0 + j * 10_000, v] for j, v in enumerate(values)],
            }
        )
    return orjson.dumps(objs)


class IngestParse:
    """Whole-body parse of the 10,000-point body into a batch (or Python objects for orjson)."""

    def setup(self) -> None:
        self.body = make_body()
        if try_fast_parse(self.body) is None:
            raise RuntimeError("the benchmark body must take the fast path")

    def time_fast(self) -> None:
        try_fast_parse(self.body)

    def peakmem_fast(self) -> None:
        try_fast_parse(self.body)

    def time_general(self) -> None:
        parse_datapoints(self.body)

    def peakmem_general(self) -> None:
        parse_datapoints(self.body)

    def time_orjson_loads(self) -> None:
        orjson.loads(self.body)

    def peakmem_orjson_loads(self) -> None:
        orjson.loads(self.body)


def _main() -> None:
    import statistics
    import timeit

    bench = IngestParse()
    bench.setup()
    n = N_SERIES * N_POINTS
    cases = {
        "try_fast_parse": bench.time_fast,
        "orjson.loads": bench.time_orjson_loads,
        "parse_datapoints": bench.time_general,
    }
    # Interleaved short runs, so that all three see the same machine load.
    runs: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(41):
        for label, fn in cases.items():
            runs[label].append(min(timeit.repeat(fn, number=3, repeat=3)) / 3)
    print(f"body: {len(bench.body)} bytes, {n} points; median of 41 runs")
    for label, times in runs.items():
        med = statistics.median(times)
        print(f"{label:18s} {med * 1e6:9.1f} us   {n / med / 1e6:7.2f} M points/s")


if __name__ == "__main__":
    _main()
