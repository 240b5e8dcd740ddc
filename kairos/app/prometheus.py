"""Prometheus ``remote_write`` receiver, as kairosdb-prometheus-adapter serves it.

``POST /api/v1/prometheus/writeadapter/write`` with a snappy-compressed protobuf
``WriteRequest`` (see :mod:`kairos.ingest.prometheus` for the mapping).  Replies 200 with an
empty body; a body that is not valid snappy/protobuf is the client's fault (400), a body whose
decompressed size exceeds the configured maximum is refused with 413.
"""

from __future__ import annotations

import asyncio
import logging

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from kairos.app._http import no_content
from kairos.app.bodies import with_body
from kairos.app.state import WorkerState
from kairos.errors import PayloadTooLarge
from kairos.ingest.prometheus import write_request_to_batch
from kairos.storage.records import encode_batch

__all__ = ["bp"]

log = logging.getLogger("kairos.ingest")

bp = Blueprint("prometheus", url_prefix="/api/v1/prometheus")

# Bodies at least this large are decoded off the event loop.
EXECUTOR_SIZE = 64 * 1024


@bp.post("/writeadapter/write", stream=True)
@with_body(ingest=True)
async def remote_write(request: Request) -> HTTPResponse:
    st: WorkerState = request.app.ctx.state
    cfg = st.config
    body = request.body or b""
    loop = asyncio.get_running_loop()
    if len(body) >= EXECUTOR_SIZE:
        conv = await loop.run_in_executor(None, write_request_to_batch, body, cfg.max_body_bytes)
    else:
        conv = write_request_to_batch(body, cfg.max_body_bytes)
    n = len(conv.batch)
    if n > cfg.ingestion_max_batch_size:
        raise PayloadTooLarge(
            f"Request has {n} data points, more than the maximum of {cfg.ingestion_max_batch_size}"
        )
    pos = None
    if n:
        payload = encode_batch(conv.batch)
        if cfg.ingestion_default_sync:  # durable and visible when answered, as ?sync=true
            pos = await st.append_synced(payload)
        else:
            st.wal.append(payload, False)
        st.ingested_points += n
    st.ingest_requests += 1
    if pos is not None:
        await st.wait_visible(pos)
    if conv.dropped_series or conv.dropped_samples:
        log.debug(
            "prometheus remote write: %d points stored, %d series without __name__ and "
            "%d samples (NaN/Inf or unnamed) dropped",
            n,
            conv.dropped_series,
            conv.dropped_samples,
        )
    return no_content(200)
