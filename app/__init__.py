"""Store kiosk and click-and-collect server."""

from .web import create_app

__all__ = ["create_app"]
