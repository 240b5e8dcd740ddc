"""The embedded engine across processes: kill -9 at any moment (compactions included) loses
nothing checkpointed, and readers in other processes never see a torn state."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kairos.storage.embedded.store import EmbeddedStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERIES = 20
POINTS = 50  # per series per batch

# The writer: batch i adds points i*POINTS .. (i+1)*POINTS-1 to every series, checkpointing
# wal position i+1 with it, and compacts with fanout 2 (a compaction every other apply).
WRITER = textwrap.dedent(
    f"""
    import sys
    import numpy as np
    from kairos.model.batch import BatchBuilder
    from kairos.storage.embedded.store import EmbeddedStore

    store = EmbeddedStore(sys.argv[1], writer=True, fanout=2)
    compact = store.compact

    def traced(*a, **k):
        print("C", flush=True)
        compact(*a, **k)
        print("c", flush=True)

    store.compact = traced
    i = store.wal_positions.get("w", 0)
    while True:
        b = BatchBuilder()
        ts = np.arange(i * {POINTS}, (i + 1) * {POINTS}, dtype=np.int64)
        for s in range({SERIES}):
            sid = b.series_id("m", (("s", str(s)),), 0, 0)
            b.add(np.full(len(ts), sid, np.int32), ts, ts * 3)
        store.write_many([b.build()], {{"w": i + 1}})
        print(f"A {{i + 1}}", flush=True)
        i += 1
    """
)


def _check(store: EmbeddedStore) -> int:
    """Every series holds exactly the points of batches 0 .. n-1 for one n; returns n."""
    store.refresh()
    series = store.find_series("m", {})
    data = {d.info.tags: d for d in store.read(series, -(2**62), 2**62)}
    counts = set()
    for info in series:
        d = data.get(info.tags)
        ts = d.ts if d is not None else np.zeros(0, np.int64)
        n = len(ts)
        assert np.array_equal(ts, np.arange(n)), f"{info.tags}: gaps or duplicates"
        assert np.array_equal(d.values, ts * 3) if n else True, f"{info.tags}: wrong values"
        counts.add(n)
    assert len(counts) <= 1, f"series disagree: {sorted(counts)} points (a torn batch)"
    n = counts.pop() if counts else 0
    assert n % POINTS == 0
    return n // POINTS


def _spawn(data: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, data],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )


def test_sigkill_during_applies_and_compactions(tmp_path) -> None:
    rng = random.Random(7)
    data = str(tmp_path / "data")
    mid_compaction = 0
    for round_ in range(12):
        proc = _spawn(data)
        acked = 0
        # Half the rounds die right after a compaction started, the others at a random line.
        target = rng.randint(3, 30)
        for lines, line in enumerate(proc.stdout, 1):
            if line.startswith("A "):
                acked = int(line.split()[1])
            if round_ % 2 == 0 and line.startswith("C") and lines > target:
                time.sleep(rng.uniform(0, 0.01))
                mid_compaction += 1
                break
            if round_ % 2 == 1 and lines > target:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        store = EmbeddedStore(data, writer=True, fanout=2)  # recovery, as the writer starts
        try:
            applied = store.wal_positions.get("w", 0)
            assert applied >= acked, f"round {round_}: acknowledged {acked}, recovered {applied}"
            assert _check(store) == applied
        finally:
            store.close()
    assert mid_compaction >= 6


def _reader(data: str, seconds: float, out) -> None:
    store = EmbeddedStore(data)
    deadline = time.monotonic() + seconds
    checks, last = 0, 0
    try:
        while time.monotonic() < deadline:
            n = _check(store)
            assert n >= last, "went back in time"
            last = n
            checks += 1
        out.put(("ok", checks, last))
    except BaseException as e:  # report to the parent
        out.put(("error", repr(e), last))


def test_readers_never_see_a_torn_state(tmp_path) -> None:
    data = str(tmp_path / "data")
    os.makedirs(data)
    EmbeddedStore(data, writer=True).close()  # the manifest exists before readers open
    proc = _spawn(data)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(data, 6.0, out)) for _ in range(3)]
    try:
        for r in readers:
            r.start()
        results = [out.get(timeout=60) for _ in readers]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        for r in readers:
            r.join(10)
    for status, checks, last in results:
        assert status == "ok", checks
        assert checks > 5 and last > 5, (checks, last)
