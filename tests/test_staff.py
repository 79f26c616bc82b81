"""Staff access: PINs stored hashed, lockouts that grow, sessions that end, an audit log."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import requests

from app.core import clock
from app.store.domain import staff
from app.store.domain.staff import StaffError

from .conftest import STAFF_PIN, add_staff_member, run_kiosk

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_pin_is_stored_hashed_and_verifies(store_db, store_data):
    member = add_staff_member(store_data)
    stored = store_db.execute("SELECT pin_hash FROM staff WHERE id = ?", [member["id"]]).fetchone()
    assert STAFF_PIN not in stored[0] and stored[0].startswith("scrypt$")
    assert staff.verify_secret(STAFF_PIN, stored[0])
    assert not staff.verify_secret("000000", stored[0])
    # Same PIN, different salt: two members never share a hash.
    other = add_staff_member(store_data, name="Other")
    hashes = {r[0] for r in store_db.execute("SELECT pin_hash FROM staff")}
    assert len(hashes) == 2 and other["id"] != member["id"]


@pytest.mark.parametrize("pin", ["12345", "1234567", "12a456", "", "١٢٣٤٥٦", "12 456"])
def test_pin_of_the_wrong_shape_is_refused_without_counting(store_db, store_data, pin):
    member = add_staff_member(store_data)
    with pytest.raises(StaffError) as err:
        staff.login(store_db, member["id"], pin)
    assert err.value.code == "pin_format"
    failed = store_db.execute("SELECT failed_attempts FROM staff").fetchone()[0]
    assert failed == 0


def test_five_wrong_pins_lock_for_a_growing_delay(store_db, store_data, fake_clock):
    member = add_staff_member(store_data)
    start = fake_clock.now
    for left in (4, 3, 2, 1):
        with pytest.raises(StaffError) as err:
            staff.login(store_db, member["id"], "000000")
        assert err.value.code == "wrong_pin" and err.value.extra["attempts_left"] == left
    with pytest.raises(StaffError) as err:
        staff.login(store_db, member["id"], "000000")
    assert err.value.code == "locked" and err.value.extra["retry_in_s"] == 30
    # Locked: even the right PIN is refused.
    with pytest.raises(StaffError) as err:
        staff.login(store_db, member["id"], STAFF_PIN)
    assert err.value.code == "locked"
    # After the delay, five more wrong PINs lock for twice as long.
    fake_clock.set(start + timedelta(seconds=31))
    for _ in range(5):
        with pytest.raises(StaffError):
            staff.login(store_db, member["id"], "000000")
    row = store_db.execute("SELECT locked_until, lockouts FROM staff").fetchone()
    assert row == (clock.iso(start + timedelta(seconds=91)), 2)
    # The right PIN after the lock resets everything.
    fake_clock.set(start + timedelta(seconds=92))
    assert staff.login(store_db, member["id"], STAFF_PIN)["id"] == member["id"]
    assert store_db.execute("SELECT failed_attempts, lockouts FROM staff").fetchone() == (0, 0)
    actions = [r[0] for r in store_db.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions.count("login.locked") == 2 and actions[-1] == "login"


def test_brute_force_over_http_is_stopped(store_server, store_data):
    member = add_staff_member(store_data)
    s = requests.Session()
    token = CSRF.search(s.get(store_server.url + "/staff/login", timeout=5).text).group(1)
    statuses = []
    for guess in range(8):
        r = s.post(
            store_server.url + "/staff/login",
            data={"staff_id": member["id"], "pin": f"{guess:06d}", "csrf_token": token},
            timeout=10,
        )
        statuses.append(r.status_code)
    assert statuses[:4] == [400] * 4 and statuses[4:] == [429] * 4
    r = s.post(
        store_server.url + "/staff/login",
        data={"staff_id": member["id"], "pin": STAFF_PIN, "csrf_token": token},
        timeout=10,
        allow_redirects=False,
    )
    assert r.status_code == 429 and "verrouillé" in r.text
    assert "/staff/login" in s.get(store_server.url + "/staff/status", timeout=5).url


def test_login_needs_csrf_and_a_right_pin(client, app, store_data):
    member = add_staff_member(store_data)
    app.config["WTF_CSRF_ENABLED"] = True
    r = client.post("/staff/login", data={"staff_id": member["id"], "pin": STAFF_PIN})
    assert r.status_code == 400
    token = CSRF.search(client.get("/staff/login").get_data(as_text=True)).group(1)
    r = client.post(
        "/staff/login", data={"staff_id": member["id"], "pin": "12", "csrf_token": token}
    )
    assert r.status_code == 400 and "exactement 6 chiffres" in r.get_data(as_text=True)
    r = client.post(
        "/staff/login", data={"staff_id": member["id"], "pin": STAFF_PIN, "csrf_token": token}
    )
    assert r.status_code == 302 and r.headers["Location"] == "/staff/orders"  # the landing
    page = client.get("/staff/status").get_data(as_text=True)
    assert member["name"] in page and "Se déconnecter" in page


def test_staff_session_ends_after_inactivity(store_data, fake_clock):
    from app.store.app import create_app

    from .conftest import staff_login

    app = create_app({"DATA_DIR": str(store_data), "TESTING": True, "STAFF_IDLE_SECONDS": 60})
    client = app.test_client()
    staff_login(client, store_data)
    fake_clock.advance(59)
    assert client.get("/staff/status").status_code == 200
    fake_clock.advance(61)
    r = client.get("/staff/status")
    assert r.status_code == 302 and "expired=1" in r.headers["Location"]


def test_self_refreshing_screens_say_so_and_do_not_keep_a_session_alive(store_data, fake_clock):
    from app.store.app import create_app

    from .conftest import staff_login

    app = create_app({"DATA_DIR": str(store_data), "TESTING": True})
    client = app.test_client()
    staff_login(client, store_data)
    page = client.get("/staff/status").get_data(as_text=True)
    # The status panel polls itself with the header that marks it as not a person.
    panel = re.search(r'<section id="sync-status"[^>]*>', page).group(0)
    assert """hx-headers='{"X-Staff-Poll": "1"}'""" in panel
    idle = app.config["STAFF_IDLE_SECONDS"]
    poll = {"HX-Request": "true", "X-Staff-Poll": "1"}
    fake_clock.advance(idle / 2)
    assert "HX-Redirect" not in client.get("/staff/status", headers=poll).headers
    fake_clock.advance(idle / 2 + 1)  # only polls since the login: the session has ended
    assert (
        client.get("/staff/status", headers=poll).headers["HX-Redirect"].startswith("/staff/login")
    )


def test_login_and_logout_are_audited_with_the_device(client, store_db, store_data):
    from .conftest import staff_login

    member = staff_login(client, store_data)
    token = CSRF.search(client.get("/staff/status").get_data(as_text=True)).group(1)
    client.post("/staff/logout", data={"csrf_token": token})
    rows = store_db.execute(
        "SELECT action, staff_id, device FROM audit_log WHERE staff_id = ? ORDER BY id",
        [member["id"]],
    ).fetchall()
    assert [r[0] for r in rows] == ["login", "logout"]
    assert all(r[2] for r in rows)  # which device
    assert client.get("/staff/status").status_code == 302


def test_cli_staff_add_and_list(store_data):
    done = run_kiosk(
        "staff",
        "add",
        "--data",
        str(store_data),
        "--name",
        "Nadia",
        "--role",
        "manager",
        "--pin",
        "135790",
    )
    assert done.returncode == 0, done.stderr
    listed = run_kiosk("staff", "list", "--data", str(store_data))
    assert "manager" in listed.stdout and "Nadia" in listed.stdout
    bad = run_kiosk("staff", "add", "--data", str(store_data), "--name", "X", "--pin", "12")
    assert bad.returncode == 1 and "6 digits" in bad.stderr
    dup = run_kiosk("staff", "add", "--data", str(store_data), "--name", "Nadia", "--pin", "135790")
    assert dup.returncode == 1 and "already" in dup.stderr


def test_cli_staff_add_prompts_for_the_pin_twice(store_data):
    import subprocess
    import sys

    from .conftest import ROOT

    done = subprocess.run(
        [sys.executable, "-m", "app", "staff", "add", "--data", str(store_data), "--name", "Lou"],
        input="246810\n246810\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    audit = json.loads(
        __import__("sqlite3")
        .connect(store_data / "kiosk.db")
        .execute("SELECT details FROM audit_log WHERE action = 'staff.added'")
        .fetchone()[0]
    )
    assert audit["role"] == "staff"
