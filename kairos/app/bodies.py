"""Request bodies admitted before they are read: a per-worker budget of body bytes in flight.

Sanic reads a route's whole body before its handler runs, so a memory check in the handler
comes too late: forty concurrent 60 MB uploads were all in memory before any was refused.
Every route that takes a body is therefore a *streaming* route (``stream=True``) wrapped by
:func:`with_body`, which, before a byte of the body is read:

* answers 413 (``Request body exceeds the size limit``, Sanic's text) when the announced
  ``Content-Length`` passes ``ingestion.max_body_mb``;
* on ingest routes, runs the memory and WAL admission (:mod:`kairos.app.backpressure`),
  counting the announced length against the memory limit when other bodies are in flight;
* reserves the announced length in the worker's :class:`BodyBudget`; past the budget
  (``KAIROSDB_MAX_INFLIGHT_BODY_MB``) the request answers 503 with ``Retry-After``;

then reads the body into ``request.body``.  A chunked body (no ``Content-Length``) reserves its
bytes as they arrive and is refused as soon as it passes the budget or the size limit, its
partial bytes dropped.  The reservation is held while the handler runs (the body and what is
parsed from it live that long) and released when it returns, fails or the client goes away.

A body alone in the worker is always admitted (up to the size limit), so a budget smaller than
the largest allowed body never refuses a request for ever.  Refused and unread bodies are
discarded by Sanic in buffer-sized pieces after the answer (keep-alive connections survive),
so a refusal costs no memory.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Awaitable, Callable
from typing import Any

from sanic import HTTPResponse, Request

from kairos.config import Config
from kairos.errors import PayloadTooLarge, Unavailable

__all__ = ["BodyBudget", "with_body"]

MB = 1024 * 1024
RETRY_AFTER_SECONDS = 1
TOO_LARGE = "Request body exceeds the size limit"


class BodyBudget:
    """The body bytes one worker process holds at once (one event loop: no locking)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.peak = 0
        self.refused = 0

    def take(self, n: int, held: int) -> None:
        """Reserve ``n`` more bytes for a request already holding ``held``; raise
        :class:`Unavailable` (nothing reserved) when that passes the budget and other requests
        hold bytes too."""
        total = self.in_flight + n
        if total > self.limit and self.in_flight > held:
            self.refused += 1
            raise Unavailable(
                f"Request body refused: this worker already holds {self.in_flight - held} bytes "
                f"of request bodies, and {held + n} more would pass "
                f"KAIROSDB_MAX_INFLIGHT_BODY_MB={self.limit / MB:g}; retry later",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self.in_flight = total
        self.peak = max(self.peak, total)

    def give_back(self, n: int) -> None:
        self.in_flight -= n


class _Lease:
    """One request's reservation in a :class:`BodyBudget`."""

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.held = 0

    def take(self, n: int) -> None:
        self.budget.take(n, self.held)
        self.held += n

    def release(self) -> None:
        self.budget.give_back(self.held)
        self.held = 0

    async def read(
        self, request: Request, announced: int | None, max_bytes: int, too_large: str
    ) -> bytes:
        """The whole body of ``request``: ``announced`` bytes (reserved ahead) or, chunked
        (``None``), reserved as they come; :class:`PayloadTooLarge` (``too_large``) past
        ``max_bytes``."""
        if announced is not None:
            self.take(announced)
        # BytesIO grows in place and hands its buffer over without a copy.
        out = io.BytesIO()
        async for chunk in request.stream:  # type: ignore[union-attr]
            if announced is None:
                if out.tell() + len(chunk) > max_bytes:
                    raise PayloadTooLarge(too_large)
                self.take(len(chunk))
            out.write(chunk)
        return out.getvalue()


def _announced(request: Request) -> int | None:
    """The body's ``Content-Length`` (0 without a body), or None for a chunked body."""
    stream = request.stream
    kind = getattr(stream, "request_body", None)
    if not kind:
        return 0
    if kind == "chunked":
        return None
    return int(request.headers["content-length"])  # parsed by Sanic: a bad one was its 400


Handler = Callable[..., Awaitable[HTTPResponse]]


def with_body(
    *, ingest: bool = False, limit: Callable[[Config], tuple[int, str]] | None = None
) -> Callable[[Handler], Handler]:
    """Wrap a streaming route's handler: admit, read and account its body (module docstring).

    ``ingest`` also runs the worker's ingest admission (memory and WAL backlog,
    :class:`~kairos.app.backpressure.Admission`) before the body is read.  ``limit(config)``
    gives a route's own size limit and 413 message, instead of ``ingestion.max_body_mb``.
    """

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            st = request.app.ctx.state
            max_bytes, too_large = (
                (st.config.max_body_bytes, TOO_LARGE) if limit is None else limit(st.config)
            )
            announced = _announced(request)
            if announced is not None and announced > max_bytes:
                raise PayloadTooLarge(too_large)
            if ingest:
                st.admission.check(st, (announced or 0) if st.bodies.in_flight else 0)
            lease = _Lease(st.bodies)
            try:
                if announced != 0:
                    request.body = await lease.read(request, announced, max_bytes, too_large)
                return await handler(request, *args, **kwargs)
            finally:
                request.body = b""  # the answer is built: the body may go with the lease
                lease.release()

        return run

    return wrap
