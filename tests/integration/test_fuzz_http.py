"""Hypothesis fuzz of ingest and query bodies against a live server (issue 14).

Bodies are structurally plausible KairosDB documents (metric objects with names, tags, points
of long, double, string and histogram values, timestamps across the whole ``long`` range;
queries with relative and absolute times, time zones, tag filters, every aggregator and
group-by ``/api/v1/features`` lists, with edge-case property values), plus garbage mutations
of their text.  A run fails on any 5xx, and on a 204 whose points cannot be queried back
exactly.

The default run is small and derandomized (a fixed seed: CI is deterministic).  A longer random
run: ``KAIROS_FUZZ_EXAMPLES=50000 pytest tests/integration/test_fuzz_http.py`` (the number is
split between the tests; a random seed each run, printed by hypothesis on failure).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Server, start_server

pytestmark = pytest.mark.integration

LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1

_LONG_RUN = int(os.environ.get("KAIROS_FUZZ_EXAMPLES", "0"))


def _settings(default: int, share: float):
    """A fixed seed and ``default`` examples, or a random share of the long run."""
    common = {
        "deadline": None,
        "suppress_health_check": list(HealthCheck),
        "database": None,
    }
    if _LONG_RUN:
        return settings(max_examples=max(1, int(_LONG_RUN * share)), **common)
    return settings(max_examples=default, derandomize=True, **common)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The writer applies every 5 ms so that a 204's points can be read back at once.
    srv = start_server(
        tmp_path_factory.mktemp("fuzz") / "data",
        env={"KAIROSDB_WRITER_INTERVAL_MS": "5"},
        workers=1,
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def fuzz_client(fuzz_server: Server) -> Iterator[httpx.Client]:
    with fuzz_server.client() as c:
        yield c


def _no_5xx(r: httpx.Response, body: bytes | str, log: str = "") -> None:
    if r.status_code >= 500:
        shown = body[:2000] if isinstance(body, bytes | str) else body
        raise AssertionError(
            f"{r.request.method} {r.request.url.path} answered {r.status_code} {r.text[:500]}\n"
            f"body: {shown!r}\n{log[-3000:]}"
        )


# -- text and numbers ----------------------------------------------------------------------------


def mostly(valid, nasty, one_in: int = 6):
    """``valid`` values, and ``nasty`` ones about one time in ``one_in``."""
    return st.integers(0, one_in - 1).flatmap(lambda k: nasty if k == 0 else valid)


NASTY = ["\ud800", "\udfff", "\x00", "\u2028", "\ufffd", "\U0001f600", "\\", '"', "/", "\x80", "é"]
plain_texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
texts = mostly(
    plain_texts,
    st.one_of(
        st.text(max_size=12),
        st.lists(st.sampled_from([*NASTY, "a", "b", " ", ".", "=", ":"]), max_size=6).map("".join),
    ),
    one_in=4,
)
names = texts
longs = st.one_of(
    st.integers(LONG_MIN, LONG_MAX),
    st.sampled_from([0, 1, -1, LONG_MIN, LONG_MAX, LONG_MIN + 1, 2**31, -(2**31) - 1]),
    st.integers(-(10**30), 10**30),
)
timestamps = st.one_of(
    st.integers(-(10**13), 10**13),
    st.sampled_from([LONG_MIN, LONG_MAX, LONG_MIN + 1, LONG_MAX - 1, 0, -1]),
    st.integers(LONG_MIN, LONG_MAX),
)


class Raw(str):
    """JSON text written verbatim (``NaN``, ``1.5e999``, ``1E5``)."""


doubles = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e-3, 1e7, 0.1]),
)
raw_numbers = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "1.5e999", "-1.5e999", "1e999", "1E5", "1.5E3", "1e-999"]
).map(Raw)
histograms = st.one_of(
    st.fixed_dictionaries(
        {
            "boundaries": st.lists(doubles, min_size=1, max_size=4).map(sorted),
            "counts": st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
        },
        optional={"sum": doubles, "min": doubles, "max": doubles},
    ),
    st.fixed_dictionaries(
        {"bins": st.dictionaries(st.sampled_from(["1.0", "2.5", "-1", "x"]), st.integers(-5, 99))}
    ),
    st.dictionaries(st.sampled_from(["buckets", "counts", "min"]), st.integers(-5, 5)),
)
values = mostly(
    st.one_of(longs, doubles, plain_texts, histograms),
    st.one_of(
        texts,
        st.booleans(),
        st.none(),
        raw_numbers,
        st.sampled_from(["123", "-5", "1.5", ".5", "Infinity", "NaN", "-Infinity", "1e999", ""]),
        st.lists(st.integers(), max_size=2),
    ),
    one_in=3,
)
types = st.sampled_from([None, "long", "double", "string", "histogram", "bogus", ""])


@st.composite
def metric_objects(draw) -> dict:
    obj: dict = {"name": draw(names)}
    if draw(st.integers(0, 9)):
        obj["tags"] = draw(st.dictionaries(texts, texts, min_size=1, max_size=3))
    form = draw(st.integers(0, 3))
    if form in (0, 2):
        pts = []
        for _ in range(draw(st.integers(0, 4))):
            p = [draw(timestamps), draw(values)]
            if draw(st.integers(0, 5)) == 0:
                p.append(draw(types))
            pts.append(p)
        obj["datapoints"] = pts
    if form in (1, 2):
        obj[draw(st.sampled_from(["timestamp", "time"]))] = draw(timestamps)
        obj["value"] = draw(values)
    if form == 3:
        obj["datapoints"] = draw(st.one_of(st.none(), texts, st.lists(values, max_size=2)))
    if draw(st.integers(0, 6)) == 0:
        obj["type"] = draw(types)
    if draw(st.integers(0, 8)) == 0:
        obj["ttl"] = draw(st.one_of(longs, st.sampled_from([0, 60]), raw_numbers))
    if draw(st.integers(0, 12)) == 0:
        obj["skip_validate"] = draw(st.booleans())
    return obj


def to_json(v: object, ascii_only: bool) -> str:
    """JSON text with :class:`Raw` numbers spliced in and lone surrogates kept."""
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, dict):
        return (
            "{"
            + ",".join(f"{to_json(k, ascii_only)}:{to_json(x, ascii_only)}" for k, x in v.items())
            + "}"
        )
    if isinstance(v, list):
        return "[" + ",".join(to_json(x, ascii_only) for x in v) + "]"
    return json.dumps(v, ensure_ascii=ascii_only)


@st.composite
def mutated(draw, text: str) -> bytes:
    """``text`` as UTF-8 (surrogates as their 3-byte forms), maybe damaged.

    Positions are drawn independently of the text's length, so that replaying an example
    (whose metric names carry a fresh prefix) draws the same choices.
    """
    b = text.encode("utf-8", "surrogatepass")
    kind = draw(st.integers(0, 39))
    at = draw(st.integers(0, 1 << 20)) % (len(b) + 1)
    if kind == 0:
        b = b[:at]
    elif kind == 1:
        b = b[:at] + draw(st.binary(min_size=1, max_size=4)) + b[at:]
    elif kind == 2:
        depth = draw(st.sampled_from([10, 1000, 100_000]))
        b = b"[" * depth + b + b"]" * draw(st.sampled_from([0, depth]))
    elif kind == 3:
        b = b[:at] + bytes([draw(st.integers(0, 255))]) + b[at + 1 :]
    return b


# -- the read-back oracle ------------------------------------------------------------------------

_NUMERIC_TEXT = re.compile(r"^[+\-.]?[0-9.]*$")


def _expected(obj: dict) -> dict[int, object] | None:
    """The points a metric object stored (timestamp -> value, last write wins), when exactly
    predictable: plain JSON longs, doubles and non-numeric strings without a ``type``."""
    if obj.get("type") is not None or obj.get("skip_validate"):
        return None
    pts = []
    if "value" in obj:
        pts.append([obj.get("time", obj.get("timestamp")), obj["value"]])
    pts.extend(obj.get("datapoints") or [])
    out: dict[int, object] = {}
    for p in pts:
        if len(p) != 2 or not isinstance(p[0], int):
            return None
        v = p[1]
        if isinstance(v, bool | Raw):
            return None
        if isinstance(v, int):
            if not LONG_MIN <= v <= LONG_MAX:
                return None
        elif isinstance(v, float):
            if not math.isfinite(v):
                return None
        elif isinstance(v, str):
            if _NUMERIC_TEXT.match(v):
                return None
        else:
            return None
        if p[0] in out and type(out[p[0]]) is not type(v):
            return None  # a long and a double at one timestamp are two series
        out[p[0]] = v
    return out


def _read_back(client: httpx.Client, name: str, log: str) -> dict[int, list]:
    q = {"start_absolute": LONG_MIN, "end_absolute": LONG_MAX, "metrics": [{"name": name}]}
    r = client.post("/api/v1/datapoints/query", json=q)
    _no_5xx(r, json.dumps(q), log)
    assert r.status_code == 200, r.text
    got: dict[int, list] = {}
    for res in r.json()["queries"][0]["results"]:
        for ts, v in res["values"]:
            got.setdefault(ts, []).append(v)
    return got


_counter = iter(range(1 << 62))


@given(data=st.data())
@_settings(default=600, share=0.5)
def test_fuzz_ingest(fuzz_server: Server, fuzz_client: httpx.Client, data) -> None:
    n = next(_counter)
    objs = data.draw(st.lists(metric_objects(), min_size=0, max_size=3))
    for i, o in enumerate(objs):
        if isinstance(o.get("name"), str):
            o["name"] = f"fz{n}.{i}.{o['name']}"  # every example writes metrics of its own
    single = len(objs) == 1 and data.draw(st.booleans())
    text = to_json(objs[0] if single else objs, ascii_only=data.draw(st.booleans()))
    body = data.draw(mutated(text))
    r = fuzz_client.post(
        "/api/v1/datapoints", content=body, headers={"Content-Type": "application/json"}
    )
    _no_5xx(r, body, fuzz_server.log())
    if r.status_code != 204:
        return
    fuzz_server.wait_applied()
    for o in objs if body == text.encode("utf-8", "surrogatepass") else []:
        name = o.get("name")
        if not isinstance(name, str):
            continue
        got = _read_back(fuzz_client, name, fuzz_server.log())
        want = _expected(o)
        if want is None:
            continue
        for ts, v in want.items():
            assert ts in got, f"point {ts} of {name!r} not read back: {got}\nbody: {body!r}"
            if isinstance(v, float):
                assert any(isinstance(x, int | float) and float(x) == v for x in got[ts]), (
                    name,
                    ts,
                    v,
                    got[ts],
                )
            else:
                assert v in got[ts], (name, ts, v, got[ts])


# -- queries -------------------------------------------------------------------------------------

UNITS = ["milliseconds", "seconds", "minutes", "hours", "days", "weeks", "months", "years"]
ZONES = ["UTC", "", "America/New_York", "Asia/Kolkata", "Europe/London", "Etc/GMT+14", "GMT"]

durations = st.fixed_dictionaries(
    {
        "value": mostly(
            st.one_of(st.integers(0, 100), st.integers(0, LONG_MAX)),
            st.one_of(longs, raw_numbers, texts, st.sampled_from([LONG_MAX, 2**31, 2**62])),
        ),
        "unit": mostly(st.sampled_from(UNITS), st.one_of(texts, st.sampled_from(["YEARS", "x"]))),
    }
)
scalars = st.one_of(longs, doubles, texts, st.booleans(), st.none(), raw_numbers)


def _prop_values(kind: str | None):
    if kind == "Object":
        return mostly(durations, st.one_of(scalars, doubles))
    if kind == "boolean":
        return mostly(st.booleans(), scalars)
    if kind in ("int", "long"):
        return mostly(st.one_of(st.integers(-3, 100), longs), scalars)
    if kind == "double":
        return mostly(st.one_of(doubles, longs), st.one_of(raw_numbers, scalars))
    if kind == "array":
        return mostly(st.lists(st.one_of(doubles, longs), max_size=4), st.one_of(texts, scalars))
    return mostly(
        st.sampled_from(["asc", "desc", "first", "last", "both", "lt", "gte", "equal", "x"]),
        st.one_of(texts, scalars),
    )


@st.composite
def components(draw, features: dict[str, dict[str, str | None]]) -> dict:
    name = draw(st.sampled_from(sorted(features)))
    out: dict = {"name": name}
    props = features[name]
    for p in draw(st.lists(st.sampled_from(sorted(props) or ["x"]), max_size=4, unique=True)):
        out[p] = draw(_prop_values(props.get(p)))
    return out


SEEDED = ["fzq.long", "fzq.double", "fzq.string", "fzq.hist", "fzq.mixed"]


@st.composite
def queries(draw, aggs: dict, groups: dict) -> dict:
    q: dict = {}
    for key in draw(st.lists(st.sampled_from(["sa", "sr", "ea", "er"]), max_size=3, unique=True)):
        if key[1] == "a":
            q["start_absolute" if key[0] == "s" else "end_absolute"] = draw(
                mostly(timestamps, scalars)
            )
        else:
            q["start_relative" if key[0] == "s" else "end_relative"] = draw(
                mostly(durations, scalars)
            )
    if not q or draw(st.integers(0, 1)) == 0:
        q.setdefault("start_absolute", draw(mostly(st.integers(-(10**10), 10**10), timestamps)))
    if draw(st.integers(0, 4)) == 0:
        q["time_zone"] = draw(mostly(st.sampled_from(ZONES), texts))
    if draw(st.integers(0, 8)) == 0:
        q["cache_time"] = draw(mostly(st.integers(-1, 10), st.one_of(longs, scalars)))
    metrics = []
    for _ in range(draw(st.integers(1, 2))):
        m: dict = {"name": draw(mostly(st.sampled_from(SEEDED), st.one_of(names, scalars)))}
        if draw(st.booleans()):
            m["tags"] = draw(
                st.dictionaries(
                    mostly(st.sampled_from(["h", "g"]), texts),
                    mostly(
                        st.sampled_from(["h1", "h2", "x", ["h1", "h3"], "regex:h.*"]),
                        st.one_of(
                            texts,
                            st.lists(texts, max_size=2),
                            st.sampled_from(["regex:(", "regex:a{99999}", ""]),
                        ),
                    ),
                    max_size=2,
                )
            )
        if draw(st.booleans()):
            m["aggregators"] = draw(st.lists(components(aggs), max_size=3))
        if draw(st.integers(0, 3)) == 0:
            m["group_by"] = draw(st.lists(components(groups), max_size=2))
        if draw(st.integers(0, 5)) == 0:
            m["limit"] = draw(mostly(st.integers(-1, 10), st.one_of(longs, scalars)))
        if draw(st.integers(0, 6)) == 0:
            m["order"] = draw(mostly(st.sampled_from(["asc", "desc", "DESC"]), scalars))
        if draw(st.integers(0, 6)) == 0:
            m["exclude_tags"] = draw(mostly(st.booleans(), scalars))
        metrics.append(m)
    if draw(st.integers(0, 30)):
        q["metrics"] = metrics
    return q


@pytest.fixture(scope="module")
def features(fuzz_server: Server, fuzz_client: httpx.Client) -> tuple[dict, dict]:
    """Aggregator and group-by names with their properties, from ``/api/v1/features``."""
    out: dict[str, dict] = {}
    for f in fuzz_client.get("/api/v1/features").json():
        out[f["name"]] = {
            p["name"]: {q["name"]: q.get("type") for q in p.get("properties", [])}
            for p in f["properties"]
        }
    # Data the queries can find: every type, extreme timestamps, a few tags.
    pts = [[LONG_MIN, 1], [-1, 2], [0, 3], [1000, 4], [86_400_000, 5], [LONG_MAX, 6]]
    body = [
        {"name": "fzq.long", "tags": {"h": "h1"}, "datapoints": pts},
        {"name": "fzq.double", "tags": {"h": "h2"}, "datapoints": [[t, v + 0.5] for t, v in pts]},
        {"name": "fzq.string", "tags": {"h": "h1"}, "datapoints": [[t, f"s{v}"] for t, v in pts]},
        {
            "name": "fzq.hist",
            "tags": {"h": "h1"},
            "datapoints": [[t, {"boundaries": [1.0, 2.0], "counts": [v, 1, 2]}] for t, v in pts],
        },
        {"name": "fzq.mixed", "tags": {"h": "h3", "g": "x"}, "datapoints": pts[:3]},
        {"name": "fzq.mixed", "tags": {"h": "h4"}, "datapoints": [[5, 0.25], [6, "t"]]},
    ]
    r = fuzz_client.post("/api/v1/datapoints", json=body)
    assert r.status_code == 204, r.text
    fuzz_server.wait_applied()
    return out["aggregators"], out["group_by"]


@given(data=st.data())
@_settings(default=900, share=0.5)
def test_fuzz_query(
    fuzz_server: Server, fuzz_client: httpx.Client, features: tuple[dict, dict], data
) -> None:
    q = data.draw(queries(*features))
    for i, m in enumerate(q.get("metrics") or []):
        for a in m.get("aggregators") or []:
            if isinstance(a, dict) and a.get("name") == "save_as":
                a["metric_name"] = f"fzsave.{i}"  # keeps save_as from writing to the seeds
    text = to_json(q, ascii_only=data.draw(st.booleans()))
    body = data.draw(mutated(text))
    path = data.draw(
        st.sampled_from(["/api/v1/datapoints/query"] * 4 + ["/api/v1/datapoints/query/tags"])
    )
    r = fuzz_client.post(path, content=body)
    _no_5xx(r, body, fuzz_server.log())
