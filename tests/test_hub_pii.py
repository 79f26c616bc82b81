"""Personal data encrypted at rest at the hub: app/hub/domain/pii.py."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from app.hub.domain import pii


@pytest.fixture
def ring(tmp_path):
    return pii.KeyRing.open(tmp_path / "hub")


def test_the_key_file_is_created_private_outside_the_database(tmp_path):
    ring = pii.KeyRing.open(tmp_path / "hub")
    path = tmp_path / "hub" / "secrets" / "pii-keys.json"
    assert ring.path == path and path.is_file()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    # The same ring comes back, and an environment variable can put it elsewhere.
    assert pii.KeyRing.open(tmp_path / "hub") == ring
    elsewhere = tmp_path / "etc" / "keys.json"
    moved = pii.KeyRing.open(tmp_path / "hub", env={pii.KEYS_ENV: str(elsewhere)})
    assert elsewhere.is_file() and moved != ring


def test_a_value_round_trips_and_shows_nothing_personal(ring):
    token = ring.encrypt("Élodie Martin <elodie@example.fr>", "customers.email")
    assert token.startswith(f"pii1.{ring.current}.")
    assert "elodie" not in token.lower() and "martin" not in token.lower()
    assert ring.decrypt(token, "customers.email") == "Élodie Martin <elodie@example.fr>"
    # Same value twice: different tokens (a random nonce), nothing to compare rows by.
    assert ring.encrypt("a@b.fr", "customers.email") != ring.encrypt("a@b.fr", "customers.email")
    assert ring.encrypt(None, "customers.email") is None
    assert ring.decrypt(None, "customers.email") is None


def test_a_value_moved_to_another_column_or_altered_does_not_open(ring):
    token = ring.encrypt("06 12 34 56 78", "customers.phone")
    with pytest.raises(pii.PiiKeyError, match="moved or altered"):
        ring.decrypt(token, "customers.email")
    body = token.rsplit(".", 1)[1]
    flipped = token[: -len(body)] + ("A" if body[0] != "A" else "B") + body[1:]
    with pytest.raises(pii.PiiKeyError):
        ring.decrypt(flipped, "customers.phone")
    for junk in ("", "plain text", "pii1.kzzz.AAAA", "pii2.x.y"):
        with pytest.raises(pii.PiiKeyError):
            ring.decrypt(junk, "customers.phone")


def test_a_database_dump_holds_no_personal_data(ring, tmp_path):
    db = sqlite3.connect(tmp_path / "hub.db")
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, email_idx TEXT)")
    email = "jean.dupont@example.fr"
    db.execute(
        "INSERT INTO customers (email, email_idx) VALUES (?, ?)",
        [ring.encrypt(email, "customers.email"), ring.blind_index(email, "customers.email")],
    )
    db.commit()
    db.close()
    raw = (tmp_path / "hub.db").read_bytes()
    assert b"dupont" not in raw and b"example.fr" not in raw


def test_the_blind_index_finds_an_address_however_it_is_typed(ring, tmp_path):
    a = ring.blind_index("Jean.Dupont@Example.fr", "customers.email")
    assert a == ring.blind_index("  jean.dupont@example.FR ", "customers.email")
    assert a != ring.blind_index("jean.dupond@example.fr", "customers.email")
    # Another column, another digest; another hub (another index key), another digest.
    assert a != ring.blind_index("jean.dupont@example.fr", "customers.phone")
    other = pii.KeyRing.open(tmp_path / "other-hub")
    assert a != other.blind_index("jean.dupont@example.fr", "customers.email")


def test_rotation_keeps_old_values_readable_and_reencrypts_them(ring):
    old_kid = ring.current
    rows = {i: ring.encrypt(f"client {i}", "customers.name") for i in range(5)}
    rows[5] = None
    index_before = ring.blind_index("x@y.fr", "customers.email")
    new_kid = ring.rotate()
    assert new_kid != old_kid and ring.current == new_kid
    # Saved: a fresh load has both keys, and the blind index did not change.
    again = pii.KeyRing.load(ring.path)
    assert set(again.keys) == {old_kid, new_kid} and again.current == new_kid
    assert again.blind_index("x@y.fr", "customers.email") == index_before
    assert again.decrypt(rows[0], "customers.name") == "client 0"

    def write(key, token):
        rows[key] = token

    assert pii.reencrypt_column(again, "customers.name", list(rows.items()), write) == 5
    assert all(again.kid_of(t) == new_kid for t in rows.values() if t)
    assert [again.decrypt(rows[i], "customers.name") for i in range(5)] == [
        f"client {i}" for i in range(5)
    ]
    assert pii.reencrypt_column(again, "customers.name", list(rows.items()), write) == 0


def test_a_key_file_readable_by_others_or_damaged_is_refused(ring):
    os.chmod(ring.path, 0o644)
    with pytest.raises(pii.PiiKeyError, match="chmod 600"):
        pii.KeyRing.load(ring.path)
    os.chmod(ring.path, 0o600)
    data = json.loads(ring.path.read_text())
    data["current"] = "k-missing"
    ring.path.write_text(json.dumps(data))
    with pytest.raises(pii.PiiKeyError, match="current key"):
        pii.KeyRing.load(ring.path)
    ring.path.write_text("{not json")
    with pytest.raises(pii.PiiKeyError, match="not a personal-data key file"):
        pii.KeyRing.load(ring.path)
    with pytest.raises(pii.PiiKeyError, match="cannot read"):
        pii.KeyRing.load(ring.path.with_name("absent.json"))


def test_a_missing_key_file_is_made_only_for_a_hub_with_nothing_sealed(tmp_path):
    from app.hub import database as hdb
    from app.hub.migrations import migrate
    from app.hub.storage import open_db

    data = tmp_path / "hub"
    db = open_db(data)
    try:
        migrate(db)
        ring = pii.hub_ring(db, data)  # a new hub: the key file is made
        assert ring.path.is_file()
        with hdb.write(db):
            hdb.insert(
                db,
                "customers",
                {
                    "id": "cu-1",
                    "email_enc": ring.encrypt("a@b.fr", "customers.email"),
                    "email_idx": ring.blind_index("a@b.fr", "customers.email"),
                    "created_at": "2026-01-01T00:00:00Z",
                    "last_contact_at": "2026-01-01T00:00:00Z",
                },
            )
        ring.path.rename(tmp_path / "elsewhere.json")  # a restore without it, a wrong path
        with pytest.raises(pii.PiiKeyError, match="restore the file"):
            pii.hub_ring(db, data)
        assert not ring.path.exists()  # no new key was made
        moved = {pii.KEYS_ENV: str(tmp_path / "elsewhere.json")}
        assert (
            pii.hub_ring(db, data, env=moved).decrypt(
                hdb.scalar(db, "SELECT email_enc FROM customers"), "customers.email"
            )
            == "a@b.fr"
        )
    finally:
        db.close()
