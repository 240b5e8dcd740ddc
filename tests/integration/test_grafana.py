"""Replay of the three Grafana KairosDB data-source generations' HTTP traffic (clients.md §1).

Grafana and its KairosDB plugins cannot be installed from a package registry, so the requests each
generation sends are kept as JSON fixtures in ``tests/data/grafana/`` (one file per generation,
written from the plugins' source) and replayed here against a real Kairos server, on data this
module ingests.  Every response is checked for the *shape* the plugin reads (§1 "Response use")
and, where the fixture says so, for exact hand-computed values.

Fixture format (see the files' ``notes``): ``requests[]`` entries have ``id``, ``method``,
``path``, optional ``params``/``body`` and ``expect``; ``<P>`` in a string is this run's metric
prefix and a whole string ``<T0>``, ``<T0+59m>``, ``<NOW-24h>`` … is an integer epoch-ms.
An entry with ``xfail`` is a known gap: its ``raises`` names the exception below that the replay
raises only for that exact failure (an unknown aggregator, a property KairosDB has no setter for,
or a histogram value in the wrong form), so any other failure still fails the test.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parent.parent / "data" / "grafana"
FIXTURE_FILES = sorted(DATA.glob("*.json"))
MINUTE = 60_000
HOUR = 60 * MINUTE


class MissingAggregator(Exception):
    """Kairos answered 400 ``<ctx>.<name> invalid aggregators name`` for a requested aggregator."""


class UnsupportedProperty(Exception):
    """Kairos answered 400 ``Property 'p' was specified for object 'agg' but no matching setter``."""


class HistogramFormat(Exception):
    """A histogram value is not in the form the 4.x plugin renders (``bins`` + numeric ``precision``)."""


_RAISES = {
    "MissingAggregator": MissingAggregator,
    "UnsupportedProperty": UnsupportedProperty,
    "HistogramFormat": HistogramFormat,
}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


DOCS = [_load(p) for p in FIXTURE_FILES]


def _cases():
    for doc in DOCS:
        for req in doc["requests"]:
            marks = []
            if "xfail" in req:
                x = req["xfail"]
                marks.append(
                    pytest.mark.xfail(raises=_RAISES[x["raises"]], strict=True, reason=x["reason"])
                )
            yield pytest.param(doc, req, id=f"{doc['generation']}-{req['id']}", marks=marks)


# -- seed data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    prefix: str
    t0: int  # a whole UTC hour, 3-4 h before the module started


def _histogram() -> dict:
    """One ArpNetworking/kairosdb-histograms point: 3 samples in bin 1.5, 1 in bin 2.5."""
    return {
        "bins": {"1.5": 3, "2.5": 1},
        "precision": 7,
        "min": 1.5,
        "max": 2.5,
        "sum": 6.5,
        "count": 4,
    }


@pytest.fixture(scope="module")
def seeded(server) -> Seeded:
    prefix = f"grafana{uuid.uuid4().hex[:10]}"
    t0 = int(time.time() * 1000) // HOUR * HOUR - 3 * HOUR
    body = [
        {
            "name": f"{prefix}.cpu",
            "datapoints": [[t0 + i * MINUTE, i] for i in range(120)],
            "tags": {"host": "a", "dc": "eu"},
        },
        {
            "name": f"{prefix}.cpu",
            "datapoints": [[t0 + i * MINUTE, i + 0.5] for i in range(120)],
            "tags": {"host": "b", "dc": "us"},
        },
        {
            "name": f"{prefix}.mem",
            "datapoints": [[t0 + i * 10 * MINUTE, 1000 + i] for i in range(12)],
            "tags": {"host": "a", "dc": "eu"},
        },
        {
            "name": f"{prefix}.latency",
            "datapoints": [[t0 + i * MINUTE, _histogram()] for i in range(6)],
            "tags": {"host": "a"},
        },
    ]
    with server.client() as c:
        r = c.post("/api/v1/datapoints", json=body)
    assert r.status_code == 204, r.text
    server.wait_applied()
    return Seeded(prefix, t0)


# -- placeholders -----------------------------------------------------------------------------

_TIME = re.compile(r"^<(T0|NOW)(?:([+-])(\d+)(ms|s|m|h))?>$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": MINUTE, "h": HOUR}


def _render(obj: Any, ctx: Seeded) -> Any:
    """Substitute ``<P>`` and the ``<T0…>``/``<NOW…>`` time placeholders (recursively)."""
    if isinstance(obj, dict):
        return {k: _render(v, ctx) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_render(v, ctx) for v in obj]
    if isinstance(obj, str):
        m = _TIME.match(obj)
        if m:
            base = ctx.t0 if m[1] == "T0" else int(time.time() * 1000)
            if m[2]:
                delta = int(m[3]) * _UNIT_MS[m[4]]
                base += delta if m[2] == "+" else -delta
            return base
        return obj.replace("<P>", ctx.prefix)
    return obj


# -- response checks --------------------------------------------------------------------------


def _raise_rejection(body: dict | None, resp) -> None:
    """Turn a 400 for a requested aggregator/property into the typed exceptions above."""
    if resp.status_code != 400 or body is None:
        return
    try:
        errors = resp.json().get("errors", [])
    except ValueError:
        return
    requested = {a.get("name") for m in body.get("metrics", []) for a in m.get("aggregators", [])}
    for e in errors:
        m = re.search(r"\.(\w+) invalid aggregators name$", e)
        if m and m[1] in requested:
            raise MissingAggregator(e)
        m = re.match(r"Property '(\w+)' was specified for object '(\w+)' but no matching setter", e)
        if m and m[2] in requested:
            raise UnsupportedProperty(e)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _close(actual: object, expected: object) -> bool:
    if expected is None or actual is None:
        return actual is expected
    return _is_number(actual) and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)


def _assert_points(actual: list, expected: list, what: str) -> None:
    assert len(actual) == len(expected), f"{what}: {len(actual)} points, expected {expected}"
    for a, e in zip(actual, expected, strict=True):
        assert a[0] == e[0] and _close(a[1], e[1]), f"{what}: got {actual}, expected {expected}"


def _group_entry(result: dict, name: str) -> dict | None:
    return next((g for g in result.get("group_by", []) if g.get("name") == name), None)


def _check_result_shape(gen: str, metric: dict, result: dict) -> None:
    """The fields the plugins read from one ``queries[i].results[j]``."""
    assert result["name"] == metric["name"]
    values = result["values"]
    assert isinstance(values, list)
    for p in values:
        assert isinstance(p, list) and len(p) == 2, p
        assert isinstance(p[0], int) and not isinstance(p[0], bool), p  # epoch ms, integer
        assert p[1] is None or _is_number(p[1]) or isinstance(p[1], dict), p
    group_by = result.get("group_by", [])
    assert isinstance(group_by, list)
    for requested in metric.get("group_by") or []:
        entry = _group_entry(result, requested["name"])
        assert entry is not None, f"no {requested['name']!r} group_by entry in {group_by}"
        group = entry["group"]
        if requested["name"] == "tag":
            # 3.x/built-in label series from group {tag: value}; 4.x from $_tag_group_<tag>.
            assert set(group) == set(requested["tags"]), group
            assert all(isinstance(v, str) for v in group.values()), group
        else:
            assert isinstance(group["group_number"], int), entry
        if requested["name"] == "time":
            assert isinstance(entry["group_count"], int), entry  # 3.x reads group_count
    if gen == "arp4":
        tags = result["tags"]  # series names: tags[k][0] / tags[k].join(',')
        assert isinstance(tags, dict)
        assert all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in tags.values()
        )
        for requested in metric.get("group_by") or []:
            if requested["name"] == "tag":
                for t in requested["tags"]:
                    assert tags.get(t), f"group-by tag {t!r} missing from tags {tags}"


def _is_plugin_histogram(v: object) -> bool:
    """``isHistogramData`` of the 4.x plugin."""
    return (
        isinstance(v, dict) and isinstance(v.get("bins"), dict) and _is_number(v.get("precision"))
    )


def _matches(result: dict, where: dict) -> bool:
    for name, want in where.items():
        entry = _group_entry(result, name)
        if entry is None:
            return False
        got = entry["group"] if name == "tag" else entry["group"]["group_number"]
        if got != want:
            return False
    return True


def _check_expectations(query: dict, qexp: dict) -> None:
    results = query["results"]
    if "results" in qexp:
        assert len(results) == qexp["results"], f"{len(results)} results: {results}"
    if "total_values" in qexp:
        assert sum(len(r["values"]) for r in results) == qexp["total_values"]
    for check in qexp.get("checks", []):
        where = check.get("where")
        if where is None:
            assert len(results) == 1, results
            result = results[0]
        else:
            found = [r for r in results if _matches(r, where)]
            assert len(found) == 1, f"{len(found)} results match {where}: {results}"
            result = found[0]
        values = result["values"]
        what = f"result {where or 0}"
        if "values" in check:
            _assert_points(values, check["values"], what)
        if "head" in check:
            _assert_points(values[: len(check["head"])], check["head"], what)
        if "count" in check:
            assert len(values) == check["count"], f"{what}: {len(values)} points"
        if "count_non_null" in check:
            assert sum(v is not None for _, v in values) == check["count_non_null"], values
        if "every" in check:
            assert all(_close(v, check["every"]) for _, v in values), f"{what}: {values}"
        if "tags" in check:
            assert {k: sorted(v) for k, v in result["tags"].items()} == check["tags"]
        if "histogram" in check:
            h, want = values[0][1], check["histogram"]
            for k in ("count", "sum", "min", "max"):
                assert _close(h[k], want[k]), f"{k}: {h}"
            assert sum(h["bins"].values()) == want["bins_total"], h
            if "bins" in want:  # keys are bucket lower bounds: compare them as numbers
                got = {float(k): n for k, n in h["bins"].items()}
                assert got == {float(k): n for k, n in want["bins"].items()}, h
            if "precision" in want:
                assert h["precision"] == want["precision"], h


def _check_datapoints(gen: str, body: dict, resp: dict, expect: dict) -> None:
    queries = resp["queries"]
    # Every generation zips queries[] with the metrics[] it sent.
    assert len(queries) == len(body["metrics"]), queries
    for metric, query in zip(body["metrics"], queries, strict=True):
        assert isinstance(query["results"], list)
        for result in query["results"]:
            _check_result_shape(gen, metric, result)
            if expect.get("histogram") and result["values"]:
                first = result["values"][0][1]
                if not _is_plugin_histogram(first):
                    raise HistogramFormat(f"values[0][1] = {first}")
    for query, qexp in zip(queries, expect.get("queries", []), strict=False):
        _check_expectations(query, qexp)


def _check_tags(body: dict, resp: dict, expect: dict) -> None:
    queries = resp["queries"]
    assert len(queries) == len(body["metrics"])
    # All generations read queries[0].results[0].tags without checking that results exist.
    result = queries[0]["results"][0]
    tags = result["tags"]
    assert all(isinstance(v, list) for v in tags.values()), tags
    assert {k: sorted(v) for k, v in tags.items()} == expect["tags"]


# -- the replay -------------------------------------------------------------------------------


@pytest.mark.parametrize(("doc", "req"), list(_cases()))
def test_replay(seeded: Seeded, client, doc: dict, req: dict) -> None:
    params = _render(req.get("params"), seeded)
    body = _render(req.get("body"), seeded)
    expect = _render(req.get("expect", {}), seeded)
    # 3.x sends its token header on every request; harmless elsewhere.
    headers = {"X-Grafana-Token": ""} if doc["generation"] == "grafana3" else {}
    r = client.request(req["method"], req["path"], params=params, json=body, headers=headers)
    want_status = expect.get("status", 200)
    if r.status_code != want_status:
        _raise_rejection(body, r)
        pytest.fail(f"{req['method']} {req['path']} -> {r.status_code} {r.text}\nbody: {body}")
    data = r.json()
    path = req["path"]
    if path == "/api/v1/version":
        assert data["version"].startswith(expect["version_prefix"]), data
    elif path == "/api/v1/metricnames":
        names = data["results"]
        assert isinstance(names, list) and all(isinstance(n, str) for n in names)
        if "names_include" in expect:
            assert set(expect["names_include"]) <= set(names), names
        if "names_exactly" in expect:
            assert sorted(names) == sorted(expect["names_exactly"]), names
    elif path == "/api/v1/datapoints/query/tags":
        _check_tags(body, data, expect)
    elif path == "/api/v1/datapoints/query":
        _check_datapoints(doc["generation"], body, data, expect)
    else:  # pragma: no cover - fixture error
        pytest.fail(f"no checker for {path}")


# -- the fixtures cover what clients.md §1.4 asks for -----------------------------------------


def _walk(obj: Any):
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def _numeric_string(v: object) -> bool:
    return isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v) is not None


@pytest.mark.parametrize("doc", DOCS, ids=[d["generation"] for d in DOCS])
def test_fixture_coverage(doc: dict) -> None:
    reqs = doc["requests"]
    names = [r for r in reqs if r["path"] == "/api/v1/metricnames"]
    assert any(not r.get("params") for r in names), "metric names without prefix"
    assert any("prefix" in (r.get("params") or {}) for r in names), "metric names with prefix"
    assert any(
        r["path"] == "/api/v1/datapoints/query/tags"
        and r["body"].get("start_absolute") == 0
        and not {"end_absolute", "end_relative"} & set(r["body"])
        for r in reqs
    ), "a tags call with start_absolute 0 and no end"
    data = [r["body"] for r in reqs if r["path"] == "/api/v1/datapoints/query"]
    aggregators = [a for b in data for m in b["metrics"] for a in m.get("aggregators", [])]
    group_bys = [g for b in data for m in b["metrics"] for g in m.get("group_by", [])]
    covers = doc["covers"]
    assert set(covers["aggregators"]) <= {a["name"] for a in aggregators}
    assert set(covers["group_by"]) <= {g["name"] for g in group_bys}
    units = {d["unit"] for b in data for d in _walk(b) if isinstance(d.get("unit"), str)}
    assert set(covers["units"]) <= units, units
    # Numbers sent as JSON strings (parameters, sampling values, group sizes).
    assert any(
        _numeric_string(v) for b in data for d in _walk(b) for k, v in d.items() if k != "name"
    )
    assert any(k.startswith("align_") for a in aggregators for k in a), "an alignment flag"
    if covers.get("limit_zero"):
        assert any(m.get("limit") == 0 for b in data for m in b["metrics"])


def test_fixtures_cover_both_alignment_flags_at_once() -> None:
    """The built-in datasource sends align_sampling and align_start_time together."""
    assert any(
        a.get("align_sampling") is True and a.get("align_start_time") is True
        for doc in DOCS
        for r in doc["requests"]
        for a in _walk(r.get("body"))
        if "sampling" in a
    )
