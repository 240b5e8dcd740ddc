"""A process's view of the store: the manifest it last read and the blocks it names, mapped.

Readers take a new view when the manifest's bytes change; every block the new manifest names
is opened (mapped) before the view is taken, so a compaction that later unlinks one cannot pull
it away from a query.  Blocks the view no longer names are closed.
"""

from __future__ import annotations

import os
import threading

from kairos.errors import CorruptFile
from kairos.storage.embedded.blocks import Block
from kairos.storage.embedded.manifest import VERSION, ManifestFile, new_manifest

__all__ = ["View"]


class View:
    """The manifest in force for this process and its mapped blocks.

    ``lock`` (reentrant) guards taking a new view against queries running in executor threads.
    """

    def __init__(self, manifest_file: ManifestFile, seg_dir: str) -> None:
        self.file = manifest_file
        self.seg_dir = seg_dir
        self.manifest: dict = new_manifest()
        self.data: bytes | None = None  # the manifest's bytes as read or written
        self.blocks: dict[str, Block] = {}
        self.lock = threading.RLock()

    def block(self, name: str) -> Block:
        b = self.blocks.get(name)
        if b is None:
            b = Block(os.path.join(self.seg_dir, name))
            self.blocks[name] = b
        return b

    def live(self, start: int, end: int) -> list[tuple[dict, Block]]:
        """The segments (entry, block) that may hold points in [start, end], oldest first."""
        with self.lock:
            return [
                (seg, self.block(seg["name"]))
                for seg in self.manifest["segments"]
                if seg["rows"] and seg["max_ts"] >= start and seg["min_ts"] <= end
            ]

    def refresh(self, writer: bool) -> dict | None:
        """Take the manifest on disk if it changed; returns it (None when unchanged).

        Call with ``lock`` held.  The manifest is small; its bytes (not its stat) say whether
        it changed: a rename can reuse the inode number within one timestamp tick.  A block
        already gone means a newer manifest exists: read again.  A version-1 manifest (the
        writer is converting the store) is taken by the writer only; readers keep their view.
        """
        for _ in range(100):
            data = self.file.read()
            if data is None or data == self.data:
                return None
            m = self.file.parse(data)
            if m.get("version", 1) != VERSION and not writer:
                return None
            if m.get("version", 1) == VERSION:
                try:
                    for seg in m["segments"]:
                        self.block(seg["name"])
                except CorruptFile as e:
                    if os.path.exists(e.path):
                        raise
                    continue  # compacted away meanwhile: read the newer manifest
            self.take(m, data)
            return m
        raise CorruptFile(self.file.path, "kept naming blocks that do not exist")

    def take(self, m: dict, data: bytes) -> None:
        """Make ``m`` (whose bytes are ``data``) the view; close the blocks it does not name."""
        self.manifest = m
        self.data = data
        live = {s["name"] for s in m["segments"]}
        for name in list(self.blocks):
            if name not in live:
                self.blocks.pop(name).close()

    def retire(self, segs: list[dict]) -> None:
        """Unlink the files of ``segs`` (no longer named by the manifest on disk)."""
        for s in segs:
            blk = self.blocks.pop(s["name"], None)
            if blk is not None:
                blk.close()
            try:
                os.unlink(os.path.join(self.seg_dir, s["name"]))
            except FileNotFoundError:
                pass

    def close(self) -> None:
        for b in self.blocks.values():
            b.close()
        self.blocks.clear()
