"""Timing helper of the benchmarks' ``python benchmarks/bench_*.py`` summaries (asv does its
own timing)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["best"]


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    """The shortest of ``repeat`` wall-clock runs of ``fn``, in seconds."""
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out
