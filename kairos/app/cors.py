"""CORS pre-flight: KairosDB's ``OPTIONS`` handlers (spec §1.1).

KairosDB answers these itself rather than through a CORS filter, and echoes the request's
``Access-Control-Request-*`` headers back -- the method under the misspelt name
``Access-Control-Allow_Method``, which browsers ignore but clients may test for.  Only the
paths KairosDB declares get a handler; the GET/POST/DELETE routes on the same paths live in
their own blueprints (Sanic routes by path and method across blueprints).
"""

from __future__ import annotations

from collections.abc import Iterator

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

__all__ = ["PREFLIGHT_PATHS", "bp", "preflight"]

bp = Blueprint("cors", url_prefix="/api/v1")

# MetricsResource and HealthCheckResource; tagnames/tagvalues as in KairosDB <= 1.2.
PREFLIGHT_PATHS = (
    "/version",
    "/metricnames",
    "/tagnames",
    "/tagvalues",
    "/datapoints",
    "/datapoints/query",
    "/datapoints/query/tags",
    "/datapoints/delete",
    "/health/check",
    "/health/status",
)


def preflight(request: Request) -> HTTPResponse:
    """200, empty body, the request's pre-flight headers echoed back."""
    headers = {"Access-Control-Allow-Origin": "*"}
    # JAX-RS drops a header set to null: no request header, no response header.
    requested = request.headers.get("Access-Control-Request-Headers")
    if requested is not None:
        headers["Access-Control-Allow-Headers"] = requested
    headers["Access-Control-Max-Age"] = "86400"
    method = request.headers.get("Access-Control-Request-Method")
    if method is not None:
        headers["Access-Control-Allow_Method"] = method
    return _EmptyResponse(status=200, headers=headers)


class _EmptyResponse(HTTPResponse):
    """A response without a body and without a ``Content-Type`` (as KairosDB's pre-flights);
    Sanic would otherwise send the literal ``content-type: None``."""

    @property
    def processed_headers(self) -> Iterator[tuple[bytes, bytes]]:
        return ((k, v) for k, v in super().processed_headers if k != b"content-type")


async def _preflight(request: Request) -> HTTPResponse:
    return preflight(request)


async def _preflight_metric(request: Request, name: str) -> HTTPResponse:
    return preflight(request)


for _path in PREFLIGHT_PATHS:
    bp.add_route(_preflight, _path, methods=["OPTIONS"], name="preflight" + _path.replace("/", "_"))
# Exactly the pattern of the DELETE route in ``datapoints.py``: Sanic groups routes by pattern,
# and a path matching two different patterns is answered by the first group only (405).
bp.add_route(_preflight_metric, "/metric/<name:path>", methods=["OPTIONS"], name="preflight_metric")
