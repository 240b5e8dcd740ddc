"""The datastore conformance suite: every backend answers these the same way.

Each test runs on the embedded engine and on a real Cassandra (KairosDB's keyspace layout),
through the ``Datastore`` protocol the writer stage and the query engine use.  Cassandra tests
share one keyspace per session and isolate themselves by metric name.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import orjson
import pytest

from kairos.config import load
from kairos.ingest.parser import parse_datapoints
from kairos.model.batch import DOUBLE, HISTOGRAM, LONG, STRING
from kairos.model.histogram import Histogram
from kairos.storage import Datastore, open_store

LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1
W = 1814400000  # KairosDB's default row width: the Cassandra partition edges


@dataclass
class Backend:
    name: str
    writer: Datastore
    open_reader: Callable[[], Datastore]
    prefix: str

    def metric(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def write(self, points: list[dict], positions: dict[str, int] | None = None) -> None:
        r = parse_datapoints(orjson.dumps(points))
        assert r.errors == []
        self.writer.write_many([r.batch], positions)

    def reader(self) -> Datastore:
        store = self.open_reader()
        store.refresh()
        return store


_keyspace_counter = itertools.count()


@pytest.fixture(scope="session")
def cassandra_config(cassandra_contact_points, tmp_path_factory) -> dict:
    ks = f"kairos_conf_{uuid.uuid4().hex[:8]}"
    return {
        "KAIROSDB_DATASTORE": "cassandra",
        "KAIROSDB_CASSANDRA_CONTACT_POINTS": cassandra_contact_points,
        "KAIROSDB_CASSANDRA_KEYSPACE": ks,
        "KAIROSDB_DATA_DIR": str(tmp_path_factory.mktemp("cassandra-conformance")),
    }


@pytest.fixture(params=["embedded", pytest.param("cassandra", marks=pytest.mark.cassandra)])
def backend(request, tmp_path) -> Iterator[Backend]:
    if request.param == "embedded":
        env = {"KAIROSDB_DATA_DIR": str(tmp_path / "data")}
    else:
        env = dict(request.getfixturevalue("cassandra_config"))
        env["KAIROSDB_DATA_DIR"] = str(tmp_path / "data")
    config = load(env=env)
    writer = open_store(config, writer=True)
    readers: list[Datastore] = []

    def open_reader() -> Datastore:
        readers.append(open_store(config))
        return readers[-1]

    prefix = f"t{next(_keyspace_counter)}_{uuid.uuid4().hex[:6]}."
    yield Backend(request.param, writer, open_reader, prefix)
    for r in readers:
        r.close()
    writer.close()


def read_all(store: Datastore, metric: str, start: int = LONG_MIN, end: int = LONG_MAX, **tags):
    series = store.find_series(metric, {k: list(v) for k, v in tags.items()}, start, end)
    out = {}
    for d in store.read(series, start, end):
        values = d.values.tolist() if isinstance(d.values, np.ndarray) else list(d.values)
        out[(d.info.tags, d.info.kind)] = (d.ts.tolist(), values)
    return out


def test_round_trip_every_type(backend: Backend) -> None:
    m = backend.metric("types")
    hist = {"boundaries": [1, 2], "counts": [0, 3, 1], "sum": 6.5, "min": 1.5, "max": 2.5}
    backend.write(
        [
            {"name": m, "datapoints": [[1, 7], [2, LONG_MAX], [3, LONG_MIN]], "tags": {"h": "a"}},
            {"name": m, "datapoints": [[1, 2.5], [2, -0.0], [3, 1.5e300]], "tags": {"h": "a"}},
            {"name": m, "datapoints": [[1, "s\u00e9\U0001f600"], [2, "a:=b"]], "tags": {"h": "a"}},
            {"name": m, "type": "histogram", "datapoints": [[5, hist]], "tags": {"h": "a"}},
        ]
    )
    got = read_all(backend.reader(), m)
    tags = (("h", "a"),)
    assert got[(tags, LONG)] == ([1, 2, 3], [7, LONG_MAX, LONG_MIN])
    ts, doubles = got[(tags, DOUBLE)]
    assert ts == [1, 2, 3]
    assert [np.float64(v).tobytes() for v in doubles] == [
        np.float64(v).tobytes() for v in (2.5, -0.0, 1.5e300)
    ]
    assert got[(tags, STRING)] == ([1, 2], ["s\u00e9\U0001f600", "a:=b"])
    ts, hists = got[(tags, HISTOGRAM)]
    assert ts == [5]
    assert Histogram.from_bytes(hists[0]) == Histogram.from_json(hist)


def test_long_and_double_at_one_timestamp_are_two_series(backend: Backend) -> None:
    m = backend.metric("mixed")
    backend.write(
        [
            {"name": m, "timestamp": 10, "value": 1, "tags": {"h": "a"}},
            {"name": m, "timestamp": 10, "value": 1.5, "tags": {"h": "a"}},
        ]
    )
    got = read_all(backend.reader(), m)
    assert got == {((("h", "a"),), LONG): ([10], [1]), ((("h", "a"),), DOUBLE): ([10], [1.5])}


def test_tag_filtering(backend: Backend) -> None:
    m = backend.metric("tags")
    backend.write(
        [
            {"name": m, "datapoints": [[1, 1]], "tags": {"host": "a", "dc": "x"}},
            {"name": m, "datapoints": [[1, 2]], "tags": {"host": "b", "dc": "x"}},
            {"name": m, "datapoints": [[1, 3]], "tags": {"host": "c:=", "dc": "y=:"}},
        ]
    )
    r = backend.reader()
    assert {s.tags for s in r.find_series(m, {"host": ["a", "c:="]})} == {
        (("dc", "x"), ("host", "a")),
        (("dc", "y=:"), ("host", "c:=")),
    }
    assert [s.tags for s in r.find_series(m, {"dc": ["x"], "host": ["b"]})] == [
        (("dc", "x"), ("host", "b"))
    ]
    assert r.find_series(m, {"host": ["nope"]}) == []
    assert r.find_series(backend.metric("absent"), {}) == []


@pytest.mark.parametrize(
    "edge", [0, W, 17 * W, -W], ids=["zero", "one-row", "many-rows", "negative"]
)
def test_time_ranges_at_row_edges(backend: Backend, edge: int) -> None:
    m = backend.metric("edges")
    stamps = [edge - 2, edge - 1, edge, edge + 1, edge + W - 1, edge + W]
    backend.write([{"name": m, "datapoints": [[t, t % 1000] for t in stamps], "tags": {"h": "a"}}])
    r = backend.reader()

    def ts(start: int, end: int) -> list[int]:
        return read_all(r, m, start, end).get(((("h", "a"),), LONG), ([], []))[0]

    assert ts(LONG_MIN, LONG_MAX) == stamps
    assert ts(edge - 1, edge) == [edge - 1, edge]  # inclusive on both ends, across the edge
    assert ts(edge, edge + W - 1) == [edge, edge + 1, edge + W - 1]
    assert ts(edge + W - 1, edge + W - 1) == [edge + W - 1]
    assert ts(edge + 2, edge + W - 2) == []


def test_overwrite_last_write_wins(backend: Backend) -> None:
    m = backend.metric("overwrite")
    backend.write([{"name": m, "datapoints": [[1, 1], [2, 2], [1, 10]], "tags": {"h": "a"}}])
    backend.write([{"name": m, "datapoints": [[2, 20]], "tags": {"h": "a"}}])
    assert read_all(backend.reader(), m) == {((("h", "a"),), LONG): ([1, 2], [10, 20])}


def test_ttl_expiry(backend: Backend) -> None:
    m = backend.metric("ttl")
    backend.write(
        [
            {"name": m, "datapoints": [[1, 1]], "tags": {"h": "short"}, "ttl": 1},
            {"name": m, "datapoints": [[1, 2]], "tags": {"h": "forever"}},
        ]
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = read_all(backend.reader(), m)
        if ((("h", "short"),), LONG) not in got:
            break
        time.sleep(0.25)
    assert got == {((("h", "forever"),), LONG): ([1], [2])}


def test_delete_range_with_tag_filter(backend: Backend) -> None:
    m = backend.metric("delete")
    backend.write(
        [
            {"name": m, "datapoints": [[t, t] for t in (1, 2, 3, W + 1)], "tags": {"h": "a"}},
            {"name": m, "datapoints": [[t, t] for t in (1, 2, 3)], "tags": {"h": "b"}},
        ]
    )
    backend.writer.delete(m, lambda tags: tags.get("h") == "a", 2, W + 1)
    got = read_all(backend.reader(), m)
    assert got == {
        ((("h", "a"),), LONG): ([1], [1]),
        ((("h", "b"),), LONG): ([1, 2, 3], [1, 2, 3]),
    }
    assert m in backend.reader().metric_names()


def test_delete_whole_metric_removes_the_name(backend: Backend) -> None:
    m = backend.metric("gone")
    keep = backend.metric("kept")
    backend.write(
        [
            {"name": m, "datapoints": [[1, 1], [W * 3, 2]], "tags": {"h": "a"}},
            {"name": keep, "datapoints": [[1, 1]], "tags": {"h": "a"}},
        ]
    )
    backend.writer.delete(m, lambda tags: True, LONG_MIN, LONG_MAX, tag_filtered=False)
    r = backend.reader()
    assert read_all(r, m) == {}
    names = r.metric_names(backend.prefix)
    assert m not in names and keep in names
    backend.write([{"name": m, "datapoints": [[5, 5]], "tags": {"h": "a"}}])
    assert read_all(backend.reader(), m) == {((("h", "a"),), LONG): ([5], [5])}


def test_metric_names_java_order_and_prefix(backend: Backend) -> None:
    names = [backend.metric(n) for n in ("b", "a", "B", "\U0001f600", "\uff5e", "a.b")]
    backend.write([{"name": n, "datapoints": [[1, 1]], "tags": {"h": "a"}} for n in names])
    got = backend.reader().metric_names(backend.prefix)
    # Java String order: UTF-16 code units, so the astral character sorts before U+FF5E.
    assert got == [backend.metric(n) for n in ("B", "a", "a.b", "b", "\U0001f600", "\uff5e")]
    assert backend.reader().metric_names(backend.metric("a")) == [
        backend.metric("a"),
        backend.metric("a.b"),
    ]


def test_checkpoint_positions_are_durable(backend: Backend) -> None:
    m = backend.metric("checkpoint")
    backend.write([{"name": m, "datapoints": [[1, 1]], "tags": {"h": "a"}}], {"w-1.wal": 1234})
    assert backend.reader().wal_positions == {"w-1.wal": 1234}


def test_deleting_every_point_removes_series_and_name(backend: Backend) -> None:
    m = backend.metric("emptied")
    backend.write(
        [
            {"name": m, "datapoints": [[5, 1], [W + 5, 2]], "tags": {"h": "a"}},
            {"name": m, "datapoints": [[6, 3]], "tags": {"h": "b"}},
        ]
    )
    backend.writer.delete(m, lambda tags: tags.get("h") == "a", 0, W + 10)
    r = backend.reader()
    assert [s.tags for s in r.find_series(m, {})] == [(("h", "b"),)]
    assert m in r.metric_names(backend.prefix)
    backend.writer.delete(m, lambda tags: True, 1, 100, tag_filtered=False)
    r = backend.reader()
    assert r.find_series(m, {}) == []
    assert m not in r.metric_names(backend.prefix)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_query_limit_and_order(backend: Backend, order: str) -> None:
    from kairos.query.engine import run_query
    from kairos.query.model import parse_query

    m = backend.metric("limit")
    stamps = [1, 2, W - 1, W, W + 1, 3 * W]
    backend.write(
        [{"name": m, "datapoints": [[t, i] for i, t in enumerate(stamps)], "tags": {"h": "a"}}]
    )
    q = {"start_absolute": 0, "metrics": [{"name": m, "limit": 3, "order": order}]}
    resp = run_query(backend.reader(), parse_query(q))
    values = [
        [int(t), int(v)]
        for t, v in orjson.loads(orjson.dumps(resp))["queries"][0]["results"][0]["values"]
    ]
    if order == "asc":
        assert values == [[1, 0], [2, 1], [W - 1, 2]]
    else:
        assert values == [[3 * W, 5], [W + 1, 4], [W, 3]]
