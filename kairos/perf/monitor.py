"""``kairos perf monitor``: a steady low-rate load for watching a server over hours.

Every ``interval`` seconds the monitor has sent ``rate`` points per second (one request per
second, ``series`` series of one metric, values a slow sine), queried the interval it just wrote
back, and prints one line and appends one CSV row: points acknowledged, errors, ingest and query
latency (median and maximum), whether the interval read back complete, and what the server
reports about itself (resident memory, WAL backlog, writer lag from ``/metrics``, when it has
them).  A trend of those rows over hours shows a leak, a slowing writer or a growing backlog.
"""

from __future__ import annotations

import csv
import http.client
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["COLUMNS", "Interval", "monitor", "server_gauges"]

COLUMNS = (
    "time",
    "points_ok",
    "errors",
    "ingest_p50_ms",
    "ingest_max_ms",
    "query_ms",
    "read_back",
    "rss_mb",
    "wal_backlog_mb",
    "writer_lag_s",
)
"""The CSV columns, in order."""


@dataclass
class Interval:
    """What one interval measured."""

    start_ms: int
    end_ms: int
    points_ok: int = 0
    errors: int = 0
    ingest_s: list[float] = field(default_factory=list)
    query_s: float = math.nan
    read_back: bool = False
    gauges: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        lat = sorted(self.ingest_s)
        p50 = lat[len(lat) // 2] * 1000 if lat else math.nan
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.end_ms / 1000)),
            "points_ok": self.points_ok,
            "errors": self.errors,
            "ingest_p50_ms": round(p50, 2),
            "ingest_max_ms": round(lat[-1] * 1000, 2) if lat else math.nan,
            "query_ms": round(self.query_s * 1000, 2),
            "read_back": "ok" if self.read_back else "MISSING",
            "rss_mb": round(self.gauges.get("rss", math.nan) / 2**20, 1),
            "wal_backlog_mb": round(self.gauges.get("wal_backlog", math.nan) / 2**20, 2),
            "writer_lag_s": round(self.gauges.get("writer_lag", math.nan), 3),
        }


def _conn(url: str, timeout: float) -> http.client.HTTPConnection:
    u = urlparse(url)
    if u.hostname is None:
        raise ValueError(f"no host in URL {url!r}")
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)


def _request(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


_GAUGES = {
    "kairos_process_resident_memory_bytes": "rss",
    "kairos_wal_backlog_bytes": "wal_backlog",
    "kairos_writer_lag_seconds": "writer_lag",
}


def server_gauges(text: str) -> dict[str, float]:
    """Resident memory (summed over the server's processes), WAL backlog and writer lag from
    a Prometheus text exposition; what it lacks is left out."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split(" ", 1)[0].split("{", 1)[0]
        key = _GAUGES.get(name)
        if key is None:
            continue
        try:
            value = float(line.rsplit(" ", 1)[1])
        except ValueError:
            continue
        out[key] = out.get(key, 0.0) + value
    return out


def monitor(
    url: str,
    *,
    rate: int = 100,
    series: int = 10,
    interval: float = 60.0,
    duration: float = 0.0,
    csv_path: Path | None = None,
    metric: str | None = None,
    out: Callable[[str], None] = print,
) -> list[Interval]:
    """Run until ``duration`` seconds have passed (0: until interrupted); returns the
    intervals measured.  Raises ``ConnectionError`` when the server cannot be reached at the
    start."""
    metric = metric or f"kairos.perf.monitor.{uuid.uuid4().hex[:8]}"
    conn = _conn(url, timeout=30)
    try:
        _request(conn, "GET", "/api/v1/version")
    except OSError as e:
        raise ConnectionError(f"{url}: {e}") from None
    writer = None
    fh = None
    if csv_path is not None:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        new = not csv_path.exists() or csv_path.stat().st_size == 0
        fh = open(csv_path, "a", newline="")  # noqa: SIM115 -- closed below
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
    out(" | ".join(COLUMNS))
    done: list[Interval] = []
    t_end = time.monotonic() + duration if duration > 0 else math.inf
    per_request = max(1, rate)
    try:
        while time.monotonic() < t_end:
            iv = Interval(start_ms=int(time.time() * 1000), end_ms=0)
            stop = min(time.monotonic() + interval, t_end)
            tick = time.monotonic()
            while time.monotonic() < stop:
                now = int(time.time() * 1000)
                body = []
                for k in range(series):
                    n = per_request // series + (k < per_request % series)
                    # n points spread over the second that just passed, distinct per series.
                    points = [[now - 999 + j * 1000 // n, _value(now, k, j)] for j in range(n)]
                    if points:
                        body.append(
                            {"name": metric, "tags": {"series": str(k)}, "datapoints": points}
                        )
                t0 = time.perf_counter()
                try:
                    status, _ = _request(
                        conn, "POST", "/api/v1/datapoints", json.dumps(body).encode()
                    )
                except OSError:
                    status = 0
                    conn = _conn(url, timeout=30)
                iv.ingest_s.append(time.perf_counter() - t0)
                if status == 204:
                    iv.points_ok += sum(len(m["datapoints"]) for m in body)
                else:
                    iv.errors += 1
                tick += 1.0
                time.sleep(max(0.0, min(tick, stop) - time.monotonic()))
            iv.end_ms = int(time.time() * 1000)
            _read_back(conn, url, metric, iv)
            try:
                status, text = _request(conn, "GET", "/metrics")
                if status == 200:
                    iv.gauges = server_gauges(text.decode(errors="replace"))
            except OSError:
                conn = _conn(url, timeout=30)
            row = iv.row()
            out(" | ".join(str(row[c]) for c in COLUMNS))
            if writer is not None and fh is not None:
                writer.writerow(row)
                fh.flush()
            done.append(iv)
    except KeyboardInterrupt:
        pass
    finally:
        if fh is not None:
            fh.close()
        conn.close()
    return done


def _value(now: int, k: int, j: int) -> float:
    return round(50 + 40 * math.sin((now / 1000 + j) / 600 + k), 2)


def _read_back(conn: http.client.HTTPConnection, url: str, metric: str, iv: Interval) -> None:
    """Query the interval just written (after the writer's usual delay) and check the count."""
    query = {
        "start_absolute": iv.start_ms - 1000,
        "end_absolute": iv.end_ms,
        "metrics": [
            {
                "name": metric,
                "aggregators": [{"name": "count", "sampling": {"value": 100, "unit": "years"}}],
            }
        ],
    }
    deadline = time.monotonic() + 5
    while True:
        t0 = time.perf_counter()
        try:
            status, body = _request(
                conn, "POST", "/api/v1/datapoints/query", json.dumps(query).encode()
            )
        except OSError:
            status, body = 0, b""
        iv.query_s = time.perf_counter() - t0
        if status == 200:
            results = json.loads(body)["queries"][0]["results"]
            n = sum(v[1] for r in results for v in r.get("values", []))
            iv.read_back = n >= iv.points_ok
        if iv.read_back or time.monotonic() > deadline:
            return
        time.sleep(0.25)
