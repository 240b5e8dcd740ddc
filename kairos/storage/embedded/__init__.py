"""The embedded engine (version 2): compressed blocks, a series log, postings, a manifest.

Files under ``<data_dir>`` (byte formats: ``docs/storage-format.md``)::

    MANIFEST            one CRC frame of JSON: version, generation, series_count, next_segment,
      |                 segments (blocks, oldest first, each with its level), tombstones,
      |                 dead_series, wal (the WAL positions applied: the writer's checkpoint)
      |-- names ------> segments/<n>.kblk   immutable blocks: each series' points in chunks of
      |                                      <= 4096 (delta-of-delta timestamps, compressed
      |                                      values), an offset index (series, count, time
      |                                      range, offset, length, CRC), a footer; one mmap
      '-- counts -----> series.log          CRC frames [metric, [name, value, ...], kind];
                                             frame n defines series id n
    wal/                see ``kairos.storage.wal``

Modules, each with one job (``store.py`` is the facade that keeps them in step)::

    manifest.py    MANIFEST: parse, CRC, atomic replace; recovery at the writer's start
    index.py       series.log + in memory: series, postings metric -> tag -> value -> sids
    view.py        the manifest a process last read and the blocks it names, mapped
    read.py        chunk selection across blocks, one-kernel-call decode, merged reads,
                   hidden points (tombstones, TTL, retention)
    write.py       batches -> one sorted level-0 block; deletes -> tombstones
    compaction.py  size-tiered: ``fanout`` blocks of a level -> one block of the next
    migrate.py     a version-1 store (Arrow segments) -> blocks, once, at the writer's start
    blocks.py      the block file; chunks.py the chunk codec (Cython kernels behind it)

Invariants:

- Only the writer process mutates, in this order: block (temp file, fsync, rename) ->
  series.log append (fsync) -> MANIFEST (temp, fsync, rename, fsync dir) -> compacted blocks
  unlinked.  A crash anywhere leaves the previous manifest, whose WAL positions make the
  writer re-apply the rest; at its start the writer deletes blocks the manifest does not name
  and truncates series.log to ``series_count``.
- Blocks are never modified.  Readers (every HTTP worker) map every block a manifest names
  before taking it as their view, so a compaction unlinking one never pulls it from a query.
- Every writer apply cuts a level-0 block (the head is on disk: other processes must see new
  points within the apply interval).  Within a block one point per (series, ts); across blocks
  the newer block (later in the manifest's list) wins: that is how overwrites work.  The blocks
  of one level are contiguous in the list.
- A tombstone ``{"series", "start", "end", "horizon"}`` hides those series' points in
  [start, end] held by blocks numbered below ``horizon`` (later writes are not affected).
  Compaction drops hidden, TTL-expired and retention-expired points and forgets tombstones no
  live block is old enough to need.  ``dead_series`` (emptied by a delete) vanish from names,
  tag lookups and queries until new points arrive.
- Every process loads series.log incrementally; postings are ascending (ids only grow) and
  intersected for tag filters, so a lookup costs the same whatever the time range.
"""

from kairos.storage.embedded.store import EmbeddedStore

__all__ = ["EmbeddedStore"]
