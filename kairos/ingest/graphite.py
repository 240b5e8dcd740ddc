"""The Graphite (carbon) plaintext protocol, without sockets.

Each line is ``<dotted.path> <value> <timestamp-seconds>``.  The metric name is the path as
sent; the value is a double when it contains ``.`` (Java ``Double.parseDouble`` rules), else a
strict long; the timestamp is seconds (a fractional part is kept to the millisecond).
KairosDB's carbon plugin derives a ``host`` tag from the path with configurable regexes; Kairos
keeps it simple and tags every point ``add=tag`` (the tag KairosDB adds to tagless telnet
points).  Lines are UTF-8 (invalid bytes are replaced), at most 1024 bytes, split on runs of
chars <= U+0020.
"""

from __future__ import annotations

from kairos.ingest.telnet import (
    DEFAULT_TAGS,
    MAX_LINE,
    FeedResult,
    LineError,
    LineFramer,
    Point,
    parse_java_double,
    parse_strict_long,
    parse_value,
    points_batch,
    split_words,
)
from kairos.model.java import java_long

__all__ = ["GraphiteSession", "parse_graphite_line"]


def _timestamp_ms(s: str) -> int:
    if "." in s:
        secs = parse_java_double(s)
        if secs != secs or secs in (float("inf"), float("-inf")):
            raise LineError(f'For input string: "{s}"')
        return java_long(round(secs * 1000))
    return java_long(parse_strict_long(s) * 1000)


def parse_graphite_line(words: list[str]) -> Point:
    if len(words) != 3:
        raise LineError("expected '<metric.path> <value> <timestamp>'")
    metric, value, ts = words
    if not metric:
        raise LineError("metricName may not be empty.")
    kind, word = parse_value(value)
    return Point(metric, DEFAULT_TAGS, kind, _timestamp_ms(ts), word)


class GraphiteSession:
    """The protocol state of one Graphite plaintext connection."""

    __slots__ = ("framer",)

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.framer = LineFramer(max_line)

    def feed(self, data: bytes) -> FeedResult:
        res = FeedResult()
        before = self.framer.dropped
        points: list[Point] = []
        for raw in self.framer.feed(data):
            line = raw.decode("utf-8", "replace")
            words = split_words(line)
            if not words:
                continue
            try:
                points.append(parse_graphite_line(words))
            except LineError as e:
                res.errors.append(f"{e}: {line!r}")
        res.dropped = self.framer.dropped - before
        if points:
            res.batch = points_batch(points)
            res.n_points = len(points)
        return res
