"""Static files under versioned addresses, cached for good.

``url_for('static', filename='css/kiosk.css')`` gives ``/static/css/kiosk.css?v=<hash>``,
the hash of the file's bytes. Asked for with the current hash, the file is answered with
``Cache-Control: public, max-age=31536000, immutable``: a browser never asks again, so a
page is never shown before its stylesheet is re-validated, and a new file gets a new
address. Asked for without ``v`` or with an old one, it is answered as before (``no-cache``,
re-validated each time), so an old page never pins stale bytes for a year. The hash
depends on the bytes alone: every worker process of every server gives the same address.
The files are local: nothing here needs the network."""

from __future__ import annotations

import hashlib
import os
import posixpath
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

IMMUTABLE = "public, max-age=31536000, immutable"
VERSION_ARG = "v"


class StaticVersions:
    """The version of each static file: the first 12 hex digits of its SHA-256, kept
    while the file's size and modification time stay the same (one ``stat`` a call)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder).resolve()
        # filename -> (its path, (size, mtime) when hashed, the hash)
        self._known: dict[str, tuple[str, tuple[int, int], str]] = {}

    def version(self, filename: str) -> str | None:
        known = self._known.get(filename)
        if known is None:
            path = (self.folder / filename).resolve()
            if not path.is_relative_to(self.folder):
                return None
            where = str(path)
        else:
            where = known[0]
        try:
            st = os.stat(where)
        except OSError:
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        if known is not None and known[1] == stamp:
            return known[2]
        with open(where, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        self._known[filename] = (where, stamp, digest)
        return digest


def _plain(filename: str) -> bool:
    return posixpath.normpath(filename) == filename and not filename.startswith("/")


def install(app: Flask) -> None:
    """Versioned ``url_for('static', …)`` addresses, answered immutable (see the module)."""
    if not app.static_folder or "static" not in app.view_functions:
        return
    versions = StaticVersions(app.static_folder)
    app.extensions["static_versions"] = versions

    @app.url_defaults
    def add_version(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and VERSION_ARG not in values and "filename" in values:
            v = versions.version(values["filename"])
            if v:
                values[VERSION_ARG] = v

    send = app.view_functions["static"]

    def versioned_static(filename: str) -> Response:
        response: Response = send(filename=filename)
        asked = request.args.get(VERSION_ARG)
        # Only a file's own spelling (``css/./kiosk.css`` is the same file): what the
        # versions remember stays one entry per file on disk, whatever clients ask.
        if asked and response.status_code in (200, 206, 304) and _plain(filename):
            if asked == versions.version(filename):
                response.headers["Cache-Control"] = IMMUTABLE
        return response

    app.view_functions["static"] = versioned_static
