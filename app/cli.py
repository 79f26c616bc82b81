"""The ``kiosk`` command, put together: the store's commands, ``kiosk hub`` and the demo's.

The one place that sees every side, so that the store and the hub never import each other.
"""

from __future__ import annotations

from app.demo import cli as demo_cli
from app.hub.cli import hub
from app.store.cli import main

main.add_command(hub)
demo_cli.register(main, hub)

__all__ = ["main"]
