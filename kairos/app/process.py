"""What the operating system says about a process: its resident memory and whether it lives.

Shared by ``GET /metrics`` (:mod:`kairos.app.metrics`), the OTLP push (:mod:`kairos.app.otlp`)
and ingest admission (:mod:`kairos.app.backpressure`), none of which import each other for it.
"""

from __future__ import annotations

import os
import resource

__all__ = ["alive", "rss_bytes"]


def rss_bytes(pid: int | str = "self") -> int | None:
    """Resident memory of process ``pid`` in bytes (from ``/proc/<pid>/statm``), or None."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        if pid == "self":  # not Linux: peak RSS is the best we have (KiB on Linux, B on macOS)
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return None


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
