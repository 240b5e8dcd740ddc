"""OTLP push of Kairos's metrics, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Each HTTP worker is one OpenTelemetry service instance (``service.instance.id`` =
``<host>-<pid>``) that records its own requests, ingested points and batch sizes into SDK
instruments and pushes them over OTLP/HTTP (protobuf) every ``OTEL_METRIC_EXPORT_INTERVAL``
milliseconds (default 60000); the collector sums the instances.  Counters and histograms are
sent with delta temporality, gauges cumulative; ``OTEL_USE_EXPONENTIAL_HISTOGRAMS=true``
switches the histograms to base-2 exponential buckets; ``DEPLOYMENT_ENV`` becomes the
``deployment.environment`` resource attribute.  The exporter itself honours the standard
``OTEL_EXPORTER_OTLP_*`` variables (headers, timeout, ``..._METRICS_ENDPOINT``) and
``OTEL_RESOURCE_ATTRIBUTES`` / ``OTEL_SERVICE_NAME`` are merged into the resource.

``GET /metrics`` (:mod:`kairos.app.metrics`) is independent of this and always served.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import Aggregation, ExponentialBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource

from kairos.app.process import rss_bytes

__all__ = ["OtlpPush", "otlp_enabled"]

log = logging.getLogger("kairos.metrics")

DEFAULT_INTERVAL_MS = 60_000


def otlp_enabled(env: Mapping[str, str] = os.environ) -> bool:
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    )


def _truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in ("1", "true", "yes", "on")


class OtlpPush:
    """One worker's OTLP metrics pipeline."""

    def __init__(self, state: Callable[[], object], env: Mapping[str, str] = os.environ) -> None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        self._state = state
        delta, cumulative = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE
        temporality: dict[type, AggregationTemporality] = {
            Counter: delta,
            ObservableCounter: delta,
            Histogram: delta,
            UpDownCounter: cumulative,
            ObservableUpDownCounter: cumulative,
            ObservableGauge: cumulative,
        }
        aggregation: dict[type, Aggregation] = {}
        if _truthy(env.get("OTEL_USE_EXPONENTIAL_HISTOGRAMS")):
            aggregation[Histogram] = ExponentialBucketHistogramAggregation()
        attrs = {
            "service.name": env.get("OTEL_SERVICE_NAME") or "kairos",
            "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
        }
        if env.get("DEPLOYMENT_ENV"):
            attrs["deployment.environment"] = env["DEPLOYMENT_ENV"]
        try:
            interval = int(env.get("OTEL_METRIC_EXPORT_INTERVAL") or DEFAULT_INTERVAL_MS)
        except ValueError:
            log.warning(
                "OTEL_METRIC_EXPORT_INTERVAL is not a number; using %d", DEFAULT_INTERVAL_MS
            )
            interval = DEFAULT_INTERVAL_MS
        exporter = OTLPMetricExporter(
            preferred_temporality=temporality, preferred_aggregation=aggregation
        )
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval)
        self.provider = MeterProvider(
            resource=Resource.create(attrs), metric_readers=[reader], shutdown_on_exit=False
        )
        meter = self.provider.get_meter("kairos")
        self.http_requests = meter.create_counter(
            "kairos.http.requests", "{request}", "HTTP requests by route, method and status class"
        )
        self.http_duration = meter.create_histogram(
            "kairos.http.request.duration", "s", "HTTP request latency by route"
        )
        self.ingested = meter.create_counter(
            "kairos.ingested.points", "{point}", "data points accepted into the WAL"
        )
        self.batch_size = meter.create_histogram(
            "kairos.model.batch.size", "{point}", "points per ingest request"
        )
        self.validation_errors = meter.create_counter(
            "kairos.ingest.validation_errors", "{request}", "ingest requests answered 400"
        )
        observed = {
            "kairos.wal.appends": ("{record}", lambda s: s.wal.appends),
            "kairos.wal.bytes": ("By", lambda s: s.wal.bytes_written),
            "kairos.ingest.refused": ("{request}", lambda s: s.admission.refused),
            "kairos.query.cache.hits": ("{query}", lambda s: getattr(s.cache, "hits", 0)),
            "kairos.query.cache.misses": ("{query}", lambda s: getattr(s.cache, "misses", 0)),
            "kairos.query.cache.evictions": (
                "{entry}",
                lambda s: getattr(s.cache, "evictions", 0),
            ),
        }
        for name, (unit, get) in observed.items():
            meter.create_observable_counter(name, [self._observe(get)], unit)
        gauges = {
            "kairos.wal.backlog": ("By", self._backlog),
            "kairos.query.cache.size": ("By", lambda s: getattr(s.cache, "size_bytes", 0)),
            "kairos.process.memory.resident": ("By", lambda s: rss_bytes() or 0),
        }
        for name, (unit, get) in gauges.items():
            meter.create_observable_gauge(name, [self._observe(get)], unit)
        log.info("OTLP metrics push every %d ms (%s)", interval, exporter._endpoint)

    @staticmethod
    def _backlog(state) -> int:
        from kairos.storage.wal import backlog_bytes

        return backlog_bytes(state.wal.dir, state.store.wal_positions)

    def _observe(self, get: Callable[[object], float]):
        def cb(_: CallbackOptions) -> Iterable[Observation]:
            st = self._state()
            if st is None:
                return []
            try:
                return [Observation(get(st))]
            except Exception:  # a metric must never break the export of the others
                log.debug("OTLP observation failed", exc_info=True)
                return []

        return cb

    def on_response(self, route: str, method: str, status: int, seconds: float | None) -> None:
        klass = f"{status // 100}xx"
        attrs = {"route": route, "method": method, "status_class": klass}
        self.http_requests.add(1, attrs)
        if seconds is not None:
            self.http_duration.record(seconds, {"route": route})
        if status == 400 and route == "/api/v1/datapoints" and method == "POST":
            self.validation_errors.add(1)

    def on_batch(self, points: int) -> None:
        self.ingested.add(points)
        self.batch_size.record(points)

    def shutdown(self) -> None:
        """Flush a last export and stop."""
        self.provider.shutdown()
