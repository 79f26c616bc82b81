"""Calendar dates for tests, read off the business clock (``app.core.clock``), never written.

Every date a test needs is an offset from now (or the next Paris daylight-saving change
after now), so the suite passes on any day: today, next year, or under ``faketime``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.core import clock

PARIS_TZ = ZoneInfo("Europe/Paris")


def paris_day(days: int, hour: int = 9, minute: int = 0, now: datetime | None = None) -> datetime:
    """``hour:minute`` Paris time, ``days`` calendar days after today in Paris (aware, UTC)."""
    today = (now or clock.utcnow()).astimezone(PARIS_TZ).date()
    day = today + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS_TZ).astimezone(UTC)


def local(when: datetime) -> str:
    """The console's ``starts_local`` form of an instant: Paris wall time to the minute."""
    return when.astimezone(PARIS_TZ).strftime("%Y-%m-%dT%H:%M")


def z(when: datetime) -> str:
    """The wire form of an instant (``…Z``, second precision)."""
    return clock.iso(when)


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 6) % 7)


def next_spring_forward(now: datetime | None = None) -> date:
    """The next night Paris moves to summer time (last Sunday of March) after now."""
    today = (now or clock.utcnow()).astimezone(PARIS_TZ).date()
    day = _last_sunday(today.year, 3)
    return day if day > today else _last_sunday(today.year + 1, 3)


def next_fall_back(now: datetime | None = None) -> date:
    """The next night Paris moves back to winter time (last Sunday of October) after now."""
    today = (now or clock.utcnow()).astimezone(PARIS_TZ).date()
    day = _last_sunday(today.year, 10)
    return day if day > today else _last_sunday(today.year + 1, 10)


def spring_forward_eve_utc(now: datetime | None = None) -> str:
    """One minute before Paris next springs forward (01:59 Paris = 00:59 UTC), in UTC, as
    ``faketime``'s ``@YYYY-MM-DD HH:MM:SS`` start wants it (with ``TZ=UTC``)."""
    day = next_spring_forward(now)
    eve = datetime(day.year, day.month, day.day, 1, 59, tzinfo=PARIS_TZ).astimezone(UTC)
    return eve.strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":  # `python -m tests.dates`: the Makefile's faketime start
    print(spring_forward_eve_utc())
