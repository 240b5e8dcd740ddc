"""Realistic, deterministic KairosDB ingest bodies for the load tester.

Series: metric ``perf.<scenario>.m<i>`` x tag combination ``c``; combination ``c`` always has
the same (service, environment, region, host) tags, plus ``perf_run=<run id>`` so the read-back
check of one run never counts another run's points.

Uniqueness: sender ``k`` of ``n`` gives the ``j``-th point it writes to a series the timestamp
``base_ms + j * n + k``, so no two points of a run share (series, timestamp) and the number of
points the server stores equals the number acknowledged.  ``base_ms`` is a multiple of
``ROUND_MS`` (10**6 ms); a sender that has sent its whole pool re-sends it with every
timestamp shifted by ``ROUND_MS`` (same values; see :class:`Pool`).

Values: each metric follows one distribution (normal, exponential or bimodal) with its own
location and scale; histogram scenarios summarise 1k-5k such samples per point into the
explicit-bucket form ``{"boundaries", "counts", "sum", "min", "max"}``.
"""

from __future__ import annotations

import dataclasses
import gzip as _gzip
import re
from dataclasses import dataclass

import numpy as np
import orjson

from kairos.perf.scenarios import Scenario, ScenarioError

__all__ = ["Payload", "PayloadFactory", "Pool", "metric_names", "tag_set"]

SERVICES = ("api", "auth", "billing", "search", "checkout", "inventory", "gateway", "worker")
ENVIRONMENTS = ("production", "staging", "development")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-1")
DISTRIBUTIONS = ("normal", "exponential", "bimodal")
# Histogram buckets: 0.5 * 1.5**k, k = 0..23 (0.5 .. ~5,600), like latency buckets in ms.
BOUNDARIES = [round(0.5 * 1.5**k, 6) for k in range(24)]


def metric_names(scenario: Scenario) -> list[str]:
    return [f"perf.{scenario.name}.m{i:05d}" for i in range(scenario.metrics)]


def tag_set(combination: int, run_id: str) -> dict[str, str]:
    c = combination
    service = SERVICES[c % len(SERVICES)]
    return {
        "service": service,
        "environment": ENVIRONMENTS[(c // len(SERVICES)) % len(ENVIRONMENTS)],
        "region": REGIONS[(c // (len(SERVICES) * len(ENVIRONMENTS))) % len(REGIONS)],
        "host": f"{service}-{c:05d}",
        "perf_run": run_id,
    }


@dataclass
class Payload:
    """One request body (gzip-compressed when ``gzip``) and what it carries."""

    body: bytes
    points: int
    gzip: bool


class PayloadFactory:
    """Builds the bodies one sender posts, in pools, deterministically for a seed.

    Parameters
    ----------
    scenario : the load shape (metrics, series, batch size, value kind).
    seed : the run's seed; each sender draws from ``default_rng([seed, sender])``.
    sender, senders : this sender's index and the number of senders (timestamp interleave).
    base_ms : the run's first timestamp (ms since the epoch, a multiple of ``ROUND_MS``).
    run_id : value of the ``perf_run`` tag.
    """

    def __init__(
        self, scenario: Scenario, seed: int, sender: int, senders: int, base_ms: int, run_id: str
    ) -> None:
        self.scenario = scenario
        self.sender = sender
        self.senders = senders
        self.base_ms = base_ms
        self.rng = np.random.default_rng([seed, sender])
        params = np.random.default_rng([seed, 1_000_003])
        m = scenario.metrics
        self.names = metric_names(scenario)
        self.dist = np.arange(m) % len(DISTRIBUTIONS)
        self.loc = np.round(params.uniform(1, 1000, m), 1)
        self.scale = np.round(params.uniform(0.5, 50, m), 2)
        self.tags = [tag_set(c, run_id) for c in range(scenario.tag_combinations)]
        self.counters = [0] * scenario.series
        self.max_ts = base_ms - 1

    def values(self, metric: int, n: int) -> np.ndarray:
        """``n`` float64 samples of ``metric``'s distribution."""
        loc, scale = self.loc[metric], self.scale[metric]
        kind = DISTRIBUTIONS[self.dist[metric]]
        if kind == "normal":
            v = self.rng.normal(loc, scale, n)
        elif kind == "exponential":
            v = self.rng.exponential(scale, n)
        else:
            second = self.rng.random(n) < 0.3
            v = np.where(second, self.rng.normal(loc * 3, scale, n), self.rng.normal(loc, scale, n))
        return v

    def histogram(self, metric: int) -> dict:
        lo, hi = self.scenario.histogram_samples
        samples = np.abs(self.values(metric, int(self.rng.integers(lo, hi + 1))))
        idx = np.searchsorted(BOUNDARIES, samples, side="left")
        counts = np.bincount(idx, minlength=len(BOUNDARIES) + 1)
        return {
            "boundaries": BOUNDARIES,
            "counts": counts.tolist(),
            "sum": round(float(samples.sum()), 6),
            "min": float(samples.min()),
            "max": float(samples.max()),
        }

    def _values_of(self, metric: np.ndarray) -> np.ndarray:
        """One sample per element of ``metric`` (int64), each from its metric's distribution."""
        n = len(metric)
        loc, scale, dist = self.loc[metric], self.scale[metric], self.dist[metric]
        z = self.rng.standard_normal(n)
        expo = self.rng.standard_exponential(n)
        second = self.rng.random(n) < 0.3
        bimodal = np.where(second, 3 * loc, loc) + scale * z
        return np.select([dist == 0, dist == 1], [loc + scale * z, scale * expo], bimodal)

    def body(self) -> Payload:
        """The next request body: ``batch_size`` points spread over random series."""
        sc = self.scenario
        pps = sc.points_per_series
        sizes = [pps] * (sc.batch_size // pps) + (
            [sc.batch_size % pps] if sc.batch_size % pps else []
        )
        series = self.rng.integers(0, sc.series, len(sizes)).tolist()
        counters = self.counters
        starts = []
        for s, n in zip(series, sizes, strict=True):
            starts.append(counters[s])
            counters[s] += n
        # Point i of an entry whose series had c points: j = c + i.
        sizes_a = np.array(sizes)
        offsets = np.arange(sc.batch_size) - np.repeat(np.cumsum(sizes_a) - sizes_a, sizes_a)
        j = np.repeat(np.array(starts, np.int64), sizes_a) + offsets
        ts = self.base_ms + j * self.senders + self.sender
        self.max_ts = max(self.max_ts, int(ts.max()))
        metric = np.array(series) // sc.tag_combinations
        ts_list = ts.tolist()
        if sc.kind == "numeric":
            vals = np.round(self._values_of(np.repeat(metric, sizes_a)), 3).tolist()
        entries = []
        lo = 0
        for s, n, m in zip(series, sizes, metric.tolist(), strict=True):
            entry = {"name": self.names[m], "tags": self.tags[s % sc.tag_combinations]}
            if sc.kind == "histogram":
                entry["type"] = "histogram"
                entry["datapoints"] = [[t, self.histogram(m)] for t in ts_list[lo : lo + n]]
            else:
                entry["datapoints"] = list(
                    zip(ts_list[lo : lo + n], vals[lo : lo + n], strict=True)
                )
            entries.append(entry)
            lo += n
        raw = orjson.dumps(entries)
        if self.scenario.gzip:
            return Payload(_gzip.compress(raw, 1), sc.batch_size, True)
        return Payload(raw, sc.batch_size, False)

    def pool(self) -> Pool:
        """Bodies for ``pool_points`` points (at least one body), re-stampable into new rounds."""
        n = max(1, self.scenario.pool_points // self.scenario.batch_size)
        gz = self.scenario.gzip
        self.scenario = dataclasses.replace(self.scenario, gzip=False)
        try:
            bodies = [self.body().body for _ in range(n)]
        finally:
            self.scenario = dataclasses.replace(self.scenario, gzip=gz)
        if self.max_ts >= self.base_ms + ROUND_MS:
            raise ScenarioError(
                f"{self.scenario.name}: a pool of {self.scenario.pool_points} points spans "
                f"{self.max_ts - self.base_ms + 1} ms of timestamps per series, more than a "
                f"round ({ROUND_MS} ms): lower pool_points or raise the series count"
            )
        return Pool(bodies, self.scenario.batch_size, gz, self.base_ms, self.max_ts)


# Timestamps of one round share their digits above 10**6 (the base is a multiple of ROUND_MS
# and a pool spans less than ROUND_MS), so round r rewrites only those 7 digits.
ROUND_MS = 10**6
_TS = re.compile(rb"\[(\d{13}),")


class Pool:
    """A sender's pre-built bodies; round ``r`` shifts every timestamp by ``r * ROUND_MS``.

    Every timestamp of round 0 is ``base_ms + d`` with ``base_ms % ROUND_MS == 0`` and
    ``d < ROUND_MS``, so its 13 digits are the 7 digits of ``base_ms // ROUND_MS`` followed by
    the 6 of ``d``.  Each body is kept split around those 7 leading digits; round ``r`` joins
    the pieces with the digits of ``base_ms // ROUND_MS + r`` (a ``bytes.join``, no JSON
    encoding).  Rounds cover disjoint time ranges, so (series, timestamp) stays unique.
    """

    def __init__(self, bodies: list[bytes], points: int, gz: bool, base_ms: int, max_ts: int):
        if base_ms % ROUND_MS or len(str(base_ms)) != 13:
            raise ValueError(f"base_ms must be a 13-digit multiple of {ROUND_MS}, got {base_ms}")
        self.points, self.gzip, self.max_ts0 = points, gz, max_ts
        self.hi = base_ms // ROUND_MS
        self.bodies = bodies
        self.pieces: list[list[bytes]] = []
        for b in bodies:
            starts = [m.start(1) for m in _TS.finditer(b)]
            if len(starts) != points:
                raise AssertionError(f"found {len(starts)} timestamps in a {points}-point body")
            cuts = [0]
            for st in starts:
                if b[st : st + 7] != b"%07d" % self.hi:
                    raise AssertionError(f"timestamp {b[st : st + 13]!r} is outside the round")
                cuts += [st, st + 7]
            cuts.append(len(b))
            self.pieces.append([b[cuts[i] : cuts[i + 1]] for i in range(0, len(cuts), 2)])

    def __len__(self) -> int:
        return len(self.bodies)

    def max_ts(self, r: int) -> int:
        return self.max_ts0 + r * ROUND_MS

    def round(self, r: int) -> list[Payload]:
        """The bodies of round ``r`` (gzipped if the scenario asks)."""
        if r == 0:
            raws = self.bodies
        else:
            hi = b"%07d" % (self.hi + r)
            raws = [hi.join(p) for p in self.pieces]
        if self.gzip:
            return [Payload(_gzip.compress(b, 1), self.points, True) for b in raws]
        return [Payload(b, self.points, False) for b in raws]
