"""The pieces of a ``sync`` write's wait: the writer's wake-up FIFO and the worker's
:class:`~kairos.app.state.AppliedWaiter` (the end-to-end test is
``tests/integration/test_sync_visible.py``)."""

from __future__ import annotations

import asyncio
import os

import orjson

from kairos.app.state import AppliedWaiter
from kairos.config import Config
from kairos.ingest import ingest_body
from kairos.storage import open_store
from kairos.storage.records import encode_batch
from kairos.storage.wal import WalWriter
from kairos.storage.writer import WakeFifo, Writer, wake_writer


def _record(name: str, ts: int) -> bytes:
    body = orjson.dumps([{"name": name, "datapoints": [[ts, 1]], "tags": {"h": "a"}}])
    return encode_batch(ingest_body(body, 1000).batch)


def _values(store, name: str) -> list[int]:
    series = store.find_series(name, {})
    return sorted(int(t) for d in store.read(series, 0, 1 << 62) for t in d.ts)


def test_a_worker_wakes_the_writer(tmp_path) -> None:
    d = str(tmp_path)
    assert not wake_writer(d)  # no writer has made the FIFO
    fifo = WakeFifo(d)
    try:
        assert not fifo.wait(0)
        assert wake_writer(d)
        assert wake_writer(d)
        assert fifo.wait(30)  # returns at once; False only after 30 s without a wake-up
        assert not fifo.wait(0)  # both wake-ups were consumed by one wait
        fifo.set()  # the writer's own signal handler
        assert fifo.wait(30)
    finally:
        fifo.close()
    assert not wake_writer(d)  # the FIFO has no reader any more: never blocks


def test_a_regular_file_in_the_fifo_s_place_is_replaced(tmp_path) -> None:
    (tmp_path / "writer.wake").write_bytes(b"junk")
    fifo = WakeFifo(str(tmp_path))
    try:
        assert wake_writer(str(tmp_path))
        assert fifo.wait(30)
    finally:
        fifo.close()


def test_applied_follows_the_checkpoint_and_deleted_wal_files(tmp_path) -> None:
    """A record is applied once the checkpoint covers it, and also once its WAL file is gone:
    after a rotation the writer deletes the old file and a later checkpoint stops naming it."""
    config = Config(data_dir=str(tmp_path))
    writer = Writer(config)
    reader = open_store(config)
    wal = WalWriter(config.data_dir, segment_bytes=1)  # one record per file
    waiter = AppliedWaiter(reader, wal.dir)
    try:
        first = wal.append(_record("m", 1), sync=True)
        assert not waiter.applied(*first)
        second = wal.append(_record("m", 2), sync=True)  # a new file: the first is finished
        assert second[0] != first[0]
        writer.step()
        assert waiter.applied(*first) and waiter.applied(*second)
        assert _values(reader, "m") == [1, 2]
        third = wal.append(_record("m", 3), sync=True)  # rotates again
        assert not waiter.applied(*third)
        writer.step()
        assert waiter.applied(*third)
        assert first[0] not in reader.wal_positions  # the checkpoint forgot the deleted file
        assert not os.path.exists(os.path.join(wal.dir, first[0]))
        assert all(waiter.applied(*p) for p in (first, second, third))
        assert _values(reader, "m") == [1, 2, 3]
    finally:
        wal.close()
        reader.close()
        writer.store.close()


def test_one_poll_resolves_every_waiting_request(tmp_path) -> None:
    config = Config(data_dir=str(tmp_path))
    writer = Writer(config)
    reader = open_store(config)
    wal = WalWriter(config.data_dir)
    waiter = AppliedWaiter(reader, wal.dir)

    async def run() -> list[bool]:
        positions = [wal.append(_record(f"m{i}", i), sync=True) for i in range(5)]
        waits = [asyncio.create_task(waiter.wait(*p, timeout=30)) for p in positions]
        late = asyncio.create_task(waiter.wait(*wal.append(_record("late", 9), True), 0.05))
        await asyncio.sleep(0)
        assert not any(w.done() for w in waits)
        assert not await late  # nothing applied it: False after its timeout
        writer.step()
        return list(await asyncio.gather(*waits))

    try:
        assert asyncio.run(run()) == [True] * 5
        assert waiter._waiting == []
    finally:
        wal.close()
        reader.close()
        writer.store.close()
