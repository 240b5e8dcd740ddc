"""Series selection by ``regex:`` tag filters: 20,000 series, ``h`` = ``host-0`` .. ``host-19999``.

Run from the repository root: ``PYTHONPATH=$PWD python benchmarks/regex_select.py``.
Prints the median of 15 selections (``_select``) and of 9 whole queries, in ms.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time

from kairos.ingest.parser import parse_datapoints
from kairos.query import engine
from kairos.query.model import parse_query
from kairos.storage.embedded.store import EmbeddedStore


def main() -> None:
    st = EmbeddedStore(tempfile.mkdtemp(), writer=True)
    objs = [
        {"name": "m", "datapoints": [[1, 1]], "tags": {"h": f"host-{i}", "dc": f"dc{i % 3}"}}
        for i in range(20000)
    ]
    for i in range(0, len(objs), 5000):
        st.write(parse_datapoints(json.dumps(objs[i : i + 5000]).encode()).batch)
    tags = {"h": "regex:host-1[0-9]*7", "dc": "regex:dc[01]"}
    q = parse_query({"start_absolute": 0, "metrics": [{"name": "m", "tags": tags}]})
    budget = "limits" in engine._select.__code__.co_varnames  # False before the regex budget

    def limits() -> engine.Limits:
        return engine.Limits(None, 30_000, 1_000) if budget else engine.Limits(None, 30_000)

    sel, runs = [], []
    for _ in range(15):
        t = time.perf_counter()
        kw = {"limits": limits()} if budget else {}
        n = len(engine._select(st, q.metrics[0], **kw))
        sel.append((time.perf_counter() - t) * 1000)
    for _ in range(9):
        t = time.perf_counter()
        engine.run_query(st, q, limits=limits())
        runs.append((time.perf_counter() - t) * 1000)
    print(
        f"{n} of 20000 series selected; select median {statistics.median(sel):.1f} ms "
        f"(range {min(sel):.1f}-{max(sel):.1f}); run_query median {statistics.median(runs):.1f} ms "
        f"(range {min(runs):.1f}-{max(runs):.1f})"
    )


if __name__ == "__main__":
    main()
