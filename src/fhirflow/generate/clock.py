"""Local wall-clock timestamps with a UTC offset, the way Synthea writes them.

Synthea writes every dateTime in the generator's local zone ("2003-03-03T13:55:10-05:00").
The US daylight-saving rules are applied here directly (1987-2006 and 2007 onwards) rather
than through the system tz database, so output does not depend on the machine's tzdata.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

_EPOCH = dt.datetime(1970, 1, 1)
_DAY = 86400


def _nth_sunday(year: int, month: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (6 - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 7 * (n - 1))


def _last_sunday(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


@cache
def _dst_window(year: int, std_offset_h: int) -> tuple[int, int]:
    """UTC epoch seconds when DST starts and ends in a year (02:00 local)."""
    if year >= 2007:
        start, end = _nth_sunday(year, 3, 2), _nth_sunday(year, 11, 1)
    else:
        start, end = _nth_sunday(year, 4, 1), _last_sunday(year, 10)
    start_utc = ((dt.datetime.combine(start, dt.time(2)) - _EPOCH).total_seconds()
                 - std_offset_h * 3600)
    end_utc = ((dt.datetime.combine(end, dt.time(2)) - _EPOCH).total_seconds()
               - (std_offset_h + 1) * 3600)
    return int(start_utc), int(end_utc)


class LocalClock:
    """Formats UTC epoch seconds as local dateTimes for one US state's zone."""

    def __init__(self, std_offset_hours: int, observes_dst: bool) -> None:
        self.std = std_offset_hours
        self.dst = observes_dst
        # A bundle writes the same instants many times over (an encounter's start on each of
        # its resources): formatting each once is a tenth of the generator's time saved.
        self._formatted: dict[int, tuple[str, str]] = {}

    def _parts(self, t: int) -> tuple[str, str]:
        found = self._formatted.get(t)
        if found is None:
            if len(self._formatted) > 100_000:  # about 20 MB; a patient uses a few thousand
                self._formatted.clear()
            found = self._formatted[t] = self._format(t)
        return found

    def _format(self, t: int) -> tuple[str, str]:
        local = _EPOCH + dt.timedelta(seconds=t + self.std * 3600)
        off = self.std
        if self.dst:
            start, end = _dst_window(local.year, self.std)
            if start <= t < end:
                local += dt.timedelta(hours=1)
                off += 1
        sign = "-" if off < 0 else "+"
        return local.isoformat(), f"{sign}{abs(off):02d}:00"

    def datetime(self, t: int) -> str:
        local, off = self._parts(t)
        return local + off

    def instant(self, t: int, millis: int) -> str:
        """dateTime with milliseconds (Synthea's `issued`)."""
        local, off = self._parts(t)
        return f"{local}.{millis:03d}{off}"

    def date(self, t: int) -> str:
        return self._parts(t)[0][:10]


def epoch(day: dt.date, seconds: int = 0) -> int:
    return int((dt.datetime.combine(day, dt.time()) - _EPOCH).total_seconds()) + seconds


DAY = _DAY
YEAR = int(365.25 * _DAY)
