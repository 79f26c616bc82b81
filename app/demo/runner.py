"""``kiosk demo``: seed the demo retailer once (app/demo/datadir.py), run the hub and
every store as server processes, say where (app/demo/manifest.py), stop them on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import requests

from app.demo import seed as seedmod
from app.demo.datadir import (
    ensure_demo_carts,
    ensure_demo_hq,
    ensure_demo_promotions,
    ensure_demo_staff,
    hub_dir,
    mail_dir,
    seed_hub_if_empty,
    store_dir,
)
from app.demo.manifest import HUB_PORT_OFFSET, announce, demo_manifest, demo_ports, shop_base


def check_ports(port: int, host: str = "127.0.0.1") -> None:
    """Refuse to start anything when one of the demo's ports is taken, naming it."""
    ports = demo_ports(port)
    for number, what in ports:
        with socket.socket() as probe:
            # As waitress does: a port left in TIME_WAIT by a stopped demo is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, number))
            except OSError as exc:
                used = ", ".join(f"{n} ({w})" for n, w in ports)
                raise click.ClickException(
                    f"port {number} (the {what}) is not free on {host}: {exc.strerror}. "
                    f"The demo uses {used}. Stop what listens there, or choose other "
                    f"ports with --port P (stores P, P+1, P+2, the hub P+{HUB_PORT_OFFSET}), "
                    f"e.g. kiosk demo --port {port + 100}."
                ) from None


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"server for {url} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise click.ClickException(f"{url} did not answer within {timeout:.0f}s")


def _wait_first_sync(name: str, url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until a store has pulled the whole change feed once, showing progress."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"{name}'s server exited with {proc.returncode}")
        try:
            health = requests.get(url + "healthz", timeout=2).json()
        except (requests.RequestException, ValueError):
            health = {}
        remaining = health.get("pull_remaining")
        applied = health.get("pull_applied") or 0
        if (
            health.get("last_sync_at")
            and health.get("cursor") not in (None, "0")
            and (not remaining)
        ):
            click.echo(f"  {name}: catalog and stock received", err=True)
            return
        if remaining and (applied, remaining) != last:
            pct = int(100 * applied / max(applied + remaining, 1))
            click.echo(f"  {name}: first sync {pct} %", err=True)
            last = (applied, remaining)
        time.sleep(0.5)
    raise click.ClickException(f"{name} did not finish its first sync in {timeout:.0f}s")


def run_demo(data: Path, port: int, products: int, phone_host: str | None = None) -> None:
    """Seed, start the hub and one store server process per demo store, wait for a stop.

    ``phone_host``: serve the hub (web shop) on every interface and point "send to my
    phone" at ``http://PHONE_HOST:port/``, so a real phone on the same network can run
    the cart journey. Stores and kiosks stay on loopback.
    """
    check_ports(port)
    if phone_host:
        check_ports(port, "0.0.0.0")  # noqa: S104 (the web shop then listens for phones)
    data.mkdir(parents=True, exist_ok=True)
    secrets = seed_hub_if_empty(data, products)
    ensure_demo_hq(data)
    ensure_demo_carts(data)
    ensure_demo_promotions(data)
    procs: list[subprocess.Popen] = []
    hub_url = f"http://127.0.0.1:{port + HUB_PORT_OFFSET}/"

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The shop's e-mails (sign-in codes, order mails) land in a folder to read them.
    hub_env = {**env, "KIOSK_HUB_MAIL_DIR": str(mail_dir(data))}
    try:
        hub = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "hub",
                "serve",
                "--data",
                str(hub_dir(data)),
                "--port",
                str(port + HUB_PORT_OFFSET),
                "--threads",
                "16",
                "--host",
                "0.0.0.0" if phone_host else "127.0.0.1",
            ],  # noqa: S104
            env=hub_env,
        )
        procs.append(hub)
        _wait_ready(hub_url + "api/v1/status", hub)
        for i, store in enumerate(seedmod.DEMO_STORES):
            # The secret goes through the environment, not the command line (ps shows it).
            store_env = {
                **env,
                "KIOSK_STORE_SECRET": secrets[store["id"]],
                "KIOSK_SHOP_URL": shop_base(port, phone_host),
            }
            cmd = [
                sys.executable,
                "-m",
                "app",
                "serve",
                "--data",
                str(store_dir(data, store["id"])),
                "--port",
                str(port + i),
                "--hub-url",
                hub_url,
                "--store-id",
                store["id"],
            ]
            procs.append(subprocess.Popen(cmd, env=store_env))
        for i, store in enumerate(seedmod.DEMO_STORES):
            url = f"http://127.0.0.1:{port + i}/"
            _wait_ready(url + "healthz", procs[i + 1])
            _wait_first_sync(store["name"], url, procs[i + 1])
            ensure_demo_staff(data, store["id"])
        manifest = demo_manifest(data, port, phone_host)
        (data / "demo.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        announce(manifest, data)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        raise click.ClickException("a server stopped unexpectedly; stopping the demo")
    except KeyboardInterrupt:
        click.echo("\nstopping…", err=True)
    finally:
        # Stores first, then the hub, so no store logs a lost link on the way out.
        stores, hubs = procs[1:], procs[:1]
        for group in (stores, hubs):
            for p in group:
                if p.poll() is None:
                    p.terminate()
            for p in group:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
