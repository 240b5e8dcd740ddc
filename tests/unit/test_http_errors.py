"""How the HTTP edge answers an exception (``kairos.app._http.render_error``)."""

from __future__ import annotations

import logging

import orjson
from sanic.exceptions import NotFound

from kairos.app._http import render_error
from kairos.errors import DatastoreUnavailable, InvalidQuery, QueryFailed, QueryTimeout


def _body(resp) -> dict:
    return orjson.loads(resp.body)


def test_kairos_errors_answer_their_status_and_messages() -> None:
    r = render_error("r1", "POST", "/api/v1/datapoints/query", InvalidQuery("bad", "worse"))
    assert (r.status, _body(r)) == (400, {"errors": ["bad", "worse"]})
    assert "retry-after" not in {k.lower() for k in r.headers}
    # KairosDB answers 500 here; the query is the client's to change, so Kairos answers 400.
    r = render_error("r1", "POST", "/q", QueryFailed("/ by zero"))
    assert (r.status, _body(r)) == (400, {"errors": ["/ by zero"]})


def test_unavailable_carries_retry_after() -> None:
    for exc in (QueryTimeout("Query timed out"), DatastoreUnavailable("Cassandra is down")):
        r = render_error("r1", "GET", "/x", exc)
        assert r.status == 503
        assert r.headers["Retry-After"] == "1"
        assert _body(r) == {"errors": [str(exc)]}


def test_sanic_errors_keep_their_status() -> None:
    r = render_error("r1", "GET", "/nope", NotFound("Requested URL /nope not found"))
    assert (r.status, _body(r)) == (404, {"errors": ["Requested URL /nope not found"]})


def test_unexpected_errors_hide_their_text_and_log_it(caplog) -> None:
    try:
        raise OSError(5, "Input/output error", "/secret/path/wal-1")
    except OSError as e:
        exc = e
    with caplog.at_level(logging.ERROR, logger="kairos.http"):
        r = render_error("abc-123", "POST", "/api/v1/datapoints", exc)
    assert r.status == 500
    assert r.headers["X-Request-Id"] == "abc-123"
    (msg,) = _body(r)["errors"]
    assert msg == (
        "Internal error while serving POST /api/v1/datapoints; "
        "the server log has the details under id abc-123"
    )
    assert "secret" not in r.body.decode() and "OSError" not in r.body.decode()
    (rec,) = caplog.records
    assert "abc-123" in rec.getMessage() and rec.exc_info is not None
    assert rec.exc_info[1] is exc


def test_a_full_disk_is_507_with_retry_after_and_no_path() -> None:
    """ENOSPC from any write (not only the guarded ones) is the client's cue to retry later."""
    for errno_ in (28, 122):  # ENOSPC, EDQUOT
        try:
            raise OSError(errno_, "No space left on device", "/secret/path/wal-1")
        except OSError as e:
            exc = e
        r = render_error("abc-123", "POST", "/api/v1/metadata/s/k/v", exc)
        assert r.status == 507
        assert r.headers["Retry-After"] == "5"
        (msg,) = _body(r)["errors"]
        assert msg.startswith("Disk full: No space left on device")
        assert "secret" not in r.body.decode()


def test_stored_lone_surrogates_are_written_as_kairosdb_does() -> None:
    """A lone surrogate already in a store (ingest accepted them before it refused them) no
    longer fails the response: it is written as '?', as KairosDB's UTF-8 writer does."""
    from kairos.app._http import json_dumps

    assert orjson.loads(json_dumps({"values": [[1, "x\ud800y"]], "name": "n"})) == {
        "values": [[1, "x?y"]],
        "name": "n",
    }
