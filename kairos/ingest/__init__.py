"""Ingest: request bodies -> validated columnar batches.

``ingest_body`` tries the Cython scanner first (``fast.try_fast_parse``: raw bytes straight
into arrays, for bodies of the common shape) and falls back to the general path (``parser``),
which produces exactly KairosDB's results and messages for everything; for the bodies the
scanner accepts, both give the same batch (a property test holds them to it).
"""

from __future__ import annotations

from kairos.ingest.fast import try_fast_parse
from kairos.ingest.parser import IngestResult, _too_many, parse_datapoints
from kairos.model.batch import Batch

__all__ = ["Batch", "IngestResult", "ingest_body"]


def ingest_body(body: bytes, max_points: int) -> IngestResult:
    """Parse and validate a datapoints body; raises ``PayloadTooLarge`` past ``max_points``."""
    r = try_fast_parse(body)
    if r is not None:
        if len(r.batch) > max_points:
            raise _too_many(len(r.batch), max_points)
        return r
    return parse_datapoints(body, max_points=max_points)
