"""``regex:`` tag filters run within a time budget (issue 14, item 3).

A catastrophic pattern is stopped when the query's regex budget (``query.regex_timeout_ms``)
runs out (400) or its deadline (``query.timeout_ms``) does first (503); ordinary patterns keep
their full-match semantics.
"""

from __future__ import annotations

import json

import pytest

from kairos.errors import InvalidQuery, QueryTimeout, RegexTimeout
from kairos.ingest.parser import parse_datapoints
from kairos.query.engine import Limits, run_query, run_tags_query
from kairos.query.model import parse_query
from kairos.storage.embedded.store import EmbeddedStore

EVIL = "a" * 40 + "!"  # (a|aa)+$ backtracks ~fib(40) times on it before failing
BAD = "regex:(a|aa)+$"


@pytest.fixture
def store(tmp_path):
    st = EmbeddedStore(str(tmp_path), writer=True)
    for v in (EVIL, "b1", "b2", "aaaa"):
        obj = {"name": "m", "datapoints": [[1, 1]], "tags": {"t": v}}
        r = parse_datapoints(json.dumps([obj]).encode())
        assert r.errors == []
        st.write(r.batch)
    return st


def doc(*tag_values: str) -> dict:
    return {"start_absolute": 0, "metrics": [{"name": "m", "tags": {"t": list(tag_values)}}]}


def tags_of(resp: dict) -> list[str]:
    return sorted(v for r in resp["queries"][0]["results"] for v in r["tags"].get("t", []))


def test_a_catastrophic_regex_is_a_400_once_its_budget_runs_out(store) -> None:
    with pytest.raises(RegexTimeout) as e:
        run_query(store, parse_query(doc(BAD)), limits=Limits(regex_timeout_ms=20))
    assert e.value.status_code == 400
    (msg,) = e.value.messages
    assert "regex:(a|aa)+$" in msg and "KAIROSDB_QUERY_REGEX_TIMEOUT_MS" in msg
    with pytest.raises(RegexTimeout):
        run_tags_query(store, parse_query(doc(BAD)), Limits(regex_timeout_ms=20))


def test_the_query_deadline_bounds_the_regex_budget(store) -> None:
    limits = Limits(timeout_ms=20, regex_timeout_ms=60_000)
    with pytest.raises(QueryTimeout) as e:
        run_query(store, parse_query(doc(BAD)), limits=limits)
    assert e.value.status_code == 503


def test_the_budget_is_shared_by_the_metrics_of_a_query(store) -> None:
    limits = Limits(regex_timeout_ms=20)
    run_query(store, parse_query(doc("regex:b.")), limits=limits)
    limits.regex_seconds = 0.02  # spent by earlier metrics of the same query
    with pytest.raises(RegexTimeout):
        run_query(store, parse_query(doc("regex:b.")), limits=limits)


def test_ordinary_regexes_keep_full_match_semantics(store) -> None:
    lim = Limits(regex_timeout_ms=1000)
    assert tags_of(run_query(store, parse_query(doc("regex:b.")), limits=lim)) == ["b1", "b2"]
    assert tags_of(run_query(store, parse_query(doc("regex:b")), limits=lim)) == []
    assert tags_of(run_query(store, parse_query(doc("regex:a+", "b1")), limits=lim)) == [
        "aaaa",
        "b1",
    ]
    # The pattern: the `regex` engine settles it at once (no match, no timeout).
    assert tags_of(run_query(store, parse_query(doc("regex:(a+)+$")), limits=lim)) == ["aaaa"]


@pytest.mark.parametrize("pattern", ["(", "[", "a**", "\\"])
def test_invalid_regexes_are_still_kairosdb_validation_errors(pattern: str) -> None:
    with pytest.raises(InvalidQuery) as e:
        parse_query(doc("regex:" + pattern))
    assert e.value.messages[0].startswith("query.metric[0].tags[0].t invalid regex: ")


def test_a_delete_applies_every_pattern_its_query_validated() -> None:
    # `\p{L}` is valid for the query's engine (regex) but not for `re`: the writer must use
    # the same engine, or a delete accepted with a 204 would fail when it is applied.
    from kairos.storage.records import DeleteSpec

    q = parse_query(doc(r"regex:\p{L}+\d"))
    f = q.metrics[0].tags["t"]
    spec = DeleteSpec("m", {"t": (sorted(f.values), [p.pattern for p in f.patterns])}, 0, 1)
    matches = spec.matcher()
    assert matches({"t": "b1"}) and not matches({"t": "11"})
