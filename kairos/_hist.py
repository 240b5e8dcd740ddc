"""A cumulative fixed-bucket histogram cheap enough to record per request, shared by the HTTP
workers and the writer process (their dumps are merged bucket-wise by ``GET /metrics``)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = ["LATENCY_BOUNDS", "Hist"]

LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Hist:
    """Cumulative fixed-bucket histogram: ``counts[i]`` counts values <= ``bounds[i]``
    (exclusive of lower buckets); the last slot is +Inf."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0
    lo: float = float("inf")
    hi: float = float("-inf")

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, v: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, v)] += 1
        self.total += v
        self.n += 1
        self.lo = min(self.lo, v)
        self.hi = max(self.hi, v)

    def dump(self) -> dict:
        return {
            "counts": self.counts,
            "sum": self.total,
            "n": self.n,
            "min": self.lo if self.n else None,  # JSON has no infinities
            "max": self.hi if self.n else None,
        }
