"""``kiosk demo``: seed the demo retailer once, run every server, say where they are."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import requests

from . import db as dbmod
from .migrations import migrate


def store_dir(data: Path, store_id: str) -> Path:
    """Each demo store keeps its own data directory, as a real shop would."""
    return data / "stores" / store_id


def seed_if_empty(data: Path, products: int) -> bool:
    """Seed every demo store that has no catalog yet; True if anything was seeded."""
    from . import seed as seedmod

    seeded = False
    for store in seedmod.DEMO_STORES:
        db = dbmod.connect(dbmod.db_path(store_dir(data, store["id"])))
        migrate(db)
        if db.execute("SELECT count(*) FROM products").fetchone()[0] == 0:
            click.echo(f"seeding {store['name']} ({products} products)…", err=True)
            seedmod.seed_store(db, store["id"], products=products)
            seeded = True
        db.close()
    return seeded


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"server for {url} exited with {proc.returncode}")
        try:
            if requests.get(url + "healthz", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise click.ClickException(f"{url} did not answer within {timeout:.0f}s")


def demo_manifest(data: Path, port: int) -> dict[str, Any]:
    """What demo.json says: URLs, stores and their data, logins, sample barcodes."""
    from . import seed as seedmod

    stores = []
    for i, store in enumerate(seedmod.DEMO_STORES):
        sdir = store_dir(data, store["id"])
        db = dbmod.connect(dbmod.db_path(sdir))
        samples = seedmod.sample_barcodes(db, store["id"])
        db.close()
        stores.append(
            {
                "id": store["id"],
                "name": store["name"],
                "city": store["city"],
                "url": f"http://127.0.0.1:{port + i}/",
                "kiosk_url": f"http://127.0.0.1:{port + i}/",
                "data_dir": str(sdir.resolve()),
                "sample_barcodes": samples,
            }
        )
    return {
        "mode": "demo",
        "note": "Demo data and demo credentials only: never use them in a real shop.",
        "stores": stores,
        "urls": {"kiosk": [s["url"] for s in stores]},
        "logins": [],
        "sample_barcodes": stores[0]["sample_barcodes"],
    }


def run_demo(data: Path, port: int, products: int) -> None:
    """Seed, start one store server process per demo store, wait for Ctrl-C or SIGTERM."""
    from . import seed as seedmod

    data.mkdir(parents=True, exist_ok=True)
    seed_if_empty(data, products)
    procs: list[subprocess.Popen] = []

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        for i, store in enumerate(seedmod.DEMO_STORES):
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            cmd = [
                sys.executable,
                "-m",
                "app",
                "serve",
                "--data",
                str(store_dir(data, store["id"])),
                "--port",
                str(port + i),
            ]
            procs.append(subprocess.Popen(cmd, env=env))
        for i, proc in enumerate(procs):
            _wait_ready(f"http://127.0.0.1:{port + i}/", proc)
        manifest = demo_manifest(data, port)
        (data / "demo.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        _announce(manifest, data)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        raise click.ClickException("a server stopped unexpectedly; stopping the demo")
    except KeyboardInterrupt:
        click.echo("\nstopping…", err=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _announce(manifest: dict[str, Any], data: Path) -> None:
    click.echo("")
    click.secho("Store kiosk demo is running (DEMO DATA — not for a real shop)", bold=True)
    for s in manifest["stores"]:
        click.echo(f"  kiosk  {s['name']:<34} {s['url']}")
    if manifest["logins"]:
        click.echo("  demo logins:")
        for login in manifest["logins"]:
            click.echo(f"    {login}")
    else:
        click.echo("  demo logins: none yet (no staff area in this version)")
    click.echo("  barcodes to type or scan at the kiosk:")
    for b in manifest["sample_barcodes"]:
        click.echo(f"    {b['ean']}  {b.get('name_fr', '')}  ({b.get('qty', '?')} here)")
    click.echo(f"  everything above is also in {data / 'demo.json'}")
    click.echo("  Ctrl-C stops the demo.")
