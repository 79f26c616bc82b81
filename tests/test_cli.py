"""The ``kiosk`` command line, run as a real separate process."""

from __future__ import annotations

import email
import email.policy
import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import zxingcpp
from PIL import Image

from app.core import db as dbmod
from app.demo import seed as seedmod

from .conftest import ROOT, free_base_port, run_kiosk
from .sync_fixtures import wait_for

SUBCOMMANDS = [
    [],
    ["demo"],
    ["serve"],
    ["seed"],
    ["migrate"],
    ["stock"],
    ["stock", "adjust"],
    ["doctor"],
    ["backup"],
    ["restore"],
]


@pytest.mark.parametrize("cmd", SUBCOMMANDS, ids=lambda c: " ".join(c) or "kiosk")
def test_every_subcommand_has_help(cmd):
    done = run_kiosk(*cmd, "--help")
    assert done.returncode == 0
    assert "Usage:" in done.stdout


def test_migrate_then_seed_then_refuse_to_seed_twice(tmp_path):
    data = tmp_path / "store"
    assert run_kiosk("migrate", "--data", str(data)).returncode == 0
    done = run_kiosk("seed", "--data", str(data), "--products", "40")
    assert done.returncode == 0, done.stderr
    db = dbmod.connect(dbmod.db_path(data))
    assert db["products"].count == 40
    again = run_kiosk("seed", "--data", str(data), "--products", "40")
    assert again.returncode != 0 and "already" in again.stderr
    assert db["products"].count == 40


def test_stock_adjust_negative_delta_and_count(tmp_path, store_data, store_db):
    sku, qty = store_db.execute(
        """SELECT l.sku, l.qty FROM stock_levels l JOIN stores s ON s.id = l.store_id
           WHERE s.is_self = 1 AND l.qty >= 4 LIMIT 1"""
    ).fetchone()
    done = run_kiosk("stock", "adjust", sku, "-3", "--data", str(store_data))
    assert done.returncode == 0, done.stderr
    assert f"{qty} -> {qty - 3}" in done.stdout
    done = run_kiosk("stock", "adjust", sku, "7", "--count", "--data", str(store_data))
    assert f"{qty - 3} -> 7" in done.stdout
    assert store_db["outbox"].count == 2


def test_stock_adjust_unknown_code_is_a_clear_error(store_data):
    done = run_kiosk("stock", "adjust", "NOPE", "1", "--data", str(store_data))
    assert done.returncode == 1
    assert "no item with SKU or barcode 'NOPE'" in done.stderr


def test_options_from_environment_and_config_file(tmp_path, store_data, store_db):
    sku = store_db.execute("SELECT sku FROM variants LIMIT 1").fetchone()[0]
    env_run = run_kiosk("stock", "adjust", sku, "1", env={"KIOSK_DATA": str(store_data)})
    assert env_run.returncode == 0, env_run.stderr
    config = tmp_path / "kiosk.toml"
    config.write_text(f'data = "{store_data}"\n')
    file_run = run_kiosk("--config", str(config), "stock", "adjust", sku, "1")
    assert file_run.returncode == 0, file_run.stderr
    env_file_run = run_kiosk("stock", "adjust", sku, "1", env={"KIOSK_CONFIG": str(config)})
    assert env_file_run.returncode == 0, env_file_run.stderr
    assert store_db["stock_movements"].count == 3


def test_serve_uses_a_production_server(store_server):
    r = requests.get(store_server.url + "/_ping", timeout=5)
    assert r.text == "ok"
    assert r.headers["Server"] == "kiosk"  # waitress's ident, not Werkzeug


def test_demo_seeds_serves_writes_demo_json_and_stops_on_sigterm(tmp_path):
    data = tmp_path / "demo"
    port = free_base_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "demo",
            "--data",
            str(data),
            "--port",
            str(port),
            "--products",
            "60",
            "--phone-host",
            "localhost",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        manifest_path = data / "demo.json"
        wait_for(lambda: manifest_path.exists() or proc.poll() is not None, 90, "demo.json")
        assert proc.poll() is None, proc.stdout.read()
        manifest = json.loads(manifest_path.read_text())
        assert [s["id"] for s in manifest["stores"]] == [s["id"] for s in seedmod.DEMO_STORES]
        for store in manifest["stores"]:
            assert requests.get(store["url"], timeout=5).status_code == 200
            assert (ROOT / store["data_dir"]).exists()
        barcode = manifest["sample_barcodes"][0]["ean"]
        first = manifest["stores"][0]["url"]
        r = requests.get(first + "scan", params={"code": barcode}, timeout=5)
        assert r.status_code == 200 and "/product/" in r.url
        # Orders ready for pickup, with what a hand-over needs.
        ready = manifest["stores"][0]["ready_orders"]
        assert ready and all(
            re.fullmatch(r"\d{6}", o["pickup_code"]) and Path(o["pickup_qr_image"]).exists()
            for o in ready
        )
        # Online carts: a small and a 20-line one whose QR carries the lines, a 30-line
        # one that names the cart only; their images and shop pages work.
        carts = manifest["carts"]
        assert [c["lines"] for c in carts] == [3, 20, 30]
        assert [c["self_contained"] for c in carts] == [True, True, False]
        assert all(Path(c["qr_image"]).exists() for c in carts)
        page = requests.get(carts[1]["shop_url"], timeout=5)
        assert page.status_code == 200 and page.text.count('class="cart-line"') == 20
        assert requests.get(manifest["hub"]["shop_url"], timeout=5).status_code == 200
        # --phone-host: the web shop as a phone on the Wi-Fi reaches it, and a kiosk
        # cart sent to a phone points there.
        assert manifest["hub"]["shop_url"] == f"http://localhost:{port + 10}/shop/"
        kiosk = requests.Session()
        html = kiosk.get(f"{first}product/{manifest['sample_barcodes'][0]['ref']}", timeout=5)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html.text).group(1)
        kiosk.post(
            first + "panier/ajouter",
            timeout=5,
            data={"csrf_token": csrf, "sku": manifest["sample_barcodes"][0]["sku"]},
        )
        qr = kiosk.get(first + "panier/telephone.png", timeout=5)
        [found] = zxingcpp.read_barcodes(
            Image.open(io.BytesIO(qr.content)), formats=zxingcpp.BarcodeFormat.QRCode
        )
        assert found.text.startswith(f"http://localhost:{port + 10}/shop/panier/importer?l=")
        # A shopper signs in to « Mon compte » with any address: the code is in the
        # demo's mail folder (no mail server), one .eml file per mail.
        shopper = requests.Session()
        shop = manifest["hub"]["shop_url"]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', shopper.get(shop, timeout=5).text)
        asked = shopper.post(
            manifest["hub"]["account_url"],
            data={"csrf_token": csrf.group(1), "email": "lea.demo@example.com"},
            timeout=5,
        )
        assert asked.status_code == 200 and asked.url.endswith("/shop/compte/code")
        mail_dir = Path(manifest["hub"]["mail_dir"])

        def mails_to_lea() -> list:
            found = []
            for path in sorted(mail_dir.glob("*.eml")):
                mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                if mail["To"] == "lea.demo@example.com":
                    found.append((path, mail))
            return found

        wait_for(lambda: mails_to_lea(), 30, "the sign-in mail")
        [(mail_file, mail)] = mails_to_lea()
        assert mail_file.stat().st_mode & 0o077 == 0  # codes and addresses: private
        code = re.search(r"\b(\d{6})\b", mail.get_body().get_content()).group(1)
        signed_in = shopper.post(
            shop + "compte/code", data={"csrf_token": csrf.group(1), "code": code}, timeout=5
        )
        assert signed_in.status_code == 200 and signed_in.url.endswith("/shop/compte")
        # The hub runs, and the stores got their catalog from it.
        status = requests.get(manifest["hub"]["url"] + "api/v1/status", timeout=5).json()
        assert status["ok"] is True and status["stores"] == 3
        # The demo logins listed in demo.json work.
        login = next(m for m in manifest["logins"] if m["role"] == "manager")
        s = requests.Session()
        form = s.get(login["url"], timeout=5).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        staff_id = re.search(rf'value="(sf-[0-9a-f]+)"[^>]*>\s*<span>{login["name"]}<', form).group(
            1
        )
        r = s.post(
            login["url"],
            data={"staff_id": staff_id, "pin": login["pin"], "csrf_token": token},
            timeout=10,
        )
        assert r.url.endswith("/staff/orders") and login["name"] in r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "http://127.0.0.1:" in out and "demo.json" in out
    # every store server and the hub stopped with it
    for i in (0, 1, 2, 10):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port + i}/healthz", timeout=2)
