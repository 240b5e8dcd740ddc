"""Load scenarios: named, validated parameter sets for ``kairos perf run``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["SCENARIOS", "SUITES", "Scenario", "ScenarioError", "get", "select_suite"]


class ScenarioError(ValueError):
    """An unknown scenario or an invalid parameter; the message names the field and value."""


@dataclass(frozen=True)
class Scenario:
    """One load shape.  Every request carries ``batch_size`` points (or histograms)."""

    name: str
    description: str
    metrics: int
    """Distinct metric names written (``perf.<scenario>.m<i>``)."""
    duration: float
    """Seconds of load (the clock starts once every payload pool is built)."""
    batch_size: int
    """Points per request (histograms per request for ``histogram`` scenarios)."""
    concurrency: int
    """Sender processes, each with one keep-alive connection."""
    tag_combinations: int = 10
    """Series per metric: distinct (service, environment, region, host) tag sets."""
    points_per_series: int = 10
    """Datapoints per series entry of a body (``"datapoints": [[ts, v], ...]``)."""
    kind: str = "numeric"
    """``numeric`` (float values) or ``histogram``."""
    histogram_samples: tuple[int, int] = (1000, 5000)
    """Samples behind each histogram: uniform between the two bounds."""
    ramp: bool = False
    """Start senders one by one and stop when errors or latency break (stress test)."""
    gzip: bool = False
    pool_points: int = 500_000
    """Points pre-generated per sender before the clock starts; a sender that sends them all
    builds the next pool (with new timestamps) and reports the time it spent doing so."""

    def __post_init__(self) -> None:
        positive_int = (
            "metrics",
            "batch_size",
            "concurrency",
            "tag_combinations",
            "points_per_series",
            "pool_points",
        )
        for field in positive_int:
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ScenarioError(f"{self.name}: {field} must be an integer >= 1 (got {v!r})")
        if isinstance(self.duration, bool) or not isinstance(self.duration, int | float):
            raise ScenarioError(f"{self.name}: duration must be a number (got {self.duration!r})")
        if not self.duration > 0:
            raise ScenarioError(f"{self.name}: duration must be > 0 seconds (got {self.duration})")
        if self.kind not in ("numeric", "histogram"):
            raise ScenarioError(
                f"{self.name}: kind must be 'numeric' or 'histogram' (got {self.kind!r})"
            )
        lo, hi = self.histogram_samples
        if not 1 <= lo <= hi:
            raise ScenarioError(
                f"{self.name}: histogram_samples must satisfy 1 <= low <= high "
                f"(got {self.histogram_samples!r})"
            )
        if self.pool_points < self.batch_size:
            raise ScenarioError(
                f"{self.name}: pool_points ({self.pool_points}) must be >= batch_size "
                f"({self.batch_size})"
            )

    @property
    def series(self) -> int:
        return self.metrics * self.tag_combinations

    def with_overrides(self, **overrides) -> Scenario:
        """A copy with the non-``None`` overrides applied and validated again."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ScenarioError(f"{self.name}: unknown parameter(s) {', '.join(unknown)}")
        changes = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["histogram_samples"] = list(self.histogram_samples)
        d["series"] = self.series
        return d


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("small_scale", "50 metrics, 30 s", metrics=50, duration=30, batch_size=1000,
                 concurrency=2),
        Scenario("medium_scale", "500 metrics, 2 min", metrics=500, duration=120, batch_size=2000,
                 concurrency=3),
        Scenario("large_scale", "2,000 metrics, 5 min", metrics=2000, duration=300,
                 batch_size=5000, concurrency=4, pool_points=1_000_000),
        Scenario("stress_test", "5,000 metrics, 10 min, concurrency ramps up until errors or "
                 "latency break", metrics=5000, duration=600, batch_size=2000, concurrency=16,
                 ramp=True),
        Scenario("high_cardinality", "100 metrics x 1,000 tag combinations", metrics=100,
                 duration=60, batch_size=2000, concurrency=3, tag_combinations=1000,
                 points_per_series=2),
        Scenario("high_frequency", "many small batches (10 points per request)", metrics=50,
                 duration=60, batch_size=10, concurrency=6, points_per_series=1,
                 pool_points=100_000),
        Scenario("large_batch", "few large batches (10,000 points per request: Kairos's default "
                 "ingestion.max_batch_size)", metrics=100, duration=60, batch_size=10_000,
                 concurrency=2, points_per_series=100, pool_points=1_000_000),
        Scenario("memory_pressure", "histograms of 1k-5k samples, 50 per request", metrics=20,
                 duration=60, batch_size=50, concurrency=2, points_per_series=1,
                 kind="histogram", pool_points=20_000),
    )
}  # fmt: skip

SUITES: dict[str, tuple[str, ...]] = {
    "all": tuple(SCENARIOS),
    "quick": ("small_scale", "high_frequency", "large_batch", "memory_pressure"),
}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def select_suite(
    name: str, only: list[str] | None = None, skip: list[str] | None = None
) -> list[str]:
    """Scenario names of a suite (or one scenario), filtered by ``only`` then ``skip``."""
    names = list(SUITES[name]) if name in SUITES else [get(name).name]
    for n in (only or []) + (skip or []):
        get(n)
    if only:
        names = [n for n in names if n in only]
    names = [n for n in names if n not in (skip or [])]
    if not names:
        raise ScenarioError(f"suite {name!r} selects no scenario after --only/--skip")
    return names
