"""What a WAL record holds: an ingest batch or a delete.

The payload's first byte says which: ``B`` + a batch in Arrow IPC
(:meth:`~kairos.model.batch.Batch.to_ipc`), or ``D`` + a JSON delete specification
``{"metric", "tags": {name: {"values": [...], "patterns": [...]}}, "start", "end"}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import regex

from kairos.errors import CorruptFile
from kairos.model.batch import Batch

__all__ = ["DeleteSpec", "decode_record", "encode_batch", "encode_delete"]

_BATCH = b"B"
_DELETE = b"D"


@dataclass(slots=True)
class DeleteSpec:
    """Delete the points of ``metric``'s series matching ``tags`` with start <= ts <= end."""

    metric: str
    tags: dict[str, tuple[list[str], list[str]]]  # name -> (literal values, regex patterns)
    start: int
    end: int

    def matcher(self):
        # The same engine and syntax as the query's tag filters (kairos.query.model), so every
        # pattern a delete request was validated with compiles here too.
        compiled = {
            k: (set(v), [regex.compile(p, regex.VERSION0) for p in pats])
            for k, (v, pats) in self.tags.items()
        }

        def matches(tags: dict[str, str]) -> bool:
            for k, (values, patterns) in compiled.items():
                v = tags.get(k)
                if v is None or not (v in values or any(p.fullmatch(v) for p in patterns)):
                    return False
            return True

        return matches


def encode_batch(batch: Batch) -> bytes:
    return _BATCH + batch.to_ipc()


def encode_delete(spec: DeleteSpec) -> bytes:
    tags = {k: {"values": v, "patterns": p} for k, (v, p) in spec.tags.items()}
    return _DELETE + orjson.dumps(
        {"metric": spec.metric, "tags": tags, "start": spec.start, "end": spec.end}
    )


def decode_record(payload: bytes | memoryview) -> Batch | DeleteSpec:
    kind = bytes(payload[:1])
    if kind == _BATCH:
        return Batch.from_ipc(memoryview(payload)[1:])
    if kind == _DELETE:
        d = orjson.loads(bytes(payload[1:]))
        tags = {k: (t["values"], t["patterns"]) for k, t in d["tags"].items()}
        return DeleteSpec(d["metric"], tags, d["start"], d["end"])
    raise CorruptFile("WAL record", f"unknown record type {kind!r}")
