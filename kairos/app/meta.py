"""``/api/v1/version`` and ``/api/v1/metricnames``."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, raw

from kairos.app._http import JSON, STANDARD_HEADERS, json_response

__all__ = ["metricnames_bp", "version_bp"]

version_bp = Blueprint("version", url_prefix="/api/v1/version")
metricnames_bp = Blueprint("metricnames", url_prefix="/api/v1/metricnames")


@version_bp.get("")
async def version(request: Request) -> HTTPResponse:
    # KairosDB writes this by hand: a space after the colon and a trailing newline.
    text = request.app.ctx.state.config.version.replace("\\", "\\\\").replace('"', '\\"')
    return raw(f'{{"version": "{text}"}}\n'.encode(), headers=STANDARD_HEADERS, content_type=JSON)


@metricnames_bp.get("")
async def metricnames(request: Request) -> HTTPResponse:
    store = request.app.ctx.state.store
    store.refresh()
    return json_response({"results": store.metric_names(request.args.get("prefix"))})
