"""The ``kairos`` command: ``serve``, ``ingest``, ``query`` and ``perf``.

``kairos serve`` runs everything on one port.  ``kairos ingest`` (ingest, deletes, the line
protocols and the writer) and ``kairos query`` (queries and metadata, no writer) run the two
halves separately so each scales on its own; they can share one embedded data directory,
the query service reading what the ingest service's writer applies.  ``kairos perf`` load-tests
and compares servers (``kairos.perf``).
"""

from __future__ import annotations

import argparse
import os
import sys

from kairos.allocator import ALLOCATORS, find_jemalloc, preload_env
from kairos.config import load
from kairos.errors import ConfigError
from kairos.perf import cli as perf_cli

__all__ = ["main"]

_SERVICES = {
    # command: (help, server type, default bind address, environment variable for it)
    "serve": (
        "serve ingest and query on one port",
        "ALL",
        "127.0.0.1:8080",
        "KAIROSDB_BIND_ADDRESS",
    ),
    "ingest": (
        "serve ingest, deletes and the line protocols, and run the writer",
        "INGEST,DELETE",
        "0.0.0.0:8080",
        "KAIROSDB_BIND_ADDRESS",
    ),
    "query": (
        "serve queries and metadata (no writer)",
        "QUERY",
        "0.0.0.0:8081",
        "KAIROSDB_QUERY_BIND_ADDRESS",
    ),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kairos", description="A KairosDB-compatible time-series database."
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name, (help_text, server_type, address, env) in _SERVICES.items():
        s = sub.add_parser(
            name,
            help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]} (server type {server_type}). Settings: "
            "defaults < --config YAML < KAIROSDB_* environment < these options.",
        )
        s.add_argument("--config", help="YAML configuration file (see config/*.yaml)")
        s.add_argument(
            "--host", help=f"bind address (env {env}=host:port; default {address.split(':')[0]})"
        )
        s.add_argument("--port", type=int, help=f"HTTP port (default {address.split(':')[1]})")
        s.add_argument(
            "--data-dir", help="datastore directory (env KAIROSDB_DATA_DIR; default ./data)"
        )
        s.add_argument(
            "--workers",
            type=int,
            help="HTTP worker processes (env KAIROSDB_HTTP_WORKERS; default 2)",
        )
        s.add_argument(
            "--allocator",
            choices=ALLOCATORS,
            help="memory allocator of every process: malloc (glibc, the default) or jemalloc "
            "(Debian libjemalloc2, loaded with LD_PRELOAD; env KAIROSDB_ALLOCATOR)",
        )
    perf_cli.add_parser(sub)
    return p


def _use_jemalloc(argv: list[str]) -> int | None:
    """Re-execute with jemalloc preloaded; returns an exit code only when that is impossible."""
    lib = find_jemalloc()
    if lib is None:
        print(
            "kairos: --allocator jemalloc: libjemalloc.so.2 not found "
            "(Debian: apt-get install libjemalloc2)",
            file=sys.stderr,
        )
        return 2
    env = preload_env(dict(os.environ), lib)
    if env is None:
        return None  # already preloaded: this is the re-executed process
    os.execve(sys.executable, [sys.executable, "-m", "kairos.cli", *argv], env)
    return None  # pragma: no cover - execve does not return


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    if args.command == "perf":
        return perf_cli.main(args)
    allocator = args.allocator or os.environ.get("KAIROSDB_ALLOCATOR") or "malloc"
    if allocator not in ALLOCATORS:
        print(f"kairos: KAIROSDB_ALLOCATOR: malloc or jemalloc, got {allocator!r}", file=sys.stderr)
        return 2
    if allocator == "jemalloc":
        code = _use_jemalloc(argv)
        if code is not None:
            return code
    _, server_type, address, env_name = _SERVICES[args.command]
    env = dict(os.environ)
    defaults: dict = {}
    if args.command != "serve":
        # Each service has its own bind address variable and defaults.
        host, port = address.rsplit(":", 1)
        defaults = {"host": host, "port": int(port), "server_type": server_type}
        env.pop("KAIROSDB_BIND_ADDRESS", None)
        if os.environ.get(env_name):
            env["KAIROSDB_BIND_ADDRESS"] = os.environ[env_name]
    try:
        cfg = load(
            args.config,
            env=env,
            defaults=defaults,
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            workers=args.workers,
        )
    except ConfigError as e:
        print(f"kairos: invalid configuration: {e}", file=sys.stderr)
        return 2
    from kairos.app import serve

    serve(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
