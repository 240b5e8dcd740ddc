"""The WAL positions Cassandra holds: ``<data_dir>/cassandra.checkpoint``.

One CRC frame (:mod:`kairos.storage._frame`) holding the JSON map ``{wal file: position}``.
The writer saves it only after Cassandra acknowledged every statement up to those positions,
by write-temp, fsync, rename, fsync-directory, so a reader sees the old or the new file whole;
readers (every HTTP worker) re-read it when its bytes change.
"""

from __future__ import annotations

import os
import threading

import orjson

from kairos.errors import CorruptFile
from kairos.storage._frame import FrameStatus, encode_frame, iter_frames
from kairos.storage._fs import fsync_dir

__all__ = ["CHECKPOINT", "Checkpoint"]

CHECKPOINT = "cassandra.checkpoint"


class Checkpoint:
    """The checkpoint file at ``path`` and the positions last loaded or saved."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.positions: dict[str, int] = {}
        self._bytes: bytes | None = None
        self._lock = threading.Lock()  # worker threads refreshing at once

    def load(self) -> None:
        """Re-read the file if its bytes changed (a missing file keeps the positions)."""
        with self._lock:
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        if data == self._bytes:
            return
        frames = list(iter_frames(data))
        if not frames or frames[0][0] != FrameStatus.OK:
            raise CorruptFile(self.path, "checkpoint failed its CRC check")
        self.positions = orjson.loads(bytes(frames[0][2]))
        self._bytes = data

    def save(self, positions: dict[str, int]) -> None:
        """Durably replace the file with ``positions``."""
        data = encode_frame(orjson.dumps(positions))
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(os.path.dirname(self.path) or ".")
        self.positions = dict(positions)
        self._bytes = data
