"""asv benchmarks for the Cassandra codec (``kairos.storage.cassandra.codec``).

One fixed-seed row of 100,000 points 10 s apart in the default 3-week row: int64 counter
values (mixed magnitudes, so varints of 1 to 9 bytes), float64 gauge values, 4-byte column
names, and short strings.  Each encode is paired with the decode of its output, which is what
the read path sees from the driver (one ``bytes`` per cell).  ``python
benchmarks/bench_cassandra_codec.py`` prints throughputs of the Cython path and the plain
reference without asv.
"""

from __future__ import annotations

import numpy as np

from benchmarks._timing import best
from kairos.storage.cassandra import codec

SEED = 20240701
N = 100_000
START_MS = 1_700_000_000_000
STEP_MS = 10_000
UNITS = [codec.MILLISECONDS, codec.SECONDS, codec.LEGACY]


def make_row(n: int = N) -> dict:
    rng = np.random.default_rng(SEED)
    ts = START_MS + STEP_MS * np.arange(n, dtype=np.int64)
    longs = (rng.integers(-(2**20), 2**20, n) << rng.integers(0, 40, n)).astype(np.int64)
    doubles = np.round(50.0 + np.cumsum(rng.normal(0.0, 1.0, n)), 2)
    strings = [f"host-{i % 97}/state={'ok' if i % 7 else 'degraded'}" for i in range(n)]
    return {
        "ts": ts,
        "row_time": codec.row_time(START_MS, codec.DEFAULT_ROW_WIDTH),
        "longs": longs,
        "doubles": doubles,
        "strings": strings,
    }


class ColumnSuite:
    """Column names of 100,000 timestamps in one row, per row_time_unit."""

    params = [UNITS]
    param_names = ["unit"]

    def setup(self, unit: str) -> None:
        row = make_row()
        self.ts, self.row_time = row["ts"], row["row_time"]
        self.cols = codec.encode_columns(self.ts, self.row_time, unit)

    def time_encode_columns(self, unit: str) -> None:
        codec.encode_columns(self.ts, self.row_time, unit)

    def peakmem_encode_columns(self, unit: str) -> None:
        codec.encode_columns(self.ts, self.row_time, unit)

    def time_decode_columns(self, unit: str) -> None:
        codec.decode_columns(self.cols, self.row_time, unit)

    def peakmem_decode_columns(self, unit: str) -> None:
        codec.decode_columns(self.cols, self.row_time, unit)

    def time_row_times(self, unit: str) -> None:
        codec.row_times(self.ts, codec.DEFAULT_ROW_WIDTH)


class ValueSuite:
    """Encode and decode 100,000 long, double and string values."""

    def setup(self) -> None:
        row = make_row()
        self.longs, self.doubles, self.strings = row["longs"], row["doubles"], row["strings"]
        self.long_cells = codec.encode_longs(self.longs)
        self.double_cells = codec.encode_doubles(self.doubles)
        self.string_cells = [codec.encode_string(s) for s in self.strings]

    def time_encode_longs(self) -> None:
        codec.encode_longs(self.longs)

    def peakmem_encode_longs(self) -> None:
        codec.encode_longs(self.longs)

    def time_decode_longs(self) -> None:
        codec.decode_longs(self.long_cells)

    def peakmem_decode_longs(self) -> None:
        codec.decode_longs(self.long_cells)

    def time_encode_doubles(self) -> None:
        codec.encode_doubles(self.doubles)

    def peakmem_encode_doubles(self) -> None:
        codec.encode_doubles(self.doubles)

    def time_decode_doubles(self) -> None:
        codec.decode_doubles(self.double_cells)

    def peakmem_decode_doubles(self) -> None:
        codec.decode_doubles(self.double_cells)

    def time_encode_strings(self) -> None:
        [codec.encode_string(s) for s in self.strings]

    def time_decode_strings(self) -> None:
        codec.decode_strings(self.string_cells)

    def peakmem_decode_strings(self) -> None:
        codec.decode_strings(self.string_cells)


def main() -> None:
    from kairos.storage.cassandra import _codec_reference as ref

    row = make_row()
    ts, rt = row["ts"], row["row_time"]
    longs, doubles, strings = row["longs"], row["doubles"], row["strings"]
    cols = codec.encode_columns(ts, rt, codec.MILLISECONDS)
    long_cells = codec.encode_longs(longs)
    double_cells = codec.encode_doubles(doubles)
    string_cells = [codec.encode_string(s) for s in strings]
    runs = {
        "row_times": (
            lambda: codec.row_times(ts, codec.DEFAULT_ROW_WIDTH),
            lambda: ref.row_times_ref(ts, codec.DEFAULT_ROW_WIDTH),
        ),
        "encode_columns": (
            lambda: codec.encode_columns(ts, rt, codec.MILLISECONDS),
            lambda: ref.encode_columns_ref(ts.tolist(), rt, codec.MILLISECONDS),
        ),
        "decode_columns": (
            lambda: codec.decode_columns(cols, rt, codec.MILLISECONDS),
            lambda: ref.decode_columns_ref(cols, rt, codec.MILLISECONDS),
        ),
        "encode_longs": (lambda: codec.encode_longs(longs), lambda: ref.encode_longs_ref(longs)),
        "decode_longs": (
            lambda: codec.decode_longs(long_cells),
            lambda: ref.decode_longs_ref(long_cells),
        ),
        "encode_doubles": (
            lambda: codec.encode_doubles(doubles),
            lambda: ref.encode_doubles_ref(doubles),
        ),
        "decode_doubles": (
            lambda: codec.decode_doubles(double_cells),
            lambda: ref.decode_doubles_ref(double_cells),
        ),
        "encode_string x n": (
            lambda: [codec.encode_string(s) for s in strings],
            lambda: [ref.encode_string_ref(s) for s in strings],
        ),
        "decode_strings": (
            lambda: codec.decode_strings(string_cells),
            lambda: ref.decode_strings_ref(string_cells),
        ),
    }
    print(f"{N:,} values; M values/s (Cython facade vs plain reference)")
    for name, (fast, slow) in runs.items():
        t_fast, t_slow = best(fast, 5), best(slow, repeat=1)
        print(
            f"{name:>18}: {N / t_fast / 1e6:7.2f}  vs {N / t_slow / 1e6:6.3f}"
            f"  ({t_slow / t_fast:5.0f}x)"
        )


if __name__ == "__main__":
    main()
