"""The screen's heartbeat: the kiosk page proves its renderer is alive, and the screen's
watchdog (kiosk-setup) asks how long ago it last did."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from app.web.security import csrf

bp = Blueprint("screen", __name__)

# The kiosk page (static/js/kiosk-heal.js) posts here every few seconds while its
# renderer runs; a hung or crashed renderer ("Aw, Snap!", a white page) stops beating,
# and the screen's watchdog (kiosk-setup) restarts the browser when the age grows.
# The beat is a harmless beacon: it carries nothing, changes no session and stores only
# a time per screen address (bounded), so it is CSRF-exempt (and sendBeacon works).
# Every loopback address counts as one screen: the box's own browser, as its watchdog,
# which asks from 127.0.0.1, sees it. The boot id tells the page that the server was
# restarted (the page then reloads itself when no shopper is mid-action).
# Several web worker processes serve one store (app/store/server.py): the boot id and
# time are made once, when the arbiter loads the app, so every worker (and one
# restarted later) names the same boot; a beat is the time of a file per screen in the
# data directory (``screens/``), so whichever worker answers sees the latest beat.
# Times are the system's monotonic clock (one for every process on Linux), written as
# the file's mtime: a box without a battery-backed clock, or a clock stepped back by
# NTP after boot, must not make every beat look older than the boot.
BOOT_ID = secrets.token_hex(8)
_BOOTED = time.monotonic()
_BEATS_MAX = 256


def _screen_key() -> str:
    """The beating screen: its address, every loopback address as one "local"."""
    addr = request.remote_addr or "?"
    try:
        if ipaddress.ip_address(addr).is_loopback:
            return "local"
    except ValueError:
        pass
    return addr


def _beats_dir() -> Path:
    return Path(current_app.config["DATA_DIR"]) / "screens"


def _beat_file(key: str) -> Path:
    # "local" or the peer's address: only letters, digits, dots and dashes reach a name.
    return _beats_dir() / ("".join(c if c.isalnum() or c in ".-" else "_" for c in key) or "_")


def _record_beat(key: str) -> None:
    path = _beat_file(key)
    now = time.monotonic()
    try:
        os.utime(path, (now, now))
        return
    except FileNotFoundError:
        pass
    path.parent.mkdir(exist_ok=True)
    path.touch()
    os.utime(path, (now, now))
    beats = list(path.parent.iterdir())
    if len(beats) > _BEATS_MAX:  # bounded: the oldest screens are forgotten
        beats.sort(key=lambda p: p.stat().st_mtime if p.exists() else 0)
        for old in beats[: len(beats) - _BEATS_MAX]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()


def _last_beat(key: str) -> float | None:
    try:
        last = _beat_file(key).stat().st_mtime
    except FileNotFoundError:
        return None
    # A beat before this server started does not count, nor one "ahead" of now: the
    # monotonic clock of an earlier boot of the machine.
    return last if _BOOTED <= last <= time.monotonic() + 1 else None


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Kiosk-Boot"] = BOOT_ID
    return response


@bp.post("/kiosk/heartbeat")
def heartbeat_beat() -> Any:
    """A screen says it is alive and rendering; the answer names this server's boot."""
    _record_beat(_screen_key())
    return _no_store(jsonify(ok=True, boot=BOOT_ID))


@bp.get("/kiosk/heartbeat")
def heartbeat_age() -> Any:
    """Seconds since the asking box's own screen last beat (``age``; null: never since
    this server started, see ``uptime``). With ``?max_age=S`` the answer is a 503 when
    the beat is older or missing, for ``curl -f`` in a watchdog script."""
    now = time.monotonic()
    last = _last_beat(_screen_key())
    age = None if last is None else round(max(0.0, now - last), 1)
    raw = request.args.get("max_age")
    status = 200
    if raw is not None:
        try:
            max_age = float(raw)
        except ValueError:
            abort(400)
        if not 0 < max_age < 10**9:  # also refuses nan and inf
            abort(400)
        if age is None or age > max_age:
            status = 503
    body = jsonify(ok=status == 200, age=age, uptime=round(now - _BOOTED, 1), boot=BOOT_ID)
    return _no_store(body), status


csrf.exempt(heartbeat_beat)
