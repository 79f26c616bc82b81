"""What every app factory does first: the Flask app with the shared templates and static
files, JSON bodies that cannot crash it, settings, the data directory and its key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from app.core.secrets import secret_key
from app.web import jsonguard, static_files

# templates/ and static/ live at the repository root, shared by the store and the hub.
ROOT = Path(__file__).resolve().parents[2]


def new_app(
    import_name: str,
    defaults: Mapping[str, Any],
    env_prefix: str,
    test_config: Mapping[str, Any] | None = None,
) -> Flask:
    """A Flask app configured from ``defaults``, then ``{env_prefix}_*`` environment
    variables, then ``test_config``; its ``DATA_DIR`` set (from the settings or
    ``{env_prefix}_DATA``) and its session-signing ``SECRET_KEY`` made once per data
    directory (mode 0600) unless given. Static files get versioned, immutable addresses
    (app/web/static_files.py)."""
    app = Flask(
        import_name,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    jsonguard.install(app)
    static_files.install(app)
    app.config.update(defaults)
    app.config.from_prefixed_env(env_prefix)
    if test_config:
        app.config.update(test_config)
    data_dir = app.config.get("DATA_DIR") or os.environ.get(f"{env_prefix}_DATA")
    if not data_dir:
        raise RuntimeError(f"no data directory: pass --data DIR or set {env_prefix}_DATA")
    app.config["DATA_DIR"] = str(data_dir)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(data_dir)
    return app
