"""Logging set-up shared by every process: one line per record, level and format from the config.

Levels (``KAIROSDB_LOG_LEVEL``): ``info`` - start-up, shutdown, repairs and the writer's
periodic batch summaries; ``debug`` - development detail (every writer step); ``trace`` -
one line per HTTP request.  Nothing is logged per data point above ``trace``.

Formats (``KAIROSDB_LOG_FORMAT``): ``text`` (default) or ``json`` - one JSON object per line
with ``ts`` (ISO 8601, UTC), ``level``, ``pid``, ``logger`` and ``msg``, plus the record's
structured fields (``extra={...}``) and ``exc`` for exceptions.
"""

from __future__ import annotations

import datetime
import logging

import orjson

__all__ = ["TRACE", "JsonFormatter", "setup_logging"]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "pid": record.process,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    lvl = TRACE if level.lower() == "trace" else getattr(logging, level.upper(), logging.INFO)
    root = logging.getLogger("kairos")
    root.setLevel(lvl)
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
    else:
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
        )
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
        root.propagate = False
    for h in root.handlers:
        h.setFormatter(formatter)
