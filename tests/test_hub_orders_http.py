"""Click-and-collect against a real hub: HTTP, concurrency, shop pages, seed, CLI, e-mail."""

from __future__ import annotations

import email
import email.policy
import io
import json
import socketserver
import threading
import uuid
from pathlib import Path

import pytest
import requests
import zxingcpp
from PIL import Image

from app.core.secrets import verify_secret
from app.demo.hub_orders import DEMO_ORDER_MIX, bulk_orders, seed_orders
from app.hub import mailer
from app.hub.domain import keys, order_people
from app.hub.domain.orders import create_order, order_change_data
from app.hub.protocol.transactions import apply_batch

from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import (
    LYON,
    PARIS,
    HubClient,
    hub_db,
    open_hub_db,
    run_hub,
    store_secrets,
    validate,
)

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

NOW_ISO = "2026-11-22T14:02:00Z"

QR = zxingcpp.BarcodeFormat.QRCode


def _place(data: Path, store_id: str = LYON, qtys=(2, 1)) -> dict:
    db = open_hub_db(data)
    try:
        skus = [
            r[0]
            for r in db.execute(
                "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku LIMIT ?",
                [store_id, len(qtys)],
            ).fetchall()
        ]
        lines = [{"sku": s, "qty": q} for s, q in zip(skus, qtys, strict=True)]
        return create_order(
            db,
            store_id,
            "Chloé Dubois",
            "chloe@example.com",
            lines,
            private_key=keys.current_private_key(data),
        )
    finally:
        db.close()


def _tx(tx_type, payload):
    return {"id": str(uuid.uuid4()), "type": tx_type, "occurred_at": NOW_ISO, "payload": payload}


def _post(client, *items):
    resp = client.post_transactions(list(items))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    validate(body, "TransactionResults")
    return body["results"]


def _ready_tx(order_id, lines=((1, 2), (2, 1))):
    payload = {
        "order_id": order_id,
        "shelf_slot": "C-07",
        "staff": "sf-1",
        "lines": [{"line": n, "qty_ready": q} for n, q in lines],
    }
    return _tx("order.ready", payload)


def _handover_tx(order_id, handover_id, lines=((1, 2), (2, 1))):
    return _tx(
        "order.handover",
        {
            "handover_id": handover_id,
            "order_id": order_id,
            "collector": "customer",
            "method": "qr",
            "staff": "sf-1",
            "lines": [{"line": n, "qty": q} for n, q in lines],
        },
    )


def test_order_flow_over_http_matches_the_openapi_schemas(hub_server, hub_client):
    made = _place(hub_server.data)
    oid = made["order"]["id"]
    [ready] = _post(hub_client, _ready_tx(oid))
    assert ready["result"] == {"order_id": oid, "status": "ready"}
    [hand] = _post(hub_client, _handover_tx(oid, str(uuid.uuid4()), ((1, 1),)))
    assert hand["result"]["status"] == "partially_collected"
    [ret] = _post(
        hub_client,
        _tx(
            "order.return",
            {
                "return_id": str(uuid.uuid4()),
                "order_id": oid,
                "reason": "",
                "refund": "store_credit",
                "staff": "sf-1",
                "lines": [
                    {
                        "line": 1,
                        "sku": made["order"]["lines"][0]["sku"],
                        "qty": 1,
                        "condition": "resellable",
                    }
                ],
            },
        ),
    )
    assert ret["status"] == "accepted" and ret["result"]["credit_code"].startswith("AV-")
    [rem] = _post(hub_client, _tx("order.reminder", {"order_id": oid, "expires_at": NOW_ISO}))
    assert rem["result"] == {"order_id": oid}
    [exp] = _post(hub_client, _tx("order.expired", {"order_id": oid}))
    assert exp["result"] == {"order_id": oid, "status": "expired"}
    [bad] = _post(hub_client, _tx("order.ready", {"order_id": "o-nothere"}))
    assert bad["status"] == "rejected"

    db = hub_db(hub_server.data)
    first = db.execute(
        "SELECT min(seq) FROM changes WHERE kind = 'order' AND key = ?", [oid]
    ).fetchone()[0]
    db.close()
    page = hub_client.changes(since=first - 1).json()
    validate(page, "ChangesPage")
    mine = [c for c in page["changes"] if c["kind"] == "order"]
    assert [c["data"]["status"] for c in mine] == [
        "placed",
        "ready",
        "partially_collected",
        "partially_collected",
        "expired",
    ]
    assert [c["data"]["revision"] for c in mine] == [1, 2, 3, 4, 5]
    assert all("tx" in c["data"] for c in mine[1:])
    paris = HubClient(hub_server.url, PARIS, store_secrets(hub_server.data)[PARIS])
    theirs = paris.changes(since=first - 1).json()["changes"]
    assert not [c for c in theirs if c["kind"] == "order"]


def test_the_hub_key_is_on_every_stores_feed_from_the_start(hub_server):
    db = hub_db(hub_server.data)
    seq, kid = db.execute("SELECT seq, key FROM changes WHERE kind = 'hub_key'").fetchone()
    db.close()
    for store_id, secret in store_secrets(hub_server.data).items():
        page = HubClient(hub_server.url, store_id, secret).changes(since=seq - 1, limit=1).json()
        validate(page, "ChangesPage")
        assert page["changes"][0]["kind"] == "hub_key" and page["changes"][0]["key"] == kid


def test_concurrent_identical_handovers_from_two_tablets_apply_once(hub_server):
    secret = store_secrets(hub_server.data)[LYON]
    made = _place(hub_server.data)
    oid = made["order"]["id"]
    _post(HubClient(hub_server.url, LYON, secret), _ready_tx(oid))
    handover_id = str(uuid.uuid4())
    barrier = threading.Barrier(4)
    results: list = []

    def tablet(item):
        client = HubClient(hub_server.url, LYON, secret)
        barrier.wait()
        results.extend(_post(client, item))

    same_tx = _handover_tx(oid, handover_id)
    items = [same_tx, dict(same_tx), _handover_tx(oid, handover_id), _handover_tx(oid, handover_id)]
    threads = [threading.Thread(target=tablet, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4
    assert all(r["status"] in ("accepted", "duplicate") for r in results), results
    db = hub_db(hub_server.data)
    assert db.execute("SELECT count(*) FROM handovers WHERE order_id = ?", [oid]).fetchone()[0] == 1
    collected = db.execute(
        "SELECT qty_collected FROM order_lines WHERE order_id = ? ORDER BY line", [oid]
    ).fetchall()
    assert collected == [(2,), (1,)]
    db.close()


def test_shop_page_needs_the_access_key_and_shows_the_ready_message(hub_server, hub_client):
    made = _place(hub_server.data)
    oid, number = made["order"]["id"], made["order"]["number"]
    url = hub_server.url + made["shop_path"]
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "En préparation" in page.text and made["pickup_code"] not in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    _post(hub_client, _ready_tx(oid))
    page = requests.get(url, timeout=10)
    assert "Votre commande est prête" in page.text and made["pickup_code"] in page.text
    assert "<script" not in page.text and "style=" not in page.text
    qr = requests.get(f"{hub_server.url}/orders/{number}/qr.png?k={made['access_key']}", timeout=10)
    assert qr.status_code == 200 and qr.headers["Content-Type"] == "image/png"
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.content)), formats=QR)
    assert decoded.text == made["pickup_token"]
    wrong_key = made["access_key"][:-2] + ("AA" if not made["access_key"].endswith("AA") else "BB")
    for path in (
        f"/orders/{number}",
        f"/orders/{number}?k={wrong_key}",
        f"/orders/{number}?k={oid}",
        f"/orders/{number}/qr.png",
        f"/orders/CC-00000000?k={made['access_key']}",
    ):
        assert requests.get(hub_server.url + path, timeout=10).status_code == 404, path


def test_seed_orders_gives_every_store_the_demo_mix(hub_data, tmp_path):
    db = open_hub_db(hub_data)
    result = seed_orders(db, hub_data, qr_dir=tmp_path / "qr")
    per_store = sum(DEMO_ORDER_MIX.values())
    assert result["orders"] == 3 * per_store
    counts = dict(db.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall())
    assert counts.get("placed") == 36 and counts.get("expired") == 6
    assert counts.get("collected") == 9
    assert counts.get("ready", 0) + counts.get("ready_partial", 0) == 12
    late = db.execute(
        "SELECT count(*) FROM orders WHERE status = 'placed' AND promised_at < ?",
        [db.execute("SELECT max(placed_at) FROM orders").fetchone()[0]],
    ).fetchone()[0]
    assert late > 0
    slots = db.execute(
        "SELECT count(*) FROM orders WHERE status LIKE 'ready%' AND shelf_slot IS NOT NULL"
    ).fetchone()[0]
    assert slots == 12
    assert len(result["ready"]) == 12
    for entry in result["ready"]:
        row = db.execute(
            "SELECT pickup_code_hash, store_id FROM orders WHERE id = ?", [entry["order_id"]]
        ).fetchone()
        assert verify_secret(entry["pickup_code"], row[0]) and row[1] == entry["store_id"]
        assert Path(entry["qr_png"]).is_file()
        assert entry["shop_path"].startswith(f"/orders/{entry['number']}?k=")
    ids = [r[0] for r in db.execute("SELECT id FROM orders").fetchall()]
    people = order_people.names_of(db, order_people.ring_of(db), ids)  # sealed at rest
    assert len(people) == len(ids) and all(
        p.email.endswith("@example.com") for p in people.values()
    )
    ready_notes = db.execute("SELECT count(*) FROM notifications WHERE kind = 'ready'").fetchone()
    assert ready_notes[0] == 12 + 9 + 6  # every order that was once ready
    db.close()


def test_bulk_orders_are_open_and_on_their_stores_feed(hub_data):
    db = open_hub_db(hub_data)
    result = bulk_orders(db, hub_data, PARIS, 400, seed=1)
    assert result["last_seq"] - result["first_seq"] == 399
    assert (
        db.execute("SELECT count(*) FROM orders WHERE store_id = ?", [PARIS]).fetchone()[0] == 400
    )
    row = db.execute("SELECT store_id, data FROM changes WHERE seq = ?", [result["last_seq"]])
    store_id, data = row.fetchone()
    assert store_id == PARIS
    assert json.loads(data) == order_change_data(db, json.loads(data)["id"])
    db.close()


def test_cli_orders_create_and_bulk(hub_data):
    db = open_hub_db(hub_data)
    sku = db.execute(
        "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 2 LIMIT 1", [LYON]
    ).fetchone()[0]
    db.close()
    done = run_hub(
        "orders",
        "create",
        "--data",
        str(hub_data),
        "--store",
        LYON,
        "--customer",
        "Hugo Petit",
        "--email",
        "hugo@example.com",
        "--sku",
        f"{sku}:2",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["order"]["lines"][0]["sku"] == sku and made["order"]["lines"][0]["qty"] == 2
    bad = run_hub(
        "orders",
        "create",
        "--data",
        str(hub_data),
        "--store",
        LYON,
        "--customer",
        "Hugo",
        "--email",
        "h@example.com",
        "--sku",
        "NOPE:1",
    )
    assert bad.returncode != 0 and "NOPE" in bad.stderr
    bulk = run_hub("orders", "bulk", "--data", str(hub_data), "--store", LYON, "--count", "50")
    assert bulk.returncode == 0, bulk.stderr
    db = hub_db(hub_data)
    assert db.execute("SELECT count(*) FROM orders WHERE store_id = ?", [LYON]).fetchone()[0] == 51
    db.close()


# --------------------------------------------------------------------------- e-mail


class _SMTPSink(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: records every message in ``server.messages``."""

    def _say(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._say("220 sink ready")
        while line := self.rfile.readline():
            verb = line.decode().strip().split(" ")[0].upper()
            if verb == "EHLO":
                self._say("250-sink\r\n250 8BITMIME")
            elif verb in ("HELO", "MAIL", "RCPT", "RSET", "NOOP"):
                self._say("250 ok")
            elif verb == "DATA":
                self._say("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.server.messages.append(data)
                self._say("250 queued")
            elif verb == "QUIT":
                self._say("221 bye")
                return
            else:
                self._say("502 no")


@pytest.fixture
def smtp_sink():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPSink)
    server.daemon_threads = True
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_mailer_sends_pending_notifications_with_the_qr(hub_data, smtp_sink):
    made = _place(hub_data)
    db = open_hub_db(hub_data)
    apply_batch(db, LYON, [_ready_tx(made["order"]["id"])], data_dir=hub_data)
    settings = mailer.smtp_settings(
        {
            "KIOSK_HUB_SMTP_HOST": "127.0.0.1",
            "KIOSK_HUB_SMTP_PORT": str(smtp_sink.server_address[1]),
            "KIOSK_HUB_SMTP_FROM": "commandes@sportissimo.example",
        }
    )
    assert mailer.smtp_settings({}) is None
    assert mailer.send_pending(db, settings) == 2  # placed, ready
    assert mailer.send_pending(db, settings) == 0  # nothing twice
    ready = email.message_from_bytes(smtp_sink.messages[-1], policy=email.policy.default)
    assert ready["Subject"] == "Votre commande est prête" and ready["To"] == "chloe@example.com"
    assert made["pickup_code"] in ready.get_body(("plain",)).get_content()
    [png] = [p for p in ready.iter_attachments() if p.get_content_type() == "image/png"]
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.get_content())), formats=QR)
    assert decoded.text == made["pickup_token"]
    db.close()


def test_mailer_records_an_unreachable_server_and_retries_later(hub_data):
    _place(hub_data)
    db = open_hub_db(hub_data)
    with socketserver.TCPServer(("127.0.0.1", 0), _SMTPSink) as closed:
        port = closed.server_address[1]  # bound then closed: nobody listens there
    settings = mailer.smtp_settings(
        {
            "KIOSK_HUB_SMTP_HOST": "127.0.0.1",
            "KIOSK_HUB_SMTP_PORT": str(port),
            "KIOSK_HUB_SMTP_TIMEOUT": "2",
        }
    )
    assert mailer.send_pending(db, settings) == 0
    row = db.execute("SELECT sent_at, attempts, error FROM notifications").fetchone()
    assert row[0] is None and row[1] == 1 and "unavailable" in row[2]
    assert len(mailer.pending(db)) == 1  # still pending: tried again next round
    db.close()
