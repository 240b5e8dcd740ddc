"""Logging set-up shared by every process: one line per record, level from the config."""

from __future__ import annotations

import logging

__all__ = ["TRACE", "setup_logging"]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")


def setup_logging(level: str = "info") -> None:
    lvl = TRACE if level.lower() == "trace" else getattr(logging, level.upper(), logging.INFO)
    root = logging.getLogger("kairos")
    root.setLevel(lvl)
    if not root.handlers:
        h = logging.StreamHandler()
        h.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
        )
        root.addHandler(h)
        root.propagate = False
