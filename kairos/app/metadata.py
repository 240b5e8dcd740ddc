"""KairosDB's Metadata API (``MetadataResource``): a key/value store under ``/api/v1/metadata``.

::

    GET    /api/v1/metadata/{service}                      {"results": [service_key, ...]}
    GET    /api/v1/metadata/{service}/{serviceKey}         {"results": [key, ...]}  ?startsWith=
    GET    /api/v1/metadata/{service}/{serviceKey}/{key}   the raw value (200) or 404
    POST   /api/v1/metadata/{service}/{serviceKey}/{key}   body = the raw value; 204
    DELETE /api/v1/metadata/{service}/{serviceKey}/{key}   204

Services whose name starts with ``_`` are KairosDB's own (``_Rollups``, ``_Hosts``): every
request on them is 401 with an empty body.  Every response carries KairosDB's standard headers.
A value is at most ``metadata.max_value_mb`` bytes (413 past it, refused before it is read;
KairosDB has no limit).  ``GET`` of a value has two variants chosen by ``Accept``, as the two
JAX-RS methods are: JSON (the default) and ``text/plain``; both return the value as is (not JSON-quoted), and a missing key
is 404 with ``{"errors":["Key not found"]}`` for JSON and an empty body for text.  Metadata is
never gated by the server type.  Result shapes and orders are the store's
(:mod:`kairos.storage.metadata`).  A datastore failure is Kairos's usual error (503 with
``Retry-After`` while Cassandra is unreachable, where KairosDB answers 500; 507 with
``Retry-After`` for a write while the data directory's disk is below its reserve or full).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import unquote

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import raw

from kairos.app._http import STANDARD_HEADERS, error_response, json_response, no_content
from kairos.app.bodies import with_body
from kairos.config import Config
from kairos.errors import KairosError

__all__ = ["bp"]

log = logging.getLogger("kairos.app")

bp = Blueprint("metadata", url_prefix="/api/v1/metadata")

TEXT = "text/plain; charset=UTF-8"
JSON = "application/json; charset=UTF-8"


async def _call(request: Request, method: str, *args):
    store = request.app.ctx.state.metadata
    return await asyncio.get_running_loop().run_in_executor(None, getattr(store, method), *args)


def _check_disk(request: Request) -> None:
    """507 while the data directory is below its reserve, when the metadata lives there."""
    st = request.app.ctx.state
    if st.config.datastore == "embedded":
        st.admission.check_disk()


def _unauthorized() -> HTTPResponse:
    return HTTPResponse(status=401, headers=STANDARD_HEADERS)


def _reserved(service: str) -> bool:
    return service.startswith("_")


@bp.get("/<service>")
async def list_service_keys(request: Request, service: str) -> HTTPResponse:
    service = unquote(service)
    if _reserved(service):
        return _unauthorized()
    return json_response({"results": await _call(request, "list_service_keys", service)})


@bp.get("/<service>/<service_key>")
async def list_keys(request: Request, service: str, service_key: str) -> HTTPResponse:
    service = unquote(service)
    if _reserved(service):
        return _unauthorized()
    starts_with = request.args.get("startsWith") or None
    keys = await _call(request, "list_keys", service, unquote(service_key), starts_with)
    return json_response({"results": keys})


def _wants_json(request: Request) -> bool | None:
    """JSON or text/plain by ``Accept`` (JSON without one); None when neither is acceptable."""
    if not request.headers.get("accept"):
        return True
    match = request.accept.match("application/json", "text/plain")
    if not match:
        return None
    return match.mime == "application/json"


@bp.get("/<service>/<service_key>/<key>")
async def get_value(request: Request, service: str, service_key: str, key: str) -> HTTPResponse:
    as_json = _wants_json(request)
    if as_json is None:
        return HTTPResponse(status=406)
    service = unquote(service)
    if _reserved(service):
        return _unauthorized()
    try:
        value = await _call(request, "get_value", service, unquote(service_key), unquote(key))
    except KairosError as e:
        if as_json:
            raise
        # KairosDB's text variant answers its errors without a body.
        log.error("%s %s: %s", request.method, request.path, e)
        return HTTPResponse(status=e.status_code, headers=STANDARD_HEADERS)
    if value is None:
        if as_json:
            return error_response(["Key not found"], 404, STANDARD_HEADERS)
        return HTTPResponse(status=404, headers=STANDARD_HEADERS)
    return raw(value.encode(), headers=STANDARD_HEADERS, content_type=JSON if as_json else TEXT)


def _value_limit(config: Config) -> tuple[int, str]:
    n = config.metadata_max_value_bytes
    return n, f"Metadata value exceeds the maximum of {n} bytes (KAIROSDB_METADATA_MAX_VALUE_MB)"


@bp.post("/<service>/<service_key>/<key>", stream=True)
@with_body(limit=_value_limit)
async def set_value(request: Request, service: str, service_key: str, key: str) -> HTTPResponse:
    service = unquote(service)
    if _reserved(service):
        return _unauthorized()
    _check_disk(request)
    value = request.body.decode("utf-8", errors="replace")
    await _call(request, "set_value", service, unquote(service_key), unquote(key), value)
    return no_content()


@bp.delete("/<service>/<service_key>/<key>")
async def delete_key(request: Request, service: str, service_key: str, key: str) -> HTTPResponse:
    service = unquote(service)
    if _reserved(service):
        return _unauthorized()
    _check_disk(request)
    await _call(request, "delete_key", service, unquote(service_key), unquote(key))
    return no_content()
