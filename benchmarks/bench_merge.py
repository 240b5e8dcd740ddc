"""asv benchmarks for the k-way merge of a group's series (``kairos.query.kernels.merge_sorted``).

A tag group of ``k`` series x 1,000 points 10 s apart sharing every timestamp (the worst case
for ties: each timestamp is a run of ``k`` points ordered by value), two-decimal values.  The
old path, ``np.lexsort((f, ts))`` of the concatenation, is timed alongside, and so is the
values-only merge (``perm=False``: no long values to carry, the engine's common case).
``python benchmarks/bench_merge.py`` prints the throughput without asv.
"""

from __future__ import annotations

import numpy as np

from benchmarks._timing import best
from kairos.query import kernels

SEED = 20240612
PER_SERIES = 1000
START_MS = 1_700_000_000_000
STEP_MS = 10_000


def make_group(k: int, per: int = PER_SERIES) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``k`` series of ``per`` points, the same timestamps, uniform two-decimal values."""
    rng = np.random.default_rng(SEED)
    ts = START_MS + STEP_MS * np.arange(per, dtype=np.int64)
    return [ts.copy() for _ in range(k)], [np.round(rng.uniform(0, 100, per), 2) for _ in range(k)]


class MergeSuite:
    """Merge one group of ``k`` series (``k`` x 1,000 points)."""

    timeout = 120
    params = [[2, 10, 100, 1000]]
    param_names = ["k"]

    def setup(self, k: int) -> None:
        self.ts_list, self.f_list = make_group(k)
        self.ts = np.concatenate(self.ts_list)
        self.f = np.concatenate(self.f_list)

    def time_merge_sorted(self, k: int) -> None:
        kernels.merge_sorted(self.ts_list, self.f_list)

    def time_merge_sorted_values_only(self, k: int) -> None:
        """Doubles only (no long values to carry): the engine's common case."""
        kernels.merge_sorted(self.ts_list, self.f_list, perm=False)

    def peakmem_merge_sorted(self, k: int) -> None:
        kernels.merge_sorted(self.ts_list, self.f_list)

    def time_lexsort(self, k: int) -> None:
        np.lexsort((self.f, self.ts))


def main() -> None:
    for k in MergeSuite.params[0]:
        ts_list, f_list = make_group(k)
        ts, f = np.concatenate(ts_list), np.concatenate(f_list)
        n = len(ts)
        t_merge = best(lambda a=ts_list, b=f_list: kernels.merge_sorted(a, b), 5)
        t_vals = best(lambda a=ts_list, b=f_list: kernels.merge_sorted(a, b, perm=False), 5)
        t_lex = best(lambda a=ts, b=f: np.lexsort((b, a)), 5)
        print(
            f"k={k:>5}: merge_sorted {t_merge * 1e3:7.2f} ms ({n / t_merge / 1e6:6.1f} M points/s)"
            f"   values only {t_vals * 1e3:7.2f} ms ({n / t_vals / 1e6:6.1f} M points/s)"
            f"   lexsort {t_lex * 1e3:7.2f} ms ({n / t_lex / 1e6:6.1f} M points/s)"
        )


if __name__ == "__main__":
    main()
