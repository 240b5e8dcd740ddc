"""Query response serialisation: ``points_fragment`` over 1.67 M avg-like doubles.

``python benchmarks/bench_format.py`` prints the medians of 15 runs (wall-clock and CPU time:
the CPU time is the steadier figure on a busy machine).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from kairos.query._format import points_fragment

N = 1_670_000


def avg_like(n: int = N, seed: int = 42) -> tuple[np.ndarray, ...]:
    """``n`` points of a 2-decimal random walk averaged over windows of 6, 1 s apart."""
    rng = np.random.default_rng(seed)
    raw = np.round(50 + np.cumsum(rng.normal(0, 1, n * 6)), 2)
    f = raw.reshape(n, 6).mean(axis=1)
    ts = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 1000
    return ts, f, np.zeros(n, np.int64), np.zeros(n, np.uint8)


class FormatSuite:
    def setup(self) -> None:
        self.args = avg_like()

    def time_points_fragment(self) -> None:
        points_fragment(*self.args)

    def peakmem_points_fragment(self) -> None:
        points_fragment(*self.args)


def medians_ms(fn, repeat: int = 15) -> tuple[float, float]:
    """Median wall-clock and CPU (user + system) milliseconds of ``repeat`` runs of ``fn``."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def main() -> None:
    args = avg_like()
    wall, cpu = medians_ms(lambda: points_fragment(*args))
    print(f"points_fragment, {N:,} avg-like doubles: median {wall:.1f} ms wall, {cpu:.1f} ms CPU")


if __name__ == "__main__":
    main()
