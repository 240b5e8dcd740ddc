"""KairosDB's telnet protocol (spec §5.1), without sockets.

:class:`LineFramer` cuts a byte stream into lines; :func:`split_words` splits one line the way
KairosDB's telnet server does; :class:`TelnetSession` turns the bytes of one read into a batch
of points (one WAL append per read), the replies to send (``version``) and the errors to log.

Rules (all from KairosDB): lines end in ``\\n`` or ``\\r\\n`` and are at most 1024 bytes (longer
lines are dropped and counted); bytes are ISO-8859-1; words are separated by runs of chars
``<= U+0020``; a word starting with ``"`` runs to the next ``"`` that is followed by a separator
or the end of the line, and loses its quotes (an unterminated quote is an ordinary word).
``put`` timestamps below 3,000,000,000 are seconds; ``putm`` and ``puts`` take milliseconds;
``puts`` stores its value as a string.  Nothing is ever answered for put/putm/puts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from kairos.ingest._values import double_bits, non_finite_text
from kairos.model.batch import DOUBLE, LONG, STRING, Batch, BatchBuilder, Tags
from kairos.model.java import LONG_MAX, LONG_MIN, java_long, java_sorted_tags

__all__ = [
    "MAX_LINE",
    "SECONDS_LIMIT",
    "FeedResult",
    "LineError",
    "LineFramer",
    "TelnetSession",
    "parse_java_double",
    "parse_line",
    "parse_strict_long",
    "parse_tags",
    "split_words",
    "version_reply",
]

MAX_LINE = 1024
"""``kairosdb.telnetserver.max_command_size``: longest line in bytes, line ending excluded."""
SECONDS_LIMIT = 3_000_000_000
"""``put`` timestamps below this are seconds."""
TTL_TAG = "kairos_opt.ttl"
DEFAULT_TAGS: Tags = (("add", "tag"),)

_INT_MAX = (1 << 31) - 1
_LONG_RE = re.compile(r"-?[0-9]+\Z")
_DEC_RE = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)\Z"
)
_HEX_RE = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?\Z"
)


class LineError(ValueError):
    """A bad line; the message is what gets logged."""


class LineFramer:
    """Splits a byte stream into lines on ``\\n`` (a preceding ``\\r`` is removed).

    A line longer than ``max_line`` bytes is dropped (``dropped`` counts them) and the stream
    continues with the next line.
    """

    __slots__ = ("_buf", "_discarding", "dropped", "max_line")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        buf = self._buf
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            end = nl - 1 if nl > start and buf[nl - 1] == 0x0D else nl
            if self._discarding:
                self._discarding = False
            elif end - start > self.max_line:
                self.dropped += 1
            else:
                lines.append(bytes(buf[start:end]))
            start = nl + 1
        del buf[:start]
        # The rest has no newline yet: once it cannot fit any more, drop it as it arrives.
        # (+1 leaves room for a trailing \r of a line that is exactly max_line long.)
        if len(buf) > self.max_line + 1:
            if not self._discarding:
                self._discarding = True
                self.dropped += 1
            buf.clear()
        return lines


def split_words(line: str) -> list[str]:
    """KairosDB's word splitting: separators are runs of chars <= U+0020; quoted words."""
    words: list[str] = []
    i = 0
    n = len(line)
    while i < n:
        while i < n and line[i] <= " ":
            i += 1
        if i >= n:
            break
        if line[i] == '"':
            j = i + 1
            while True:
                k = line.find('"', j)
                if k < 0:
                    break
                if k + 1 == n or line[k + 1] <= " ":
                    words.append(line[i + 1 : k])
                    i = k + 1
                    break
                j = k + 1
            if k >= 0:
                continue
        j = i
        while j < n and line[j] > " ":
            j += 1
        words.append(line[i:j])
        i = j
    return words


def parse_strict_long(s: str) -> int:
    """A signed decimal long: ``-`` allowed, ``+``, exponents and spaces not; int64 range."""
    if not _LONG_RE.match(s):
        raise LineError(f'For input string: "{s}"')
    v = int(s)
    if not LONG_MIN <= v <= LONG_MAX:
        raise LineError(f'For input string: "{s}"')
    return v


def parse_java_double(s: str) -> float:
    """Java ``Double.parseDouble``: trims chars <= U+0020, accepts ``5.``, ``.5``, ``1e3``,
    ``NaN``, ``Infinity``, a ``f/F/d/D`` suffix and hex floats (``0x1.8p1``)."""
    t = s.strip("".join(chr(c) for c in range(0x21)))
    if _DEC_RE.match(t):
        if t[-1] in "fFdD":
            t = t[:-1]
        return float(t)
    if _HEX_RE.match(t):
        if t[-1] in "fFdD":
            t = t[:-1]
        try:
            return float.fromhex(t)
        except OverflowError:  # Java rounds a hex literal past the double range to infinity
            return -math.inf if t.startswith("-") else math.inf
    raise LineError(f'For input string: "{s}"')


def parse_tags(words: list[str]) -> tuple[Tags, int]:
    """The tags and the TTL (seconds, 0 = default) of ``name=value`` words."""
    tags: dict[str, str] = {}
    ttl = 0
    for n, word in enumerate(words):
        parts = word.split("=")
        while parts and parts[-1] == "":  # Java String.split drops trailing empty strings
            parts.pop()
        if len(parts) < 2:
            raise LineError(f"tag[{n}] must be in the format 'name=value'.")
        name, value = parts[0], parts[1]
        if not name:
            raise LineError(f"tag[{n}].name may not be empty.")
        if not value:
            raise LineError(f"tag[{n}].value may not be empty.")
        if name == TTL_TAG:
            try:
                ttl = parse_strict_long(value)
            except LineError:
                raise LineError(f"tag[{TTL_TAG}] must be a number") from None
            if not 0 <= ttl <= _INT_MAX:
                raise LineError(f"tag[{TTL_TAG}] must be a number between 0 and {_INT_MAX}")
            continue
        if name in tags:
            raise LineError(f"duplicate tag name '{name}'")
        tags[name] = value
    if not tags:
        return DEFAULT_TAGS, ttl
    return java_sorted_tags(tags), ttl


@dataclass(slots=True)
class Point:
    metric: str
    tags: Tags
    kind: int
    ts: int
    value: int | str
    """The int64 value word (long, or a double's bits) or the string of a string point."""
    ttl: int = 0


def parse_value(s: str) -> tuple[int, int]:
    """(kind, value word): contains ``.`` -> double (Java rules), else a strict long."""
    if "." in s:
        x = parse_java_double(s)
        if not math.isfinite(x):
            # KairosDB stores it, then every query on the metric fails ("NaN or Infinity").
            raise LineError(f"value must be a finite number, not {non_finite_text(x)}")
        return DOUBLE, double_bits(x)
    return LONG, parse_strict_long(s)


def parse_line(words: list[str]) -> Point:
    """One ``put``/``putm``/``puts`` command (``words[0]`` is the command)."""
    cmd = words[0]
    if len(words) < 4:
        raise LineError(f"{cmd}: expected '{cmd} <metric> <timestamp> <value> <tag=value>...'")
    metric = words[1]
    if not metric:
        raise LineError("metricName may not be empty.")
    ts = parse_strict_long(words[2])
    if cmd == "put" and ts < SECONDS_LIMIT:
        ts = java_long(ts * 1000)
    value: int | str
    if cmd == "puts":
        kind, value = STRING, words[3]
    else:
        kind, value = parse_value(words[3])
    tags, ttl = parse_tags(words[4:])
    return Point(metric, tags, kind, ts, value, ttl)


def version_reply(version: str) -> bytes:
    """The ``version`` command's answer: ``KairosDB <version>\\n``."""
    text = version if version.startswith("KairosDB ") else f"KairosDB {version}"
    return (text + "\n").encode("utf-8")


def points_batch(points: list[Point]) -> Batch:
    """One batch holding ``points`` in arrival order."""
    bb = BatchBuilder()
    sids, tss, vals = [], [], []
    for p in points:
        sids.append(bb.series_id(p.metric, p.tags, p.kind, p.ttl))
        tss.append(p.ts)
        # only parse_line makes STRING points, and their value is the str
        vals.append(bb.add_object(cast(str, p.value)) if p.kind == STRING else p.value)
    bb.add(
        np.asarray(sids, dtype=np.int32),
        np.asarray(tss, dtype=np.int64),
        np.asarray(vals, dtype=np.int64),
    )
    return bb.build()


@dataclass(slots=True)
class FeedResult:
    batch: Batch | None = None
    """The points of this read, or None when there were none."""
    replies: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Bad lines: ``<message>: <line>``."""
    warnings: list[str] = field(default_factory=list)
    """Unknown commands."""
    dropped: int = 0
    """Lines over the length limit dropped during this read."""
    n_points: int = 0


class TelnetSession:
    """The protocol state of one telnet connection."""

    __slots__ = ("framer", "version")

    def __init__(self, version: str, max_line: int = MAX_LINE) -> None:
        self.framer = LineFramer(max_line)
        self.version = version

    def feed(self, data: bytes) -> FeedResult:
        res = FeedResult()
        before = self.framer.dropped
        points: list[Point] = []
        for raw in self.framer.feed(data):
            line = raw.decode("iso-8859-1")
            words = split_words(line)
            if not words:
                continue
            cmd = words[0]
            if cmd in ("put", "putm", "puts"):
                try:
                    points.append(parse_line(words))
                except LineError as e:
                    res.errors.append(f"{e}: {line!r}")
            elif cmd == "version":
                res.replies.append(version_reply(self.version))
            else:
                res.warnings.append(f"unknown command {cmd!r}")
        res.dropped = self.framer.dropped - before
        if points:
            res.batch = points_batch(points)
            res.n_points = len(points)
        return res
