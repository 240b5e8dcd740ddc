"""Runs one scenario against a KairosDB-compatible URL and measures it.

Phases::

    build     each sender process builds its pool of bodies (gzipped if asked): off the clock
    load      the clock starts; senders post over keep-alive ``http.client`` connections and
              record (send time, latency, status, points) per request; the parent shows live
              progress from shared counters (and, for ``ramp``, starts senders one by one and
              stops at the first step whose errors or latency break)
    drain     until the server's writer has applied everything: Kairos's ``/health``
              ``checks.Writer.wal_backlog_bytes`` reaches 0; other servers: the read-back count
              stops changing
    read-back a ``count`` query per metric over the run's time range, filtered on the run's
              ``perf_run`` tag, summed: must equal the points acknowledged
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import queue
import secrets
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np
import orjson

from kairos.perf.data import ROUND_MS, PayloadFactory, metric_names
from kairos.perf.scenarios import Scenario

__all__ = ["RunResult", "check_reachable", "drain", "read_back", "run_scenario"]

# A ramp step is a failure when more than this share of its requests fail...
RAMP_MAX_ERROR_RATE = 0.01
# ... or its mean latency is this many times the first step's.
RAMP_LATENCY_FACTOR = 5.0
_SLOT = 4  # shared counters per sender: ok points, requests, errors, latency sum


@dataclass
class RunResult:
    """Everything measured in one run; ``summary`` is what the reports print."""

    scenario: Scenario
    url: str
    run_id: str
    seed: int
    started_at: float
    summary: dict
    # Per request, in completion order per sender: seconds since the start, latency (s).
    t: np.ndarray = field(repr=False)
    latency: np.ndarray = field(repr=False)
    points: np.ndarray = field(repr=False)
    ok: np.ndarray = field(repr=False)


def _connect(url: str) -> http.client.HTTPConnection:
    u = urlparse(url)
    if u.hostname is None:
        raise ValueError(f"no host in URL {url!r}")
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)


def _sender(
    url: str,
    scenario: Scenario,
    seed: int,
    k: int,
    base_ms: int,
    run_id: str,
    clock,
    go,
    stop,
    counters,
    out,
) -> None:
    t_build = time.perf_counter()
    factory = PayloadFactory(scenario, seed, k, scenario.concurrency, base_ms, run_id)
    built = factory.pool()
    pool = built.round(0)
    out.put(("ready", k, time.perf_counter() - t_build))
    go.wait()
    start, end = clock[0], clock[1]
    activate = start + (k * clock[2] if scenario.ramp else 0.0)
    headers = {"Content-Type": "application/json"}
    if scenario.gzip:
        headers["Content-Encoding"] = "gzip"
    ts, lat, pts, oks = array("d"), array("d"), array("q"), array("b")
    errors: Counter[str] = Counter()
    gen_s = 0.0
    rounds = 1
    i = 0
    while time.time() < activate and not stop.is_set():
        time.sleep(0.005)
    cpu0 = os.times()
    conn = _connect(url)
    base = k * _SLOT
    while not stop.is_set():
        now = time.time()
        if now >= end:
            break
        if i == len(pool):
            g = time.perf_counter()
            pool = built.round(rounds)
            gen_s += time.perf_counter() - g
            rounds += 1
            i = 0
            continue
        p = pool[i]
        i += 1
        t0 = time.perf_counter()
        ok = False
        try:
            conn.request("POST", "/api/v1/datapoints", body=p.body, headers=headers)
            r = conn.getresponse()
            r.read()
            ok = r.status == 204
            if not ok:
                errors[f"HTTP {r.status}"] += 1
        except (OSError, http.client.HTTPException) as e:
            errors[type(e).__name__] += 1
            conn.close()
            conn = _connect(url)
        dt = time.perf_counter() - t0
        ts.append(now - start)
        lat.append(dt)
        pts.append(p.points)
        oks.append(ok)
        if ok:
            counters[base] += p.points
        else:
            counters[base + 2] += 1
        counters[base + 1] += 1
        counters[base + 3] += dt
    conn.close()
    cpu1 = os.times()
    out.put(
        (
            "done",
            k,
            {
                "t": ts.tobytes(),
                "latency": lat.tobytes(),
                "points": pts.tobytes(),
                "ok": oks.tobytes(),
                "errors": dict(errors),
                "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
                "cpu_total_s": cpu1.user + cpu1.system,
                "generation_s": gen_s,
                "pool_rounds": rounds,
                "max_ts": built.max_ts(rounds - 1),
            },
        )
    )


def _get_json(conn_url: str, path: str, body: bytes | None = None, timeout: float = 60):
    conn = _connect(conn_url)
    conn.timeout = timeout
    try:
        if body is None:
            conn.request("GET", path)
        else:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return r.status, (orjson.loads(data) if data else None)
    finally:
        conn.close()


def read_back(
    url: str, names: list[str], start_ms: int, end_ms: int, run_id: str, kind: str = "numeric"
) -> int:
    """Points stored for ``names`` in [start_ms, end_ms] with tag ``perf_run=run_id``.

    Numeric points: the sum of one ``count`` bucket covering the range.  Histograms: the
    response's ``sample_size`` (``count`` of a histogram counts its samples, not points).
    """
    total = 0
    for lo in range(0, len(names), 50):
        metrics = [
            {
                "name": n,
                "tags": {"perf_run": [run_id]},
                "aggregators": [
                    {
                        "name": "count",
                        "sampling": {"value": end_ms - start_ms + 1, "unit": "milliseconds"},
                    }
                ],
            }
            for n in names[lo : lo + 50]
        ]
        q = {"start_absolute": start_ms, "end_absolute": end_ms, "metrics": metrics}
        status, doc = _get_json(url, "/api/v1/datapoints/query", orjson.dumps(q))
        if status != 200:
            raise RuntimeError(f"read-back query failed with HTTP {status}: {doc}")
        for qr in doc["queries"]:
            if kind == "histogram":
                total += int(qr["sample_size"])
                continue
            for res in qr["results"]:
                total += sum(int(v[1]) for v in res["values"])
    return total


def check_reachable(url: str) -> None:
    """Raises ``ConnectionError`` naming ``url`` unless it answers ``GET /api/v1/version``."""
    try:
        status, _ = _get_json(url, "/api/v1/version", timeout=10)
    except (OSError, http.client.HTTPException, orjson.JSONDecodeError) as e:
        raise ConnectionError(f"cannot reach {url}: {type(e).__name__}: {e}") from None
    if status != 200:
        raise ConnectionError(f"{url}/api/v1/version answered HTTP {status}")


def _wal_backlog(url: str) -> int | None:
    try:
        _status, doc = _get_json(url, "/health", timeout=10)
    except (OSError, http.client.HTTPException, orjson.JSONDecodeError):
        return None
    try:
        return int(doc["checks"]["Writer"]["wal_backlog_bytes"])
    except (KeyError, TypeError, ValueError):
        return None


def drain(url: str, count, timeout: float = 600.0, interval: float = 1.0) -> dict:
    """Wait until the server has applied what it acknowledged.

    ``count()`` returns the read-back count; it is polled every ``interval`` seconds until two
    more polls return the same value when the server has no ``wal_backlog_bytes`` to watch (a
    Java KairosDB); the drain time is then when the count last changed.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    if _wal_backlog(url) is not None:
        while time.monotonic() < deadline:
            if _wal_backlog(url) == 0:
                return {"drain_s": time.monotonic() - t0, "drain_method": "wal_backlog_bytes"}
            time.sleep(0.05)
        return {"drain_s": None, "drain_method": "wal_backlog_bytes (timed out)"}
    last, stable, changed = None, 0, 0.0
    while time.monotonic() < deadline:
        n = count()
        if n == last:
            stable += 1
        else:
            last, stable, changed = n, 0, time.monotonic() - t0
        if stable >= 2:
            return {"drain_s": changed, "drain_method": "read-back stable"}
        time.sleep(interval)
    return {"drain_s": None, "drain_method": "read-back stable (timed out)"}


def _percentiles(lat_s: np.ndarray) -> dict:
    if not len(lat_s):
        return dict.fromkeys(("mean", "median", "p95", "p99", "min", "max"), None)
    ms = lat_s * 1000.0
    return {
        "mean": float(ms.mean()),
        "median": float(np.median(ms)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
        "min": float(ms.min()),
        "max": float(ms.max()),
    }


class _Progress:
    """A live rich display of the shared counters (no-op when quiet)."""

    def __init__(self, enabled: bool, scenario: Scenario) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            transient=False,
        )
        self.task = self.p.add_task(scenario.name, total=scenario.duration, stats="building")
        self.p.start()

    def update(self, elapsed: float, stats: str) -> None:
        if self.enabled:
            self.p.update(self.task, completed=elapsed, stats=stats)

    def stop(self) -> None:
        if self.enabled:
            self.p.stop()


def run_scenario(
    url: str,
    scenario: Scenario,
    *,
    seed: int = 0,
    progress: bool = False,
    drain_timeout: float = 600.0,
) -> RunResult:
    """Run ``scenario`` against ``url``; returns the measurements (see the module docstring)."""
    url = url.rstrip("/")
    check_reachable(url)
    ctx = mp.get_context("spawn")
    run_id = secrets.token_hex(4)
    base_ms = int(time.time() * 1000) // ROUND_MS * ROUND_MS
    n = scenario.concurrency
    counters = ctx.Array("d", n * _SLOT, lock=False)
    clock = ctx.Array("d", 3, lock=False)
    go, stop = ctx.Event(), ctx.Event()
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=_sender,
            args=(url, scenario, seed, k, base_ms, run_id, clock, go, stop, counters, out),
            daemon=True,
        )
        for k in range(n)
    ]
    for p in procs:
        p.start()
    display = _Progress(progress, scenario)
    results: dict[int, dict] = {}
    try:
        build_s: list[float] = []
        while len(build_s) < n:
            kind, _, seconds = out.get(timeout=600)
            if kind == "ready":
                build_s.append(seconds)
        started_at = time.time() + 0.2
        clock[0], clock[1] = started_at, started_at + scenario.duration
        clock[2] = scenario.duration / n
        go.set()
        ramp = _monitor(scenario, counters, clock, stop, display)
        while len(results) < n:
            try:
                kind, k, res = out.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in procs if not p.is_alive() and p.exitcode]
                if dead:
                    raise RuntimeError(f"sender exited with {dead[0].exitcode}") from None
                continue
            results[k] = res
    finally:
        display.stop()
        stop.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
    r = _measure(url, scenario, seed, run_id, base_ms, started_at, results, ramp, drain_timeout)
    r.summary["loadgen_pool_build_s"] = max(build_s)
    return r


def _monitor(scenario: Scenario, counters, clock, stop, display: _Progress) -> dict:
    """Shows progress until the end of the run; for ramps, stops at the first broken step."""
    n = scenario.concurrency
    start, end, step = clock[0], clock[1], clock[2]
    first_mean = None
    prev = (0.0, 0.0, 0.0)
    next_step = start + step
    ramp: dict[str, Any] = {"break_concurrency": None, "break_reason": None, "steps": []}
    while time.time() < end and not stop.is_set():
        time.sleep(0.25)
        now = time.time()
        pts = sum(counters[k * _SLOT] for k in range(n))
        reqs = sum(counters[k * _SLOT + 1] for k in range(n))
        errs = sum(counters[k * _SLOT + 2] for k in range(n))
        lat = sum(counters[k * _SLOT + 3] for k in range(n))
        el = max(now - start, 1e-9)
        display.update(
            min(el, scenario.duration),
            f"{pts / el:,.0f} points/s  {reqs / el:,.1f} req/s  errors {int(errs)}",
        )
        if scenario.ramp and now >= next_step:
            d_req, d_err, d_lat = reqs - prev[0], errs - prev[1], lat - prev[2]
            prev = (reqs, errs, lat)
            active = min(n, int((next_step - start) / step))
            mean = d_lat / d_req if d_req else None
            ramp["steps"].append(
                {
                    "concurrency": active,
                    "requests": int(d_req),
                    "errors": int(d_err),
                    "mean_s": mean,
                }
            )
            next_step += step
            if first_mean is None:
                first_mean = mean
            reason = None
            if d_req and d_err / d_req > RAMP_MAX_ERROR_RATE:
                reason = f"error rate {d_err / d_req:.1%}"
            elif mean and first_mean and mean > RAMP_LATENCY_FACTOR * first_mean:
                reason = f"mean latency {mean * 1000:.1f} ms > {RAMP_LATENCY_FACTOR}x first step"
            elif not d_req:
                reason = "no request completed in a step"
            if reason:
                ramp["break_concurrency"], ramp["break_reason"] = active, reason
                stop.set()
    return ramp if scenario.ramp else {}


def _measure(
    url: str,
    scenario: Scenario,
    seed: int,
    run_id: str,
    base_ms: int,
    started_at: float,
    results: dict[int, dict],
    ramp: dict,
    drain_timeout: float,
) -> RunResult:
    ks = sorted(results)
    t = np.concatenate([np.frombuffer(results[k]["t"], np.float64) for k in ks])
    lat = np.concatenate([np.frombuffer(results[k]["latency"], np.float64) for k in ks])
    pts = np.concatenate([np.frombuffer(results[k]["points"], np.int64) for k in ks])
    ok = np.concatenate([np.frombuffer(results[k]["ok"], np.int8) for k in ks]).astype(bool)
    errors: Counter[str] = Counter()
    for k in ks:
        errors.update(results[k]["errors"])
    elapsed = float((t + lat).max()) if len(t) else scenario.duration
    ok_points = int(pts[ok].sum())
    requests = len(t)
    names = metric_names(scenario)
    end_ms = max(results[k]["max_ts"] for k in ks)
    loadgen_cpu = sum(results[k]["cpu_s"] for k in ks)

    def count() -> int:
        return read_back(url, names, base_ms, end_ms, run_id, scenario.kind)

    read_back_error = None
    try:
        drained = drain(url, count, drain_timeout)
        stored = count()
    except (OSError, http.client.HTTPException, RuntimeError) as e:
        # The run's measurements stand; the report says why nothing was read back.
        drained = {"drain_s": None, "drain_method": "failed"}
        stored, read_back_error = None, f"{type(e).__name__}: {e}"
    summary = {
        "scenario": scenario.name,
        "url": url,
        "run_id": run_id,
        "seed": seed,
        "started_at": started_at,
        "elapsed_s": elapsed,
        "requests": requests,
        "requests_ok": int(ok.sum()),
        "requests_failed": int(requests - ok.sum()),
        "success_rate": float(ok.mean()) if requests else 0.0,
        "errors": dict(errors),
        "points_sent": int(pts.sum()),
        "points_acknowledged": ok_points,
        "points_per_s": ok_points / elapsed if elapsed else 0.0,
        "requests_per_s": requests / elapsed if elapsed else 0.0,
        "latency_ms": _percentiles(lat),
        **drained,
        "points_read_back": stored,
        "read_back_matches": stored == ok_points,
        "read_back_error": read_back_error,
        "time_range_ms": [base_ms, end_ms],
        "loadgen_cpu_s": loadgen_cpu,
        "loadgen_cpu_cores": loadgen_cpu / elapsed if elapsed else 0.0,
        "loadgen_pool_build_s_in_run": sum(results[k]["generation_s"] for k in ks),
        "loadgen_pool_rounds": sum(results[k]["pool_rounds"] for k in ks),
        "host_cpus": os.cpu_count(),
    }
    if ramp:
        summary["ramp"] = ramp
    return RunResult(scenario, url, run_id, seed, started_at, summary, t, lat, pts, ok)
