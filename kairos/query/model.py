"""Query JSON -> a validated :class:`Query` (spec §3.1-3.2, messages of §3.6).

This version covers what reading data back needs: time range (absolute and relative), metric
name, tag filters (values and ``regex:`` patterns), ``limit``, ``order``, ``exclude_tags``,
``alias`` and ``cache_time``.  Aggregators and group-bys are parsed by the query engine.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kairos.errors import BadRequest

__all__ = ["MetricQuery", "Query", "TagFilter", "parse_query"]

TIME_UNITS = ("MILLISECONDS", "SECONDS", "MINUTES", "HOURS", "DAYS", "WEEKS", "MONTHS", "YEARS")
_UNIT_MS = {
    "MILLISECONDS": 1,
    "SECONDS": 1000,
    "MINUTES": 60_000,
    "HOURS": 3_600_000,
    "DAYS": 86_400_000,
    "WEEKS": 7 * 86_400_000,
}
LONG_MAX = (1 << 63) - 1
REGEX_PREFIX = "regex:"


class InvalidQuery(BadRequest):
    """A query that fails KairosDB's validation (one message, as KairosDB stops at the first)."""


@dataclass(slots=True)
class TagFilter:
    """Values a tag must have (OR): literal values and ``regex:`` patterns (full match)."""

    values: frozenset[str]
    patterns: tuple[re.Pattern[str], ...] = ()

    def matches(self, v: str | None) -> bool:
        if v is None:
            return False
        return v in self.values or any(p.fullmatch(v) for p in self.patterns)


@dataclass(slots=True)
class MetricQuery:
    name: str
    tags: dict[str, TagFilter] = field(default_factory=dict)
    limit: int = 0
    order: str = "asc"
    exclude_tags: bool = False
    alias: str | None = None
    aggregators: list = field(default_factory=list)
    group_by: list = field(default_factory=list)


@dataclass(slots=True)
class Query:
    start: int
    end: int
    metrics: list[MetricQuery]
    cache_time: int = 0
    time_zone: str | None = None


def _as_int(v: object, ctx: str) -> int:
    if isinstance(v, bool):
        raise InvalidQuery(f"{ctx} must be a number")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            try:
                f = float(v)
            except ValueError:
                raise InvalidQuery(f"{ctx} must be a number, got {v!r}") from None
            if f.is_integer():
                return int(f)
    raise InvalidQuery(f"{ctx} must be a number, got {v!r}")


def _relative(rel: object, which: str, now_ms: int) -> int:
    if not isinstance(rel, dict):
        raise InvalidQuery(f"query.{which} must be an object with value and unit")
    value = _as_int(rel.get("value", 0), f"{which}.value")
    if value < 0:
        raise InvalidQuery(f"{which}.value must be greater than or equal to 0")
    unit = rel.get("unit")
    u = str(unit).upper() if unit is not None else ""
    if u not in TIME_UNITS:
        raise InvalidQuery(
            f"query.{unit} is not a valid time unit, must be one of {','.join(TIME_UNITS)}"
        )
    if u in _UNIT_MS:
        return now_ms - value * _UNIT_MS[u]
    dt = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    months = value * (12 if u == "YEARS" else 1)
    y, m = divmod(dt.month - 1 - months, 12)
    year, month = dt.year + y, m + 1
    day = min(dt.day, calendar.monthrange(year, month)[1]) if 1 <= year <= 9999 else dt.day
    try:
        shifted = dt.replace(year=year, month=month, day=day)
    except ValueError:
        raise InvalidQuery(f"{which}.value is out of range") from None
    return calendar.timegm(shifted.timetuple()) * 1000 + now_ms % 1000


def parse_query(doc: object, now_ms: int | None = None) -> Query:
    """Validate a decoded query body."""
    if not isinstance(doc, dict):
        raise InvalidQuery("query must be a JSON object")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    cache_time = _as_int(doc.get("cache_time", 0) or 0, "cache_time")
    if cache_time < 0:
        raise InvalidQuery("cache_time must be greater than or equal to 0")
    tz = doc.get("time_zone")
    metrics = doc.get("metrics")
    if metrics is None:
        raise InvalidQuery("query.metric[] must have a size of at least 1")
    if not isinstance(metrics, list):
        raise InvalidQuery("query.metrics must be an array")

    start: int | None = None
    if doc.get("start_absolute") is not None:
        start = _as_int(doc["start_absolute"], "start_absolute")
    elif doc.get("start_relative") is not None:
        start = _relative(doc["start_relative"], "start_relative", now)
    end = LONG_MAX
    if doc.get("end_absolute") is not None:
        end = _as_int(doc["end_absolute"], "end_absolute")
    elif doc.get("end_relative") is not None:
        end = _relative(doc["end_relative"], "end_relative", now)

    out: list[MetricQuery] = []
    for i, m in enumerate(metrics):
        ctx = f"query.metric[{i}]"
        if not isinstance(m, dict):
            raise InvalidQuery(f"{ctx} must be an object")
        if start is None:
            raise InvalidQuery(f"{ctx}.start_time relative or absolute time must be set")
        if end < start:
            raise InvalidQuery(f"{ctx}.end_time must be greater than the start time")
        name = m.get("name")
        if name is None:
            raise InvalidQuery(f"{ctx}.name may not be null")
        if not isinstance(name, str) or name == "":
            raise InvalidQuery(f"{ctx}.name may not be empty")
        mq = MetricQuery(name=name)
        tags = m.get("tags") or {}
        if not isinstance(tags, dict):
            raise InvalidQuery(f"{ctx}.tags must be an object")
        for j, (k, v) in enumerate(tags.items()):
            if k == "":
                raise InvalidQuery(f"{ctx}.tags[{j}] name must not be empty")
            vals = v if isinstance(v, list) else [v]
            if not vals or any(x is None or x == "" for x in vals):
                raise InvalidQuery(f"{ctx}.tags[{j}].{k} value must not be null or empty")
            lits, pats = set(), []
            for x in vals:
                s = str(x)
                if s.startswith(REGEX_PREFIX):
                    try:
                        pats.append(re.compile(s[len(REGEX_PREFIX) :]))
                    except re.error as e:
                        raise InvalidQuery(f"{ctx}.tags[{j}].{k} invalid regex: {e}") from None
                else:
                    lits.add(s)
            mq.tags[k] = TagFilter(frozenset(lits), tuple(pats))
        if m.get("limit") is not None:
            mq.limit = _as_int(m["limit"], f"{ctx}.limit")
            if mq.limit < 0:
                raise InvalidQuery(f"{ctx}.limit must be greater than or equal to 0")
        order = m.get("order")
        if order is not None:
            if not isinstance(order, str) or order.lower() not in ("asc", "desc"):
                raise InvalidQuery(f"{ctx}.order must be either 'asc' or 'desc'")
            mq.order = order.lower()
        mq.exclude_tags = bool(m.get("exclude_tags", False))
        alias = m.get("alias")
        mq.alias = alias if isinstance(alias, str) and alias else None
        mq.aggregators = m.get("aggregators") or []
        mq.group_by = m.get("group_by") or []
        for j, a in enumerate(mq.aggregators):
            if not isinstance(a, dict) or not a.get("name"):
                raise InvalidQuery(f"{ctx}.aggregators[{j}] must have a name")
        for j, g in enumerate(mq.group_by):
            if not isinstance(g, dict) or not g.get("name"):
                raise InvalidQuery(f"{ctx}.group_by[{j}] must have a name")
        out.append(mq)
    return Query(
        start=start if start is not None else 0,
        end=end,
        metrics=out,
        cache_time=cache_time,
        time_zone=tz,
    )
