"""Version 1 -> 2: a version-1 store's Arrow segments rewritten as blocks (writer start-up).

A version-1 segment (``segments/<n>.arrow``) is an Arrow IPC file with the columns ``series``,
``ts``, ``value``, ``expires`` and ``obj``, sorted by (series, ts).  Each becomes block ``<n>``
with the same level; the caller writes the version-2 manifest, then :func:`remove_v1_files`
deletes the Arrow files.
"""

from __future__ import annotations

import os

import numpy as np

from kairos.storage.embedded.blocks import Points
from kairos.storage.embedded.manifest import VERSION, seg_number
from kairos.storage.embedded.write import runs, write_segment

__all__ = ["convert_v1", "remove_v1_files"]


def convert_v1(m: dict, kinds: np.ndarray, seg_dir: str) -> dict:
    """Write a block for each segment of the version-1 manifest ``m`` (its series loaded:
    ``kinds`` gives each series' kind); returns the version-2 manifest naming them."""
    import pyarrow as pa  # only a version-1 store needs it

    segments = []
    number = m["next_segment"]
    for seg in m["segments"]:
        path = os.path.join(seg_dir, seg["name"])
        t = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
        sids = t.column("series").to_numpy().astype(np.int64)
        objs = t.column("obj").to_pylist()
        pts = Points(
            t.column("ts").to_numpy(),
            t.column("value").to_numpy(),
            t.column("expires").to_numpy(),
            objs if any(o is not None for o in objs) else None,
        )
        new = write_segment(seg_dir, seg_number(seg), kinds, runs(sids, pts))
        new["level"] = seg.get("level", 0)
        segments.append(new)
        number = max(number, seg_number(seg) + 1)
    m = dict(m, version=VERSION, segments=segments, next_segment=number)
    m["generation"] += 1
    return m


def remove_v1_files(seg_dir: str, segments: list[dict]) -> None:
    """Delete the Arrow segments the version-2 manifest's ``segments`` replaced."""
    live = {s["name"] for s in segments}
    for name in os.listdir(seg_dir):
        if name.endswith(".arrow") and name not in live:
            os.unlink(os.path.join(seg_dir, name))
