"""gzip of JSON responses, as KairosDB's Jetty ``GzipHandler`` does it (spec §1.1).

Jetty 9.4 with KairosDB's settings (mime type ``application/json``, methods GET and POST):

* only 2xx responses other than 204/205, whose type is ``application/json`` (or unset) and
  that carry no ``Content-Encoding`` yet, are candidates;
* every candidate gets ``Vary: Accept-Encoding`` -- also when it is then left uncompressed;
* a candidate is compressed when it is at least 32 bytes long and the request's
  ``Accept-Encoding`` lists ``gzip``.
"""

from __future__ import annotations

import asyncio

from isal import isal_zlib
from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse

__all__ = ["MIN_GZIP_SIZE", "accepts_gzip", "gzip_bytes", "register"]

MIN_GZIP_SIZE = 32
# ISA-L's level 1 (of 0-3): on a 54 MB query response ~8x faster than zlib's level 5 for
# ~15 % more bytes (docs/benchmarks.md, "gzip of query responses"); the output is ordinary gzip.
LEVEL = 1
# Bodies this large are compressed off the event loop (ISA-L releases the GIL).
EXECUTOR_SIZE = 256 * 1024
METHODS = frozenset(("GET", "POST"))


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value lists ``gzip`` (not with ``q=0``)."""
    if not accept_encoding:
        return False
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() != "gzip":
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return True
        return True
    return False


def gzip_bytes(data: bytes) -> bytes:
    """``data`` as one gzip member (mtime 0)."""
    c = isal_zlib.compressobj(LEVEL, isal_zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def _candidate(request: Request, response: BaseHTTPResponse) -> bool:
    if request.method not in METHODS:
        return False
    status = response.status
    if status < 200 or status >= 300 or status in (204, 205):
        return False
    ctype = response.content_type
    if ctype and ctype.split(";", 1)[0].strip().lower() != "application/json":
        return False
    return "content-encoding" not in response.headers


async def compress_response(request: Request, response: BaseHTTPResponse) -> None:
    if not _candidate(request, response):
        return
    vary = response.headers.get("vary")
    if vary is None:
        response.headers["Vary"] = "Accept-Encoding"
    elif "accept-encoding" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Accept-Encoding"
    body = response.body
    if not body or len(body) < MIN_GZIP_SIZE:
        return
    if not accepts_gzip(request.headers.get("accept-encoding")):
        return
    if len(body) >= EXECUTOR_SIZE:
        body = await asyncio.get_running_loop().run_in_executor(None, gzip_bytes, body)
    else:
        body = gzip_bytes(body)
    response.body = body
    response.headers["Content-Encoding"] = "gzip"
    if "content-length" in response.headers:
        response.headers["Content-Length"] = str(len(body))


def register(app: Sanic) -> None:
    """Install the gzip step as a response middleware of ``app``."""
    app.register_middleware(compress_response, "response")
