"""Query JSON -> a validated :class:`Query` (spec §3.1-3.2, messages of §3.6).

Validation follows KairosDB's ``QueryParser`` step by step, because it reports only the first
failure:

1. the query object's fields in document order (number formats, relative-time units,
   ``time_zone``), then its bean constraints (``cache_time``, relative values);
2. query-level ``plugins``; the ``metrics`` array must exist;
3. per metric: tags (while reading), ``name``, start and end time, ``group_by``,
   ``aggregators`` (both in :mod:`kairos.query.parse_aggregators`; Gson's value conversions in
   :mod:`kairos.query._gson`), ``plugins``, ``order``.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import regex

from kairos.errors import InvalidQuery
from kairos.model.java import LONG_MAX, LONG_MIN, UNIT_MS, gson_as_string
from kairos.query._gson import (
    bind_duration,
    check_time_zone,
    duration_violations,
    gson_int,
    gson_long,
)
from kairos.query.parse_aggregators import check_plugins, parse_aggregators, parse_group_by
from kairos.query.spec import Aggregator, GroupBy

__all__ = ["MetricQuery", "Query", "TagFilter", "parse_query"]

REGEX_PREFIX = "regex:"


@lru_cache(maxsize=512)
def compile_tag_regex(pattern: str) -> regex.Pattern[str]:
    """A ``regex:`` tag filter's pattern, compiled once per worker.

    The ``regex`` package rather than :mod:`re`: the same syntax (``VERSION0`` is ``re``'s),
    but its matches take a ``timeout`` and release the GIL, so a catastrophic pattern can be
    stopped (see ``Limits.tag_matches``) and does not stall the worker's other requests.
    Raises ``regex.error`` for an invalid pattern.
    """
    return regex.compile(pattern, regex.VERSION0)


@dataclass(slots=True)
class TagFilter:
    """Values a tag must have (OR): literal values and ``regex:`` patterns (full match)."""

    values: frozenset[str]
    patterns: tuple[regex.Pattern[str], ...] = ()

    def matches(self, v: str | None, timeout: float | None = None) -> bool:
        """Whether ``v`` passes; raises ``TimeoutError`` when a pattern needs more than
        ``timeout`` seconds (None: no limit)."""
        if v is None:
            return False
        return v in self.values or any(p.fullmatch(v, timeout=timeout) for p in self.patterns)


@dataclass(slots=True)
class MetricQuery:
    name: str
    tags: dict[str, TagFilter] = field(default_factory=dict)
    limit: int = 0
    order: str = "asc"
    exclude_tags: bool = False
    alias: str | None = None
    aggregators: list[Aggregator] = field(default_factory=list)
    group_by: list[GroupBy] = field(default_factory=list)


@dataclass(slots=True)
class Query:
    start: int
    end: int
    metrics: list[MetricQuery]
    cache_time: int = 0
    time_zone: str | None = None  # a valid zone id ("" given: "UTC"); None: not given (UTC)
    time_key: tuple = ()
    """The time fields as written (relative ones unresolved): KairosDB's cache key part."""


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


# Months past this reach beyond year 1 from any present date (the calendar's range).
_MAX_CALENDAR_MONTHS = 12 * 10_000


def _relative(value: int, unit: str, which: str, now_ms: int) -> int:
    """``RelativeTime.getTimeRelativeTo``: ``now`` minus ``value`` units on a UTC calendar."""
    if unit in UNIT_MS:
        t = now_ms - value * UNIT_MS[unit]
        if not LONG_MIN <= t <= LONG_MAX:
            # KairosDB casts the value to an int and lands somewhere arbitrary; say so instead.
            raise InvalidQuery(f"{which}.value is out of range")
        return t
    if value > _MAX_CALENDAR_MONTHS:
        raise InvalidQuery(f"{which}.value is out of range")
    dt = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    months = value * (12 if unit == "YEARS" else 1)
    y, m = divmod(dt.month - 1 - months, 12)
    year, month = dt.year + y, m + 1
    day = min(dt.day, calendar.monthrange(year, month)[1]) if 1 <= year <= 9999 else dt.day
    try:
        shifted = dt.replace(year=year, month=month, day=day)
    except (ValueError, OverflowError):
        raise InvalidQuery(f"{which}.value is out of range") from None
    return calendar.timegm(shifted.timetuple()) * 1000 + now_ms % 1000


def _tag_filters(tags: object, ctx: str) -> dict[str, TagFilter]:
    """``MetricDeserializer``'s tag checks, made while the tags are read."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidQuery(f"{ctx}.tags must be an object")
    out: dict[str, TagFilter] = {}
    for j, (k, v) in enumerate(tags.items()):
        if k == "":
            raise InvalidQuery(f"{ctx}.tags[{j}] name must not be empty")
        lits: set[str] = set()
        pats: list[regex.Pattern[str]] = []
        for x in v if isinstance(v, list) else [v]:
            s = gson_as_string(x) if not isinstance(x, list | dict) else str(x)
            if not s:
                raise InvalidQuery(f"{ctx}.tags[{j}].{k} value must not be null or empty")
            if s.startswith(REGEX_PREFIX):
                try:
                    pats.append(compile_tag_regex(s[len(REGEX_PREFIX) :]))
                except regex.error as e:
                    raise InvalidQuery(f"{ctx}.tags[{j}].{k} invalid regex: {e}") from None
            else:
                lits.add(s)
        if lits or pats:  # "host": [] adds no value, so it does not filter (as in KairosDB)
            out[k] = TagFilter(frozenset(lits), tuple(pats))
    return out


def parse_query(doc: object, now_ms: int | None = None) -> Query:
    """Validate a decoded query body; raises :class:`InvalidQuery` with KairosDB's message."""
    if not isinstance(doc, dict):
        raise InvalidQuery("query must be a JSON object")
    now = int(time.time() * 1000) if now_ms is None else now_ms

    # 1. Gson binds the query's fields in document order; then its bean constraints.
    start_abs: int | None = None
    end_abs: int | None = None
    relative: dict[str, tuple[int, str | None]] = {}
    cache_time = 0
    tz: str | None = None
    for key, v in doc.items():
        if key in ("start_absolute", "end_absolute"):
            n = gson_long(v, f"$.{key}")
            if key == "start_absolute":
                start_abs = n
            else:
                end_abs = n
        elif key == "cache_time":
            n = gson_int(v, "$.cache_time")
            cache_time = n if n is not None else 0
        elif key in ("start_relative", "end_relative"):
            bound = bind_duration(v, "query", f"$.{key}")
            if bound is not None:
                relative[key] = bound
        elif key == "time_zone":
            tz = check_time_zone(v, "query")
    errors = ["cache_time must be greater than or equal to 0"] if cache_time < 0 else []
    for key in ("start_relative", "end_relative"):
        if key in relative:
            errors += duration_violations(relative[key], "", key)
    if errors:
        raise InvalidQuery(*errors)

    # 2. Query plugins, then the metrics array.
    plugins = doc.get("plugins")
    if plugins is not None:
        if not isinstance(plugins, list):
            raise InvalidQuery("plugins must be an array")
        check_plugins(plugins, "")
    metrics = doc.get("metrics")
    if metrics is None:
        raise InvalidQuery("query.metric[] must have a size of at least 1")
    if not isinstance(metrics, list):
        raise InvalidQuery("query.metrics must be an array")

    # Like KairosDB, relative times are only resolved when a metric needs them.
    start: int | None = start_abs
    end = LONG_MAX if end_abs is None else end_abs
    if metrics:
        if start is None and "start_relative" in relative:
            value, unit = relative["start_relative"]
            start = _relative(value, unit or "", "start_relative", now)
        if end_abs is None and "end_relative" in relative:
            value, unit = relative["end_relative"]
            end = _relative(value, unit or "", "end_relative", now)

    # 3. Each metric.
    out: list[MetricQuery] = []
    for i, m in enumerate(metrics):
        ctx = f"query.metric[{i}]"
        if not isinstance(m, dict):
            raise InvalidQuery(f"{ctx} must be an object")
        raw_name = m.get("name")
        name = gson_as_string(raw_name) if not isinstance(raw_name, list | dict) else ""
        excl = m.get("exclude_tags")
        exclude_tags = excl is True or (isinstance(excl, str) and excl.lower() == "true")
        tags = _tag_filters(m.get("tags"), ctx)
        limit = 0
        if m.get("limit") is not None:
            limit = _as_int(m["limit"], f"{ctx}.limit")
            if limit < 0:
                raise InvalidQuery(f"{ctx}.limit must be greater than or equal to 0")
        alias = (
            gson_as_string(m.get("alias")) if not isinstance(m.get("alias"), list | dict) else None
        )
        if name is None:
            raise InvalidQuery(f"{ctx}.name may not be null")
        if name == "":
            raise InvalidQuery(f"{ctx}.name may not be empty")
        if start is None:
            raise InvalidQuery(f"{ctx}.start_time relative or absolute time must be set")
        if end < start:
            raise InvalidQuery(f"{ctx}.end_time must be greater than the start time")
        mq = MetricQuery(
            name=name, tags=tags, limit=limit, exclude_tags=exclude_tags, alias=alias or None
        )
        # group_by before aggregators, as KairosDB's feature processors are ordered.
        mq.group_by = parse_group_by(_array(m, "group_by", ctx), ctx)
        mq.aggregators = parse_aggregators(_array(m, "aggregators", ctx), ctx, tz)
        metric_plugins = _array(m, "plugins", ctx)
        if metric_plugins:
            check_plugins(metric_plugins, ctx)
        order = m.get("order")
        if order is not None:
            o = gson_as_string(order) if not isinstance(order, list | dict) else None
            if o is None or o.lower() not in ("asc", "desc"):
                raise InvalidQuery(f"{ctx}.order must be either 'asc' or 'desc'")
            mq.order = o.lower()
        out.append(mq)
    return Query(
        start=start if start is not None else 0,
        end=end,
        metrics=out,
        cache_time=cache_time,
        time_key=(
            start_abs,
            relative.get("start_relative"),
            end_abs,
            relative.get("end_relative"),
        ),
        time_zone=tz,
    )


def _array(m: dict, key: str, ctx: str) -> list:
    """A metric's ``group_by``/``aggregators``/``plugins``: absent or null means none."""
    v = m.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise InvalidQuery(f"{ctx}.{key} must be an array")
    return v
