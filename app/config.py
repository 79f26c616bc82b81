"""Where settings come from: command line, then ``KIOSK_*`` environment, then a TOML file.

The file (``--config FILE`` or ``KIOSK_CONFIG``) holds top-level keys shared by every
command and optional tables per command, e.g.::

    data = "/var/lib/kiosk"
    [serve]
    port = 8080
    host = "0.0.0.0"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

COMMANDS = ("demo", "serve", "seed", "migrate", "stock", "sync")


def load_default_map(path: str | Path | None) -> dict[str, Any]:
    """Turn a TOML config file into click's ``default_map`` (empty when no file)."""
    if not path:
        return {}
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    shared = {k.replace("-", "_"): v for k, v in raw.items() if not isinstance(v, dict)}
    default_map: dict[str, Any] = {}
    for command in COMMANDS:
        section = raw.get(command, {})
        own = {k.replace("-", "_"): v for k, v in section.items() if not isinstance(v, dict)}
        merged = {**shared, **own}
        if command == "stock":
            merged = {"adjust": {**merged, **section.get("adjust", {})}}
        default_map[command] = merged
    return default_map
