"""``/api/v1/datapoints``: ingest (spec §2) and ``/query`` (spec §3)."""

from __future__ import annotations

import asyncio
import logging
import zlib
from urllib.parse import unquote

import orjson
from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from kairos.app._http import error_response, json_dumps, json_response, no_content
from kairos.app.bodies import with_body
from kairos.app.metrics import record_batch, record_read
from kairos.app.state import WorkerState
from kairos.errors import BadRequest, PayloadTooLarge
from kairos.ingest import ingest_body
from kairos.model.java import LONG_MAX, LONG_MIN
from kairos.query.engine import Limits, run_query, run_tags_query
from kairos.query.model import MetricQuery, parse_query
from kairos.storage.records import DeleteSpec, encode_batch, encode_delete

__all__ = ["bp", "metric_bp"]

log = logging.getLogger("kairos.ingest")

bp = Blueprint("datapoints", url_prefix="/api/v1/datapoints")

PERF_MODES = ("parse_only", "parse_and_store", "no_parse")


def inflate(body: bytes, limit: int) -> bytes:
    """Gunzip ``body``, refusing more than ``limit`` bytes of output (gzip bombs)."""
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error:
        raise BadRequest("Not in GZIP format") from None
    if len(out) > limit or d.unconsumed_tail:
        raise PayloadTooLarge(f"Decompressed request body exceeds the maximum of {limit} bytes")
    if not d.eof:
        raise BadRequest("Unexpected end of ZLIB input stream")
    return out


def _flag(request: Request, name: str, default: bool) -> bool:
    v = request.args.get(name)
    if v is None:
        return default
    s = v.strip().lower()
    if s in ("true", "1", "yes", ""):
        return True
    if s in ("false", "0", "no"):
        return False
    raise BadRequest(f"{name} must be true or false, got '{v}'")


@bp.post("", stream=True)
@with_body(ingest=True)
async def post_datapoints(request: Request) -> HTTPResponse:
    st: WorkerState = request.app.ctx.state
    cfg = st.config
    perf = request.args.get("perf_mode")
    if perf is not None and perf not in PERF_MODES:
        raise BadRequest(f"perf_mode must be one of {', '.join(PERF_MODES)}, got '{perf}'")
    sync = _flag(request, "sync", cfg.ingestion_default_sync)
    body = request.body or b""
    encoding = (request.headers.get("content-encoding") or "").lower()
    ctype = (request.headers.get("content-type") or "").lower()
    if "gzip" in encoding or ctype.startswith("application/gzip"):
        body = inflate(body, cfg.max_body_bytes)
    if perf == "no_parse":
        return no_content()
    result = ingest_body(body, cfg.ingestion_max_batch_size)
    n = len(result.batch)
    pos = None
    if perf != "parse_only" and n:
        payload = encode_batch(result.batch)
        if sync:
            pos = await st.append_synced(payload)
        else:
            st.wal.append(payload, False)
        st.ingested_points += n
        record_batch(request, n)
    st.ingest_requests += 1
    if pos is not None:
        # Durable and counted already: a 503 here ("not yet visible") lost nothing.
        await st.wait_visible(pos)
    if result.errors:
        log.debug("ingest: %d points stored, %d errors", n, len(result.errors))
        return error_response(result.errors, 400)
    return no_content()


async def _query(request: Request, doc: object) -> HTTPResponse:
    st: WorkerState = request.app.ctx.state
    query = parse_query(doc)
    st.store.refresh()

    def publish(batch) -> None:  # save_as: the results go through ingest like any batch
        st.wal.append(encode_batch(batch), False)

    cfg = st.config
    limits = Limits(cfg.query_max_points, cfg.query_timeout_ms, cfg.query_regex_timeout_ms)
    # Off the event loop, serialisation included (tens of ms for a response of millions of
    # points), so health checks and ingest keep flowing during a long query.
    body = await asyncio.get_running_loop().run_in_executor(
        None,
        lambda: json_dumps(
            run_query(st.store, query, publish=publish, limits=limits, cache=st.cache)
        ),
    )
    record_read(request, limits.read_seconds)
    return json_response(None, body=body)


def _decode(body: bytes | str) -> object:
    if not body or not body.strip():
        raise BadRequest("query json must not be null or empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"Malformed JSON: {e}") from None


@bp.post("/query", stream=True)
@with_body()
async def post_query(request: Request) -> HTTPResponse:
    return await _query(request, _decode(request.body))


@bp.get("/query")
async def get_query(request: Request) -> HTTPResponse:
    text = request.args.get("query")
    if not text:
        return error_response(["query json must not be null or empty"], 400)
    return await _query(request, _decode(text))


@bp.post("/query/tags", stream=True)
@with_body()
async def post_query_tags(request: Request) -> HTTPResponse:
    """Tags of the series each metric selects (aggregators and group-bys are ignored)."""
    st: WorkerState = request.app.ctx.state
    query = parse_query(_decode(request.body))
    st.store.refresh()
    cfg = st.config
    limits = Limits(cfg.query_max_points, cfg.query_timeout_ms, cfg.query_regex_timeout_ms)
    # Off the event loop: its regex tag filters may take up to their budget.
    result = await asyncio.get_running_loop().run_in_executor(
        None, run_tags_query, st.store, query, limits
    )
    return json_response(result)


# -- deletes -------------------------------------------------------------------------------------

DELETE_VISIBLE_TIMEOUT = 10.0


def _delete_spec(m: MetricQuery, start: int, end: int) -> DeleteSpec:
    tags = {k: (sorted(f.values), [p.pattern for p in f.patterns]) for k, f in m.tags.items()}
    return DeleteSpec(m.name, tags, start, end)


async def _append_deletes(st: WorkerState, specs: list[DeleteSpec]) -> None:
    """Durably log the deletes, then wait (bounded) until the writer has applied them, so a
    query right after the 204 no longer sees the points."""
    st.admission.check_disk()
    pos = None
    for spec in specs:
        pos = await st.append_synced(encode_delete(spec))
    if pos is not None and not await st.wait_applied(pos, DELETE_VISIBLE_TIMEOUT):
        log.warning("delete logged but not yet applied after %.0f s", DELETE_VISIBLE_TIMEOUT)


@bp.post("/delete", stream=True)
@with_body()
async def post_delete(request: Request) -> HTTPResponse:
    """Delete exactly the points each metric query selects (name, tag filter, time range)."""
    st: WorkerState = request.app.ctx.state
    query = parse_query(_decode(request.body))
    await _append_deletes(st, [_delete_spec(m, query.start, query.end) for m in query.metrics])
    return no_content()


metric_bp = Blueprint("metric", url_prefix="/api/v1/metric")


@metric_bp.delete("/<name:path>")
async def delete_metric(request: Request, name: str) -> HTTPResponse:
    """Delete every point of the metric, all tags, over the whole time range."""
    st: WorkerState = request.app.ctx.state
    await _append_deletes(st, [DeleteSpec(unquote(name), {}, LONG_MIN, LONG_MAX)])
    return no_content()
