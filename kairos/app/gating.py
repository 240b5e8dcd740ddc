"""KairosDB's server-type gating (spec §1.1.1): API groups a service does not serve get 403.

``kairos ingest`` serves INGEST and DELETE, ``kairos query`` serves QUERY; ``kairos serve``
serves everything.  The body is KairosDB's hand-built one (note the spaces).
"""

from __future__ import annotations

import re

from sanic import Request, Sanic
from sanic.response import HTTPResponse, raw

__all__ = ["api_group", "register"]

_GROUPS = [
    ("INGEST", re.compile(r"^/api/v1/datapoints/?$"), {"POST", "OPTIONS"}),
    ("INGEST", re.compile(r"^/api/v1/datapoints/index/?$"), {"GET"}),
    ("INGEST", re.compile(r"^/api/v1/prometheus/writeadapter/write/?$"), {"POST"}),
    ("QUERY", re.compile(r"^/api/v1/metricnames/?$"), {"GET", "OPTIONS"}),
    ("QUERY", re.compile(r"^/api/v1/datapoints/query/?$"), {"GET", "POST", "OPTIONS"}),
    ("QUERY", re.compile(r"^/api/v1/datapoints/query/tags/?$"), {"POST", "OPTIONS"}),
    ("DELETE", re.compile(r"^/api/v1/datapoints/delete/?$"), {"POST", "OPTIONS"}),
    ("DELETE", re.compile(r"^/api/v1/metric/.+$"), {"DELETE", "OPTIONS"}),
]


def api_group(method: str, path: str) -> str | None:
    """The gated API group of a request, or None for ungated paths."""
    for group, pattern, methods in _GROUPS:
        if method in methods and pattern.match(path):
            return group
    return None


def register(app: Sanic, groups: frozenset[str]) -> None:
    if groups >= {"INGEST", "QUERY", "DELETE"}:
        return

    async def _gate(request: Request) -> HTTPResponse | None:
        group = api_group(request.method, request.path)
        if group is None or group in groups:
            return None
        body = f'{{"errors": ["Forbidden: {group} API methods are disabled on this KairosDB instance."]}}'
        return raw(body.encode(), status=403, content_type="application/json")

    # Called, not used as ``@app.on_request(priority=...)``: sanic types that decorator form's
    # result as a middleware, which mypy then rejects as a decorator.
    app.on_request(_gate, priority=100)
