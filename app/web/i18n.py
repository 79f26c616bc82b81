"""Languages (French first, English), locale-aware prices and times, catalog compiling."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from flask import Flask, current_app, session
from flask_babel import Babel, get_locale

LANGUAGES = {"fr": "Français", "en": "English"}
DEFAULT_LANG = "fr"
TRANSLATIONS_DIR = Path(__file__).parent / "translations"


def current_lang() -> str:
    """The shopper's language: the one chosen at the kiosk, else French."""
    lang = session.get("lang")
    return lang if lang in LANGUAGES else DEFAULT_LANG


def format_price(cents: int, lang: str | None = None) -> str:
    """A price in euros per locale: ``1 234,50 €`` in French, ``€1,234.50`` in English."""
    return _format_price(cents, lang or str(get_locale() or DEFAULT_LANG))


@lru_cache(maxsize=8192)
def _format_price(cents: int, locale: str) -> str:
    # Babel re-parses the locale's pattern on every call (~0.1 ms); prices repeat a lot.
    return format_currency(Decimal(cents) / 100, "EUR", locale=locale)


def format_clock(moment: datetime, lang: str | None = None) -> str:
    """A wall-clock time in the store's time zone: ``14:02`` or ``2:02 PM``."""
    tz = ZoneInfo(current_app.config.get("STORE_TIMEZONE", "Europe/Paris"))
    locale = lang or str(get_locale() or DEFAULT_LANG)
    return format_time(moment.astimezone(tz), "short", locale=locale)


def _zone() -> ZoneInfo:
    """The time zone people read times in: the stores' (``STORE_TIMEZONE``)."""
    return ZoneInfo(current_app.config.get("STORE_TIMEZONE", "Europe/Paris"))


def _moment(value: datetime | str | None) -> datetime | None:
    """``value`` (a datetime or ISO text) in the local zone; ``None`` when empty or unreadable.

    An aware value (``...Z``, ``+01:00``) is converted; a naive one is already a local
    wall time (a promotion's ``starts_local``) and is only given the zone."""
    if not value:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return None
    zone = _zone()
    return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)


def format_local_datetime(value: datetime | str | None, lang: str | None = None) -> str:
    """A moment as people read it, in local time: ``22 nov. 2026, 15:02`` (French) or
    ``Nov 22, 2026, 3:02 PM``; ISO text is accepted; empty or unreadable gives ``""``.

    The ``local_datetime`` template filter."""
    moment = _moment(value)
    if moment is None:
        return ""
    locale = lang or str(get_locale() or DEFAULT_LANG)
    pattern = str(Locale.parse(locale).datetime_formats["medium"])
    day = format_date(moment, "medium", locale=locale)
    return pattern.replace("{1}", day).replace("{0}", format_time(moment, "short", locale=locale))


def format_local_date(value: datetime | str | None, lang: str | None = None) -> str:
    """A day in local time: ``22 nov. 2026`` or ``Nov 22, 2026`` (``local_date`` filter)."""
    moment = _moment(value)
    return (
        format_date(moment, "medium", locale=lang or str(get_locale() or DEFAULT_LANG))
        if moment
        else ""
    )


def compile_catalogs(directory: Path = TRANSLATIONS_DIR) -> list[Path]:
    """Compile every ``.po`` to ``.mo`` when missing or older; return what was written.

    Only the ``.po`` sources are kept in git; compiling at start-up means a fresh
    clone (or an edited catalog) always serves current translations.
    """
    written = []
    for po_path in directory.glob("*/LC_MESSAGES/*.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as f:
            catalog = read_po(f)
        tmp = mo_path.with_suffix(".mo.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog)
        tmp.replace(mo_path)
        written.append(mo_path)
    return written


def init_app(app: Flask) -> None:
    """Wire Flask-Babel and the template helpers."""
    compile_catalogs()
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANG)
    Babel(app, locale_selector=current_lang)
    app.jinja_env.filters["price"] = format_price
    app.jinja_env.filters["local_datetime"] = format_local_datetime
    app.jinja_env.filters["local_date"] = format_local_date
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_lang"] = current_lang
