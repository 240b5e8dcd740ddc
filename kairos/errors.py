"""Kairos's exception tree.

::

    KairosError
     +-- BadRequest (ValueError)             400, rendered as {"errors": [...]}
     |    +-- ValidationErrors               400, several KairosDB validation messages
     |    +-- InvalidHistogram               400, an inconsistent histogram value
     +-- PayloadTooLarge (ValueError)        413, body or point count over a limit
     +-- Unavailable (RuntimeError)          503, back-pressure; carries ``retry_after``
     +-- CorruptFile (OSError)               a store or WAL file failed its CRC / framing check

Every subclass carries ``status_code`` and the list of client-facing ``messages``; the HTTP edge
renders them as KairosDB's ``{"errors": [...]}`` body.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "CorruptFile",
    "InvalidHistogram",
    "KairosError",
    "PayloadTooLarge",
    "Unavailable",
    "ValidationErrors",
]


class KairosError(Exception):
    """Root of every error Kairos raises on purpose."""

    status_code = 500

    def __init__(self, *messages: str) -> None:
        super().__init__(*messages)
        self.messages = list(messages)

    def __str__(self) -> str:
        return "; ".join(self.messages)


class BadRequest(KairosError, ValueError):
    status_code = 400


class ValidationErrors(BadRequest):
    """One or more KairosDB validation messages, in the order they were found."""


class InvalidHistogram(BadRequest):
    """A histogram value that is not self-consistent (the message says why)."""


class PayloadTooLarge(KairosError, ValueError):
    status_code = 413


class Unavailable(KairosError, RuntimeError):
    status_code = 503

    def __init__(self, *messages: str, retry_after: int = 1) -> None:
        super().__init__(*messages)
        self.retry_after = retry_after


class CorruptFile(KairosError, OSError):
    """A file failed its integrity check; ``path`` names it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
