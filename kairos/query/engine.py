"""Run a :class:`Query` against a ``Datastore`` and build KairosDB's response (spec §3.3-4).

::

    series (index) -> read ranges -> group by data type and tag group-by -> merge each group by
    timestamp -> split by time/value/bin group-bys -> limit -> aggregator chain -> JSON

This module selects, reads, groups, merges and splits; the aggregator chain is
:mod:`kairos.query.aggregators`.  Every step works on whole columns
(:class:`~kairos.query.stream.Stream`); per-point loops are the Cython kernels behind
``kairos.query.kernels``.  Results with no values are left out, as KairosDB HEAD does (a
``gaps`` result is never empty).

Histogram groups (``objs`` = encoded :class:`~kairos.model.histogram.Histogram` values) print
in the ArpNetworking Grafana plugin's shape plus the lossless direct form::

    {"bins": {"<lower bound, Java double>": count, ...}, "precision": p, "min": .., "max": ..,
     "sum": .., "count": n, "boundaries": [...], "counts": [...], "total_count": n}

A histogram whose non-empty buckets are exactly ArpNetworking bins (what ingesting the
``bins`` form stores) prints those bins and their precision, so bins round-trip exactly;
any other histogram gets one bin per non-empty bucket keyed by its lower edge (bucket 0:
``min``, else its upper boundary) at precision 52.  Details in :mod:`kairos.query.histograms`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

import numpy as np
import orjson

from kairos.errors import QueryFailed, QueryTimeout, QueryTooLarge, RegexTimeout
from kairos.model.batch import DOUBLE, HISTOGRAM, LONG, STRING
from kairos.model.java import LONG_MAX, LONG_MIN, UNIT_MS, java_key, java_long, java_sorted
from kairos.query import aggregators, histograms, kernels
from kairos.query._format import java_double, points_fragment
from kairos.query.aggregators import Publish
from kairos.query.cache import QueryCache
from kairos.query.model import MetricQuery, Query, TagFilter
from kairos.query.spec import BinGroupBy, TagGroupBy, TimeGroupBy, ValueGroupBy
from kairos.query.stream import Stream
from kairos.storage.protocol import Datastore, SeriesData

__all__ = ["Limits", "run_query", "run_tags_query"]

_GROUP_TYPE = {LONG: "number", DOUBLE: "number", STRING: "text", HISTOGRAM: "histogram"}


class Limits:
    """Per-query limits, checked between steps (the kernels themselves are not interrupted)."""

    def __init__(
        self,
        max_points: int | None = None,
        timeout_ms: int | None = None,
        regex_timeout_ms: int | None = None,
    ) -> None:
        self.max_points = max_points
        self.timeout_ms = timeout_ms
        self.deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        self.regex_timeout_ms = regex_timeout_ms
        self.regex_seconds = 0.0  # spent matching ``regex:`` tag filters, all metrics together
        self.points = 0
        self.read_seconds = 0.0  # time spent in the datastore's read (metrics)
        self.format_seconds = 0.0  # time spent writing the results' values as JSON

    def add_points(self, n: int) -> None:
        self.points += n
        if self.max_points is not None and self.points > self.max_points:
            raise QueryTooLarge(
                f"Query would read more than {self.max_points} data points "
                "(KAIROSDB_QUERY_MAX_POINTS); narrow the time range or the tag filter"
            )

    def check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise self._timed_out()

    def _timed_out(self) -> QueryTimeout:
        return QueryTimeout(
            f"Query did not finish within {self.timeout_ms} ms (KAIROSDB_QUERY_TIMEOUT_MS)"
        )

    def matching_values(self, name: str, f: TagFilter, values: set[str]) -> set[str]:
        """The ``values`` of tag ``name`` that pass ``f``, its regexes matched within the
        query's regex budget: what is left of ``regex_timeout_ms`` and of the query's
        deadline, whichever is less.

        Raises :class:`RegexTimeout` (400) when the regex budget runs out and
        :class:`QueryTimeout` (503) when the query's deadline does first.
        """
        out = values & f.values
        todo = [v for v in values if v not in out]
        if not todo or not f.patterns:
            return out
        clock = time.monotonic
        t0 = clock()
        end: float | None = None
        by_deadline = False
        if self.regex_timeout_ms is not None:
            end = t0 + self.regex_timeout_ms / 1000 - self.regex_seconds
        if self.deadline is not None and (end is None or self.deadline < end):
            end, by_deadline = self.deadline, True
        pattern = ""
        try:
            for p in f.patterns:
                pattern, match, rest = p.pattern, p.fullmatch, []
                for v in todo:
                    left = None if end is None else end - clock()
                    if left is not None and left <= 0:
                        raise TimeoutError
                    if match(v, timeout=left):
                        out.add(v)
                    else:
                        rest.append(v)
                todo = rest
        except TimeoutError:
            if by_deadline:
                raise self._timed_out() from None
            raise RegexTimeout(
                f"tags.{name} regex:{pattern} did not finish matching the tag values "
                f"within {self.regex_timeout_ms} ms "
                "(KAIROSDB_QUERY_REGEX_TIMEOUT_MS); the pattern backtracks too much "
                "(e.g. nested repetition like (a|aa)+), simplify it"
            ) from None
        finally:
            self.regex_seconds += clock() - t0
        return out


def run_query(
    store: Datastore,
    query: Query,
    publish: Publish | None = None,
    now_ms: int | None = None,
    limits: Limits | None = None,
    cache: QueryCache | None = None,
) -> dict:
    """The ``{"queries": [...]}`` response object for ``query``.

    ``publish`` receives the batches ``save_as`` produces (the HTTP layer appends them to the
    WAL); ``limits`` bounds the points read and the time spent.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    limits = limits or Limits()
    return {
        "queries": [
            _run_metric(store, query, m, publish, now, limits, cache) for m in query.metrics
        ]
    }


def run_tags_query(store: Datastore, query: Query, limits: Limits | None = None) -> dict:
    """``/datapoints/query/tags``: one result per metric with every tag of its series.

    Like KairosDB's H2 store, the time range is not applied: the tags are those of every
    series of the metric that matches the tag filter.
    """
    queries = []
    for m in query.metrics:
        tagsets: dict[str, set[str]] = {}
        for s in _select(store, m, limits=limits):
            for k, v in s.tags:
                tagsets.setdefault(k, set()).add(v)
        tags = {
            k: sorted(vs, key=java_key)
            for k, vs in sorted(tagsets.items(), key=lambda kv: java_key(kv[0]))
        }
        queries.append({"results": [{"name": m.name, "tags": tags, "values": []}]})
    return {"queries": queries}


# -- selection, grouping, merging ------------------------------------------------------------


def _select(
    store: Datastore,
    m: MetricQuery,
    start: int = LONG_MIN,
    end: int = LONG_MAX,
    limits: Limits | None = None,
) -> list:
    # Literal tag values go to the store's index (postings); regex filters are applied here,
    # within the query's regex budget, each distinct tag value once.
    literal = {k: sorted(f.values) for k, f in m.tags.items() if not f.patterns}
    rest = {k: f for k, f in m.tags.items() if f.patterns}
    found = store.find_series(m.name, literal, start, end)
    if not rest:
        return found
    lim = limits if limits is not None else Limits()
    tag_maps = [dict(s.tags) for s in found]
    values: dict[str, set[str]] = {k: set() for k in rest}
    for tags in tag_maps:
        for k, vs in values.items():
            v = tags.get(k)
            if v is not None:
                vs.add(v)
    passing = {k: lim.matching_values(k, f, values[k]) for k, f in rest.items()}
    return [
        s
        for s, tags in zip(found, tag_maps, strict=True)
        if all(tags.get(k) in ok for k, ok in passing.items())
    ]


def _cache_key(q: Query, m: MetricQuery) -> tuple:
    tags = tuple(
        sorted(
            (k, tuple(sorted(f.values)), tuple(p.pattern for p in f.patterns))
            for k, f in m.tags.items()
        )
    )
    return (q.time_key, m.name, tags, m.limit, m.order if m.limit else "")


def _read(
    store: Datastore, q: Query, m: MetricQuery, limits: Limits, cache: QueryCache | None
) -> list[SeriesData]:
    """The raw series of ``m`` in the query's range: from the cache when ``cache_time`` allows
    (spec §3.5), else from the datastore (and then cached)."""
    if cache is not None:
        key = _cache_key(q, m)
        hit = cache.get(key, m.name, q.cache_time)
        if hit is not None:
            data = hit[1]
            limits.add_points(sum(len(d.ts) for d in data))
            return data
        version = cache.version(m.name)
    selected = _select(store, m, q.start, q.end, limits)
    counted = store.count(selected, q.start, q.end)
    limits.add_points(counted)  # before anything is decoded (where the backend can count)
    limits.check_time()
    t0 = time.perf_counter()
    data = store.read(selected, q.start, q.end, m.limit, m.order)
    limits.read_seconds += time.perf_counter() - t0
    limits.add_points(max(0, sum(len(d.ts) for d in data) - counted))
    if cache is not None:
        cache.put(key, version, selected, data)
    return data


def _run_metric(
    store: Datastore,
    q: Query,
    m: MetricQuery,
    publish: Publish | None,
    now: int,
    limits: Limits,
    cache: QueryCache | None = None,
) -> dict:
    data = _read(store, aggregators.moving_window_read(q, m), m, limits, cache)
    if m.limit:
        data = [_limit_series(d, m.limit, m.order) for d in data]
    sample_size = sum(len(d.ts) for d in data)

    tag_gb = next((g for g in m.group_by if isinstance(g, TagGroupBy)), None)
    others = [g for g in m.group_by if not isinstance(g, TagGroupBy)]
    groups: dict[tuple[str, tuple[str, ...]], list[SeriesData]] = {}
    names = tag_gb.tags if tag_gb else ()
    one = names[0] if len(names) == 1 else None
    for d in data:
        info = d.info
        if one is not None:  # the common group_by of one tag: no dict per series
            v = ""
            for pair in info.tags:
                if pair[0] == one:
                    v = pair[1]
                    break
            key: tuple[str, ...] = (v,)
        elif names:
            tags = dict(info.tags)
            key = tuple([tags.get(t, "") for t in names])
        else:
            key = ()
        group = groups.get((_GROUP_TYPE[info.kind], key))
        if group is None:
            groups[(_GROUP_TYPE[info.kind], key)] = [d]
        else:
            group.append(d)

    def order_key(item: tuple[tuple[str, tuple[str, ...]], list]) -> tuple:
        (gtype, key), _ = item
        label = "".join(n + v for n, v in zip(tag_gb.tags, key, strict=True)) if tag_gb else ""
        return (gtype, java_key(label))

    results = []
    scratch = kernels.Scratch()  # merged groups reuse buffers once the previous is done with
    stream: Stream | None
    sub: Stream | None
    for (gtype, key), members in sorted(groups.items(), key=order_key):
        stream = _merge(members, gtype, m.order, scratch)
        tagsets: dict[str, set[str]] = {}
        for k, v in set().union(*(d.info.tags for d in members)):  # distinct pairs, in C
            tagsets.setdefault(k, set()).add(v)
        tags_json = {k: java_sorted(tagsets[k]) for k in java_sorted(tagsets)}
        ctx = aggregators.Context(q, m, tag_gb, tagsets, publish, now)
        for gb_entries, sub in _split(stream, others, q):
            if m.limit:
                sub = sub.take(slice(0, m.limit))
            for agg in m.aggregators:
                limits.check_time()
                sub = aggregators.apply(agg, sub, ctx)
            if not len(sub):
                continue
            r: dict = {"name": m.name}
            if m.alias is not None:
                r["alias"] = m.alias
            entries = list(gb_entries)
            if tag_gb is not None:
                entries.append(
                    {
                        "name": "tag",
                        "tags": list(tag_gb.tags),
                        "group": dict(zip(tag_gb.tags, key, strict=True)),
                    }
                )
            entries.append({"name": "type", "type": gtype})  # the data's type, even after count
            r["group_by"] = entries
            if not m.exclude_tags:
                r["tags"] = tags_json
            t0 = time.perf_counter()
            r["values"] = _values(sub)
            limits.format_seconds += time.perf_counter() - t0
            results.append(r)
        stream = sub = None  # the group is done: its buffers are free for the next merge
    return {"sample_size": sample_size, "results": results}


def _limit_series(d: SeriesData, limit: int, order: str) -> SeriesData:
    if len(d.ts) <= limit:
        return d
    sl = slice(-limit, None) if order == "desc" else slice(0, limit)
    return SeriesData(d.info, d.ts[sl], d.values[sl])


_EXACT_LONG = float(2**53)
"""Longs up to this magnitude survive a round trip through a double."""


def _merge(
    members: list[SeriesData], gtype: str, order: str, scratch: kernels.Scratch | None = None
) -> Stream:
    if gtype == "number":
        longs = [d.info.kind == LONG for d in members]
        # A number series' values are an array (SeriesData: a list for strings and histograms).
        fs = [
            cast(np.ndarray, d.values).astype(np.float64) if isl else d.values
            for d, isl in zip(members, longs, strict=True)
        ]
        all_long = bool(members) and all(longs)
        tss = [d.ts for d in members]
        if len(members) > 1:
            # Every member is time-sorted: a k-way merge, ties by value (spec §3.4). Where
            # each point came from matters only to carry long values beside doubles, or longs
            # a double cannot hold exactly.
            ts, f, perm = kernels.merge_sorted(
                tss, fs, perm=any(longs) and not all_long, scratch=scratch
            )
            if all_long and len(f) and np.abs(f).max() > _EXACT_LONG:
                ts, f, perm = kernels.merge_sorted(tss, fs)
        else:  # the member's own arrays (possibly read-only: nothing writes a stream in place)
            ts = np.asarray(members[0].ts, np.int64) if members else np.zeros(0, np.int64)
            f = np.asarray(fs[0], np.float64) if members else np.zeros(0)
            perm = None
        if all_long and perm is None and len(members) > 1:
            i, is_long = f.astype(np.int64), np.ones(len(ts), bool)  # every value exact
        elif any(longs):
            i = np.concatenate(
                [
                    d.values if isl else np.zeros(len(d.ts), np.int64)
                    for d, isl in zip(members, longs, strict=True)
                ]
            )
            is_long = np.concatenate(
                [np.full(len(d.ts), isl) for d, isl in zip(members, longs, strict=True)]
            )
            if perm is not None:
                i, is_long = i[perm], is_long[perm]
        else:
            i, is_long = np.zeros(len(ts), np.int64), np.zeros(len(ts), bool)
        rep = len(members) if kernels.shared_timestamps(tss) else 1
        s = Stream("number", ts, f, i, is_long, rep=rep)
    else:
        ts = np.concatenate([d.ts for d in members]) if members else np.zeros(0, np.int64)
        objs: list = []
        for d in members:
            objs.extend(d.values)
        idx = np.argsort(ts, kind="stable")
        s = Stream(gtype, ts, objs=objs).take(idx)
    if order == "desc":
        s = s.take(slice(None, None, -1))
    return s


# -- time, value and bin group-bys -----------------------------------------------------------


def _java_div(a: np.ndarray, b: int) -> np.ndarray:
    """Java ``long`` division of int64 ``a`` by a non-zero ``long`` ``b`` (truncation toward
    zero; ``Long.MIN_VALUE / -1`` wraps)."""
    a = np.asarray(a, np.int64)
    if b == -1:
        return np.negative(a)  # wraps for Long.MIN_VALUE, as Java does
    q = a // np.int64(b)  # floor; truncation differs when there is a remainder and the signs differ
    r = a - q * np.int64(b)
    return np.where((r != 0) & ((a < 0) != (b < 0)), q + 1, q)


def _java_mod(a: np.ndarray, b: int) -> np.ndarray:
    return np.fmod(a, b)


def _group_ids(g, s: Stream, q: Query) -> tuple[np.ndarray, Callable[[int], dict]]:
    n = len(s)
    if isinstance(g, TimeGroupBy):
        rs = g.range_size
        base = g.start_date if g.start_date is not None else q.start
        if rs.unit == "MONTHS":
            from datetime import UTC, datetime

            start = datetime.fromtimestamp(base / 1000, tz=UTC)
            dt = s.ts.astype("datetime64[ms]")
            years = dt.astype("datetime64[Y]").astype(np.int64) + 1970
            months = dt.astype("datetime64[M]").astype(np.int64) % 12 + 1
            ids = _java_mod((years - start.year) * 12 + (months - start.month), g.group_count)
        else:
            unit_ms = {**UNIT_MS, "YEARS": 52 * UNIT_MS["WEEKS"]}
            size = java_long(rs.value * unit_ms[rs.unit])  # Java's long arithmetic wraps
            if size == 0:
                raise QueryFailed("/ by zero")
            ids = _java_mod(_java_div(s.ts - base, size), g.group_count)

        def time_entry(gid: int, g=g) -> dict:
            return {
                "name": "time",
                "range_size": {"value": g.range_size.value, "unit": g.range_size.unit},
                "group_count": g.group_count,
                "group": {"group_number": gid},
            }

        return ids.astype(np.int64), time_entry
    if isinstance(g, ValueGroupBy):
        if s.gtype != "number":
            ids = np.full(n, -1, np.int64)
        else:
            # s is a group straight from _merge: all three number columns are set.
            assert s.f is not None and s.i is not None and s.is_long is not None
            iv = np.where(s.is_long, s.i, np.trunc(np.nan_to_num(s.f)).astype(np.int64))
            ids = _java_div(iv, g.range_size)

        def value_entry(gid: int, g=g) -> dict:
            return {"name": "value", "range_size": g.range_size, "group": {"group_number": gid}}

        return ids.astype(np.int64), value_entry
    assert isinstance(g, BinGroupBy)
    if s.gtype != "number":
        ids = np.full(n, -1, np.int64)
    else:
        assert s.f is not None  # a number group
        ids = np.searchsorted(np.asarray(g.bins, np.float64), s.f, side="right").astype(np.int64)

    def bin_entry(gid: int, g=g) -> dict:
        return {
            "name": "bin",
            "bins": [java_double(b) for b in g.bins],
            "group": {"bin_number": gid},
        }

    return ids, bin_entry


def _split(s: Stream, others: list, q: Query) -> list[tuple[list[dict], Stream]]:
    if not others:
        return [([], s)]
    cols, entries = [], []
    for g in others:
        ids, entry = _group_ids(g, s, q)
        cols.append(ids)
        entries.append(entry)
    keys = np.stack(cols, axis=1) if cols else np.zeros((len(s), 0), np.int64)
    uniq, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    out = []
    for u in np.argsort(first, kind="stable"):  # sub-groups in order of first appearance
        mask = inverse.reshape(-1) == u
        out.append(([e(int(v)) for e, v in zip(entries, uniq[u], strict=True)], s.take(mask)))
    return out


# -- output --------------------------------------------------------------------------------------


def _values(s: Stream) -> list | orjson.Fragment:
    null = s.null
    has_null = null is not None and null.any()
    if s.gtype == "number":
        f, i, is_long = s.f, s.i, s.is_long
        assert f is not None and is_long is not None  # a number group has both
        if not has_null:
            return points_fragment(
                s.ts, f, i if i is not None else np.zeros(len(s), np.int64), is_long
            )
        assert null is not None  # has_null
        iv = cast(np.ndarray, i)  # None only for doubles alone, where no point reads it
        out = []
        t = s.ts.tolist()
        for j, (ts, isl) in enumerate(zip(t, is_long.tolist(), strict=True)):
            if has_null and null[j]:
                out.append([ts, None])
            else:
                out.append([ts, int(iv[j]) if isl else java_double(float(f[j]))])
        return out
    if s.gtype == "histogram":
        return histograms.values_json(s)
    assert s.objs is not None  # a text group has objs
    return [list(p) for p in zip(s.ts.tolist(), s.objs, strict=True)]
