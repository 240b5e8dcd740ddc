"""OTLP push: a real OTLP/HTTP receiver gets Kairos's metrics with the configured
temporalities, histogram kind and resource attributes."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from tests.conftest import start_server

pytestmark = pytest.mark.integration

DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


class Receiver:
    """An OTLP/HTTP metrics endpoint that keeps every request it decodes."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = ExportMetricsServiceRequest()
                req.ParseFromString(body)
                received.append(req)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def metrics(self) -> list[tuple[dict, object]]:
        out = []
        for req in list(self.requests):
            for rm in req.resource_metrics:
                res = {a.key: a.value.string_value for a in rm.resource.attributes}
                for sm in rm.scope_metrics:
                    out += [(res, m) for m in sm.metrics]
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("exponential", [False, True])
def test_metrics_are_pushed_over_otlp(tmp_path, exponential: bool) -> None:
    rx = Receiver()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": rx.url,
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "DEPLOYMENT_ENV": "ci",
        "OTEL_USE_EXPONENTIAL_HISTOGRAMS": str(exponential).lower(),
    }
    srv = start_server(tmp_path / "data", env=env, workers=2)
    try:
        with srv.client() as c:
            for i in range(5):
                body = [
                    {
                        "name": "otlp.m",
                        "datapoints": [[i * 10 + j, j] for j in range(7)],
                        "tags": {"h": "a"},
                    }
                ]
                assert c.post("/api/v1/datapoints", json=body).status_code == 204
            assert c.post("/api/v1/datapoints", json=[{"name": ""}]).status_code == 400
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            points = sum(
                dp.as_int
                for _, m in rx.metrics()
                if m.name == "kairos.ingested.points"
                for dp in m.sum.data_points
            )
            if points >= 35:
                break
            time.sleep(0.2)
    finally:
        srv.stop()
        rx.close()
    metrics = rx.metrics()
    by_name: dict[str, list] = {}
    for res, m in metrics:
        assert res["service.name"] == "kairos"
        assert res["deployment.environment"] == "ci"
        assert res["service.instance.id"]
        by_name.setdefault(m.name, []).append(m)
    # Delta counters: the exports add up to exactly what happened, across both workers.
    ingested = by_name["kairos.ingested.points"]
    assert all(m.sum.aggregation_temporality == DELTA and m.sum.is_monotonic for m in ingested)
    assert sum(dp.as_int for m in ingested for dp in m.sum.data_points) == 35
    errors = by_name["kairos.ingest.validation_errors"]
    assert sum(dp.as_int for m in errors for dp in m.sum.data_points) == 1
    # Histograms: delta, explicit or exponential buckets as configured; 5 batches of 7.
    sizes = by_name["kairos.model.batch.size"]
    if exponential:
        assert all(m.WhichOneof("data") == "exponential_histogram" for m in sizes)
        dps = [dp for m in sizes for dp in m.exponential_histogram.data_points]
        assert all(m.exponential_histogram.aggregation_temporality == DELTA for m in sizes)
    else:
        assert all(m.WhichOneof("data") == "histogram" for m in sizes)
        dps = [dp for m in sizes for dp in m.histogram.data_points]
        assert all(m.histogram.aggregation_temporality == DELTA for m in sizes)
    assert sum(dp.count for dp in dps) == 5
    assert sum(dp.sum for dp in dps) == 35
    # Gauges are cumulative by nature: the WAL backlog and the process memory.
    assert any(
        dp.as_int > 0
        for m in by_name["kairos.process.memory.resident"]
        for dp in m.gauge.data_points
    )
    assert "kairos.wal.backlog" in by_name
    requests = by_name["kairos.http.requests"]
    classes = {
        next(a.value.string_value for a in dp.attributes if a.key == "status_class")
        for m in requests
        for dp in m.sum.data_points
    }
    assert {"2xx", "4xx"} <= classes
