"""Reports of ``kairos perf``: console tables (rich), JSON, CSV trend rows and PNG plots."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import orjson

from kairos.perf.runner import RunResult

__all__ = [
    "TREND_FIELDS",
    "append_csv",
    "per_second",
    "plot_run",
    "print_run",
    "trend_row",
    "write_json",
    "write_run",
]

TREND_FIELDS = [
    "date",
    "scenario",
    "url",
    "run_id",
    "seed",
    "duration_s",
    "points_per_s",
    "requests_per_s",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "success_rate",
    "points_acknowledged",
    "points_read_back",
    "read_back_matches",
    "drain_s",
    "loadgen_cpu_cores",
]


def _stamp(t: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(t))


def trend_row(s: dict) -> dict:
    lat = s["latency_ms"]
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(s["started_at"])),
        "scenario": s["scenario"],
        "url": s["url"],
        "run_id": s["run_id"],
        "seed": s["seed"],
        "duration_s": round(s["elapsed_s"], 3),
        "points_per_s": round(s["points_per_s"], 1),
        "requests_per_s": round(s["requests_per_s"], 2),
        "latency_mean_ms": _r(lat["mean"]),
        "latency_p50_ms": _r(lat["median"]),
        "latency_p95_ms": _r(lat["p95"]),
        "latency_p99_ms": _r(lat["p99"]),
        "success_rate": round(s["success_rate"], 5),
        "points_acknowledged": s["points_acknowledged"],
        "points_read_back": s["points_read_back"],
        "read_back_matches": s["read_back_matches"],
        "drain_s": _r(s["drain_s"]),
        "loadgen_cpu_cores": round(s["loadgen_cpu_cores"], 3),
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def write_json(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    return path


def append_csv(path: Path, rows: list[dict], fields: list[str]) -> Path:
    """Append ``rows``; the header is written when the file is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerows(rows)
    return path


def per_second(r: RunResult) -> dict[str, np.ndarray]:
    """Per-second buckets by completion time.

    Returns float64 arrays of one length: ``second`` (bucket start, s since the run start),
    ``points_per_s`` (acknowledged), ``requests_per_s``, ``latency_mean_ms`` and
    ``latency_p99_ms`` (NaN for a second without a completed request).
    """
    done = r.t + r.latency
    n = int(np.floor(done.max())) + 1 if len(done) else 0
    b = np.floor(done).astype(np.int64)
    pts = np.bincount(b, weights=np.where(r.ok, r.points, 0), minlength=n)
    reqs = np.bincount(b, minlength=n).astype(np.float64)
    order = np.argsort(b, kind="stable")
    bounds = np.searchsorted(b[order], np.arange(n + 1))
    lat_ms = r.latency[order] * 1000.0
    mean = np.full(n, np.nan)
    p99 = np.full(n, np.nan)
    for i in range(n):
        chunk = lat_ms[bounds[i] : bounds[i + 1]]
        if len(chunk):
            mean[i] = chunk.mean()
            p99[i] = np.percentile(chunk, 99)
    return {
        "second": np.arange(n, dtype=np.float64),
        "points_per_s": pts,
        "requests_per_s": reqs,
        "latency_mean_ms": mean,
        "latency_p99_ms": p99,
    }


def plot_run(r: RunResult, path: Path) -> Path:
    """A PNG with throughput (top) and latency (bottom) per second of the run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = per_second(r)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ax1.plot(ps["second"], ps["points_per_s"], label="points/s acknowledged")
    ax1.set_ylabel("points/s")
    ax1r = ax1.twinx()
    ax1r.plot(ps["second"], ps["requests_per_s"], color="tab:orange", alpha=0.6, label="req/s")
    ax1r.set_ylabel("requests/s")
    ax1.set_title(f"kairos perf {r.scenario.name} against {r.url}")
    ax1.grid(alpha=0.3)
    ax2.plot(ps["second"], ps["latency_mean_ms"], label="mean")
    ax2.plot(ps["second"], ps["latency_p99_ms"], label="p99")
    ax2.set_ylabel("latency (ms)")
    ax2.set_xlabel("seconds since start")
    ax2.legend(loc="upper right")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_run(r: RunResult, report_dir: Path) -> dict[str, Path]:
    """JSON report, PNG plot and a ``perf-trend.csv`` row; returns their paths."""
    stem = f"{r.scenario.name}-{_stamp(r.started_at)}-{r.run_id}"
    doc = {
        "summary": r.summary,
        "scenario": r.scenario.to_dict(),
        "per_second": {
            k: [None if np.isnan(x) else x for x in v.tolist()] for k, v in per_second(r).items()
        },
    }
    return {
        "json": write_json(report_dir / f"{stem}.json", doc),
        "png": plot_run(r, report_dir / f"{stem}.png"),
        "csv": append_csv(report_dir / "perf-trend.csv", [trend_row(r.summary)], TREND_FIELDS),
    }


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}{unit}"
    return f"{v:,}{unit}"


def print_run(s: dict, console=None) -> None:
    """The summary of one run as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=f"kairos perf {s['scenario']} -> {s['url']}", show_header=False)
    lat = s["latency_ms"]
    rows = [
        ("throughput", f"{_fmt(s['points_per_s'])} points/s, {_fmt(s['requests_per_s'])} req/s"),
        ("duration", _fmt(s["elapsed_s"], " s")),
        ("requests", f"{s['requests']:,} ({s['success_rate']:.2%} ok)"),
        ("errors", ", ".join(f"{k}: {v}" for k, v in s["errors"].items()) or "none"),
        (
            "latency (ms)",
            f"mean {_fmt(lat['mean'])}  median {_fmt(lat['median'])}  p95 {_fmt(lat['p95'])}  "
            f"p99 {_fmt(lat['p99'])}  min {_fmt(lat['min'])}  max {_fmt(lat['max'])}",
        ),
        ("drain", f"{_fmt(s['drain_s'], ' s')} ({s['drain_method']})"),
        (
            "read-back",
            f"failed: {s['read_back_error']}"
            if s["read_back_error"]
            else f"{s['points_read_back']:,} of {s['points_acknowledged']:,} acknowledged "
            f"({'match' if s['read_back_matches'] else 'MISMATCH'})",
        ),
        ("load generator", f"{s['loadgen_cpu_cores']:.2f} cores of {s['host_cpus']}"),
    ]
    if s.get("ramp"):
        ramp = s["ramp"]
        if ramp["break_concurrency"] is None:
            top = ramp["steps"][-1]["concurrency"] if ramp["steps"] else 0
            rows.append(("ramp", f"did not break up to concurrency {top}"))
        else:
            rows.append(
                (
                    "ramp",
                    f"broke at concurrency {ramp['break_concurrency']} ({ramp['break_reason']})",
                )
            )
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
