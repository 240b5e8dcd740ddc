"""The general ingest path: orjson decode + Cython columnar conversion + validation."""

from __future__ import annotations

import numpy as np
import orjson

from benchmarks._data import ingest_body
from kairos._native.columnar import convert_datapoints
from kairos.ingest.parser import parse_datapoints


class ColumnarSuite:
    """A 10,000-point body (100 series x 100 points)."""

    def setup(self) -> None:
        self.body = ingest_body()
        self.doc = orjson.loads(self.body)
        self.dps = self.doc[1]["datapoints"] * 100  # 10,000 double points in one list
        n = len(self.dps)
        self.ts = np.empty(n, np.int64)
        self.words = np.empty(n, np.int64)
        self.kinds = np.empty(n, np.uint8)

    def time_convert_datapoints_10k(self) -> None:
        convert_datapoints(self.dps, -1, None, self.ts, self.words, self.kinds)

    def time_general_path_10k(self) -> None:
        parse_datapoints(self.body)

    def peakmem_general_path_10k(self) -> None:
        parse_datapoints(self.body)

    def time_orjson_loads_10k(self) -> None:
        orjson.loads(self.body)
