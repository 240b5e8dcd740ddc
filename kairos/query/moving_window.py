"""kairosdb-extensions' ``movingWindow`` (``MovingWindowAggregator`` and its
``MovingWindowQueryPreProcessor``).

The window grid hangs off ``S``: the aggregator's ``start_time`` (else the query start),
floored by ``alignRangeBoundary`` when ``align_sampling``.  Each step moves the window one unit
(``U``); a window is ``N`` units wide (``sampling.value``) and re-emits every point it holds, in
input order, at its end.  The pre-processor reads from ``add(S, -N)`` so the first window is
full.  The unit is a Joda ``DateTimeField`` of a Gregorian chronology in the aggregator's zone:
milliseconds to hours are fixed lengths, days to years calendar steps in the zone.

Two implementations:

* :func:`moving_window_fixed` -- vectorised, for the fixed-length units in UTC (days included:
  a UTC day is 86,400,000 ms), where Joda's arithmetic is plain integer arithmetic;
* :func:`moving_window_joda` -- a literal port of ``MovingWindowDataPointGroup.next()`` over
  :class:`_JodaField`, for everything else (weeks, months, years, any unit in another zone,
  input in descending order).  A unit test proves the two agree where both apply.

Quirks kept from Java: the first window ends at ``getStartRange(t0) + N`` (one unit late for a
first point before ``S`` off the grid), points at or before the first window's start are dropped,
and emission stops with the window that takes the last point.  Not kept: where a window has to be
refilled and takes no point, Java throws ``NoSuchElementException`` (a 500); Kairos moves on.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from kairos.errors import BadRequest
from kairos.query.timebuckets import zone

__all__ = ["earliest_start", "moving_window"]

_FIXED_MS = {
    "MILLISECONDS": 1,
    "SECONDS": 1000,
    "MINUTES": 60_000,
    "HOURS": 3_600_000,
    "DAYS": 86_400_000,
}
_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1)
_SAFE = 2**62  # the vectorised path keeps every time within +-2**62 (no int64 wrap-around)


def _out_of_range() -> BadRequest:
    """Joda throws (a 500) past its years +-292 million; Kairos's calendar stops at years 1
    and 9999 -- either way the request's times are at fault."""
    return BadRequest(
        "movingWindow: a window boundary is out of the supported time range"
        " (calendar units and time zones: years 1 to 9999)"
    )


def _offset(ms: int, tz: ZoneInfo) -> int:
    if tz.key == "UTC":
        return 0
    off = datetime.fromtimestamp(ms // 1000, tz=UTC).astimezone(tz).utcoffset()
    return 0 if off is None else int(off.total_seconds() * 1000)


def _local_dt(local: int) -> datetime:
    """A local instant (ms, UTC chronology) as a naive datetime."""
    return _EPOCH + timedelta(milliseconds=local)


def _local_ms(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class _JodaField:
    """The ``DateTimeField`` ``MovingWindowAggregator.timeUnitToTimeField`` picks, zoned
    (``ZonedDateTimeField``): ``add``, ``getDifferenceAsLong`` and ``remainder``."""

    unit: str
    tz: ZoneInfo

    @property
    def _time(self) -> bool:  # Joda's "time field": duration under 12 hours
        return self.unit in ("MILLISECONDS", "SECONDS", "MINUTES", "HOURS")

    def _to_utc(self, local: int, original: int) -> int:
        """``DateTimeZone.convertLocalToUTC(local, false, original)``: the original instant's
        offset where it still fits, else the zone's (earlier offset in an overlap)."""
        o = _offset(original, self.tz)
        if _offset(local - o, self.tz) == o:
            return local - o
        dt = _local_dt(local).replace(tzinfo=self.tz)
        return local - int(dt.utcoffset().total_seconds() * 1000)  # type: ignore[union-attr]

    # -- the base (UTC chronology) fields, on local instants --

    def _base_add(self, local: int, n: int) -> int:
        if self.unit in _FIXED_MS:
            return local + n * _FIXED_MS[self.unit]
        if self.unit == "WEEKS":
            return local + n * 7 * _DAY
        dt = _local_dt(local)
        if self.unit == "MONTHS":
            m = dt.year * 12 + dt.month - 1 + n
            y, mo = divmod(m, 12)
            day = min(dt.day, calendar.monthrange(y, mo + 1)[1])
            return _local_ms(dt.replace(year=y, month=mo + 1, day=day))
        y = dt.year + n  # YEARS: setYear keeps the day, 29 February becomes the 28th
        day = min(dt.day, calendar.monthrange(y, dt.month)[1])
        return _local_ms(dt.replace(year=y, day=day))

    def _floor(self, local: int) -> int:
        if self.unit in _FIXED_MS:
            return local - local % _FIXED_MS[self.unit]
        if self.unit == "WEEKS":  # weeks start on Monday; 1970-01-01 is a Thursday
            return local - (local + 3 * _DAY) % (7 * _DAY)
        dt = _local_dt(local)
        first = dt.replace(day=1) if self.unit == "MONTHS" else dt.replace(month=1, day=1)
        return _local_ms(first.replace(hour=0, minute=0, second=0, microsecond=0))

    def _base_difference(self, m: int, s: int) -> int:
        if self.unit in _FIXED_MS or self.unit == "WEEKS":
            u = 7 * _DAY if self.unit == "WEEKS" else _FIXED_MS[self.unit]
            d = m - s
            return d // u if d >= 0 else -(-d // u)  # Java's division truncates toward zero
        if m < s:
            return -self._base_difference(s, m)
        a, b = _local_dt(m), _local_dt(s)
        if self.unit == "MONTHS":  # BasicMonthOfYearDateTimeField.getDifferenceAsLong
            diff = (a.year - b.year) * 12 + a.month - b.month
            last = calendar.monthrange(a.year, a.month)[1]
            if a.day == last and b.day > last:
                b = b.replace(day=last)
            a_rem = m - self._floor(m)
            b_rem = _local_ms(b) - _local_ms(
                b.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            )
            return diff - 1 if a_rem < b_rem else diff
        # BasicChronology.getYearDifference, with its 29 February balancing.
        a_rem, b_rem = m - self._floor(m), s - self._floor(s)
        feb29 = (31 + 29 - 1) * _DAY
        if b_rem >= feb29:
            if calendar.isleap(b.year):
                if not calendar.isleap(a.year):
                    b_rem -= _DAY
            elif a_rem >= feb29 and calendar.isleap(a.year):
                a_rem -= _DAY
        diff = a.year - b.year
        return diff - 1 if a_rem < b_rem else diff

    # -- the zoned field --

    def add(self, t: int, n: int) -> int:
        if self._time:
            return t + n * _FIXED_MS[self.unit]
        return self._to_utc(self._base_add(t + _offset(t, self.tz), n), t)

    def difference(self, m: int, s: int) -> int:
        os_ = _offset(s, self.tz)
        om = os_ if self._time else _offset(m, self.tz)
        return self._base_difference(m + om, s + os_)

    def remainder(self, t: int) -> int:
        local = t + _offset(t, self.tz)
        return local - self._floor(local)


def _align(t: int, f: _JodaField) -> int:
    """``alignRangeBoundary``: the first day of the year / month, the Monday, at midnight; for
    days to seconds the lower fields zeroed; for milliseconds the whole second."""
    local = t + _offset(t, f.tz)
    floored = local - local % 1000 if f.unit == "MILLISECONDS" else f._floor(local)
    return f._to_utc(floored, t)


@dataclass(frozen=True, slots=True)
class Grid:
    """``S`` (aligned), the zoned unit field and ``N``."""

    start: int
    field: _JodaField
    n: int


def grid(unit: str, n: int, align: bool, start: int, time_zone: str | None) -> Grid:
    f = _JodaField(unit, zone(time_zone))
    try:
        return Grid(_align(start, f) if align else start, f, n)
    except (OverflowError, OSError, ValueError) as e:  # datetime's range
        raise _out_of_range() from e


def earliest_start(g: Grid) -> int:
    """``calculateEarliestStartTime``: where the pre-processor starts reading."""
    try:
        return g.field.add(g.start, -g.n)
    except (OverflowError, OSError, ValueError) as e:
        raise _out_of_range() from e


def moving_window(ts: np.ndarray, g: Grid) -> tuple[np.ndarray, np.ndarray]:
    """``(idx, out_ts)``: the input points re-emitted (by index) and their new times."""
    if not len(ts):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    f = g.field
    if f.tz.key == "UTC" and f.unit in _FIXED_MS:
        u = _FIXED_MS[f.unit]
        reach = max(abs(g.start), abs(int(ts.min())), abs(int(ts.max()))) + (g.n + 2) * u
        ascending = len(ts) < 2 or bool(np.all(np.diff(ts) >= 0))
        if ascending and reach < _SAFE:
            return moving_window_fixed(ts, g.start, u, g.n)
    try:
        return moving_window_joda(ts, g)
    except (OverflowError, OSError, ValueError) as e:
        raise _out_of_range() from e


def moving_window_fixed(
    ts: np.ndarray, start: int, u: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed-unit UTC case, vectorised.  On the grid ``E(k) = S + k*U`` window ``k`` is
    ``(E(k - N), E(k)]``; the first is ``k0 = max(0, e)`` with ``e`` Joda's
    ``getDifferenceAsLong(t0, S)`` plus one when ``remainder(t0 - S) > 0``."""
    d0 = int(ts[0]) - start
    e0 = (d0 // u if d0 >= 0 else -(-d0 // u)) + (1 if d0 % u else 0)
    k0 = max(0, e0)
    live = np.flatnonzero(ts > start + (k0 - n) * u)
    if not len(live):
        return live.astype(np.int64), np.zeros(0, np.int64)
    c = -((start - ts[live]) // u)  # ceil((t - S) / U): the first window holding t
    last_k = max(k0, int(c[-1]))
    # The visited windows: every k in [k0, last_k] with some kept point's c in (k - N, k].
    lo_k = np.maximum(c, k0)
    hi_k = np.minimum(c + n - 1, last_k)
    ok = hi_k >= lo_k
    reach = np.maximum.accumulate(hi_k[ok])
    new_run = np.concatenate([[True], lo_k[ok][1:] > reach[:-1]])
    run_lo = lo_k[ok][new_run]
    run_hi = np.append(reach[np.flatnonzero(new_run)[1:] - 1], reach[-1])
    ks = np.concatenate([np.arange(a, b + 1) for a, b in zip(run_lo, run_hi, strict=True)])
    first = np.searchsorted(c, ks - n, side="right")
    stop = np.searchsorted(c, ks, side="right")
    sizes = stop - first
    idx = np.repeat(first - np.cumsum(np.append(0, sizes[:-1])), sizes) + np.arange(sizes.sum())
    return live[idx].astype(np.int64), np.repeat(start + ks * u, sizes).astype(np.int64)


def moving_window_joda(ts: np.ndarray, g: Grid) -> tuple[np.ndarray, np.ndarray]:
    """``MovingWindowDataPointGroup.next()``, step by step (any unit, zone and order)."""
    f, s, n = g.field, g.start, g.n
    times = [int(t) for t in ts]
    mw_start = earliest_start(g)

    def start_range(t: int) -> int:  # getStartRange
        diff = f.difference(t, s) + (1 if f.remainder(t - s) > 0 else 0)
        return f.add(s, diff - n)

    out_idx: list[int] = []
    out_ts: list[int] = []
    buf: list[int] = []  # indexes into times
    cur = 0  # the current data point (len(times): none left)
    lo = 0
    while cur < len(times):
        if not buf:
            lo = max(mw_start, start_range(times[cur]))
            while times[cur] > f.add(lo, n):  # calendar clamping can leave it short (Java:
                lo = f.add(lo, 1)  # NoSuchElementException); the next window takes it
        else:
            lo = f.add(lo, 1)
            # Trim through the last buffered point at or before the window start (by position,
            # as Java's timestamp -> index map does).
            cut = max((j for j, i in enumerate(buf) if times[i] <= lo), default=-1)
            buf = buf[cut + 1 :]
            if not buf:
                lo = start_range(times[cur])
                while times[cur] > f.add(lo, n):
                    lo = f.add(lo, 1)
        hi = f.add(lo, n)
        while cur < len(times) and times[cur] <= hi:
            if times[cur] > lo:
                buf.append(cur)
            cur += 1
        out_idx.extend(buf)
        out_ts.extend([hi] * len(buf))
    return np.asarray(out_idx, np.int64), np.asarray(out_ts, np.int64)
