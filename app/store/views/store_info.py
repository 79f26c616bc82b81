"""This store as its pages and tickets name it: its name (on every kiosk page) and its
address (on printed receipts)."""

from __future__ import annotations

import time
from typing import Any

from flask import current_app

from app.store.storage import get_db

_store_names: dict[str, tuple[float, str]] = {}


def store_name() -> str:
    """This store's name, re-read at most every 30 s (it is on every page)."""
    key = current_app.config["DATA_DIR"]
    expires, name = _store_names.get(key, (0.0, ""))
    if time.monotonic() > expires:
        row = get_db().execute("SELECT name FROM stores WHERE is_self = 1").fetchone()
        name = row[0] if row else ""
        _store_names[key] = (time.monotonic() + 30, name)
    return name


def store_details() -> dict[str, Any]:
    """This store's name, city and address, read now (for a printed receipt)."""
    rows = get_db().execute_returning_dicts(
        "SELECT name, city, address FROM stores WHERE is_self = 1"
    )
    return rows[0] if rows else {"name": "", "address": ""}
