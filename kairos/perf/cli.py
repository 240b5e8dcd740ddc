"""``kairos perf run|list|compare|query|monitor``: argument parsing and console output.

Heavy modules (rich, matplotlib, the runner) are imported when a command runs, so
``kairos --help`` and the server commands do not pay for them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kairos.perf.scenarios import SCENARIOS, SUITES, ScenarioError, get, select_suite

__all__ = ["add_parser", "main"]


def _load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, help="seconds of load (default: the scenario's)")
    p.add_argument("--batch-size", type=int, help="points per request (default: the scenario's)")
    p.add_argument("--concurrency", type=int, help="sender processes (default: the scenario's)")
    p.add_argument("--gzip", action="store_true", help="send gzip-compressed bodies")
    p.add_argument(
        "--pool-points",
        type=int,
        help="points pre-built per sender before the clock starts (default: the scenario's)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the data (default 0)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--report-dir",
        type=Path,
        default=Path("perf-reports"),
        help="where JSON/CSV/PNG reports go (default ./perf-reports)",
    )
    p.add_argument("--quiet", action="store_true", help="no live progress display")


def _names(values: list[str] | None) -> list[str]:
    return [n for v in values or [] for n in v.split(",") if n]


def add_parser(sub) -> None:
    """Adds the ``perf`` command group to the ``kairos`` sub-parsers."""
    perf = sub.add_parser(
        "perf",
        help="load-test and compare KairosDB-compatible servers",
        description="End-to-end load and query benchmarks against a KairosDB-compatible URL.",
    )
    psub = perf.add_subparsers(dest="perf_command", required=True)
    psub.add_parser("list", help="print the scenarios and suites with their parameters")

    run = psub.add_parser("run", help="run one scenario against a server")
    run.add_argument("scenario", help=f"one of: {', '.join(SCENARIOS)}")
    run.add_argument(
        "--url", default="http://localhost:8080", help="server (default http://localhost:8080)"
    )
    _load_options(run)
    _common(run)

    cmp_ = psub.add_parser("compare", help="run the same scenario(s) against two servers")
    cmp_.add_argument("target", help=f"a scenario or a suite ({', '.join(SUITES)})")
    cmp_.add_argument("--a", required=True, metavar="URL", help="first server")
    cmp_.add_argument("--b", required=True, metavar="URL", help="second server")
    cmp_.add_argument(
        "--parallel", action="store_true", help="load both at once (default: one after the other)"
    )
    cmp_.add_argument(
        "--only", action="append", help="keep only these scenarios of the suite (comma-separated)"
    )
    cmp_.add_argument(
        "--skip", action="append", help="leave out these scenarios of the suite (comma-separated)"
    )
    cmp_.add_argument(
        "--queries",
        type=int,
        default=0,
        metavar="N",
        help="also compare the query benchmark, each query replayed N times (default: off)",
    )
    _load_options(cmp_)
    _common(cmp_)

    mon = psub.add_parser(
        "monitor",
        help="a steady low-rate load with a report line and a CSV row every interval",
    )
    mon.add_argument(
        "--url", default="http://localhost:8080", help="server (default http://localhost:8080)"
    )
    mon.add_argument("--rate", type=int, default=100, help="points per second (default 100)")
    mon.add_argument("--series", type=int, default=10, help="series written (default 10)")
    mon.add_argument("--interval", type=float, default=60.0, help="seconds per report (default 60)")
    mon.add_argument(
        "--duration", type=float, default=0.0, help="seconds to run (default 0: until Ctrl-C)"
    )
    mon.add_argument(
        "--csv",
        type=Path,
        default=Path("perf-reports/monitor.csv"),
        help="the trend, one row per interval (default perf-reports/monitor.csv)",
    )

    q = psub.add_parser("query", help="write a data set, then replay a fixed set of queries")
    q.add_argument(
        "--url", default="http://localhost:8080", help="server (default http://localhost:8080)"
    )
    q.add_argument("--repeat", type=int, default=20, help="replays of each query (default 20)")
    q.add_argument("--hosts", type=int, default=20, help="series in the data set (default 20)")
    q.add_argument(
        "--hours", type=float, default=6.0, help="hours of 10 s data per series (default 6)"
    )
    q.add_argument("--seed", type=int, default=0, help="random seed of the data (default 0)")
    _common(q)


def _overrides(args) -> dict:
    return {
        "duration": args.duration,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "gzip": True if args.gzip else None,
        "pool_points": args.pool_points,
    }


def _list() -> int:
    for s in SCENARIOS.values():
        kind = s.kind
        if s.kind == "histogram":
            kind += f" ({s.histogram_samples[0]}-{s.histogram_samples[1]} samples each)"
        print(
            f"{s.name:<17} metrics={s.metrics:<5} series={s.series:<7} duration={s.duration:g}s "
            f"batch={s.batch_size} concurrency={s.concurrency}{' (ramp)' if s.ramp else ''} "
            f"kind={kind}  # {s.description}"
        )
    for name, members in SUITES.items():
        print(f"suite {name}: {', '.join(members)}")
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return _main(args)
    except (ScenarioError, ConnectionError) as e:
        print(f"kairos perf: {e}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    if args.perf_command == "list":
        return _list()
    if args.perf_command == "monitor":
        from kairos.perf.monitor import monitor

        rows = monitor(
            args.url,
            rate=args.rate,
            series=args.series,
            interval=args.interval,
            duration=args.duration,
            csv_path=args.csv,
        )
        print(f"csv: {args.csv}")
        return 0 if all(r.read_back and not r.errors for r in rows) else 1
    from rich.console import Console

    from kairos.perf import report

    console = Console()
    progress = not args.quiet and sys.stdout.isatty()
    if args.perf_command == "run":
        from kairos.perf.runner import run_scenario

        sc = get(args.scenario).with_overrides(**_overrides(args))
        r = run_scenario(args.url, sc, seed=args.seed, progress=progress)
        paths = report.write_run(r, args.report_dir)
        report.print_run(r.summary, console)
        for kind, path in paths.items():
            console.print(f"{kind}: {path}")
        return 0 if r.summary["read_back_matches"] else 1
    if args.perf_command == "query":
        import time

        from kairos.perf.compare import print_queries
        from kairos.perf.queries import run_queries

        doc = run_queries(
            args.url, repeat=args.repeat, seed=args.seed, hosts=args.hosts, hours=args.hours
        )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = report.write_json(args.report_dir / f"query-{stamp}-{doc['run_id']}.json", doc)
        print_queries({"url": doc}, console)
        console.print(f"json: {path}")
        return 0
    from kairos.perf.compare import compare_runs, print_compare

    names = select_suite(args.target, _names(args.only), _names(args.skip))
    overrides = _overrides(args)
    scenarios = [get(n).with_overrides(**overrides) for n in names]
    doc = compare_runs(
        {"a": args.a, "b": args.b},
        scenarios,
        seed=args.seed,
        report_dir=args.report_dir,
        parallel=args.parallel,
        progress=progress,
        queries=args.queries,
        on_result=lambda d: print_compare(d, console),
    )
    if doc["queries"]:
        print_compare(doc["queries"], console)
    console.print(f"overall winner: {doc['overall_winner']}")
    for kind, path in doc["files"].items():
        console.print(f"{kind}: {path}")
    return 0
