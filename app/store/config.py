"""Where settings come from: command line, then ``KIOSK_*`` environment, then a TOML file.

The file (``--config FILE`` or ``KIOSK_CONFIG``) holds top-level keys shared by every
command and optional tables per command, e.g.::

    data = "/var/lib/kiosk"
    [serve]
    port = 8080
    host = "0.0.0.0"
    [hub]
    data = "/var/lib/kiosk-hub"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

COMMANDS = ("demo", "serve", "seed", "migrate", "sync", "worker")
# Groups: every subcommand gets the group's table merged with its own sub-table.
GROUPS = {
    "stock": ("adjust",),
    "staff": ("add", "list"),
    "orders": ("expire", "list"),
    "reservations": ("expire", "list"),
}
# The hub has its own data: top-level (store) keys are not shared with it.
HUB_COMMANDS = ("serve", "seed", "add-store")


def _plain(table: dict[str, Any]) -> dict[str, Any]:
    return {k.replace("-", "_"): v for k, v in table.items() if not isinstance(v, dict)}


def load_default_map(path: str | Path | None) -> dict[str, Any]:
    """Turn a TOML config file into click's ``default_map`` (empty when no file)."""
    if not path:
        return {}
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    shared = _plain(raw)
    default_map: dict[str, Any] = {}
    for command in COMMANDS:
        default_map[command] = {**shared, **_plain(raw.get(command, {}))}
    for group, subcommands in GROUPS.items():
        section = raw.get(group, {})
        default_map[group] = {
            sub: {**shared, **_plain(section), **_plain(section.get(sub, {}))}
            for sub in subcommands
        }
    hub = raw.get("hub", {})
    default_map["hub"] = {sub: {**_plain(hub), **_plain(hub.get(sub, {}))} for sub in HUB_COMMANDS}
    return default_map
