"""``/api/v1/version``, ``/api/v1/metricnames`` and KairosDB 1.2's ``tagnames``/``tagvalues``.

``tagnames`` and ``tagvalues`` were removed in KairosDB 1.3 but old clients still call them;
they list every tag name / value of every live series, in Java ``String`` order.
"""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, raw

from kairos.app._http import JSON, STANDARD_HEADERS, json_response

__all__ = ["metricnames_bp", "tagnames_bp", "tagvalues_bp", "version_bp"]

version_bp = Blueprint("version", url_prefix="/api/v1/version")
metricnames_bp = Blueprint("metricnames", url_prefix="/api/v1/metricnames")
tagnames_bp = Blueprint("tagnames", url_prefix="/api/v1/tagnames")
tagvalues_bp = Blueprint("tagvalues", url_prefix="/api/v1/tagvalues")


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


@tagnames_bp.get("")
async def tagnames(request: Request) -> HTTPResponse:
    store = request.app.ctx.state.store
    store.refresh()
    return json_response({"results": store.tag_names()})


@tagvalues_bp.get("")
async def tagvalues(request: Request) -> HTTPResponse:
    store = request.app.ctx.state.store
    store.refresh()
    return json_response({"results": store.tag_values()})
