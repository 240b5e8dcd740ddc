"""The MANIFEST file: which blocks and series are live, the tombstones, the WAL checkpoint.

One CRC frame holding JSON (``docs/storage-format.md``, "MANIFEST")::

    {"version": 2, "generation": g, "series_count": n, "next_segment": k,
     "segments": [{"name": "<12 digits>.kblk", "rows", "min_ts", "max_ts", "size", "chunks",
                   "level"}, ...],
     "tombstones": [{"series": [ids], "start", "end", "horizon"}, ...],
     "dead_series": [ids], "wal": {file: offset}}

It is replaced atomically (``MANIFEST.tmp``, fsync, rename, fsync of the directory), so a reader
sees the old manifest or the new one, never a mix.  It is the truth: after a crash
:func:`recover` cuts every other file back to what it names.
"""

from __future__ import annotations

import logging
import os

import orjson

from kairos.errors import CorruptFile
from kairos.storage._frame import FrameStatus, encode_frame, iter_frames
from kairos.storage._fs import fsync_dir, remove_quietly
from kairos.storage.embedded.blocks import Block
from kairos.storage.embedded.index import truncate_log

__all__ = [
    "BLOCK_SUFFIX",
    "VERSION",
    "ManifestFile",
    "block_name",
    "new_manifest",
    "recover",
    "seg_number",
]

log = logging.getLogger("kairos.store")

VERSION = 2
BLOCK_SUFFIX = ".kblk"


def new_manifest() -> dict:
    """The manifest of an empty store (what a process holds before one exists on disk)."""
    return {
        "version": VERSION,
        "generation": 0,
        "series_count": 0,
        "segments": [],
        "wal": {},
        "next_segment": 1,
        "tombstones": [],
        "dead_series": [],
    }


def block_name(number: int) -> str:
    """The file name (under ``segments/``) of block ``number``."""
    return f"{number:012d}{BLOCK_SUFFIX}"


def seg_number(seg: dict) -> int:
    """The number of a manifest's segment entry (its file name's digits)."""
    return int(seg["name"].split(".", 1)[0])


class ManifestFile:
    """``<data_dir>/MANIFEST``: read, parse (CRC checked) and atomic replace."""

    def __init__(self, data_dir: str) -> None:
        self.dir = data_dir
        self.path = os.path.join(data_dir, "MANIFEST")

    def read(self) -> bytes | None:
        """The file's bytes, or None when there is no manifest yet."""
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def parse(self, data: bytes) -> dict:
        frames = list(iter_frames(data))
        if not frames or frames[0][0] != FrameStatus.OK:
            raise CorruptFile(self.path, "manifest failed its CRC check")
        return orjson.loads(bytes(frames[0][2]))

    def load(self) -> dict | None:
        data = self.read()
        return None if data is None else self.parse(data)

    def write(self, m: dict) -> bytes:
        """Replace the manifest by ``m`` (temp file, fsync, rename, fsync of the directory);
        returns the bytes written."""
        tmp = self.path + ".tmp"
        data = encode_frame(orjson.dumps(m))
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            remove_quietly(tmp)  # a full disk: give the space back; the old manifest holds
            raise
        os.rename(tmp, self.path)
        fsync_dir(self.dir)
        return data


def recover(manifest: ManifestFile, seg_dir: str, series_path: str) -> dict | None:
    """Writer start-up: check the blocks the manifest names, delete the orphans an interrupted
    write left, and truncate series.log to the manifest's ``series_count``.

    Returns the manifest (None when there is none yet).  A version-1 manifest is returned as
    it is: converting it is the caller's job.
    """
    m = manifest.load()
    live = set()
    if m is not None:
        for seg in m["segments"]:
            path = os.path.join(seg_dir, seg["name"])
            try:
                size = os.path.getsize(path)
            except FileNotFoundError:
                raise CorruptFile(path, "block named by the manifest is missing") from None
            if size != seg["size"]:
                raise CorruptFile(path, f"block of {size} bytes, manifest says {seg['size']}")
            if m.get("version", 1) == VERSION:
                Block(path).close()  # footer and index CRC; chunks are checked when read
            live.add(seg["name"])
    for name in os.listdir(seg_dir):
        if name not in live:
            log.warning("removing orphan segment %s left by an interrupted write", name)
            os.unlink(os.path.join(seg_dir, name))
    if m is not None:
        # Series appended after the last manifest are dropped: their ids will be reassigned.
        truncate_log(series_path, m["series_count"])
    elif os.path.exists(series_path):
        os.truncate(series_path, 0)
    return m
