"""The ``kairos`` command."""

from __future__ import annotations

import argparse
import sys

from kairos.config import ConfigError, load

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kairos", description="A KairosDB-compatible time-series database."
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "serve",
        help="serve ingest and query on one port",
        description="Serve the KairosDB HTTP API with the embedded datastore. Settings: defaults < "
        "--config YAML < KAIROSDB_* environment < these options.",
    )
    s.add_argument("--config", help="YAML configuration file (see config/*.yaml)")
    s.add_argument(
        "--host", help="bind address (env KAIROSDB_BIND_ADDRESS=host:port; default 127.0.0.1)"
    )
    s.add_argument("--port", type=int, help="HTTP port (default 8080)")
    s.add_argument("--data-dir", help="datastore directory (env KAIROSDB_DATA_DIR; default ./data)")
    s.add_argument(
        "--workers", type=int, help="HTTP worker processes (env KAIROSDB_HTTP_WORKERS; default 2)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        try:
            cfg = load(
                args.config,
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
