"""WAL append and batch serialisation."""

from __future__ import annotations

import shutil
import tempfile

from benchmarks._data import ingest_body
from kairos.ingest.parser import parse_datapoints
from kairos.storage.wal import WalReader, WalWriter


class WalSuite:
    """Appending a 10,000-point batch (100 series) to the WAL, with and without fsync."""

    params = [False, True]
    param_names = ["sync"]

    def setup(self, sync: bool) -> None:
        self.dir = tempfile.mkdtemp(prefix="kairos-bench-wal-")
        self.batch = parse_datapoints(ingest_body()).batch
        self.payload = self.batch.to_ipc()
        self.wal = WalWriter(self.dir)

    def teardown(self, sync: bool) -> None:
        self.wal.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_append(self, sync: bool) -> None:
        self.wal.append(self.payload, sync=sync)

    def peakmem_append(self, sync: bool) -> None:
        self.wal.append(self.payload, sync=sync)

    def time_serialise_batch(self, sync: bool) -> None:
        self.batch.to_ipc()

    def time_read_back_100_records(self, sync: bool) -> None:
        for _ in range(100):
            self.wal.append(self.payload)
        WalReader(self.dir).poll()
