"""The query cache: KairosDB's cache_time reuse, write invalidation, memory bound."""

from __future__ import annotations

import json

import orjson
import pytest

from kairos.ingest.parser import parse_datapoints
from kairos.query.cache import QueryCache
from kairos.query.engine import run_query
from kairos.query.model import parse_query
from kairos.storage.embedded.store import EmbeddedStore
from kairos.storage.versions import WriteVersions

NOW = 10**13


@pytest.fixture
def store(tmp_path):
    return EmbeddedStore(str(tmp_path), writer=True)


def put(store, metric, points, tags=None):
    r = parse_datapoints(
        json.dumps([{"name": metric, "datapoints": points, "tags": tags or {"h": "a"}}]).encode()
    )
    assert r.errors == []
    store.write(r.batch)


def run(store, doc, cache):
    resp = run_query(store, parse_query(doc, now_ms=NOW), now_ms=NOW, cache=cache)
    return json.loads(orjson.dumps(resp))["queries"][0]["results"]


def doc(metric="m", cache_time=60, **metric_fields):
    return {
        "start_absolute": 0,
        "cache_time": cache_time,
        "metrics": [{"name": metric, **metric_fields}],
    }


def test_cache_time_reuses_raw_data(store) -> None:
    cache = QueryCache(1 << 20)
    put(store, "m", [[1, 1], [2, 2]])
    assert run(store, doc(), cache)[0]["values"] == [[1, 1], [2, 2]]
    put(store, "m", [[3, 3]])  # no writer counters here: only cache_time bounds staleness
    assert run(store, doc(), cache)[0]["values"] == [[1, 1], [2, 2]]
    assert (cache.hits, cache.misses) == (1, 1)
    # cache_time 0 never reuses (and refreshes the entry) ...
    assert run(store, doc(cache_time=0), cache)[0]["values"] == [[1, 1], [2, 2], [3, 3]]
    # ... so a later cache_time query sees the refreshed data.
    assert run(store, doc(), cache)[0]["values"] == [[1, 1], [2, 2], [3, 3]]


def test_key_is_time_fields_metric_and_tags(store) -> None:
    cache = QueryCache(1 << 20)
    put(store, "m", [[1, 1]], {"h": "a"})
    put(store, "m", [[1, 2]], {"h": "b"})
    run(store, doc(), cache)
    run(store, doc(tags={"h": ["a"]}), cache)
    run(store, doc(tags={"h": "regex:a|b"}), cache)
    d = doc()
    d["end_absolute"] = 10
    run(store, d, cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 4, 4)
    run(store, doc(tags={"h": ["a"]}), cache)
    assert cache.hits == 1
    # Relative times are part of the key as written, like KairosDB: a query issued later,
    # resolving to another instant, shares the entry.
    rel = {
        "start_relative": {"value": 5, "unit": "days"},
        "cache_time": 60,
        "metrics": [{"name": "m"}],
    }
    run_query(store, parse_query(rel, now_ms=NOW), now_ms=NOW, cache=cache)
    run_query(store, parse_query(rel, now_ms=NOW + 1000), now_ms=NOW + 1000, cache=cache)
    assert cache.hits == 2


def test_writer_counters_invalidate_the_metric_only(store, tmp_path) -> None:
    writer = WriteVersions(str(tmp_path), writer=True)
    cache = QueryCache(1 << 20, WriteVersions(str(tmp_path)))
    put(store, "m", [[1, 1]])
    put(store, "other", [[1, 1]])
    run(store, doc("m"), cache)
    run(store, doc("other"), cache)
    put(store, "m", [[2, 2]])
    writer.bump({"m"})
    assert run(store, doc("m"), cache)[0]["values"] == [[1, 1], [2, 2]]
    assert run(store, doc("other"), cache)[0]["values"] == [[1, 1]]
    assert (cache.hits, cache.misses) == (1, 3)


def test_memory_bound_evicts_least_recently_used(store) -> None:
    for i in range(5):
        put(store, f"m{i}", [[t, t] for t in range(1, 1001)])
    cache = QueryCache(3 * 18_000)  # room for about 2 entries of 1000 points (16 kB each)
    for i in range(5):
        run(store, doc(f"m{i}"), cache)
    assert len(cache) == 3 or len(cache) == 2
    assert cache.evictions == 5 - len(cache)
    assert cache.size_bytes <= cache.max_bytes
    run(store, doc("m4"), cache)
    assert cache.hits == 1
    run(store, doc("m0"), cache)
    assert cache.hits == 1  # evicted first


AGGREGATORS = [
    [],
    [{"name": "avg", "sampling": {"value": 2, "unit": "milliseconds"}}],
    [{"name": "sum", "sampling": {"value": 3, "unit": "milliseconds"}, "align_sampling": True}],
    [{"name": "dev", "sampling": {"value": 5, "unit": "milliseconds"}}],
    [{"name": "percentile", "percentile": 0.75, "sampling": {"value": 4, "unit": "milliseconds"}}],
    [{"name": "rate", "unit": "milliseconds"}],
    [{"name": "diff"}, {"name": "div", "divisor": 2}],
    [{"name": "scale", "factor": -1}, {"name": "filter", "filter_op": "lt", "threshold": -3}],
    [{"name": "sma", "size": 3}],
    [{"name": "least_squares", "sampling": {"value": 4, "unit": "milliseconds"}}],
    [{"name": "trim", "trim": "both"}],
    [{"name": "first", "sampling": {"value": 3, "unit": "milliseconds"}}],
    [{"name": "gaps", "sampling": {"value": 1, "unit": "milliseconds"}}],
]


@pytest.mark.parametrize("aggregators", AGGREGATORS, ids=lambda a: "+".join(x["name"] for x in a))
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_answers_from_the_cache_equal_fresh_answers(store, aggregators, order) -> None:
    """Cached raw data is shared between queries: no aggregator may change it in place."""
    put(store, "m", [[t, (t * 7) % 11] for t in range(1, 40, 2)], {"h": "a"})
    put(store, "m", [[t, (t * 3) % 5 + 0.5] for t in range(2, 40, 4)], {"h": "b"})
    cache = QueryCache(1 << 20)
    q = doc(aggregators=aggregators, order=order, group_by=[{"name": "tag", "tags": ["h"]}])
    q["end_absolute"] = 50
    fresh = run(store, q, None)
    assert run(store, q, cache) == fresh  # fills the cache
    assert run(store, q, cache) == fresh  # answered from it
    # Same raw data (the key has no aggregators or group_by): answered from the cache too.
    plain = doc(aggregators=aggregators, order=order)
    plain["end_absolute"] = 50
    assert run(store, plain, cache) == run(store, plain, None)
    assert (cache.hits, cache.misses) == (2, 1)
