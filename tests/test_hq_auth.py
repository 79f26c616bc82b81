"""Head-office users and tokens: hashing, lockouts, roles, CSRF, audit, the JSON API."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests

from app.core import clock
from app.hub import database as hdb
from app.hub.domain import hq_audit, hq_users
from app.hub.storage import db_path

from .hq_helpers import csrf_token, logged_in, login, make_token, make_user
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import _copy_hub, drop_hub_copy, hub_env, open_hub_db, run_hub

pytestmark = pytest.mark.clock  # lockouts and session ages


def _audit(data, action: str) -> list[dict]:
    db = open_hub_db(data)
    try:
        return [e for e in hq_audit.recent_audit(db, 1000) if e["action"] == action]
    finally:
        db.close()


# --- Domain ----------------------------------------------------------------------------


def test_passwords_are_stored_hashed_and_users_validated(hub_data):
    db = open_hub_db(hub_data)
    user = hq_users.add_user(db, "  Lea@Siege.test ", "Léa", "marketing", "a-long-password")
    assert user["email"] == "lea@siege.test" and "password_hash" not in user
    stored = db.execute("SELECT password_hash FROM hq_users WHERE id = ?", [user["id"]]).fetchone()
    assert stored[0].startswith("scrypt$") and "a-long-password" not in stored[0]
    assert user["id"].startswith("hu-") and len(user["id"]) == 15
    for args, code in [
        (("lea@siege.test", "Autre", "admin", "another-password"), "exists"),
        (("not-an-email", "X", "admin", "another-password"), "email"),
        (("x@siege.test", "X", "boss", "another-password"), "role"),
        (("x@siege.test", "X", "admin", "short"), "password"),
        (("x@siege.test", " ", "admin", "another-password"), "name"),
    ]:
        with pytest.raises(hq_users.HqError) as refused:
            hq_users.add_user(db, *args)
        assert refused.value.code == code
    db.close()


def test_five_wrong_passwords_lock_and_each_lockout_grows(hub_data):
    db = open_hub_db(hub_data)
    hq_users.add_user(db, "ops@siege.test", "Ops", "operations", "right-password")
    t0 = clock.utcnow()
    for i in range(hq_users.MAX_ATTEMPTS):
        assert hq_users.authenticate(db, "ops@siege.test", f"wrong-{i}", now=t0) is None
    # Locked: even the right password is refused, with the same answer as a wrong one.
    assert hq_users.authenticate(db, "ops@siege.test", "right-password", now=t0) is None
    t1 = t0 + timedelta(seconds=hq_users.FIRST_LOCKOUT_S + 1)
    assert hq_users.authenticate(db, "OPS@siege.test", "right-password", now=t1)["role"] == (
        "operations"
    )
    # A right password clears the lockouts: the next one is the first again.
    for i in range(hq_users.MAX_ATTEMPTS):
        hq_users.authenticate(db, "ops@siege.test", f"wrong-{i}", now=t1)
    row = db.execute(
        "SELECT lockouts, locked_until FROM hq_users WHERE email = 'ops@siege.test'"
    ).fetchone()
    assert row[0] == 1
    # Without a success in between, the second lockout lasts twice as long.
    t2 = clock.parse_iso(row[1]) + timedelta(seconds=1)
    for i in range(hq_users.MAX_ATTEMPTS):
        hq_users.authenticate(db, "ops@siege.test", f"again-{i}", now=t2)
    lockouts, until = db.execute(
        "SELECT lockouts, locked_until FROM hq_users WHERE email = 'ops@siege.test'"
    ).fetchone()
    assert lockouts == 2
    assert (clock.parse_iso(until) - t2).total_seconds() == pytest.approx(
        2 * hq_users.FIRST_LOCKOUT_S, abs=1
    )
    actions = [e["action"] for e in hq_audit.recent_audit(db, 100)]
    assert actions.count("login.locked") == 3 and "login.refused_locked" in actions
    db.close()


def test_guesses_at_the_same_time_are_all_counted_and_do_not_hold_the_write_lock(hub_data):
    import threading

    db = open_hub_db(hub_data)
    hq_users.add_user(db, "ops@siege.test", "Ops", "operations", "right-password")
    db.close()
    barrier = threading.Barrier(4)

    def guess(i: int) -> None:
        conn = open_hub_db(hub_data)
        barrier.wait()
        hq_users.authenticate(conn, "ops@siege.test", f"wrong-{i}")
        conn.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    db = open_hub_db(hub_data)
    assert db.execute(
        "SELECT failed_attempts FROM hq_users WHERE email = 'ops@siege.test'"
    ).fetchone() == (4,)
    # The password is hashed outside the write transaction: a store's signed request
    # (it writes a nonce) is not kept waiting behind a login attempt.
    import app.hub.domain.hq_users as module

    seen = []
    real = module.verify_secret

    def spy(password: str, stored: str) -> bool:
        seen.append(db.in_transaction if hdb.is_pg(db) else db.conn.in_transaction)
        return real(password, stored)

    module.verify_secret = spy
    try:
        hq_users.authenticate(db, "ops@siege.test", "right-password")
    finally:
        module.verify_secret = real
    assert seen == [False]
    db.close()


def test_unknown_and_disabled_accounts_look_like_a_wrong_password(hub_data):
    db = open_hub_db(hub_data)
    user = hq_users.add_user(db, "gone@siege.test", "Gone", "admin", "right-password")
    hq_users.set_disabled(db, user["id"], True)
    assert hq_users.authenticate(db, "gone@siege.test", "right-password") is None
    assert hq_users.authenticate(db, "nobody@siege.test", "right-password") is None
    actions = [e["action"] for e in hq_audit.recent_audit(db, 10)]
    assert actions[:2] == ["login.failed", "login.refused_disabled"]
    db.close()


def test_tokens_are_kept_as_hashes_and_can_be_revoked(hub_data):
    db = open_hub_db(hub_data)
    token = hq_users.create_token(db, "BI export", "operations")
    assert token.startswith("hqt_") and len(token) > 40
    found = hq_users.check_token(db, token)
    assert found["role"] == "operations" and found["name"] == "BI export"
    assert hq_users.check_token(db, token + "x") is None
    assert hq_users.check_token(db, "hqt_" + "A" * 43) is None
    # Nowhere in the database in clear: in no row of any table, and on SQLite not even in
    # the file's bytes (free pages included).
    for table in hdb.table_columns(db):
        for row in db.execute(f"SELECT * FROM {table}").fetchall():  # noqa: S608
            assert token not in repr(tuple(row)), table
    if not hdb.is_pg(db):
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert token.encode() not in db_path(hub_data).read_bytes()
    assert hq_users.revoke_token(db, found["id"])
    assert hq_users.check_token(db, token) is None
    db.close()


# --- Console over HTTP -------------------------------------------------------------------


def test_console_pages_need_a_login_and_the_right_role(module_hub):
    base = module_hub.url
    anonymous = requests.get(f"{base}/hq/flotte", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].endswith("/hq/login?next=/hq/flotte")
    # An htmx poll of an expired session is told to load the login page.
    polled = requests.get(
        f"{base}/hq/flotte/etat", headers={"HX-Request": "true"}, allow_redirects=False, timeout=10
    )
    assert polled.status_code == 401 and polled.headers["HX-Redirect"].startswith("/hq/login")
    pages = ("/hq/flotte", "/hq/utilisateurs", "/hq/journal")
    expected = {
        "marketing": {"/hq/flotte": 403, "/hq/utilisateurs": 403, "/hq/journal": 200},
        "operations": {"/hq/flotte": 200, "/hq/utilisateurs": 403, "/hq/journal": 200},
        "admin": {"/hq/flotte": 200, "/hq/utilisateurs": 200, "/hq/journal": 200},
    }
    for role, codes in expected.items():
        session = logged_in(base, make_user(module_hub.data, role))
        for path in pages:
            answer = session.get(base + path, allow_redirects=False, timeout=10)
            assert answer.status_code == codes[path], (role, path)
            if answer.status_code == 403:
                assert "Accès refusé" in answer.text
            csp = answer.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    # An absurd page number in the journal is a page, not a server error.
    admin = logged_in(base, make_user(module_hub.data, "admin"))
    for value in ("99999999999999999999999", "-5", "abc"):
        assert admin.get(f"{base}/hq/journal?avant={value}", timeout=10).status_code == 200


def test_login_form_refuses_a_post_without_csrf_token(module_hub):
    user = make_user(module_hub.data, "operations")
    session = requests.Session()
    answer = session.post(
        f"{module_hub.url}/hq/login",
        data={"email": user["email"], "password": user["password"]},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 400 and "Formulaire expiré" in answer.text
    assert session.get(f"{module_hub.url}/hq/flotte", allow_redirects=False).status_code == 302
    # A token from another session does not do either.
    other = requests.Session()
    token = csrf_token(other, f"{module_hub.url}/hq/login")
    answer = session.post(
        f"{module_hub.url}/hq/login",
        data={"email": user["email"], "password": user["password"], "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 400


def test_every_console_blueprint_has_the_console_error_pages(hub_data):
    """Each /hq module has its own blueprint: a form without its token and a body past
    the upload limit get the console's pages on every one of them, and the head-office
    API's modules answer a too-large body in JSON, without asking for a CSRF token."""
    from app.hub.app import create_hub_app

    client = create_hub_app({"DATA_DIR": str(hub_data)}).test_client()
    big = b"x" * (12 * 1024 * 1024)
    for path in ("/hq/logout", "/hq/flotte/s-1/bloquees/t-1", "/hq/promotions/nouvelle"):
        answer = client.post(path, data={"action": "retry"})
        assert answer.status_code == 400 and "Formulaire expiré" in answer.text, path
        answer = client.post(path, data=big, content_type="application/octet-stream")
        assert answer.status_code == 413 and answer.mimetype == "text/html", path
    for method, path in (("GET", "/api/v1/hq/stores"), ("POST", "/api/v1/hq/promotions")):
        answer = client.open(path, method=method, data=big, content_type="application/json")
        assert answer.status_code == 413 and answer.get_json()["error"] == "too_large", path
    answer = client.post("/api/v1/hq/promotions", json={})
    assert answer.status_code == 401  # a token is asked for, not a CSRF token


def test_failed_logins_do_not_tell_which_emails_exist_and_lock_over_http(module_hub):
    base = module_hub.url
    user = make_user(module_hub.data, "marketing")
    _, known = login(base, user["email"], "wrong-password-1")
    _, unknown = login(base, "no-such-user@siege.test", "wrong-password-1")
    assert known.status_code == unknown.status_code == 401

    def strip(html: str) -> str:
        html = html.replace(user["email"], "E").replace("no-such-user@siege.test", "E")
        return csrf_token_free(html)

    assert strip(known.text) == strip(unknown.text)
    for i in range(hq_users.MAX_ATTEMPTS - 1):
        login(base, user["email"], f"wrong-password-{i + 2}")
    # Locked now: the right password is refused the same way.
    _, locked = login(base, user["email"], user["password"])
    assert locked.status_code == 401 and strip(locked.text) == strip(unknown.text)
    entries = [e for e in _audit(module_hub.data, "login.locked") if e["actor_id"] == user["id"]]
    assert len(entries) == 1 and entries[0]["ip"] == "127.0.0.1"


def csrf_token_free(html: str) -> str:
    """The page without its (per-session) CSRF tokens."""
    import re

    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


def test_admin_adds_and_disables_users_and_every_step_is_audited(module_hub):
    base = module_hub.url
    admin = make_user(module_hub.data, "admin")
    session = logged_in(base, admin)
    token = csrf_token(session, f"{base}/hq/utilisateurs")
    form = {
        "name": "Paul Durand",
        "email": "paul.durand@siege.test",
        "role": "operations",
        "password": "paul-password-1",
        "csrf_token": token,
    }
    added = session.post(f"{base}/hq/utilisateurs", data=form, timeout=10)
    assert added.status_code == 200 and "paul.durand@siege.test ajouté" in added.text
    again = session.post(f"{base}/hq/utilisateurs", data=form, timeout=10)
    assert again.status_code == 422 and "déjà cette adresse" in again.text
    paul = logged_in(base, {"email": "paul.durand@siege.test", "password": "paul-password-1"})
    assert paul.get(f"{base}/hq/flotte", allow_redirects=False).status_code == 200
    db = open_hub_db(module_hub.data)
    paul_id = db.execute(
        "SELECT id FROM hq_users WHERE email = 'paul.durand@siege.test'"
    ).fetchone()
    db.close()
    disabled = session.post(
        f"{base}/hq/utilisateurs/{paul_id[0]}/desactiver", data={"csrf_token": token}, timeout=10
    )
    assert disabled.status_code == 200 and "Utilisateur désactivé" in disabled.text
    # Paul's open session ends with his account.
    assert paul.get(f"{base}/hq/flotte", allow_redirects=False).status_code == 302
    _, refused = login(base, "paul.durand@siege.test", "paul-password-1")
    assert refused.status_code == 401
    added_rows = [e for e in _audit(module_hub.data, "user.added") if e["actor_id"] == admin["id"]]
    assert added_rows and added_rows[0]["detail"]["email"] == "paul.durand@siege.test"
    assert added_rows[0]["ip"] == "127.0.0.1" and added_rows[0]["actor_label"] == admin["email"]
    assert any(e["actor_id"] == admin["id"] for e in _audit(module_hub.data, "user.disabled"))
    journal = session.get(f"{base}/hq/journal", timeout=10)
    assert "user.disabled" in journal.text and "login.refused_disabled" in journal.text


def test_logout_is_a_post_and_ends_the_session(module_hub):
    base = module_hub.url
    session = logged_in(base, make_user(module_hub.data, "operations"))
    assert session.get(f"{base}/hq/logout", allow_redirects=False).status_code == 405
    token = csrf_token(session, f"{base}/hq/flotte")
    out = session.post(f"{base}/hq/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status_code == 302 and out.headers["Location"].endswith("/hq/login")
    assert session.get(f"{base}/hq/flotte", allow_redirects=False).status_code == 302


def test_login_redirects_only_inside_the_console(module_hub):
    base = module_hub.url
    user = make_user(module_hub.data, "operations")
    session = requests.Session()
    token = csrf_token(session, f"{base}/hq/login")
    for target, expected in [("/hq/journal", "/hq/journal"), ("https://evil.test/", "/hq/")]:
        answer = session.post(
            f"{base}/hq/login",
            data={
                "email": user["email"],
                "password": user["password"],
                "csrf_token": token,
                "next": target,
            },
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302 and answer.headers["Location"] == expected
        token = csrf_token(session, f"{base}/hq/login")


# --- JSON API ----------------------------------------------------------------------------


def test_api_wants_a_bearer_token_with_the_right_role(module_hub):
    url = f"{module_hub.url}/api/v1/hq/stores"
    for headers in ({}, {"Authorization": "Bearer hqt_nope"}, {"Authorization": "Basic x"}):
        answer = requests.get(url, headers=headers, timeout=10)
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
    marketing = make_token(module_hub.data, "marketing")
    answer = requests.get(url, headers={"Authorization": f"Bearer {marketing}"}, timeout=10)
    assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
    for role in ("operations", "admin"):
        token = make_token(module_hub.data, role)
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200
        names = {s["name"] for s in answer.json()["stores"]}
        assert len(names) == 3 and all(s["status"] for s in answer.json()["stores"])
    # No CSRF token is asked of the API (bearer tokens are not sent by browsers by
    # themselves): a POST to an unknown API path is a 404/405, never a CSRF 400.
    post = requests.post(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert post.status_code == 405


def test_cli_creates_users_and_tokens_that_work(module_hub):
    data = str(module_hub.data)
    made = run_hub(
        "hq-user",
        "add",
        "--data",
        data,
        "--email",
        "cli@siege.test",
        "--name",
        "Cli",
        "--role",
        "admin",
        "--password",
        "cli-password-1",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["role"] == "admin"
    logged_in(module_hub.url, {"email": "cli@siege.test", "password": "cli-password-1"})
    short = run_hub(
        "hq-user",
        "add",
        "--data",
        data,
        "--email",
        "x@siege.test",
        "--name",
        "X",
        "--role",
        "admin",
        "--password",
        "short",
    )
    assert short.returncode != 0 and "password" in short.stderr
    created = run_hub(
        "hq-token", "create", "--data", data, "--name", "BI", "--role", "operations", "--json"
    )
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    answer = requests.get(
        f"{module_hub.url}/api/v1/hq/stores", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200
    cli_rows = [e for e in _audit(module_hub.data, "token.created") if e["ip"] == "cli"]
    assert cli_rows and cli_rows[0]["detail"] == {"name": "BI", "role": "operations"}


def test_demo_makes_one_user_per_role_and_a_token_once(
    hub_template, tmp_path, monkeypatch, request
):
    from app.demo import datadir as demo

    _copy_hub(hub_template, demo.hub_dir(tmp_path))
    request.addfinalizer(lambda: drop_hub_copy(demo.hub_dir(tmp_path)))
    for name, value in hub_env(demo.hub_dir(tmp_path)).items():
        monkeypatch.setenv(name, value)  # the demo opens the hub's database as the app does
    first = demo.ensure_demo_hq(tmp_path)
    again = demo.ensure_demo_hq(tmp_path)
    assert first == again and first["api_token"].startswith("hqt_")
    assert (tmp_path / "demo-hq.json").stat().st_mode & 0o777 == 0o600
    db = open_hub_db(demo.hub_dir(tmp_path))
    try:
        assert sorted(r[0] for r in db.execute("SELECT role FROM hq_users")) == [
            "admin",
            "marketing",
            "operations",
        ]
        for user in demo.DEMO_HQ_USERS:
            assert (
                hq_users.authenticate(db, user["email"], user["password"])["role"] == user["role"]
            )
        assert hq_users.check_token(db, first["api_token"])["role"] == "admin"
    finally:
        db.close()
