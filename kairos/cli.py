"""The ``kairos`` command: ``serve``, ``ingest``, ``query`` and ``perf``.

``kairos serve`` runs everything on one port.  ``kairos ingest`` (ingest, deletes, the line
protocols and the writer) and ``kairos query`` (queries and metadata, no writer) run the two
halves separately so each scales on its own; they can share one embedded data directory,
the query service reading what the ingest service's writer applies.  ``kairos perf`` load-tests
and compares servers (``kairos.perf``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from kairos import __version__
from kairos.allocator import find_jemalloc, preload_env
from kairos.config import SETTINGS, load
from kairos.errors import ConfigError, ListenerUnavailable

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


PERF_EXTRA = ("rich", "matplotlib")
"""What ``kairos perf`` needs beyond the server (pyproject's ``perf`` extra)."""

_OPTIONS = list(SETTINGS.values())
"""Every setting, each with its command-line option, in declaration order."""


def _add_setting_options(p: argparse.ArgumentParser, defaults: dict, bind_env: str) -> None:
    """One option per declared setting, its help from the declaration (``defaults`` and the
    bind address variable are the service's own)."""
    for s in _OPTIONS:
        env = ", ".join(bind_env if v == "KAIROSDB_BIND_ADDRESS" else v for v in s.env)
        default = defaults.get(s.name, s.default)
        shown = "none" if default in ("", None) else default
        where = f"Environment: {env}; default {shown}." if env else f"Default {shown}."
        text = f"{s.doc.replace('``', '')} {where}"
        kwargs: dict = {"dest": s.name, "help": text.replace("%", "%%")}
        if s.check is not None and s.check.choices:
            kwargs["choices"] = s.check.choices
        elif s.type in ("int", "float"):
            kwargs["type"] = int if s.type == "int" else float
        assert s.option is not None  # _OPTIONS holds the settings that have one
        p.add_argument(s.option, **kwargs)


def _service_defaults(command: str) -> dict:
    """The settings a service command changes from the built-in defaults."""
    if command == "serve":
        return {}
    _, server_type, address, _ = _SERVICES[command]
    host, port = address.rsplit(":", 1)
    return {"host": host, "port": int(port), "server_type": server_type}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kairos",
        description="A KairosDB-compatible time-series database.",
        epilog="Every setting is an option of serve, ingest and query, listed with its "
        "environment variable and default by `kairos serve --help`.",
    )
    p.add_argument(
        "--version",
        action="version",
        version=f"kairos {__version__} ({SETTINGS['version'].default})",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for name, (help_text, server_type, _, env) in _SERVICES.items():
        s = sub.add_parser(
            name,
            help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]} (server type {server_type}). Settings: "
            "defaults < --config YAML < KAIROSDB_* environment < these options.",
        )
        s.add_argument("--config", help="YAML configuration file (see config/*.yaml)")
        _add_setting_options(s, _service_defaults(name), env)
    # kairos.perf.cli itself is light (argument parsing); its heavy modules load when it runs.
    from kairos.perf import cli as perf_cli

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
    if argv[:1] == ["perf"] and any(importlib.util.find_spec(m) is None for m in PERF_EXTRA):
        print("kairos perf needs the perf extra: pip install 'kairos[perf]'", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    if args.command == "perf":
        from kairos.perf import cli as perf_cli

        return perf_cli.main(args)
    env = dict(os.environ)
    bind_env = _SERVICES[args.command][3]
    if bind_env != "KAIROSDB_BIND_ADDRESS":
        # This service has its own bind address variable.
        env.pop("KAIROSDB_BIND_ADDRESS", None)
        if os.environ.get(bind_env):
            env["KAIROSDB_BIND_ADDRESS"] = os.environ[bind_env]
    try:
        cfg = load(
            args.config,
            env=env,
            defaults=_service_defaults(args.command),
            **{s.name: getattr(args, s.name) for s in _OPTIONS},
        )
    except ConfigError as e:
        print(f"kairos: invalid configuration: {e}", file=sys.stderr)
        return 2
    if cfg.allocator == "jemalloc":
        code = _use_jemalloc(argv)
        if code is not None:
            return code
    from kairos.app import serve

    try:
        serve(cfg, http_env=bind_env)
    except ListenerUnavailable as e:
        print(f"kairos: cannot start: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
