"""A result group's points as columns, as they flow through the aggregator chain.

``ts`` int64 timestamps in output order; for ``number`` groups ``f`` (float64 values) plus
``i`` (int64 exact values) and ``is_long`` (which points are longs: printed as integers);
for ``text``/``histogram`` groups ``objs`` (a list); ``null`` marks the null points ``gaps``
inserts; ``orig`` (histogram groups, optional) the sample count each histogram stood for
before the histogram ``filter`` dropped bins (``None``: its own count), which
``percent_remaining`` divides by. ``rep`` > 1 says that ``ts`` is ``np.repeat(ts[::rep], rep)``
(a merge of ``rep`` series that share their timestamps), so that bucketing can look at each
timestamp once; anything derived from the stream (``take``) drops it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Stream"]


@dataclass(slots=True)
class Stream:
    gtype: str  # number | text | histogram
    ts: np.ndarray
    f: np.ndarray | None = None
    i: np.ndarray | None = None
    is_long: np.ndarray | None = None
    objs: list | None = None
    null: np.ndarray | None = None
    orig: np.ndarray | None = None
    rep: int = 1

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def take(self, idx: np.ndarray | slice) -> Stream:
        """The points at ``idx`` (an index array, boolean mask or slice)."""
        objs = None
        if self.objs is not None:
            if isinstance(idx, slice):
                objs = self.objs[idx]
            else:
                sel = np.flatnonzero(idx) if idx.dtype == bool else idx
                objs = [self.objs[j] for j in sel.tolist()]
        return Stream(
            self.gtype,
            self.ts[idx],
            None if self.f is None else self.f[idx],
            None if self.i is None else self.i[idx],
            None if self.is_long is None else self.is_long[idx],
            objs,
            None if self.null is None else self.null[idx],
            None if self.orig is None else self.orig[idx],
        )

    @classmethod
    def doubles(cls, ts: np.ndarray, f: np.ndarray) -> Stream:
        return cls("number", ts, f, None, np.zeros(len(ts), bool))

    @classmethod
    def longs(cls, ts: np.ndarray, i: np.ndarray) -> Stream:
        return cls("number", ts, i.astype(np.float64), i, np.ones(len(ts), bool))
