"""Time, in one place, so tests can control it.

``KIOSK_FAKE_NOW`` (an ISO-8601 instant) freezes the clock for a process started by a
test; everything else asks :func:`utcnow`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    fake = os.environ.get("KIOSK_FAKE_NOW")
    if fake:
        return parse_iso(fake)
    return datetime.now(UTC)


def now_s() -> float:
    """The current instant in seconds since the epoch (for durations kept in sessions)."""
    return utcnow().timestamp()


def iso(dt: datetime) -> str:
    """Format an instant as ``2026-11-22T14:02:00Z`` (second precision, UTC)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    """The current instant as an ISO-8601 UTC string."""
    return iso(utcnow())


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 instant (``Z`` or offset); naive values are taken as UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt
