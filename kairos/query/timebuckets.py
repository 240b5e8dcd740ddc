"""KairosDB's sampling buckets: alignment and calendar arithmetic in a time zone (spec §4.2).

A bucket is found for each timestamp ``t`` from an origin ``S`` (the aggregator's
``start_time``, default the query start; floored to a calendar boundary when
``align_sampling``): ``k = trunc(whole_units_between(S, t) / value)`` -- Java's truncation
toward zero, so points just before ``S`` share bucket 0 (a KairosDB quirk) -- and the bucket is
``[S + k*value units, S + (k+1)*value units)``.  Milliseconds to hours are fixed lengths;
days, weeks, months and years are calendar units in the zone (23- and 25-hour days across DST).

Per-point work is vectorized: fixed units go through the ``bucket_fixed`` kernel; calendar units
build the list of unit boundaries once (per unit, not per point) and ``searchsorted`` into it.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from kairos.errors import QueryFailed
from kairos.model.java import FIXED_UNIT_MS as UNIT_MS
from kairos.query import kernels
from kairos.query.spec import Sampling

__all__ = ["BucketPlan", "align_origin", "bucket_plan", "unit_length_ms", "zone"]

_MAX_BOUNDARIES = 5_000_000


@lru_cache(maxsize=64)
def zone(name: str | None) -> ZoneInfo:
    if not name:
        return ZoneInfo("UTC")
    return ZoneInfo(name)


def _to_local(ms: int, tz: ZoneInfo) -> datetime:
    try:
        return datetime.fromtimestamp(ms // 1000, tz=tz).replace(microsecond=(ms % 1000) * 1000)
    except (OverflowError, ValueError, OSError):
        raise _outside_calendar(ms) from None


def _outside_calendar(ms: int) -> QueryFailed:
    return QueryFailed(
        f"timestamp {ms} is outside the calendar the sampling needs (years 1 to 9999)"
    )


def _overflow(e: Exception) -> QueryFailed:
    """A bucket computation past the ``long`` range (extreme timestamps and origins)."""
    return QueryFailed(f"sampling buckets cannot be computed: {e}")


def _to_ms(dt: datetime) -> int:
    return calendar.timegm(dt.astimezone(UTC).timetuple()) * 1000 + dt.microsecond // 1000


def align_origin(start: int, unit: str, tz: ZoneInfo) -> int:
    """Floor ``start`` the way KairosDB aligns sampling (midnight for days down to seconds)."""
    if unit == "MILLISECONDS":
        return start - start % 1000
    local = _to_local(start, tz)
    if unit == "YEARS":
        local = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "MONTHS":
        local = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "WEEKS":
        local = (local - timedelta(days=local.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
    else:
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return _to_ms(local.replace(fold=0))


def _add_units(origin_local: datetime, n: int, unit: str, tz: ZoneInfo) -> int:
    """``origin + n`` calendar units in the zone, as ms (wall-clock arithmetic)."""
    if unit in ("DAYS", "WEEKS"):
        try:
            d = origin_local + timedelta(days=n * (7 if unit == "WEEKS" else 1))
        except OverflowError:
            raise _outside_calendar(_to_ms(origin_local)) from None
    else:
        months = n * (12 if unit == "YEARS" else 1)
        y, m = divmod(origin_local.month - 1 + months, 12)
        year, month = origin_local.year + y, m + 1
        if not 1 <= year <= 9999:
            raise _outside_calendar(_to_ms(origin_local))
        day = min(origin_local.day, calendar.monthrange(year, month)[1])
        d = origin_local.replace(year=year, month=month, day=day)
    # Wall-clock time in the zone; re-resolve the offset for the new date.
    return _to_ms(d.replace(tzinfo=tz))


def unit_length_ms(start: int, sampling: Sampling, tz: ZoneInfo) -> int:
    """Length in ms of ``sampling`` starting at ``start`` (for rate and sampler)."""
    if sampling.unit in UNIT_MS:
        return sampling.value * UNIT_MS[sampling.unit]
    return _add_units(_to_local(start, tz), sampling.value, sampling.unit, tz) - start


class BucketPlan:
    """Bucket index, start and end of every timestamp for one sampling and origin."""

    def __init__(self, origin: int, sampling: Sampling, tz: ZoneInfo) -> None:
        self.origin = origin
        self.sampling = sampling
        self.tz = tz

    def index(self, ts: np.ndarray) -> np.ndarray:
        """int64 bucket number ``k`` of each timestamp (truncation toward zero)."""
        s = self.sampling
        if s.value <= 0:
            raise QueryFailed("/ by zero")
        if s.unit in UNIT_MS:
            try:
                return kernels.bucket_fixed(ts, self.origin, s.value * UNIT_MS[s.unit])
            except (OverflowError, ValueError) as e:
                raise _overflow(e) from None
        units = self._whole_units(ts)
        return np.trunc(units / s.value).astype(np.int64) if len(units) else units

    def runs(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The offsets where the bucket number of sorted ``ts`` changes, and each run's
        bucket number (``segment_starts`` of :meth:`index`, and ``index`` there)."""
        s = self.sampling
        if s.value > 0 and s.unit in UNIT_MS:
            try:
                return kernels.bucket_runs(ts, self.origin, s.value * UNIT_MS[s.unit])
            except (OverflowError, ValueError) as e:
                raise _overflow(e) from None
        k = self.index(ts)
        starts = kernels.segment_starts(k)
        return starts, k[starts]

    def _boundaries(self, lo_units: int, hi_units: int) -> np.ndarray:
        if hi_units - lo_units > _MAX_BOUNDARIES:
            raise QueryFailed("too many calendar buckets in the query range")
        local = _to_local(self.origin, self.tz)
        return np.array(
            [
                _add_units(local, j, self.sampling.unit, self.tz)
                for j in range(lo_units, hi_units + 1)
            ],
            dtype=np.int64,
        )

    def _estimate_units(self, t: int) -> int:
        approx = {
            "DAYS": 86_400_000,
            "WEEKS": 604_800_000,
            "MONTHS": 2_629_746_000,
            "YEARS": 31_556_952_000,
        }
        return int((t - self.origin) // approx[self.sampling.unit])

    def _whole_units(self, ts: np.ndarray) -> np.ndarray:
        """Joda ``getDifferenceAsLong(origin, t)``: whole calendar units, toward zero."""
        if not len(ts):
            return np.zeros(0, np.int64)
        lo = min(self._estimate_units(int(ts.min())), 0) - 2
        hi = max(self._estimate_units(int(ts.max())), 0) + 2
        b = self._boundaries(lo, hi)  # b[j - lo] = origin + j units
        pos = np.searchsorted(b, ts, side="right") - 1  # b[pos] <= t < b[pos + 1]
        j = pos + lo
        # Before the origin a partial unit does not count: round toward zero.
        exact = b[np.clip(pos, 0, len(b) - 1)] == ts
        return np.where((j < 0) & ~exact, j + 1, j).astype(np.int64)

    def starts(self, k: np.ndarray) -> np.ndarray:
        """Start (ms) of buckets ``k``."""
        return self._edges(k * self.sampling.value)

    def ends(self, k: np.ndarray) -> np.ndarray:
        return self._edges((k + 1) * self.sampling.value)

    def _edges(self, units: np.ndarray) -> np.ndarray:
        s = self.sampling
        if s.unit in UNIT_MS:
            return self.origin + units * UNIT_MS[s.unit]
        if not len(units):
            return np.zeros(0, np.int64)
        lo, hi = int(units.min()), int(units.max())
        b = self._boundaries(lo, hi)
        return b[units - lo]


def bucket_plan(start: int, sampling: Sampling, align: bool, tz: ZoneInfo) -> BucketPlan:
    origin = align_origin(start, sampling.unit, tz) if align else start
    return BucketPlan(origin, sampling, tz)
