"""Response helpers: KairosDB's headers and ``{"errors": [...]}`` bodies."""

from __future__ import annotations

import orjson
from sanic import HTTPResponse
from sanic.response import raw

__all__ = ["STANDARD_HEADERS", "error_response", "json_dumps", "json_response", "no_content"]

# MetricsResource.setHeaders: what KairosDB adds to successful responses.
STANDARD_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Pragma": "no-cache",
    "Cache-Control": "no-cache",
    "Expires": "0",
}
JSON = "application/json; charset=UTF-8"


def json_dumps(obj: object) -> bytes:
    """``obj`` as the JSON bytes of a response body (numpy arrays and orjson fragments too)."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


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
    return raw(
        orjson.dumps({"errors": messages}),
        status=status,
        headers={"Access-Control-Allow-Origin": "*", **(headers or {})},
        content_type=JSON,
    )
