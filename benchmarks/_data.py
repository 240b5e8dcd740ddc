"""Fixed-seed benchmark data shared by the asv suite and the end-to-end scripts."""

from __future__ import annotations

import numpy as np
import orjson

START_MS = 1_700_000_000_000


def ingest_body(
    n_series: int = 100, points_per_series: int = 100, seed: int = 42, t0: int = START_MS
) -> bytes:
    """A KairosDB ingest body: ``n_series`` metric objects of 2-decimal gauges and counters."""
    rng = np.random.default_rng(seed)
    metrics = []
    for s in range(n_series):
        ts = t0 + np.arange(points_per_series, dtype=np.int64) * 10_000
        if s % 2:
            vals: list = np.round(50 + np.cumsum(rng.normal(0, 1, points_per_series)), 2).tolist()
        else:
            vals = np.cumsum(rng.integers(0, 100, points_per_series)).tolist()
        metrics.append(
            {
                "name": f"bench.metric.{s % 10}",
                "tags": {
                    "host": f"host-{s}",
                    "dc": ("eu", "us", "ap")[s % 3],
                    "service": f"svc{s % 7}",
                },
                "datapoints": [[int(t), v] for t, v in zip(ts.tolist(), vals, strict=True)],
            }
        )
    return orjson.dumps(metrics)
