"""KairosDB's Metadata API over HTTP, on the embedded store and on Cassandra (spec §1.2
"Metadata API", §6.10)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from kairos.app.gating import api_group
from tests.cassandra_support import connect
from tests.conftest import Server, start_server

pytestmark = pytest.mark.integration

STANDARD = {
    "access-control-allow-origin": "*",
    "pragma": "no-cache",
    "cache-control": "no-cache",
    "expires": "0",
}


@pytest.fixture(
    scope="module",
    params=["embedded", pytest.param("cassandra", marks=pytest.mark.cassandra)],
)
def backend(request, tmp_path_factory) -> Iterator[tuple[str, Server, str | None, str | None]]:
    """(datastore, server, contact points, keyspace)."""
    env: dict[str, str] = {}
    points = keyspace = None
    if request.param == "cassandra":
        points = request.getfixturevalue("cassandra_contact_points")
        keyspace = f"kairos_meta_{uuid.uuid4().hex[:8]}"
        env = {
            "KAIROSDB_DATASTORE": "cassandra",
            "KAIROSDB_CASSANDRA_CONTACT_POINTS": points,
            "KAIROSDB_CASSANDRA_KEYSPACE": keyspace,
        }
    srv = start_server(tmp_path_factory.mktemp(f"meta-{request.param}") / "data", env=env)
    yield request.param, srv, points, keyspace
    srv.stop()


@pytest.fixture
def c(backend) -> Iterator[httpx.Client]:
    with backend[1].client() as client:
        yield client


def fresh(backend) -> httpx.Client:
    """A client without keep-alive: each request may land on another HTTP worker."""
    return backend[1].client(limits=httpx.Limits(max_keepalive_connections=0))


def fresh_client(c: httpx.Client) -> httpx.Client:
    """A client of ``c``'s server on its own connection (a refused upload closes one)."""
    return httpx.Client(base_url=c.base_url, timeout=30)


def svc() -> str:
    return f"svc{uuid.uuid4().hex[:8]}"


def _standard(r: httpx.Response) -> None:
    for name, value in STANDARD.items():
        assert r.headers.get(name) == value, (name, dict(r.headers))


def test_set_get_overwrite_delete(c) -> None:
    s = svc()
    url = f"/api/v1/metadata/{s}/host1/config"
    r = c.get(url)
    assert r.status_code == 404
    assert r.content == b'{"errors":["Key not found"]}'
    assert r.headers["content-type"].startswith("application/json")
    r = c.post(url, content='{"a": 1, "b": "été"}'.encode())
    assert r.status_code == 204 and r.content == b""
    _standard(r)
    r = c.get(url)
    assert r.status_code == 200
    _standard(r)
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    assert r.content == '{"a": 1, "b": "été"}'.encode()  # raw, not JSON-quoted
    r = c.post(url, content=b"plain words")
    assert r.status_code == 204
    r = c.get(url)
    assert (r.status_code, r.content) == (200, b"plain words")  # raw even as "JSON"
    r = c.get(url, headers={"Accept": "text/plain"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=UTF-8"
    assert r.content == b"plain words"
    r = c.delete(url)
    assert r.status_code == 204 and r.content == b""
    _standard(r)
    r = c.get(url)
    assert r.status_code == 404
    assert r.json() == {"errors": ["Key not found"]}
    _standard(r)
    r = c.get(url, headers={"Accept": "text/plain"})
    assert (r.status_code, r.content) == (404, b"")
    _standard(r)
    assert c.delete(url).status_code == 204  # deleting a missing key is fine
    r = c.post(f"/api/v1/metadata/{s}/host1/empty", content=b"")
    assert r.status_code == 204
    r = c.get(f"/api/v1/metadata/{s}/host1/empty")
    assert (r.status_code, r.content) == (200, b"")


def test_a_value_over_the_limit_is_413_and_stores_nothing(c) -> None:
    url = f"/api/v1/metadata/{svc()}/sk/big"
    limit = 1 << 20  # metadata.max_value_mb's default
    message = {
        "errors": [
            f"Metadata value exceeds the maximum of {limit} bytes (KAIROSDB_METADATA_MAX_VALUE_MB)"
        ]
    }
    r = c.post(url, content=b"x" * (limit + 1))
    assert r.status_code == 413
    assert r.json() == message
    chunks = (b"y" * 65536 for _ in range(17))  # chunked: refused once past the limit
    with fresh_client(c) as other:
        r = other.post(url, content=chunks)
    assert r.status_code == 413
    assert r.json() == message
    assert c.get(url).status_code == 404
    r = c.post(url, content=b"z" * limit)
    assert r.status_code == 204
    assert c.get(url).content == b"z" * limit


def test_accept_selects_the_variant(c) -> None:
    s = svc()
    url = f"/api/v1/metadata/{s}/k/missing"
    cases = {
        "application/json": b'{"errors":["Key not found"]}',
        "*/*": b'{"errors":["Key not found"]}',
        "text/plain;q=0.5, application/json": b'{"errors":["Key not found"]}',
        "text/*": b"",
        "text/plain, application/json;q=0.5": b"",
    }
    for accept, body in cases.items():
        r = c.get(url, headers={"Accept": accept})
        assert (r.status_code, r.content) == (404, body), accept
    assert c.get(url, headers={"Accept": "image/png"}).status_code == 406


def test_list_service_keys_one_entry_per_row(backend, c) -> None:
    datastore = backend[0]
    s = svc()
    for sk, key in [("b", "k1"), ("b", "k2"), ("a", "k3"), ("a", "k1"), ("c", "k0")]:
        assert c.post(f"/api/v1/metadata/{s}/{sk}/{key}", content=b"v").status_code == 204
    c.post(f"/api/v1/metadata/{s}x/other/k", content=b"v")
    r = c.get(f"/api/v1/metadata/{s}")
    assert r.status_code == 200
    _standard(r)
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    results = r.json()["results"]
    if datastore == "embedded":
        assert results == ["c", "a", "b", "b", "a"]  # H2: one row each, ordered by key
    else:
        # Cassandra: one row each, in partition token order, keys ascending within one.
        assert sorted(results) == ["a", "a", "b", "b", "c"]
    for key in ("k1", "k2"):
        assert c.delete(f"/api/v1/metadata/{s}/b/{key}").status_code == 204
    results = c.get(f"/api/v1/metadata/{s}").json()["results"]
    if datastore == "embedded":
        assert results == ["c", "a", "a"]
    else:
        # KairosDB on Cassandra: the emptied service key's static mtime row is still listed.
        assert sorted(results) == ["a", "a", "b", "c"]
    assert c.get(f"/api/v1/metadata/{s}/b").json() == {"results": []}
    assert c.get(f"/api/v1/metadata/{svc()}").json() == {"results": []}


def test_list_keys_and_starts_with(c) -> None:
    s = svc()
    keys = ["b", "a", "ab", "abc", "aé", "été", "a\uffee", "a\U0001f600", "B", "a b/c"]
    for key in keys:
        r = c.post(f"/api/v1/metadata/{s}/sk/{quote(key, safe='')}", content=key.encode())
        assert r.status_code == 204, key
    r = c.get(f"/api/v1/metadata/{s}/sk")
    assert r.status_code == 200
    _standard(r)
    assert r.json() == {"results": sorted(keys)}
    assert c.get(f"/api/v1/metadata/{s}/sk", params={"startsWith": ""}).json()["results"] == (
        sorted(keys)
    )
    starts = {
        "a": ["a", "a b/c", "ab", "abc", "aé", "a\uffee"],  # not a + U+1F600: [a, a+U+FFFF)
        "ab": ["ab", "abc"],
        "é": ["été"],
        "a b": ["a b/c"],
        "zz": [],
    }
    for prefix, expected in starts.items():
        r = c.get(f"/api/v1/metadata/{s}/sk", params={"startsWith": prefix})
        assert r.json() == {"results": expected}, prefix
    for key in keys:
        r = c.get(f"/api/v1/metadata/{s}/sk/{quote(key, safe='')}")
        assert (r.status_code, r.text) == (200, key)
    assert c.get(f"/api/v1/metadata/{s}/nothing").json() == {"results": []}


def test_reserved_services_are_401_with_empty_body(c) -> None:
    for service in ("_Rollups", "_Hosts", "_mine"):
        requests = [
            c.get(f"/api/v1/metadata/{service}"),
            c.get(f"/api/v1/metadata/{service}/Config"),
            c.get(f"/api/v1/metadata/{service}/Config", params={"startsWith": "a"}),
            c.get(f"/api/v1/metadata/{service}/Config/k"),
            c.get(f"/api/v1/metadata/{service}/Config/k", headers={"Accept": "text/plain"}),
            c.post(f"/api/v1/metadata/{service}/Config/k", content=b"v"),
            c.delete(f"/api/v1/metadata/{service}/Config/k"),
        ]
        for r in requests:
            assert (r.status_code, r.content) == (401, b""), r.request.url
            _standard(r)
    # Only the service is checked, as in KairosDB.
    s = svc()
    assert c.post(f"/api/v1/metadata/{s}/_sk/_k", content=b"v").status_code == 204
    assert c.get(f"/api/v1/metadata/{s}/_sk/_k").content == b"v"


def test_wrong_method_and_unknown_paths(c) -> None:
    assert c.put(f"/api/v1/metadata/{svc()}/sk/k", content=b"v").status_code == 405
    assert c.post(f"/api/v1/metadata/{svc()}").status_code == 405
    assert c.get("/api/v1/metadata/a/b/c/d").status_code == 404


def test_every_worker_sees_every_write(backend) -> None:
    s = svc()
    url = f"/api/v1/metadata/{s}/sk/k"
    with fresh(backend) as c:
        for i in range(30):
            assert c.post(url, content=f"v{i}".encode()).status_code == 204
            r = c.get(url)
            assert (r.status_code, r.text) == (200, f"v{i}")
        assert c.delete(url).status_code == 204
        assert c.get(url).status_code == 404


@pytest.mark.parametrize(
    "backend", [pytest.param("cassandra", marks=pytest.mark.cassandra)], indirect=True
)
def test_cassandra_rows_and_millisecond_write_times(backend, c) -> None:
    _, _, points, keyspace = backend
    s = svc()
    before = time.time_ns() // 1_000_000
    assert c.post(f"/api/v1/metadata/{s}/sk/k", content=b"value").status_code == 204
    after = time.time_ns() // 1_000_000
    cluster = connect(points)
    try:
        session = cluster.connect(keyspace)
        row = session.execute(
            "SELECT value, WRITETIME(value), mtime FROM service_index "
            "WHERE service=%s AND service_key=%s AND key=%s",
            (s, "sk", "k"),
        ).one()
        assert row[0] == "value"
        assert before <= row[1] <= after, (before, row[1], after)  # ms, not µs
        assert row[2] is not None  # now() as the static modification time
        # A row written the Java way (plain CQL, a millisecond client timestamp) is served.
        session.execute(
            "INSERT INTO service_index (service, service_key, key, value, mtime) "
            "VALUES (%s, %s, %s, %s, now()) USING TIMESTAMP %s",
            (s, "java", "written", "by KairosDB", time.time_ns() // 1_000_000 - 1),
        )
        assert c.get(f"/api/v1/metadata/{s}/java/written").text == "by KairosDB"
        assert c.get(f"/api/v1/metadata/{s}/java").json() == {"results": ["written"]}
        assert c.delete(f"/api/v1/metadata/{s}/java/written").status_code == 204
        rows = list(
            session.execute(
                "SELECT key, mtime FROM service_index WHERE service=%s AND service_key=%s",
                (s, "java"),
            )
        )
        # The delete's static row (KairosDB bumps the service key's modification time).
        assert len(rows) == 1 and rows[0][0] is None and rows[0][1] is not None
    finally:
        cluster.shutdown()


def test_metadata_is_never_gated(tmp_path) -> None:
    for method in ("GET", "POST", "DELETE", "OPTIONS"):
        for path in ("/api/v1/metadata/s", "/api/v1/metadata/s/sk", "/api/v1/metadata/s/sk/k"):
            assert api_group(method, path) is None, (method, path)
    srv = start_server(tmp_path / "data", command="ingest", workers=1)
    try:
        with srv.client() as c:
            assert c.get("/api/v1/metricnames").status_code == 403  # QUERY is gated here
            url = "/api/v1/metadata/svc/sk/k"
            assert c.post(url, content=b"v").status_code == 204
            assert c.get(url).text == "v"
            assert c.get("/api/v1/metadata/svc").json() == {"results": ["sk"]}
            assert c.get("/api/v1/metadata/svc/sk").json() == {"results": ["k"]}
            assert c.delete(url).status_code == 204
    finally:
        srv.stop()
