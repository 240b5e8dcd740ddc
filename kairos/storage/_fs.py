"""Small file-system helpers: crash-safe writes and the free space of the data directory."""

from __future__ import annotations

import errno
import os

__all__ = ["disk_full", "free_bytes", "fsync_dir", "remove_quietly", "write_all"]

_FULL = (errno.ENOSPC, errno.EDQUOT)


def fsync_dir(path: str) -> None:
    """fsync a directory, making a rename or create inside it durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def disk_full(exc: BaseException) -> bool:
    """True when ``exc`` is a write refused for lack of space (``ENOSPC``, or ``EDQUOT``: the
    user's quota is a full disk too, from where Kairos stands)."""
    return isinstance(exc, OSError) and exc.errno in _FULL


def free_bytes(path: str) -> int:
    """Bytes an unprivileged process may still write on ``path``'s file system (``f_bavail``:
    the root-reserved blocks are not counted, so the answer is the same for every user)."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def remove_quietly(path: str) -> None:
    """Unlink ``path`` if it exists (clean-up of a failed write; errors are not interesting)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may be short near a full disk)."""
    mv = memoryview(data)
    while mv:
        n = os.write(fd, mv)
        mv = mv[n:]
