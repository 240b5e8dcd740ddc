"""asv benchmarks for the histogram type: bucketing, merging and percentiles.

Data comes from a fixed seed.  Latency-like samples (log-normal) go into 100 log-spaced
boundaries; the merged histograms use four different boundary layouts so the merge has to build
and remap onto a union.
"""

from __future__ import annotations

import numpy as np

from kairos.model.histogram import Histogram, merge_all, percentiles

SEED = 20240501


class HistogramSuite:
    """Bucket 1,000,000 samples; merge 1,000 histograms; p99 of 10,000 histograms."""

    timeout = 120

    def setup(self) -> None:
        rng = np.random.default_rng(SEED)
        self.boundaries = np.geomspace(0.1, 1e5, 100)
        self.samples = rng.lognormal(mean=3.0, sigma=1.5, size=1_000_000)

        layouts = [np.geomspace(lo, lo * 1e6, 100) for lo in (0.1, 0.2, 0.5, 1.0)]
        self.to_merge = []
        for i in range(1_000):
            bounds = layouts[i % len(layouts)]
            counts = rng.integers(0, 50, size=bounds.shape[0] + 1)
            self.to_merge.append(Histogram(bounds, counts, sum=float(counts.sum()), min=0.0))

        self.many = []
        for _ in range(10_000):
            counts = rng.integers(0, 1_000, size=self.boundaries.shape[0] + 1)
            self.many.append(Histogram(self.boundaries, counts, min=0.05, max=2e5))

    def time_bucket_1m_samples(self) -> None:
        Histogram.from_samples(self.samples, self.boundaries)

    def peakmem_bucket_1m_samples(self) -> None:
        Histogram.from_samples(self.samples, self.boundaries)

    def time_merge_1000(self) -> None:
        merge_all(self.to_merge)

    def peakmem_merge_1000(self) -> None:
        merge_all(self.to_merge)

    def time_percentile_10000(self) -> None:
        percentiles(self.many, 0.99)

    def peakmem_percentile_10000(self) -> None:
        percentiles(self.many, 0.99)
