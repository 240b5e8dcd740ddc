"""Query response serialisation: ``points_fragment`` over 1.67 M avg-like doubles, and the
gzip of that response (``kairos.app.compression.gzip_bytes``, against zlib's level 5).

``python -m benchmarks.bench_format`` prints the medians of 15 runs (wall-clock and CPU time:
the CPU time is the steadier figure on a busy machine).
"""

from __future__ import annotations

import statistics
import time
import zlib

import numpy as np
import orjson

from kairos.app.compression import gzip_bytes
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


class GzipSuite:
    """gzip of the 1.67 M-point response (~54 MB of JSON)."""

    timeout = 300

    def setup(self) -> None:
        self.body = response(avg_like())

    def time_gzip_response(self) -> None:
        gzip_bytes(self.body)

    def track_gzip_ratio(self) -> float:
        return len(self.body) / len(gzip_bytes(self.body))

    track_gzip_ratio.unit = "x"  # type: ignore[attr-defined]


def response(args: tuple[np.ndarray, ...]) -> bytes:
    """A query response holding one result of these points, as the server sends it."""
    result = {"name": "m", "group_by": [{"name": "type", "type": "number"}], "tags": {}}
    result["values"] = points_fragment(*args)
    return orjson.dumps({"queries": [{"sample_size": len(args[0]), "results": [result]}]})


def zlib5(body: bytes) -> bytes:
    c = zlib.compressobj(5, zlib.DEFLATED, 31)
    return c.compress(body) + c.flush()


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
    body = response(args)
    for name, fn in (("gzip_bytes (ISA-L level 1)", gzip_bytes), ("zlib level 5", zlib5)):
        wall, cpu = medians_ms(lambda fn=fn: fn(body), repeat=5)
        ratio = len(body) / len(fn(body))
        print(f"{name}, {len(body) / 1e6:.1f} MB: median {wall:.0f} ms wall, {ratio:.2f}x smaller")


if __name__ == "__main__":
    main()
