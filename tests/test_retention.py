"""Retention of personal data at the hub (app/hub/domain/retention.py) and the rotation
of its key (app/hub/domain/pii_rotation.py), with a frozen clock, on both backends."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from app.cli import main
from app.core.clock import iso, parse_iso
from app.hub import database as hdb
from app.hub.domain import order_people, pii, pii_rotation, retention, retention_mail
from app.hub.domain.orders import publish
from app.hub.migrations import migrate

from .pg import *  # noqa: F403

NOW = parse_iso("2026-12-05T12:00:00Z")
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
WARNED = iso(NOW - 40 * DAY)  # warned over a month ago: deletion may go ahead
EMAIL = "Zephyrine.Quintavalle@example.org"
FIRST, LAST = "Zéphyrine", "Quintavalle"


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setenv("KIOSK_FAKE_NOW", iso(NOW))


@pytest.fixture
def ring(tmp_path):
    return pii.KeyRing.open(tmp_path / "hub")


@pytest.fixture
def db(target, frozen):  # noqa: F811 (the fixture of tests/pg.py)
    conn = hdb.connect(target)
    migrate(conn)
    hdb.insert(
        conn,
        "stores",
        {"id": "st-lyon", "name": "Lyon", "secret": "s", "created_at": iso(NOW - 5000 * DAY)},
    )
    yield conn
    conn.close()


def customer(db, ring, cid, last_contact, email=None, first=None, last=None, warned=None):
    email = email or f"{cid}@example.net"
    hdb.insert(
        db,
        "customers",
        {
            "id": cid,
            "email_enc": ring.encrypt(email, "customers.email"),
            "email_idx": ring.blind_index(email, "customers.email"),
            "first_name_enc": ring.encrypt(first, "customers.first_name"),
            "last_name_enc": ring.encrypt(last, "customers.last_name"),
            "created_at": iso(last_contact),
            "last_contact_at": iso(last_contact),
            "retention_warned_at": warned,
        },
    )


def order(db, oid, placed, name="Jean Client", email="jean@example.net", customer_id=None):
    stamp = iso(placed)
    hdb.insert(
        db,
        "orders",
        {
            "id": oid,
            "number": "CC-" + oid[-8:].rjust(8, "0"),
            "store_id": "st-lyon",
            "status": "collected",
            "customer_name": name,
            "customer_email": email,
            "placed_at": stamp,
            "pickup_code": "123456",
            "pickup_code_hash": "h-" + oid,
            "pickup_token": "t-" + oid,
            "updated_at": stamp,
            "customer_id": customer_id,
        },
    )
    hdb.insert(
        db,
        "order_lines",
        {"order_id": oid, "line": 1, "sku": "SKU-1", "qty": 2, "price_cents": 1999},
    )


def delivery(db, did, asked, name="Jean Client", email="jean@example.net"):
    hdb.insert(
        db,
        "delivery_orders",
        {
            "id": did,
            "number": "LD-" + did[-8:].rjust(8, "0"),
            "request_id": "rq-" + did,
            "origin_store_id": "st-lyon",
            "customer_name": name,
            "customer_email": email,
            "address_line1": "12 rue des Lilas",
            "address_postcode": "69001",
            "address_city": "Lyon",
            "lines": "[]",
            "total_cents": 4200,
            "status": "delivered",
            "created_at": iso(asked),
            "updated_at": iso(asked),
        },
    )


def ids(db, table, key="id"):
    return {r[key] for r in hdb.rows(db, f"SELECT {key} FROM {table}")}  # noqa: S608


def dump(db):
    every = {t: hdb.rows(db, f"SELECT * FROM {t}") for t in hdb.table_columns(db)}  # noqa: S608
    return {
        t: sorted(json.dumps(r, sort_keys=True, default=str) for r in rs) for t, rs in every.items()
    }


def build_boundaries(db, ring):
    """For every limit, one row just inside it (kept) and one just past it (concerned)."""
    three = retention.years_before(NOW, 3)
    warn = three + 30 * DAY
    customer(db, ring, "cu-warn-past", warn - SECOND)
    customer(db, ring, "cu-warn-inside", warn + SECOND)
    customer(db, ring, "cu-del-past", three - SECOND)  # never warned: warned, kept
    customer(db, ring, "cu-del-inside", three + SECOND)
    month = NOW - 30 * DAY  # deleted only once warned at least a month ago
    customer(db, ring, "cu-del-warned", three - SECOND, warned=iso(month))
    customer(db, ring, "cu-del-warned-late", three - SECOND, warned=iso(month + SECOND))
    customer(db, ring, "cu-warned-already", warn - DAY, warned=iso(warn))
    ten = retention.years_before(NOW, 10)
    order(db, "o-ten-past", ten - SECOND, customer_id="cu-warn-inside")
    order(db, "o-ten-inside", ten + SECOND, customer_id="cu-warn-inside")
    order(db, "o-guest-past", three - SECOND)
    order(db, "o-guest-inside", three + SECOND)
    for did, asked in (
        ("d-ten-past", ten - SECOND),
        ("d-three-past", three - SECOND),
        ("d-three-inside", three + SECOND),
    ):
        delivery(db, did, asked)
    grace = NOW - DAY
    for cid, expires in (("lc-past", grace - SECOND), ("lc-inside", grace + SECOND)):
        hdb.insert(
            db,
            "customer_login_codes",
            {
                "id": cid,
                "email_idx": "x" + cid,
                "code_hash": "h",
                "created_at": iso(expires - 600 * SECOND),
                "expires_at": iso(expires),
            },
        )
    idle = grace - 30 * DAY
    for sid, seen, revoked in (
        ("se-revoked-past", NOW, grace - SECOND),
        ("se-revoked-inside", NOW, grace + SECOND),
        ("se-idle-past", idle - SECOND, None),
        ("se-idle-inside", idle + SECOND, None),
    ):
        hdb.insert(
            db,
            "customer_sessions",
            {
                "id": sid,
                "customer_id": "cu-warn-inside",
                "created_at": iso(seen),
                "last_seen_at": iso(seen),
                "revoked_at": iso(revoked) if revoked else None,
            },
        )
    year = NOW - 365 * DAY
    for action, at in (("audit.past", year - SECOND), ("audit.inside", year + SECOND)):
        hdb.insert(db, "hq_audit", {"at": iso(at), "action": action})


def test_each_limit_just_before_and_just_after(db, ring):
    build_boundaries(db, ring)
    report = retention.run(db, ring=ring)
    rules = report["rules"]
    # Warned: inside the last 30 days before 3 years, and past 3 years if never warned.
    assert rules["customers_warned"]["ids"] == ["cu-del-inside", "cu-del-past", "cu-warn-past"]
    # Deleted: past 3 years and warned at least 30 days ago, never without a warning.
    assert rules["customers_deleted"]["ids"] == ["cu-del-warned"]
    assert ids(db, "customers") == {
        "cu-warn-past",
        "cu-warn-inside",
        "cu-del-inside",
        "cu-del-past",
        "cu-del-warned-late",
        "cu-warned-already",
    }
    warned = {
        r["id"]: r["retention_warned_at"]
        for r in hdb.rows(db, "SELECT id, retention_warned_at FROM customers")
    }
    assert warned["cu-warn-past"] == iso(NOW) and warned["cu-warn-inside"] is None
    assert warned["cu-warned-already"] == iso(retention.years_before(NOW, 3) + 30 * DAY)
    assert report["warnings"] == "report"
    # Orders: 10 years for the record; a guest's name and e-mail 3 years.
    assert rules["orders_deleted"]["ids"] == ["o-ten-past"]
    assert ids(db, "orders") == {"o-ten-inside", "o-guest-past", "o-guest-inside"}
    assert {r["order_id"] for r in hdb.rows(db, "SELECT order_id FROM order_lines")} == ids(
        db, "orders"
    )
    people = {
        r["id"]: (r["customer_name"], r["customer_email"])
        for r in hdb.rows(db, "SELECT id, customer_name, customer_email FROM orders")
    }
    assert people["o-guest-past"] == ("", "")
    assert people["o-guest-inside"] == ("Jean Client", "jean@example.net")
    # The ten-year-old order of a kept customer is gone; the younger one still theirs.
    assert people["o-ten-inside"] == ("Jean Client", "jean@example.net")
    assert ids(db, "customer_login_codes") == {"lc-inside"}
    assert ids(db, "customer_sessions") == {"se-revoked-inside", "se-idle-inside"}
    journal = hdb.rows(db, "SELECT action, detail FROM hq_audit ORDER BY id")
    assert [r["action"] for r in journal] == ["audit.inside", "retention.applied"]
    assert json.loads(journal[1]["detail"])["customers_deleted"] == 1  # counts, no ids
    assert "cu-" not in journal[1]["detail"]
    assert rules["deliveries_deleted"]["ids"] == ["d-ten-past"]
    assert rules["deliveries_anonymised"]["ids"] == ["d-three-past"]
    deliveries = {
        r["id"]: r["customer_email"]
        for r in hdb.rows(db, "SELECT id, customer_email FROM delivery_orders")
    }
    assert deliveries == {"d-three-past": "", "d-three-inside": "jean@example.net"}
    assert rules["login_codes_deleted"]["count"] == 1
    assert rules["sessions_deleted"]["count"] == 2
    assert rules["audit_deleted"]["count"] == 1
    # A second pass the same day finds nothing more to do.
    again = retention.run(db, ring=ring)["rules"]
    assert all(found["count"] == 0 for found in again.values()), again


def test_the_dry_run_changes_nothing_and_reports_what_the_run_does(db, ring):
    build_boundaries(db, ring)
    before = dump(db)
    dry = retention.run(db, ring=ring, dry_run=True)
    assert dump(db) == before
    done = retention.run(db, ring=ring)
    assert dry["rules"] == done["rules"] and dry["dry_run"] and not done["dry_run"]
    assert dump(db) != before
    text = json.dumps(dry)
    assert "@" not in text and "Jean" not in text  # ids and counts only


def test_an_erased_customer_leaves_no_personal_data_in_any_hub_table(db, ring):
    gone = retention.years_before(NOW, 3) - DAY
    customer(db, ring, "cu-gone", gone, email=EMAIL, first=FIRST, last=LAST, warned=WARNED)
    order(db, "o-theirs", gone, name=f"{FIRST} {LAST}", email=EMAIL, customer_id="cu-gone")
    # A guest order with the same address, before the account's last contact.
    order(db, "o-guest", gone - 5 * DAY, name=f"{FIRST} {LAST}", email=EMAIL.lower())
    for oid in ("o-theirs", "o-guest"):
        publish(db, oid)
        hdb.insert(
            db,
            "notifications",
            {
                "order_id": oid,
                "customer_email": EMAIL,
                "kind": "ready",
                "subject": f"Bonjour {FIRST}",
                "body": f"{FIRST} {LAST}, votre commande est prête.",
                "created_at": iso(gone),
            },
        )
    hdb.insert(
        db,
        "notifications",
        {
            "order_id": None,
            "customer_email": EMAIL,
            "kind": "retention_warning",
            "subject": "Votre compte sera supprimé",
            "body": f"Bonjour {FIRST},",
            "created_at": iso(NOW - 2 * DAY),
            "sent_at": iso(NOW - 2 * DAY + SECOND),
        },
    )
    hdb.insert(
        db,
        "handovers",
        {
            "handover_id": "h-1",
            "order_id": "o-theirs",
            "lines": "[]",
            "collector": "proxy",
            "collector_name": f"{FIRST} {LAST}",
            "method": "code",
            "staff": "sf-1",
            "at": iso(gone),
        },
    )
    delivery(db, "d-1", gone - 2 * DAY, name=f"{FIRST} {LAST}", email=EMAIL)
    for table, row in (
        ("customer_sessions", {"id": "se-1", "created_at": iso(gone), "last_seen_at": iso(NOW)}),
        ("customer_cards", {"card_id": "ca-1", "created_at": iso(gone)}),
    ):
        hdb.insert(db, table, {**row, "customer_id": "cu-gone"})
    hdb.insert(
        db,
        "customer_login_codes",
        {
            "id": "lc-1",
            "email_idx": ring.blind_index(EMAIL, "customers.email"),
            "code_hash": "h",
            "created_at": iso(NOW),
            "expires_at": iso(NOW + DAY),
        },
    )
    hdb.insert(
        db,
        "changes",
        {
            "kind": "customer_card",
            "key": "ca-1",
            "data": json.dumps({"card_id": "ca-1", "first_name": FIRST}, ensure_ascii=False),
            "created_at": iso(gone),
        },
    )
    report = retention.run(db, ring=ring)
    assert report["rules"]["customers_deleted"]["ids"] == ["cu-gone"]
    assert set(report["rules"]["orders_anonymised"]["ids"]) == {"o-theirs", "o-guest"}
    # The name as typed, and as JSON writes it escaped ("Z\u00e9phyrine").
    needles = [EMAIL.lower(), FIRST.lower(), json.dumps(FIRST)[1:-1].lower(), LAST.lower()]
    needles.append("cu-gone")
    found = []
    for table, columns in hdb.table_columns(db).items():
        for row in hdb.rows(db, f"SELECT * FROM {table}"):  # noqa: S608
            # The stores are told to forget: ids only (the id names nobody at the hub now).
            erased = table == "changes" and row["kind"] == "customer_erased"
            for column in columns:
                value = row[column]
                look = needles[:-1] if erased else needles
                if isinstance(value, str) and any(n in value.lower() for n in look):
                    found.append((table, column, value[:80]))
    assert found == []
    [told] = hdb.rows(db, "SELECT key, data FROM changes WHERE kind = 'customer_erased'")
    assert told["key"] == "cu-gone"
    assert set(json.loads(told["data"])) == {"customer_id", "card_ids", "order_ids"}
    for table in ("customer_sessions", "customer_cards", "customer_login_codes"):
        assert hdb.scalar(db, f"SELECT count(*) FROM {table}") == 0  # noqa: S608
    # The accounting record stays: amounts, lines, dates; the stores get the new version.
    kept = hdb.one(db, "SELECT * FROM orders WHERE id = 'o-theirs'")
    assert kept["customer_id"] is None and kept["placed_at"] == iso(gone)
    line = hdb.one(db, "SELECT qty, price_cents FROM order_lines WHERE order_id = 'o-theirs'")
    assert (line["qty"], line["price_cents"]) == (2, 1999)
    assert hdb.one(db, "SELECT total_cents FROM delivery_orders")["total_cents"] == 4200
    change = hdb.one(db, "SELECT data FROM changes WHERE key = 'o-theirs'")
    assert json.loads(change["data"])["customer_name"] == ""


def test_a_guest_order_with_the_same_address_is_a_contact(db, ring):
    """Past 3 years by the account, but the person ordered as a guest (not signed in) a
    year ago: that was a contact, the account stays and its clock moves to it."""
    customer(
        db, ring, "cu-back", retention.years_before(NOW, 4), email=EMAIL, first=FIRST, warned=WARNED
    )
    order(db, "o-lately", NOW - 365 * DAY, name=FIRST, email=EMAIL.upper())
    customer(db, ring, "cu-gone", retention.years_before(NOW, 4), warned=WARNED)
    dry = retention.run(db, ring=ring, dry_run=True)["rules"]
    assert dry["customers_contact_found"]["ids"] == ["cu-back"]
    assert dry["customers_deleted"]["ids"] == ["cu-gone"]
    assert hdb.scalar(db, "SELECT last_contact_at FROM customers WHERE id = 'cu-back'") == iso(
        retention.years_before(NOW, 4)
    )
    rules = retention.run(db, ring=ring)["rules"]
    assert rules == dry
    assert ids(db, "customers") == {"cu-back"}
    assert hdb.scalar(db, "SELECT last_contact_at FROM customers WHERE id = 'cu-back'") == iso(
        NOW - 365 * DAY
    )
    assert (
        hdb.scalar(db, "SELECT customer_email FROM orders WHERE id = 'o-lately'") == EMAIL.upper()
    )
    # Without the key the address cannot be compared: the report says so.
    customer(db, ring, "cu-sealed", retention.years_before(NOW, 5), warned=WARNED)
    report = retention.run(db, ring=None, dry_run=True)
    assert report["unreadable_emails"] == 1
    assert report["rules"]["customers_deleted"]["ids"] == ["cu-sealed"]


def message(db, kind, created, sent=None, email="someone@example.net"):
    hdb.insert(
        db,
        "notifications",
        {
            "order_id": None,
            "customer_email": email,
            "kind": kind,
            "subject": kind,
            "body": "...",
            "created_at": iso(created),
            "sent_at": iso(sent) if sent else None,
        },
    )


def test_the_warning_is_an_email_for_the_mailer_once_per_contact(db, ring, monkeypatch):
    last = retention.years_before(NOW, 3) + 10 * DAY
    customer(db, ring, "cu-w", last, email=EMAIL, first=FIRST, last=LAST)
    report = retention.run(db, ring=ring, warn=retention_mail.mail_warning(ring))
    assert report["warnings"] == "mailer"
    assert report["rules"]["customers_warned"]["ids"] == ["cu-w"]
    sent = [  # the address and body are sealed at rest (order_people)
        order_people.mail_of(ring, r)
        for r in hdb.rows(db, "SELECT * FROM notifications WHERE kind = 'retention_warning'")
    ]
    assert len(sent) == 1 and sent[0]["order_id"] is None and sent[0]["sent_at"] is None
    assert sent[0]["customer_email"] == EMAIL
    day = (last.replace(year=last.year + 3)).strftime("%d/%m/%Y")
    assert sent[0]["subject"] == f"Votre compte sera supprimé le {day}"
    assert sent[0]["body"].startswith(f"Bonjour {FIRST},\n")
    assert "3\u00a0ans" in sent[0]["body"] and "Your account will be deleted" in sent[0]["body"]
    # Not twice for the same contact; again after a new contact that grows old in turn.
    assert (
        retention.run(db, ring=ring, warn=retention_mail.mail_warning(ring))["rules"][
            "customers_warned"
        ]["count"]
        == 0
    )
    # The customer comes back the next day (an order): the count starts again, and the
    # warning comes again when that contact grows old in turn.
    back = NOW + DAY
    hdb.execute(db, "UPDATE customers SET last_contact_at = ? WHERE id = 'cu-w'", [iso(back)])
    later = retention.years_before(back, -3) - 29 * DAY
    monkeypatch.setenv("KIOSK_FAKE_NOW", iso(later - 2 * DAY))
    assert retention.run(db, ring=ring)["rules"]["customers_warned"]["count"] == 0
    monkeypatch.setenv("KIOSK_FAKE_NOW", iso(later))
    assert retention.run(db, ring=ring)["rules"]["customers_warned"]["ids"] == ["cu-w"]


def test_account_messages_go_a_day_after_their_use(db):
    grace = NOW - DAY
    message(db, "login_code", grace - SECOND)
    message(db, "login_code", grace + SECOND)
    message(db, "retention_warning", grace - 9 * DAY, sent=grace - SECOND)
    message(db, "retention_warning", grace - 9 * DAY, sent=grace + SECOND)
    message(db, "retention_warning", grace - 9 * DAY)  # not sent yet: kept for the mailer
    report = retention.run(db)
    assert report["rules"]["account_messages_deleted"]["count"] == 2
    left = hdb.rows(db, "SELECT kind, created_at, sent_at FROM notifications ORDER BY id")
    assert [(r["kind"], r["created_at"], r["sent_at"]) for r in left] == [
        ("login_code", iso(grace + SECOND), None),
        ("retention_warning", iso(grace - 9 * DAY), iso(grace + SECOND)),
        ("retention_warning", iso(grace - 9 * DAY), None),
    ]


def test_rotation_reencrypts_every_sealed_column_and_old_values_read_meanwhile(db, ring):
    customer(db, ring, "cu-a", NOW, email=EMAIL, first=FIRST, last=LAST)
    customer(db, ring, "cu-b", NOW, first="Anne")
    old = ring.current
    before = hdb.one(db, "SELECT * FROM customers WHERE id = 'cu-a'")
    new = ring.rotate()
    assert new != old and pii.KeyRing.load(ring.path).current == new
    # During the pass: a value not yet rewritten still opens (its key is kept).
    assert ring.decrypt(before["email_enc"], "customers.email") == EMAIL
    report = pii_rotation.rotate(db, ring)
    newest = report["current"]
    assert report["previous"] == new
    assert report["rewritten"]["customers.email_enc"] == 2
    assert report["rewritten"]["customers.first_name_enc"] == 2
    assert report["rewritten"]["customers.last_name_enc"] == 1  # cu-b has none
    assert report["keys_in_use"] == {old: 0, new: 0, newest: 5}
    after = hdb.one(db, "SELECT * FROM customers WHERE id = 'cu-a'")
    for column, sealed_for, value in (
        ("email_enc", "customers.email", EMAIL),
        ("first_name_enc", "customers.first_name", FIRST),
        ("last_name_enc", "customers.last_name", LAST),
    ):
        assert after[column] != before[column] and ring.kid_of(after[column]) == newest
        assert ring.decrypt(after[column], sealed_for) == value
    # The key file on disk opens what the database now holds.
    reloaded = pii.KeyRing.load(ring.path)
    assert reloaded.decrypt(after["email_enc"], "customers.email") == EMAIL
    assert ("customers", "email_enc", "customers.email") in pii.SEALED_COLUMNS


def test_the_commands_report_and_apply(db, ring, target, tmp_path, monkeypatch):  # noqa: F811
    data = tmp_path / "hub"
    if target.startswith("postgresql"):
        monkeypatch.setenv("KIOSK_HUB_DATABASE", target)
    else:
        monkeypatch.delenv("KIOSK_HUB_DATABASE", raising=False)
        data = tmp_path
        (tmp_path / "secrets").mkdir(mode=0o700)
        ring.path.replace(tmp_path / "secrets" / "pii-keys.json")
        ring.path = tmp_path / "secrets" / "pii-keys.json"
    build_boundaries(db, ring)
    runner = CliRunner()
    dry = runner.invoke(main, ["hub", "retention", "--data", str(data), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["rules"]["customers_deleted"]["ids"] == ["cu-del-warned"]
    assert "cu-del-warned" in ids(db, "customers")
    done = runner.invoke(main, ["hub", "retention", "--data", str(data)])
    assert done.exit_code == 0, done.output
    assert "customers_deleted: 1 (done): cu-del-warned" in done.output
    assert "cu-del-warned" not in ids(db, "customers")
    warned = [  # the addresses are sealed at rest (order_people)
        order_people.mail_of(ring, r)
        for r in hdb.rows(db, "SELECT * FROM notifications WHERE kind = 'retention_warning'")
    ]
    assert sorted(r["customer_email"] for r in warned) == [
        "cu-del-inside@example.net",
        "cu-del-past@example.net",
        "cu-warn-past@example.net",
    ]
    rotated = runner.invoke(main, ["hub", "pii", "rotate", "--data", str(data), "--json"])
    assert rotated.exit_code == 0, rotated.output
    current = json.loads(rotated.output)["current"]

    def kids():
        return {
            r["email_enc"].split(".")[1] for r in hdb.rows(db, "SELECT email_enc FROM customers")
        }

    assert kids() == {current}
    # On a live hub: the key first (then restart the hub), the values after.
    added = runner.invoke(main, ["hub", "pii", "rotate", "--data", str(data), "--no-reencrypt"])
    assert added.exit_code == 0, added.output
    newest = pii.KeyRing.load(ring.path).current
    assert newest != current and kids() == {current}
    assert f"key {newest}: 0 value(s)" in added.output
    done = runner.invoke(main, ["hub", "pii", "reencrypt", "--data", str(data)])
    assert done.exit_code == 0, done.output
    assert (
        kids() == {newest} and f"key {current}: 0 value(s)  (unused: may be removed)" in done.output
    )
