"""When a promotion runs: local wall times in its time zone, kept as UTC instants.

Head office enters a promotion's start and end as local times (``2026-11-22T09:00``) in
an IANA zone; :func:`parse_local` turns them into instants (refusing an hour the clocks
skip, taking the first of an hour they repeat); :func:`from_instants` turns the API's
instants back into local times. Messages for people are in French, like the console.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.core.text import text_problem

DEFAULT_TIMEZONE = "Europe/Paris"  # the demo retailer's stores
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def parse_local(
    text: Any, zone: ZoneInfo | None, field: str, errors: dict[str, str]
) -> tuple[str, datetime] | None:
    """``2026-11-22T09:00`` in ``zone`` -> (normalised local text, aware UTC instant).

    A time that does not exist in the zone (the hour skipped when clocks go forward) is
    refused; a time that happens twice (clocks go back) means the first of the two.
    """
    if not isinstance(text, str) or not text.strip():
        errors[field] = "Indiquez une date et une heure."
        return None
    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        errors[field] = "Date et heure attendues, par exemple 2026-11-22T09:00."
        return None
    if naive.tzinfo is not None:
        errors[field] = "Heure locale sans fuseau attendue (le fuseau est un champ à part)."
        return None
    naive = naive.replace(second=0, microsecond=0)
    if not 2000 <= naive.year <= 2100:
        errors[field] = "Année entre 2000 et 2100."
        return None
    if zone is None:
        return None
    instant = naive.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != naive:
        errors[field] = (
            f"{naive:%d/%m/%Y %H:%M} n'existe pas dans le fuseau {zone.key} (changement "
            "d'heure) : choisissez une heure après le changement."
        )
        return None
    return naive.strftime(LOCAL_FORMAT), instant


def load_zone(name: Any) -> ZoneInfo | None:
    """The IANA zone called ``name``, or None when it is not one.

    ``ZoneInfo`` raises more than ``ZoneInfoNotFoundError``: ``"Europe"`` (a folder of
    the zone database) is an ``IsADirectoryError``, ``"a\x00"`` a ``ValueError``.
    """
    if not isinstance(name, str) or not name or len(name) > 64 or text_problem(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        return None


def from_instants(data: dict[str, Any]) -> dict[str, Any]:
    """API input may give ``starts_at``/``ends_at`` as instants with an offset instead of
    local times: turn them into local times in the promotion's zone."""
    out = dict(data)
    zone = load_zone(out.get("timezone") or DEFAULT_TIMEZONE)
    for local, instant in (("starts_local", "starts_at"), ("ends_local", "ends_at")):
        text = out.get(instant)
        if zone is None or local in out or not isinstance(text, str):
            continue
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError(text)
            # Year 1 or 9999 with an offset overflows: parse_local says the years allowed.
            out[local] = moment.astimezone(zone).strftime(LOCAL_FORMAT)
        except (ValueError, OverflowError):
            out[local] = text[:100]  # parse_local says what is wrong with it
    return out
