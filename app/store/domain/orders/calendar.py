"""The store's calendar: opening days, closing days, and when a ready order expires.

An order ready today may be collected for ``expiry_days`` opening days; it expires at
the local midnight that ends the last of them (closing days do not count).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from app.core import db as dbmod

DEFAULT_TIMEZONE = "Europe/Paris"


def timezone(db: Database) -> ZoneInfo:
    """The store's time zone (Europe/Paris unless set)."""
    return ZoneInfo(dbmod.get_meta(db, "orders.timezone", DEFAULT_TIMEZONE) or DEFAULT_TIMEZONE)


def opening_weekdays(db: Database) -> set[int]:
    """ISO weekdays the store opens (Monday = 1); Monday to Saturday by default."""
    raw = dbmod.get_meta(db, "orders.opening_weekdays", "1,2,3,4,5,6") or ""
    return {int(d) for d in raw.split(",") if d.strip().isdigit()}


def add_closing_day(db: Database, day: date, reason: str = "") -> None:
    """Close the store on one date (a public holiday): it does not count for expiry."""
    with dbmod.write(db):
        db.execute(
            "INSERT OR REPLACE INTO closing_days (day, reason) VALUES (?, ?)",
            [day.isoformat(), reason],
        )


class Calendar:
    """Which local dates the store opens, read once per operation."""

    def __init__(self, db: Database) -> None:
        self.tz = timezone(db)
        self.weekdays = opening_weekdays(db)
        self.closed = {r[0] for r in db.execute("SELECT day FROM closing_days").fetchall()}

    def is_open(self, day: date) -> bool:
        return day.isoweekday() in self.weekdays and day.isoformat() not in self.closed

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.tz)

    def last_day(self, ready_at: datetime, days: int) -> date:
        """The last opening day to collect: ``days`` opening days after the ready day."""
        day = self.local_date(ready_at)
        counted = 0
        for _ in range(3660):  # a store closed for ten years is a configuration error
            if counted >= days:
                break
            day += timedelta(days=1)
            if self.is_open(day):
                counted += 1
        return day

    def expires_at(self, ready_at: datetime, days: int) -> datetime:
        """Expiry: the local midnight that ends the last opening day to collect."""
        return self.midnight(self.last_day(ready_at, days) + timedelta(days=1))

    def opening_days_left(self, today: date, last: date) -> int:
        """Opening days from ``today`` to ``last``, both included."""
        n, day = 0, today
        while day <= last and n < 400:
            n += int(self.is_open(day))
            day += timedelta(days=1)
        return n
