"""Languages (French first, English), locale-aware prices and times, catalog compiling."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_time
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
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_lang"] = current_lang
