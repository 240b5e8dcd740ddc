"""Two servers, the same scenarios (and optionally the query benchmark): ratios and a winner."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kairos.perf import report
from kairos.perf.queries import run_queries
from kairos.perf.runner import run_scenario
from kairos.perf.scenarios import Scenario

__all__ = ["COMPARE_FIELDS", "compare_runs", "print_compare", "winner"]

COMPARE_FIELDS = [
    "date",
    "kind",
    "name",
    "url_a",
    "url_b",
    "metric",
    "a",
    "b",
    "ratio_b_over_a",
    "winner",
]
# Success rates closer than this are a tie; throughput then decides.
SUCCESS_TIE = 0.001


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a == 0:
        return None
    return b / a


def winner(a: dict, b: dict) -> str:
    """``a`` or ``b``: the higher success rate, or on a tie the higher points/s."""
    if abs(a["success_rate"] - b["success_rate"]) > SUCCESS_TIE:
        return "a" if a["success_rate"] > b["success_rate"] else "b"
    return "a" if a["points_per_s"] >= b["points_per_s"] else "b"


def _both(fn, parallel: bool):
    if parallel:
        with ThreadPoolExecutor(2) as ex:
            fa, fb = ex.submit(fn, "a"), ex.submit(fn, "b")
            return fa.result(), fb.result()
    return fn("a"), fn("b")


def compare_runs(
    urls: dict[str, str],
    scenarios: list[Scenario],
    *,
    seed: int,
    report_dir: Path,
    parallel: bool = False,
    progress: bool = False,
    queries: int = 0,
    on_result=None,
) -> dict:
    """Run every scenario against ``urls['a']`` and ``urls['b']``; write JSON and CSV.

    ``queries`` > 0 also runs the query benchmark with that many repeats on both.
    ``on_result(doc)`` is called after each scenario (console output).
    """
    started = time.time()
    out: dict = {"a": urls["a"], "b": urls["b"], "seed": seed, "scenarios": [], "queries": None}
    rows = []
    date = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started))
    for sc in scenarios:
        ra, rb = _both(
            lambda side, sc=sc: run_scenario(
                urls[side], sc, seed=seed, progress=progress and not parallel
            ),
            parallel,
        )
        for r in (ra, rb):
            report.write_run(r, report_dir)
        a, b = ra.summary, rb.summary
        doc = {
            "scenario": sc.name,
            "a": a,
            "b": b,
            "ratios_b_over_a": {
                "points_per_s": _ratio(a["points_per_s"], b["points_per_s"]),
                "requests_per_s": _ratio(a["requests_per_s"], b["requests_per_s"]),
                "latency_p99_ms": _ratio(a["latency_ms"]["p99"], b["latency_ms"]["p99"]),
                "success_rate": _ratio(a["success_rate"], b["success_rate"]),
                "drain_s": _ratio(a["drain_s"], b["drain_s"]),
            },
            "winner": winner(a, b),
        }
        out["scenarios"].append(doc)
        for metric, va, vb in (
            ("points_per_s", a["points_per_s"], b["points_per_s"]),
            ("success_rate", a["success_rate"], b["success_rate"]),
            ("latency_p99_ms", a["latency_ms"]["p99"], b["latency_ms"]["p99"]),
            ("drain_s", a["drain_s"], b["drain_s"]),
        ):
            rows.append(
                {
                    "date": date,
                    "kind": "scenario",
                    "name": sc.name,
                    "url_a": urls["a"],
                    "url_b": urls["b"],
                    "metric": metric,
                    "a": va,
                    "b": vb,
                    "ratio_b_over_a": _ratio(va, vb),
                    "winner": doc["winner"],
                }
            )
        if on_result:
            on_result(doc)
    if queries:
        qa, qb = _both(lambda side: run_queries(urls[side], repeat=queries, seed=seed), parallel)
        qdoc = {"a": qa, "b": qb, "median_ratio_b_over_a": {}}
        for name in qa["queries"]:
            ma, mb = qa["queries"][name]["median"], qb["queries"][name]["median"]
            qdoc["median_ratio_b_over_a"][name] = _ratio(ma, mb)
            faster = None if ma is None or mb is None else ("a" if ma <= mb else "b")
            rows.append(
                {
                    "date": date,
                    "kind": "query",
                    "name": name,
                    "url_a": urls["a"],
                    "url_b": urls["b"],
                    "metric": "median_ms",
                    "a": ma,
                    "b": mb,
                    "ratio_b_over_a": _ratio(ma, mb),
                    "winner": faster,
                }
            )
        out["queries"] = qdoc
    wins = [d["winner"] for d in out["scenarios"]]
    out["overall_winner"] = (
        None if not wins else ("a" if wins.count("a") >= wins.count("b") else "b")
    )
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    stem = f"compare-{stamp}-{secrets.token_hex(3)}"
    out["files"] = {
        "json": str(report_dir / f"{stem}.json"),
        "csv": str(report_dir / f"{stem}.csv"),
    }
    report.write_json(report_dir / f"{stem}.json", out)
    report.append_csv(report_dir / f"{stem}.csv", rows, COMPARE_FIELDS)
    report.append_csv(report_dir / "compare-trend.csv", rows, COMPARE_FIELDS)
    return out


def _f(v, spec: str = ",.1f") -> str:
    return "-" if v is None else format(v, spec)


def print_compare(doc: dict, console=None) -> None:
    """One rich table per compared scenario (or the query comparison)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if "scenario" in doc:
        a, b, r = doc["a"], doc["b"], doc["ratios_b_over_a"]
        t = Table(title=f"{doc['scenario']}: a={a['url']}  b={b['url']}  winner: {doc['winner']}")
        for col in ("", "a", "b", "b / a"):
            t.add_column(col)
        t.add_row(
            "points/s", _f(a["points_per_s"]), _f(b["points_per_s"]), _f(r["points_per_s"], ".3f")
        )
        t.add_row(
            "req/s",
            _f(a["requests_per_s"]),
            _f(b["requests_per_s"]),
            _f(r["requests_per_s"], ".3f"),
        )
        t.add_row(
            "p99 latency (ms)",
            _f(a["latency_ms"]["p99"], ".2f"),
            _f(b["latency_ms"]["p99"], ".2f"),
            _f(r["latency_p99_ms"], ".3f"),
        )
        t.add_row(
            "success",
            f"{a['success_rate']:.2%}",
            f"{b['success_rate']:.2%}",
            _f(r["success_rate"], ".3f"),
        )
        t.add_row(
            "drain (s)", _f(a["drain_s"], ".2f"), _f(b["drain_s"], ".2f"), _f(r["drain_s"], ".3f")
        )
        t.add_row(
            "read-back",
            "match" if a["read_back_matches"] else "MISMATCH",
            "match" if b["read_back_matches"] else "MISMATCH",
            "",
        )
        console.print(t)
    else:
        print_queries({"a": doc["a"], "b": doc["b"]}, console)


def print_queries(by_side: dict[str, dict], console=None) -> None:
    """Latency table of query benchmark results, one column group per server."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    sides = list(by_side)
    t = Table(title="query latency (ms): " + "  ".join(f"{s}={by_side[s]['url']}" for s in sides))
    t.add_column("query")
    for s in sides:
        for stat in ("median", "p95", "p99"):
            t.add_column(f"{s} {stat}" if len(sides) > 1 else stat)
        t.add_column(f"{s} errors" if len(sides) > 1 else "errors")
    for name in by_side[sides[0]]["queries"]:
        cells = [name]
        for s in sides:
            q = by_side[s]["queries"][name]
            cells += [_f(q["median"], ".2f"), _f(q["p95"], ".2f"), _f(q["p99"], ".2f")]
            cells.append(str(sum(q["errors"].values())))
        t.add_row(*cells)
    console.print(t)
