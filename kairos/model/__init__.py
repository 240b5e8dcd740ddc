"""The data model every layer shares: the columnar batch, the histogram value, Java's rules.

Nothing here knows of HTTP, JSON requests, queries or storage; ``ingest`` builds batches,
``storage`` stores them, ``query`` reads them back::

    batch.py      Batch / BatchBuilder: series table + points table + objects (the WAL unit)
    histogram.py  Histogram: the histogram value type, its byte encoding and merge
    java.py       Java String order, long range, KairosDB's time units
"""

from kairos.model.batch import (
    DOUBLE,
    HISTOGRAM,
    KIND_NAMES,
    LONG,
    STRING,
    Batch,
    BatchBuilder,
    Tags,
)

__all__ = ["DOUBLE", "HISTOGRAM", "KIND_NAMES", "LONG", "STRING", "Batch", "BatchBuilder", "Tags"]
