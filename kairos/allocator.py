"""The memory allocator: glibc's malloc by default, jemalloc on request.

``kairos serve --allocator jemalloc`` (the ``allocator`` setting of :mod:`kairos.config`, also
``KAIROSDB_ALLOCATOR=jemalloc``) re-executes the command with Debian's ``libjemalloc2`` in
``LD_PRELOAD``, so every process of the server (main, HTTP workers, writer) allocates through
jemalloc, which returns memory to the system after a load spike more readily than glibc's
arenas.  Each process logs the allocator it runs on at
start-up (:func:`in_use`, read from its own memory map).
"""

from __future__ import annotations

import ctypes.util
import glob
import os

__all__ = ["find_jemalloc", "in_use", "preload_env"]


def find_jemalloc() -> str | None:
    """Path of ``libjemalloc.so.2`` (Debian: ``apt-get install libjemalloc2``), or None."""
    for pattern in (
        "/usr/lib/*/libjemalloc.so.2",
        "/usr/lib/libjemalloc.so.2",
        "/usr/local/lib/libjemalloc.so.2",
    ):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    name = ctypes.util.find_library("jemalloc")
    return name if name and os.path.isabs(name) else None


MALLOC_CONF = "background_thread:true,dirty_decay_ms:2000,muzzy_decay_ms:2000"
"""jemalloc settings unless ``MALLOC_CONF`` is set: a background thread returns freed pages
after 2 s even when the process is idle (by default jemalloc only purges while allocating)."""


def preload_env(env: dict[str, str], lib: str) -> dict[str, str] | None:
    """``env`` with ``lib`` added to ``LD_PRELOAD`` (and :data:`MALLOC_CONF` unless set), or
    None when it is already there."""
    current = env.get("LD_PRELOAD", "")
    if lib in current.split():
        return None
    out = {**env, "LD_PRELOAD": f"{lib} {current}".strip()}
    out.setdefault("MALLOC_CONF", MALLOC_CONF)
    return out


def in_use() -> str:
    """``jemalloc`` when this process has libjemalloc mapped, else ``glibc malloc``."""
    try:
        with open("/proc/self/maps") as f:
            if "libjemalloc" in f.read():
                return "jemalloc"
    except OSError:
        pass
    return "glibc malloc"
