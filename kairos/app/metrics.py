"""``GET /metrics``: Prometheus text exposition through the OpenTelemetry SDK.

Multi-process design
--------------------
Kairos runs N Sanic HTTP worker processes plus a writer process; a scrape lands on *one*
worker, yet must report totals.  In-process OpenTelemetry state cannot be shared, so:

1. **Record per worker, cheaply.**  Each worker keeps plain cumulative counters and
   fixed-bucket histograms (:class:`WorkerMetrics`, on ``app.ctx.metrics``).  A Sanic
   request/response middleware records HTTP requests by route, method and status class and
   their latency; ``post_datapoints`` reports each batch's size; the WAL counters
   (appends, synced appends, bytes) and ingested points/requests come from ``WorkerState``.
   Nothing here is per point: one dict update per request.
2. **Publish.**  Each worker writes a JSON snapshot of its counters to
   ``<data_dir>/metrics/<pid>.json`` (write to a temp file, ``os.replace``) every
   ``FLUSH_SECONDS``, at scrape time (the scraped worker's own numbers are always current)
   and at shutdown it removes it.  Snapshots of processes that are no longer alive are
   ignored and deleted, so a restarted worker shows up as a Prometheus counter reset.
3. **Aggregate at scrape.**  The handler loads every live worker's snapshot plus the
   writer's ``writer.status``, sums them, and exposes the sums through the OpenTelemetry SDK:
   counters and gauges are ``ObservableCounter``/``ObservableGauge`` callbacks of a
   per-worker ``MeterProvider`` whose reader is a ``PrometheusMetricReader`` on a private
   ``CollectorRegistry``.  OpenTelemetry has no observable histogram, so the merged
   histograms (identical bucket bounds in every worker, hence bucket-wise sums) are added as
   OpenTelemetry ``HistogramDataPoint``\\ s to the metrics data the reader receives.  The
   text is rendered by ``prometheus_client.generate_latest`` of that registry.  The scrape
   is synchronous (no ``await``), so concurrent scrapes of one worker cannot interleave.

Other workers' numbers are at most ``FLUSH_SECONDS`` old; the writer's and the WAL backlog
(computed live, like ``/health``) are current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, raw

from kairos._hist import LATENCY_BOUNDS
from kairos._hist import Hist as _Hist
from kairos.app.otlp import OtlpPush, otlp_enabled
from kairos.app.process import alive, rss_bytes
from kairos.logs import TRACE
from kairos.storage.wal import backlog_bytes, quarantined_files, wal_disk_bytes
from kairos.storage.writer import read_status

__all__ = ["WorkerMetrics", "bp", "record_batch", "register"]

log = logging.getLogger("kairos.metrics")
access_log = logging.getLogger("kairos.access")

bp = Blueprint("metrics")

FLUSH_SECONDS = 1.0
BATCH_BOUNDS = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
INGEST_ROUTE = "/api/v1/datapoints"
QUERY_ROUTES = ("/api/v1/datapoints/query", "/api/v1/datapoints/query/tags")


def metrics_dir(data_dir: str) -> str:
    return os.path.join(data_dir, "metrics")


@dataclass
class WorkerMetrics:
    """This worker's cumulative counters (the WAL/ingest ones live on ``WorkerState``)."""

    started: float = field(default_factory=time.time)
    http: dict[tuple[str, str, str], int] = field(default_factory=dict)
    http_latency: dict[str, _Hist] = field(default_factory=dict)
    validation_errors: int = 0
    queries: int = 0
    query_latency: _Hist = field(default_factory=lambda: _Hist(LATENCY_BOUNDS))
    read_latency: _Hist = field(default_factory=lambda: _Hist(LATENCY_BOUNDS))
    batch_sizes: _Hist = field(default_factory=lambda: _Hist(BATCH_BOUNDS))

    def on_response(self, route: str, method: str, status: int, seconds: float | None) -> None:
        klass = f"{status // 100}xx"
        key = (route, method, klass)
        self.http[key] = self.http.get(key, 0) + 1
        if route == INGEST_ROUTE and method == "POST" and status == 400:
            self.validation_errors += 1
        if seconds is None:
            return
        h = self.http_latency.get(route)
        if h is None:
            h = self.http_latency[route] = _Hist(LATENCY_BOUNDS)
        h.observe(seconds)
        if route in QUERY_ROUTES:
            self.queries += 1
            self.query_latency.observe(seconds)

    def snapshot(self, state) -> dict:
        wal = state.wal if state is not None else None
        cache = getattr(state, "cache", None)
        return {
            "pid": os.getpid(),
            "started": self.started,
            "updated": time.time(),
            "rss_bytes": rss_bytes(),
            "http": [[r, m, c, n] for (r, m, c), n in self.http.items()],
            "http_latency": {r: h.dump() for r, h in self.http_latency.items()},
            "validation_errors": self.validation_errors,
            "queries": self.queries,
            "query_latency": self.query_latency.dump(),
            "read_latency": self.read_latency.dump(),
            "batch_sizes": self.batch_sizes.dump(),
            "ingested_points": getattr(state, "ingested_points", 0),
            "ingest_requests": getattr(state, "ingest_requests", 0),
            "wal_appends": getattr(wal, "appends", 0),
            "wal_synced_appends": getattr(wal, "synced_appends", 0),
            "wal_bytes": getattr(wal, "bytes_written", 0),
            "cache_hits": getattr(cache, "hits", 0),
            "cache_misses": getattr(cache, "misses", 0),
            "cache_evictions": getattr(cache, "evictions", 0),
            "cache_bytes": getattr(cache, "size_bytes", 0),
            "ingest_refused": getattr(getattr(state, "admission", None), "refused", 0),
            "bodies_refused": getattr(getattr(state, "bodies", None), "refused", 0),
        }

    def write(self, data_dir: str, state) -> None:
        d = metrics_dir(data_dir)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"{os.getpid()}.json")
        tmp = path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(orjson.dumps(self.snapshot(state)))
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(tmp)  # a full disk: give the space back
            raise


def record_batch(request: Request, points: int) -> None:
    """Called by the ingest handler with the size of each accepted batch."""
    m: WorkerMetrics | None = getattr(request.app.ctx, "metrics", None)
    if m is not None:
        m.batch_sizes.observe(points)
    push = getattr(request.app.ctx, "otlp", None)
    if push is not None:
        push.on_batch(points)


def record_read(request: Request, seconds: float) -> None:
    """Called by the query handler with the time its datastore reads took."""
    m: WorkerMetrics | None = getattr(request.app.ctx, "metrics", None)
    if m is not None and seconds > 0:
        m.read_latency.observe(seconds)


def load_snapshots(data_dir: str) -> list[dict]:
    """Every live worker's snapshot; files of dead processes are removed."""
    d = metrics_dir(data_dir)
    out: list[dict] = []
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return out
    for name in names:
        if not name.endswith(".json"):
            continue
        path = os.path.join(d, name)
        try:
            pid = int(name[:-5])
        except ValueError:
            continue
        if not alive(pid):
            with contextlib.suppress(OSError):
                os.remove(path)
            continue
        try:
            with open(path, "rb") as f:
                out.append(orjson.loads(f.read()))
        except (OSError, orjson.JSONDecodeError):
            continue
    return out


# -- aggregation into OpenTelemetry ---------------------------------------------------------------


def _merge_hist(into: dict | None, h: dict) -> dict:
    if into is None:
        return {**h, "counts": list(h["counts"])}
    into["counts"] = [a + b for a, b in zip(into["counts"], h["counts"], strict=True)]
    if h["n"]:
        into["min"] = h["min"] if not into["n"] else min(into["min"], h["min"])
        into["max"] = h["max"] if not into["n"] else max(into["max"], h["max"])
    into["sum"] += h["sum"]
    into["n"] += h["n"]
    return into


@dataclass
class _Aggregate:
    counters: dict[str, dict[tuple, float]] = field(default_factory=dict)
    gauges: dict[str, dict[tuple, float]] = field(default_factory=dict)
    hists: dict[str, dict[tuple, tuple[dict, tuple[float, ...]]]] = field(default_factory=dict)
    start_ns: int = 0


_SUMMED = {
    "ingested_points": "kairos_ingested_points",
    "ingest_requests": "kairos_ingest_requests",
    "validation_errors": "kairos_ingest_validation_errors",
    "queries": "kairos_queries",
    "wal_appends": "kairos_wal_appends",
    "wal_synced_appends": "kairos_wal_synced_appends",
    "wal_bytes": "kairos_wal_bytes",
    "cache_hits": "kairos_query_cache_hits",
    "cache_misses": "kairos_query_cache_misses",
    "cache_evictions": "kairos_query_cache_evictions",
    "ingest_refused": "kairos_ingest_refused",
    "bodies_refused": "kairos_request_bodies_refused",
}

_COUNTERS = {
    "kairos_http_requests": "HTTP requests by route, method and status class",
    "kairos_ingested_points": "data points accepted into the WAL",
    "kairos_ingest_requests": "POST /api/v1/datapoints requests",
    "kairos_ingest_validation_errors": "ingest requests answered 400",
    "kairos_queries": "datapoint queries",
    "kairos_wal_appends": "WAL records appended by the HTTP workers",
    "kairos_wal_synced_appends": "WAL appends fsynced before the response (sync ingest)",
    "kairos_wal_bytes": "bytes appended to the WAL by the HTTP workers",
    "kairos_writer_applied_points": "points the writer applied to the datastore",
    "kairos_datastore_write_retries": "writer applies that failed and were retried",
    "kairos_query_cache_hits": "queries answered from the query cache (cache_time)",
    "kairos_query_cache_misses": "cache_time queries that had to read the datastore",
    "kairos_query_cache_evictions": "query cache entries dropped to stay in its memory bound",
    "kairos_ingest_refused": "ingest requests refused with 503 (memory limit or WAL quota)",
    "kairos_request_bodies_refused": "requests refused with 503 before their body was read "
    "(KAIROSDB_MAX_INFLIGHT_BODY_MB)",
    "kairos_wal_quarantined_files": "WAL files moved to wal/quarantine (bad header), still there",
}
_GAUGES = {
    "kairos_wal_backlog_bytes": "WAL bytes not yet applied by the writer",
    "kairos_wal_disk_bytes": "bytes of WAL files on disk",
    "kairos_data_dir_free_bytes": "free bytes of the data directory's file system",
    "kairos_writer_lag_seconds": "seconds since the writer's last apply while backlog > 0",
    "kairos_process_resident_memory_bytes": "resident memory per process",
    "kairos_http_workers": "live HTTP worker processes reporting metrics",
    "kairos_query_cache_bytes": "memory held by the query caches of the HTTP workers",
}
_HISTS = {
    "kairos_http_request_duration_seconds": "HTTP request latency by route",
    "kairos_query_duration_seconds": "datapoint query latency",
    "kairos_ingest_batch_size_points": "points per ingest request",
    "kairos_datastore_read_duration_seconds": "time a query spent reading the datastore",
    "kairos_datastore_write_duration_seconds": "time of each writer apply to the datastore",
}


def aggregate(app: Sanic) -> _Aggregate:
    st = app.ctx.state
    cfg = st.config
    m: WorkerMetrics = app.ctx.metrics
    try:
        m.write(cfg.data_dir, st)
    except OSError:  # a full disk: the scrape still answers, with this worker's own numbers
        pass
    own = m.snapshot(st)
    snaps = [s for s in load_snapshots(cfg.data_dir) if s.get("pid") != own["pid"]] + [own]
    agg = _Aggregate()
    c, g, h = agg.counters, agg.gauges, agg.hists
    for name in _COUNTERS:
        c[name] = {}
    for name in _GAUGES:
        g[name] = {}
    for name in _HISTS:
        h[name] = {}
    agg.start_ns = int(
        min((s.get("started", time.time()) for s in snaps), default=time.time()) * 1e9
    )
    for s in snaps:
        for key, name in _SUMMED.items():
            c[name][()] = c[name].get((), 0) + s.get(key, 0)
        for route, method, klass, n in s.get("http", ()):
            k: tuple[tuple[str, str], ...] = (
                ("route", route),
                ("method", method),
                ("status_class", klass),
            )
            c["kairos_http_requests"][k] = c["kairos_http_requests"].get(k, 0) + n
        for route, hist in s.get("http_latency", {}).items():
            k = (("route", route),)
            prev = h["kairos_http_request_duration_seconds"].get(k)
            merged = _merge_hist(prev[0] if prev else None, hist)
            h["kairos_http_request_duration_seconds"][k] = (merged, LATENCY_BOUNDS)
        for key, name, bounds in (
            ("query_latency", "kairos_query_duration_seconds", LATENCY_BOUNDS),
            ("read_latency", "kairos_datastore_read_duration_seconds", LATENCY_BOUNDS),
            ("batch_sizes", "kairos_ingest_batch_size_points", BATCH_BOUNDS),
        ):
            prev = h[name].get(())
            if key in s:
                h[name][()] = (_merge_hist(prev[0] if prev else None, s[key]), bounds)
        g["kairos_query_cache_bytes"][()] = g["kairos_query_cache_bytes"].get((), 0) + s.get(
            "cache_bytes", 0
        )
        if s.get("rss_bytes") is not None:
            g["kairos_process_resident_memory_bytes"][
                (("process", "worker"), ("pid", str(s["pid"])))
            ] = s["rss_bytes"]
    g["kairos_http_workers"][()] = len(snaps)

    status = read_status(cfg.data_dir) or {}
    c["kairos_writer_applied_points"][()] = status.get("applied_points", 0)
    c["kairos_datastore_write_retries"][()] = status.get("retries", 0)
    if status.get("apply_latency"):
        h["kairos_datastore_write_duration_seconds"][()] = (
            _merge_hist(None, status["apply_latency"]),
            LATENCY_BOUNDS,
        )
    g["kairos_wal_disk_bytes"][()] = wal_disk_bytes(st.wal.dir)
    st.admission.sample_disk()
    if st.admission.free is not None:
        g["kairos_data_dir_free_bytes"][()] = st.admission.free
    c["kairos_wal_quarantined_files"][()] = len(quarantined_files(st.wal.dir))
    st.store.refresh()
    backlog = backlog_bytes(st.wal.dir, st.store.wal_positions)
    g["kairos_wal_backlog_bytes"][()] = backlog
    last = status.get("last_apply") or status.get("updated") or time.time()
    g["kairos_writer_lag_seconds"][()] = max(0.0, time.time() - last) if backlog > 0 else 0.0
    writer_pid = status.get("pid")
    if writer_pid and status.get("state") == "running":
        rss = rss_bytes(writer_pid)
        if rss is not None:
            g["kairos_process_resident_memory_bytes"][
                (("process", "writer"), ("pid", str(writer_pid)))
            ] = rss
    main_pid = os.getppid()
    rss = rss_bytes(main_pid) if main_pid > 1 else None
    if rss is not None:
        g["kairos_process_resident_memory_bytes"][(("process", "main"), ("pid", str(main_pid)))] = (
            rss
        )
    return agg


class _Reader(PrometheusMetricReader):
    """Adds the merged histograms (no observable histogram exists in OpenTelemetry) to the
    metrics data collected from the observable instruments."""

    def __init__(self, exporter: _Exporter, registry: CollectorRegistry) -> None:
        super().__init__(scope_info_enabled=False, registry=registry)
        self._exporter = exporter

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kw):
        extra = self._exporter.histogram_metrics()
        if metrics_data is None:
            return
        if extra:
            rm = metrics_data.resource_metrics
            scope = ScopeMetrics(InstrumentationScope("kairos"), extra, "")
            resource = rm[0].resource if rm else self._exporter.resource
            metrics_data = MetricsData([*rm, ResourceMetrics(resource, [scope], "")])
        super()._receive_metrics(metrics_data, timeout_millis, **kw)


class _Exporter:
    """One per worker: a MeterProvider whose observable instruments read ``self.agg``."""

    def __init__(self) -> None:
        self.resource = Resource.create({"service.name": "kairos"})
        self.registry = CollectorRegistry(auto_describe=False)
        self.reader = _Reader(self, self.registry)
        self.provider = MeterProvider(
            resource=self.resource, metric_readers=[self.reader], shutdown_on_exit=False
        )
        self.agg = _Aggregate()
        meter = self.provider.get_meter("kairos")
        for name, desc in _COUNTERS.items():
            meter.create_observable_counter(name, [self._callback(name, True)], "", desc)
        for name, desc in _GAUGES.items():
            meter.create_observable_gauge(name, [self._callback(name, False)], "", desc)

    def _callback(self, name: str, counter: bool):
        def cb(_: CallbackOptions) -> Iterable[Observation]:
            series = (self.agg.counters if counter else self.agg.gauges).get(name, {})
            return [Observation(v, dict(k)) for k, v in series.items()]

        return cb

    def histogram_metrics(self) -> list[Metric]:
        now = time.time_ns()
        out = []
        for name, series in self.agg.hists.items():
            desc = _HISTS[name]
            points = [
                HistogramDataPoint(
                    attributes=dict(k),
                    start_time_unix_nano=self.agg.start_ns,
                    time_unix_nano=now,
                    count=hist["n"],
                    sum=hist["sum"],
                    bucket_counts=hist["counts"],
                    explicit_bounds=bounds,
                    min=hist["min"] if hist["n"] else 0.0,
                    max=hist["max"] if hist["n"] else 0.0,
                )
                for k, (hist, bounds) in series.items()
            ]
            if points:
                data = Histogram(points, AggregationTemporality.CUMULATIVE)
                out.append(Metric(name, desc, "", data))
        return out

    def render(self, agg: _Aggregate) -> bytes:
        self.agg = agg
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        self.provider.shutdown()


@bp.get("/metrics")
async def get_metrics(request: Request) -> HTTPResponse:
    app = request.app
    body = app.ctx.metrics_exporter.render(aggregate(app))
    return raw(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def register(app: Sanic) -> None:
    """Blueprint, per-worker recording middleware and the snapshot publisher."""
    app.blueprint(bp)

    @app.on_request
    async def _start_timer(request: Request) -> None:
        request.ctx.metrics_t0 = time.perf_counter()

    @app.on_response
    async def _record(request: Request, response: HTTPResponse) -> None:
        m: WorkerMetrics | None = getattr(request.app.ctx, "metrics", None)
        if m is None or response is None:
            return
        t0 = getattr(request.ctx, "metrics_t0", None)
        route = request.route.path if request.route is not None else "unmatched"
        route = "/" + route.lstrip("/")
        elapsed = time.perf_counter() - t0 if t0 is not None else None
        m.on_response(route, request.method, response.status, elapsed)
        if access_log.isEnabledFor(TRACE):
            access_log.log(
                TRACE,
                "%s %s %d %.1f ms",
                request.method,
                request.path,
                response.status,
                (elapsed or 0) * 1000,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status,
                    "ms": round((elapsed or 0) * 1000, 3),
                },
            )
        push = getattr(request.app.ctx, "otlp", None)
        if push is not None:
            push.on_response(route, request.method, response.status, elapsed)

    @app.before_server_start
    async def _open_metrics(app: Sanic) -> None:
        app.ctx.metrics = WorkerMetrics()
        app.ctx.metrics_exporter = _Exporter()
        app.ctx.otlp = None
        if otlp_enabled():
            app.ctx.otlp = OtlpPush(lambda: getattr(app.ctx, "state", None))
        app.add_task(_publish(app), name="metrics-publish")

    @app.after_server_stop
    async def _close_metrics(app: Sanic) -> None:
        app.ctx.metrics_exporter.shutdown()
        if app.ctx.otlp is not None:
            app.ctx.otlp.shutdown()
        with contextlib.suppress(OSError):
            os.remove(os.path.join(metrics_dir(app.ctx.config.data_dir), f"{os.getpid()}.json"))


async def _publish(app: Sanic) -> None:
    failing = False
    while True:
        try:
            app.ctx.metrics.write(app.ctx.config.data_dir, getattr(app.ctx, "state", None))
            failing = False
        except OSError as e:
            if not failing:  # once per streak: a full disk fails it every second
                log.warning("could not publish worker metrics (%s)", e)
            failing = True
        try:
            await asyncio.sleep(FLUSH_SECONDS)
        except asyncio.CancelledError:
            return  # the worker is stopping (Sanic would log the cancellation as a warning)
