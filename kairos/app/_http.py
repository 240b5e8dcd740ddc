"""Response helpers: KairosDB's headers and ``{"errors": [...]}`` bodies."""

from __future__ import annotations

import logging
import time

import orjson
from sanic import HTTPResponse, Request
from sanic.exceptions import NotFound, SanicException
from sanic.response import raw

from kairos.errors import InsufficientStorage, KairosError, Unavailable
from kairos.storage._fs import disk_full
from kairos.storage.wal import DISK_FULL_RETRY_AFTER

__all__ = [
    "STANDARD_HEADERS",
    "error_response",
    "json_dumps",
    "json_response",
    "no_content",
    "read_unused_body",
    "render_error",
]

log = logging.getLogger("kairos.http")

DISK_FULL_LOG_SECONDS = 10.0
_disk_full_logged = [float("-inf")]

# MetricsResource.setHeaders: what KairosDB adds to successful responses.
STANDARD_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Pragma": "no-cache",
    "Cache-Control": "no-cache",
    "Expires": "0",
}
JSON = "application/json; charset=UTF-8"


def json_dumps(obj: object) -> bytes:
    """``obj`` as the JSON bytes of a response body (numpy arrays and orjson fragments too).

    A string UTF-8 cannot hold (a lone surrogate, stored before ingest refused them) is
    written as KairosDB's UTF-8 writer does, with ``?`` in its place, so that one old point
    cannot make a whole metric unqueryable.
    """
    try:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as e:
        if "surrogates" not in str(e):
            raise
        return orjson.dumps(_without_surrogates(obj), option=orjson.OPT_SERIALIZE_NUMPY)


def _without_surrogates(obj: object) -> object:
    if isinstance(obj, str):
        return obj.encode("utf-8", "replace").decode("utf-8")
    if isinstance(obj, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_without_surrogates(v) for v in obj]
    return obj


def json_response(
    obj: object, status: int = 200, headers: dict | None = None, *, body: bytes | None = None
) -> HTTPResponse:
    """A JSON response of ``obj``, or of ``body`` when it is already serialised."""
    return raw(
        json_dumps(obj) if body is None else body,
        status=status,
        headers={**STANDARD_HEADERS, **(headers or {})},
        content_type=JSON,
    )


def no_content(status: int = 204) -> HTTPResponse:
    return HTTPResponse(status=status, headers=STANDARD_HEADERS)


def error_response(messages: list[str], status: int, headers: dict | None = None) -> HTTPResponse:
    try:
        body = orjson.dumps({"errors": messages})
    except TypeError:
        # A message quoting client input UTF-8 cannot hold: show its lone surrogates as \\udXXX.
        body = orjson.dumps(
            {"errors": [m.encode("utf-8", "backslashreplace").decode("utf-8") for m in messages]}
        )
    return raw(
        body,
        status=status,
        headers={"Access-Control-Allow-Origin": "*", **(headers or {})},
        content_type=JSON,
    )


def render_error(request_id: object, method: str, path: str, exc: BaseException) -> HTTPResponse:
    """The answer to a request that raised ``exc``, as KairosDB's ``{"errors": [...]}``.

    A ``KairosError`` answers its own status and messages (KairosDB's texts; 503s carry
    ``Retry-After``).  Anything else is a 500 that says what failed in words, never the
    exception's text: the exception and its traceback go to the log under ``request_id``, which
    the answer also carries (in the message and ``X-Request-Id``).
    """
    if disk_full(exc):
        # A full disk met by a write not guarded otherwise (a metadata write...): not a bug.
        cause = exc
        exc = InsufficientStorage(
            f"Disk full: {getattr(exc, 'strerror', None) or exc}; nothing was stored; "
            "retry once space is freed",
            retry_after=DISK_FULL_RETRY_AFTER,
        )
        exc.__cause__ = cause
    if isinstance(exc, InsufficientStorage):
        # Every write is refused while the disk is full: one log line per interval, not per
        # request (the admission check also logs when refusing starts and ends).
        now = time.monotonic()
        if now - _disk_full_logged[0] >= DISK_FULL_LOG_SECONDS:
            _disk_full_logged[0] = now
            log.warning("%s %s: %s", method, path, exc, exc_info=exc.__cause__)
        return error_response(exc.messages, exc.status_code, {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, KairosError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
        if exc.status_code >= 500:
            log.error("%s %s: %s", method, path, exc, exc_info=exc.__cause__)
        return error_response(exc.messages, exc.status_code, headers)
    if isinstance(exc, NotFound):
        # Sanic's router text drops the leading slash ("Requested URL  not found" for "/").
        return error_response([f"Requested URL {path} not found"], 404)
    if isinstance(exc, SanicException):
        return error_response([str(exc)], exc.status_code)
    rid = str(request_id)
    log.error("unhandled error %s on %s %s", rid, method, path, exc_info=exc)
    return error_response(
        [
            f"Internal error while serving {method} {path}; the server log has the details under id {rid}"
        ],
        500,
        {"X-Request-Id": rid},
    )


async def read_unused_body(request: Request) -> None:
    """Read the body of a GET, DELETE or HEAD request before its handler runs.

    Some clients send one (python-kairosdb sends ``{}`` with every request); the handlers of
    those methods ignore it, and Sanic would otherwise log an unformatted "body not consumed"
    error for each such request.  The body is bounded by ``REQUEST_MAX_SIZE`` like any other.
    """
    if request.method in ("GET", "DELETE", "HEAD") and (
        request.headers.get("content-length", "0") != "0"
        or "chunked" in request.headers.get("transfer-encoding", "").lower()
    ):
        await request.receive_body()
