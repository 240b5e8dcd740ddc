"""asv benchmarks for the embedded engine's chunk codec (``kairos.storage.embedded.chunks``).

Three fixed-seed data sets, timestamps every 10 s with 1 % of them jittered by up to +-200 ms
and 0.1 % of the points missing, cut into chunks of 120 points (Prometheus' chunk size):

* ``gauge``: two-decimal gauges, ``round(50 + cumsum(normal(0, 0.5)), 2)``;
* ``random_walk``: the same walk at full double precision;
* ``counter``: int64 counters, ``cumsum(integers(0, 1000))``.

``python -m benchmarks.bench_chunks [--series 1000] [--points 100000] [--chunk 120]`` prints
bytes per point and encode / decode throughput (one core) of each set, and of the plain
reference on a small sample.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._timing import best
from kairos.storage.embedded import _chunks_reference as R
from kairos.storage.embedded import chunks

SEED = 20261126
START_MS = 1_700_000_000_000
STEP_MS = 10_000
CHUNK = 120
SETS = ["gauge", "random_walk", "counter"]


def make_series(kind: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, values)`` of about ``n`` points (int64 ms; float64, or int64 for ``counter``)."""
    rng = np.random.default_rng([SEED, seed])
    m = n + n // 1000 + 1
    ts = START_MS + STEP_MS * np.arange(m, dtype=np.int64)
    jitter = rng.random(m) < 0.01
    ts[jitter] += rng.integers(-200, 201, int(jitter.sum()))
    ts = np.delete(ts, rng.choice(m, m - n, replace=False))
    if kind == "counter":
        return ts, np.cumsum(rng.integers(0, 1000, n)).astype(np.int64)
    walk = 50.0 + np.cumsum(rng.normal(0.0, 0.5, n))
    return ts, (np.round(walk, 2) if kind == "gauge" else walk)


def encode_series(ts: np.ndarray, values: np.ndarray, chunk: int = CHUNK) -> list[bytes]:
    return [
        chunks.encode_chunk(ts[i : i + chunk], values[i : i + chunk])
        for i in range(0, len(ts), chunk)
    ]


class ChunkSuite:
    """Encode and decode one series of 1,000,000 points in chunks of 120."""

    params = [SETS]
    param_names = ["data"]
    timeout = 300

    def setup(self, data: str) -> None:
        self.ts, self.values = make_series(data, 1_000_000)
        self.bufs = encode_series(self.ts, self.values)
        self.end = int(self.ts[-1])

    def time_encode(self, data: str) -> None:
        encode_series(self.ts, self.values)

    def peakmem_encode(self, data: str) -> None:
        encode_series(self.ts, self.values)

    def time_decode(self, data: str) -> None:
        chunks.decode_chunks(self.bufs, START_MS, self.end)

    def peakmem_decode(self, data: str) -> None:
        chunks.decode_chunks(self.bufs, START_MS, self.end)

    def time_decode_one_chunk(self, data: str) -> None:
        chunks.decode_chunk(self.bufs[0])

    def track_bytes_per_point(self, data: str) -> float:
        return sum(map(len, self.bufs)) / len(self.ts)

    track_bytes_per_point.unit = "bytes"  # type: ignore[attr-defined]


class AlignedSeriesSuite:
    """10,000 gauge series of one 1,000-point chunk sampled at the same instants (query 2 of
    ``query_e2e``): ``decode_series`` decodes one timestamp array for all; and the CRC-32 check
    of their 10,000 records in one call."""

    timeout = 300

    def setup(self) -> None:
        import zlib

        rng = np.random.default_rng(SEED)
        ts = START_MS + STEP_MS * np.arange(1000, dtype=np.int64)
        self.bufs = [
            chunks.encode_chunk(ts, np.round(rng.uniform(0, 100, 1000), 2)) for _ in range(10_000)
        ]
        self.first = np.arange(len(self.bufs), dtype=np.int64)
        self.blob = b"".join(self.bufs)
        self.lengths = np.array([len(b) for b in self.bufs], np.int64)
        self.offsets = np.cumsum(self.lengths) - self.lengths
        self.crcs = np.array([zlib.crc32(b) for b in self.bufs], np.uint32)

    def time_decode_series(self) -> None:
        chunks.decode_series(self.bufs, self.first)

    def time_check_crcs(self) -> None:
        from kairos._native import crc

        crc.check_records(self.blob, self.offsets, self.lengths, self.crcs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=CHUNK)
    args = ap.parse_args()
    print(
        f"{args.series:,} series x {args.points:,} points, chunks of {args.chunk} points, "
        "best of 3 per series, one core"
    )
    for kind in SETS:
        size = points = 0
        t_enc = t_dec = 0.0
        for s in range(args.series):
            ts, values = make_series(kind, args.points, s)
            bufs = encode_series(ts, values, args.chunk)
            t_enc += best(lambda ts=ts, values=values: encode_series(ts, values, args.chunk))
            t_dec += best(lambda bufs=bufs: chunks.decode_chunks(bufs, START_MS, 2**62))
            size += sum(map(len, bufs))
            points += len(ts)
        # the plain reference, on the first 12,000 points of series 0
        ts, values = make_series(kind, 12_000, 0)
        r_bufs = [R.encode_chunk(ts[i : i + args.chunk], values[i : i + args.chunk])
                  for i in range(0, len(ts), args.chunk)]  # fmt: skip
        r_enc = best(
            lambda ts=ts, values=values: [
                R.encode_chunk(ts[i : i + args.chunk], values[i : i + args.chunk])
                for i in range(0, len(ts), args.chunk)
            ],
            1,
        )
        r_dec = best(lambda r_bufs=r_bufs: [R.decode_chunk(b) for b in r_bufs], 1)
        print(
            f"{kind:>12}: {size / points:6.3f} bytes/point  "
            f"encode {points / t_enc / 1e6:7.1f} M points/s  "
            f"decode {points / t_dec / 1e6:7.1f} M points/s  "
            f"(reference: encode {len(ts) / r_enc / 1e6:6.3f}, decode {len(ts) / r_dec / 1e6:6.3f})"
        )


if __name__ == "__main__":
    main()
