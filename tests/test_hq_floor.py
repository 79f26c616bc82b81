"""Ready for the floor (issue 13): head office reads local French dates and has controls
a finger can tap; the phone's order page is the shop's, in one language, pickup QR and
code first; the demo's servers on 127.0.0.1 keep their sessions apart in one browser."""

from __future__ import annotations

import re
import shutil
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.core import db as dbmod
from app.demo import seed as seedmod
from app.hub.domain import keys
from app.hub.domain.orders import create_order

from .axe_helpers import serious_violations as serious_axe_violations
from .conftest import ARTIFACTS, STAFF_PIN, add_staff_member, screenshot
from .hq_helpers import csrf_token, logged_in, make_token, make_user
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import (
    LYON,
    HubClient,
    HubServer,
    _copy_hub,
    drop_hub_copy,
    open_hub_db,
    store_secrets,
)
from .test_french_typography import typography_problems

# A fixed instant and a time zone that is not the machine's nor Paris: what head office
# shows must be this instant read in that zone (14:02 UTC is 10:02 in Martinique).
NOW_ISO = "2026-11-22T14:02:00Z"
ZONE = "America/Martinique"
LOCAL_NOW = "22 nov. 2026, 10:02"
ISO_IN_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}|T\d{2}:\d{2}|\bUTC\b")


class _Text(HTMLParser):
    """The text a person reads on a page (no tags, attributes, scripts or styles;
    ``prose=True``: no code either)."""

    def __init__(self, prose: bool = False) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0
        self._hidden = ("script", "style", "code") if prose else ("script", "style")

    def handle_starttag(self, tag, attrs):
        self._skip += tag in self._hidden

    def handle_endtag(self, tag):
        self._skip -= tag in self._hidden and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def page_text(html: str, prose: bool = False) -> str:
    parser = _Text(prose)
    parser.feed(html)
    # Ordinary white space only: a no-break space is part of what is read.
    return re.sub(r"[ \t\r\n]+", " ", " ".join(parser.parts)).strip()


@pytest.fixture(scope="module")
def hq_hub(hub_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """A hub whose clock stands at NOW_ISO, reading times in ZONE, with a user, a
    token and a promotion made at that instant."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KIOSK_FAKE_NOW", NOW_ISO)  # this process (tokens, signing) and the hub
    data = _copy_hub(hub_template, tmp_path_factory.mktemp("hq-floor") / "hub")
    server = HubServer(data, {"KIOSK_HUB_STORE_TIMEZONE": ZONE}).start()
    try:
        user = make_user(data, "admin")
        make_token(data, "marketing")
        http = logged_in(server.url, user)
        form = {
            "csrf_token": csrf_token(http, f"{server.url}/hq/promotions/nouvelle"),
            "title_fr": "Prix doux",
            "kind": "percent",
            "value": "15",
            "nth": "2",
            "scope": "all",
            "min_qty": "1",
            "priority": "0",
            "starts_local": "2026-11-24T09:00",
            "ends_local": "2026-11-30T20:30",
            "timezone": "Europe/Paris",
            "stores_mode": "all",
        }
        made = http.post(f"{server.url}/hq/promotions/nouvelle", data=form, timeout=30)
        assert made.status_code == 200, made.text[:500]
        promotion_url = made.url
        # An edit, so the history shows a schedule change (old and new wall times).
        form["csrf_token"] = csrf_token(http, promotion_url)
        form["starts_local"] = "2026-11-25T08:15"
        edited = http.post(promotion_url, data=form, timeout=30)
        assert edited.status_code == 200 and "Modifications enregistrées" in edited.text
        yield {"server": server, "user": user, "http": http, "promotion": promotion_url}
    finally:
        server.stop()
        drop_hub_copy(data)
        mp.undo()


# --- Head office: dates -----------------------------------------------------------------


def test_head_office_pages_show_local_french_dates_never_iso(hq_hub):
    server, http = hq_hub["server"], hq_hub["http"]
    pages = {
        "promotions": "/hq/promotions",
        "promotion": hq_hub["promotion"].removeprefix(server.url),
        "audit": "/hq/journal",
        "users": "/hq/utilisateurs",
        "fleet": "/hq/flotte",
    }
    texts = {}
    for name, path in pages.items():
        answer = http.get(server.url + path, timeout=15)
        assert answer.status_code == 200 and "/hq/login" not in answer.url, (name, answer.url)
        texts[name] = text = page_text(answer.text)
        assert not ISO_IN_TEXT.search(text), (name, ISO_IN_TEXT.search(text), text[:2000])
        # French typography: no-break spaces before : ; ? ! and inside « ».
        assert typography_problems(page_text(answer.text, prose=True)) == [], name
    # The promotion's schedule: its own wall times, French, with its zone said plainly.
    assert "25 nov. 2026, 08:15" in texts["promotions"]
    assert "30 nov. 2026, 20:30" in texts["promotions"]
    assert "heure locale (Paris)" in texts["promotions"]
    # When it was made, the login, the token: the instant read in the hub's zone.
    assert LOCAL_NOW in texts["promotions"], texts["promotions"][:2000]
    assert LOCAL_NOW in texts["audit"]
    assert LOCAL_NOW in texts["users"]
    assert LOCAL_NOW in texts["promotion"]  # its history
    # The history's schedule change, old and new, as people read them.
    assert "24 nov. 2026, 09:00" in texts["promotion"]
    assert "25 nov. 2026, 08:15" in texts["promotion"]


def test_local_datetime_filter_reads_iso_text_in_the_configured_zone(tmp_path):
    from app.hub.app import create_hub_app
    from app.web.i18n import format_local_date, format_local_datetime

    app = create_hub_app({"DATA_DIR": str(tmp_path), "STORE_TIMEZONE": ZONE})
    with app.test_request_context("/"):
        assert format_local_datetime("2026-11-22T14:02:00Z", "fr") == LOCAL_NOW
        assert format_local_datetime("2026-11-22T14:02:00+01:00", "fr") == "22 nov. 2026, 09:02"
        assert format_local_datetime("2026-07-14T09:30", "fr") == "14 juil. 2026, 09:30"
        assert format_local_datetime("2026-11-22T14:02:00Z", "en") == "Nov 22, 2026, 10:02\u202fAM"
        assert format_local_date("2026-11-23T02:00:00Z", "fr") == "22 nov. 2026"
        assert format_local_datetime("", "fr") == format_local_datetime("nonsense") == ""


# --- Head office: controls a finger can tap ----------------------------------------------


def _hq_login(page, base: str, user: dict) -> None:
    page.goto(base + "/hq/login")
    page.fill("#email", user["email"])
    page.fill("#password", user["password"])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r".*/hq/(?!login).*"))


def test_head_office_checkboxes_radios_and_controls_are_44px_to_tap(hq_hub, browser):
    server = hq_hub["server"]
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="fr-FR")
    page = context.new_page()
    try:
        _hq_login(page, server.url, hq_hub["user"])
        page.goto(server.url + "/hq/promotions")
        screenshot(page, "hq-floor-promotions")
        small = []
        for sel in (".hq-top nav a", ".hq-who button", ".promo-filter a", "a.button"):
            for box in (el.bounding_box() for el in page.locator(sel).all()):
                if box and box["height"] < 44:
                    small.append((sel, box))
        for name, path in (
            ("fleet", "/hq/flotte"),
            ("audit", "/hq/journal"),
            ("users", "/hq/utilisateurs"),
        ):
            page.goto(server.url + path)
            screenshot(page, f"hq-floor-{name}")
            for sel in (".pager a", "main button", "main select", "main input:visible"):
                for box in (el.bounding_box() for el in page.locator(sel).all()):
                    if box and box["height"] < 44:
                        small.append((path, sel, box))
        page.goto(server.url + "/hq/promotions/nouvelle")
        page.check("#scope-category")
        page.check("#stores-some")
        screenshot(page, "hq-floor-promotion-form")
        assert serious_axe_violations(page) == []
        boxes = page.locator("input[type=checkbox]:visible, input[type=radio]:visible")
        assert boxes.count() >= 6
        for i in range(boxes.count()):
            box = boxes.nth(i).bounding_box()
            if box["width"] < 44 or box["height"] < 44:
                small.append((boxes.nth(i).evaluate("e => e.outerHTML"), box))
        for sel in (
            "main input:visible:not([type=checkbox]):not([type=radio])",
            "main select",
            "main button",
        ):
            for box in (el.bounding_box() for el in page.locator(sel).all()):
                if box and box["height"] < 44:
                    small.append((sel, box))
        assert small == []
        # A date field reads in French under the browser's control, as it changes.
        start = page.locator('.when-fr[data-reads="f-starts_local"]')
        assert re.fullmatch(r"\d{1,2} [a-zéû]+\.? 2026, \d{2}:00", start.inner_text()), (
            start.inner_text()
        )
        page.fill("#f-starts_local", "2026-12-03T18:45")
        expect(start).to_have_text("3 déc. 2026, 18:45")
        # The whole 44 px square takes the tap, not only the box drawn inside it.
        first = page.locator("input[name=categories]").first
        assert not first.is_checked()
        first.click(position={"x": 2, "y": 2})
        assert first.is_checked()
        first.click(position={"x": 41, "y": 41})
        assert not first.is_checked()
    finally:
        context.close()


# --- The phone's order page --------------------------------------------------------------


def _ready_order(server: HubServer) -> dict:
    """An order at Lyon, made ready by the store (its pickup code and QR shown)."""
    db = open_hub_db(server.data)
    try:
        skus = [
            r[0]
            for r in db.execute(
                "SELECT sku FROM stock_levels WHERE store_id = ? AND qty >= 3 ORDER BY sku LIMIT 2",
                [LYON],
            ).fetchall()
        ]
        made = create_order(
            db,
            LYON,
            "Chloé Dubois",
            "chloe@example.com",
            [{"sku": skus[0], "qty": 2}, {"sku": skus[1], "qty": 1}],
            private_key=keys.current_private_key(server.data),
        )
    finally:
        db.close()
    client = HubClient(server.url, LYON, store_secrets(server.data)[LYON])
    ready = {
        "id": str(uuid.uuid4()),
        "type": "order.ready",
        "occurred_at": NOW_ISO,
        "payload": {
            "order_id": made["order"]["id"],
            "shelf_slot": "C-07",
            "staff": "sf-1",
            "lines": [{"line": 1, "qty_ready": 2}, {"line": 2, "qty_ready": 1}],
        },
    }
    answer = client.post_transactions([ready])
    assert answer.status_code == 200 and answer.json()["results"][0]["status"] == "accepted", (
        answer.json()
    )
    return made


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_phone_order_page_has_the_shop_header_one_language_and_the_code_first(
    hq_hub, browser, lang
):
    server = hq_hub["server"]
    made = _ready_order(server)
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="fr-FR", is_mobile=True, has_touch=True
    )
    page = context.new_page()
    try:
        page.goto(server.url + "/shop/")
        if lang == "en":  # the shopper's choice, made on the shop
            page.locator(".lang-toggle button[value=en]").click()
            page.wait_for_load_state()
        page.goto(server.url + made["shop_path"])
        page.wait_for_function("document.getElementById('pickup-qr').naturalWidth > 0")
        screenshot(page, f"order-phone-{lang}")
        page.screenshot(path=str(ARTIFACTS / f"order-phone-{lang}-full.png"), full_page=True)
        assert page.locator("html").get_attribute("lang") == lang
        # The shop's header: brand, language switch, cart, search.
        assert page.locator("header.shop-top .shop-brand").is_visible()
        assert page.locator("header.shop-top .lang-toggle button").is_visible()
        assert page.locator("#cart-link").is_visible()
        # The pickup code and its QR, whole, on the first screen.
        for sel in ("#pickup-qr", "#pickup-code"):
            box = page.locator(sel).bounding_box()
            assert box and box["y"] >= 0 and box["y"] + box["height"] <= 844, (sel, box)
        assert page.locator("#pickup-code").inner_text() == made["pickup_code"]
        assert page.locator("h1").inner_text().endswith(made["order"]["number"])
        # One language: no English beside the French (and the other way round).
        assert (
            page.locator("[lang]:not(html)").count() == page.locator(".lang-toggle [lang]").count()
        )
        text = page.locator("main").inner_text()
        if lang == "fr":
            assert "Code de retrait" in text and "Votre commande est prête" in text
            for english in ("Pickup code", "Ready for pickup", "Items", "To collect", "---"):
                assert english not in text, english
        else:
            assert "Pickup code" in text and "Your order is ready" in text
            for french in ("Code de retrait", "Prête", "Articles", "Votre commande", "Bonjour"):
                assert french not in text, french
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert serious_axe_violations(page) == []
    finally:
        context.close()


# --- One browser, three servers on 127.0.0.1 --------------------------------------------


def _store_copy(template: Path, dest: Path, store_id: str) -> Path:
    shutil.copytree(template, dest)
    db = dbmod.connect(dbmod.db_path(dest))
    try:
        seedmod.seed_stores(db, store_id)
    finally:
        db.close()
    return dest


def test_one_browser_keeps_head_office_two_kiosks_and_the_shop_at_once(
    hq_hub, browser, seeded_template, server_factory, tmp_path
):
    hub = hq_hub["server"]
    ids = [s["id"] for s in seedmod.DEMO_STORES[:2]]
    stores = [server_factory(_store_copy(seeded_template, tmp_path / i, i)) for i in ids]
    db = dbmod.connect(dbmod.db_path(stores[0].data))
    try:
        sku, name = db.execute(
            "SELECT v.sku, p.name_fr FROM variants v JOIN products p ON p.pk = v.product_pk "
            "ORDER BY v.sku LIMIT 1"
        ).fetchone()
    finally:
        db.close()
    member = add_staff_member(stores[1].data, name="Camille Floor", pin=STAFF_PIN)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    try:
        _hq_login(page, hub.url, hq_hub["user"])  # head office
        page.goto(stores[0].url + "/panier")  # a shopper's cart at the first kiosk
        token = page.locator("input[name=csrf_token]").first.get_attribute("value")
        added = page.request.post(
            stores[0].url + "/panier/ajouter", form={"sku": sku, "csrf_token": token}
        )
        assert added.ok, added.status
        page.goto(stores[1].url + "/staff/login")  # staff at the second store
        page.get_by_label(member["name"]).check()
        page.locator("#pin").fill(member["pin"])
        page.get_by_role("button", name=re.compile("Se connecter|Log in")).click()
        page.wait_for_url(re.compile(re.escape(stores[1].url) + r"/staff/(?!login\b)"))
        page.goto(hub.url + "/shop/")  # and the web shop, in the same browser
        shop_token = page.locator("input[name=csrf_token]").first.get_attribute("value")
        db = open_hub_db(hub.data)
        try:
            shop_sku = db.execute("SELECT sku FROM variants ORDER BY sku LIMIT 1").fetchone()[0]
        finally:
            db.close()
        assert page.request.post(
            hub.url + "/shop/panier/ajouter",
            form={"sku": shop_sku, "qty": "1", "csrf_token": shop_token},
        ).ok

        from app.store.app import session_cookie_name

        # Each store's cookie is named after its data directory (never renamed by a sync).
        own = [session_cookie_name(str(s.data)) for s in stores]
        names = sorted(c["name"] for c in context.cookies() if c["name"].endswith("_session"))
        assert len(set(own)) == 2 and names == sorted(["kiosk_hub_session", *own]), names
        # Nobody was logged out, no cart was lost.
        page.goto(hub.url + "/hq/promotions")
        assert "/hq/login" not in page.url and hq_hub["user"]["name"] in page.content()
        page.goto(stores[0].url + "/panier")
        assert name in page.locator("main").inner_text()
        page.goto(stores[1].url + "/staff/")
        assert "/staff/login" not in page.url and member["name"] in page.content()
        page.goto(hub.url + "/shop/")
        assert page.locator("#cart-link .badge").inner_text() == "1"
    finally:
        context.close()


def test_each_app_names_its_own_session_cookie(store_data, tmp_path):
    from app.hub.app import create_hub_app
    from app.store.app import create_app, session_cookie_name

    store = create_app({"DATA_DIR": str(store_data), "TESTING": True, "WTF_CSRF_ENABLED": False})
    assert store.config["SESSION_COOKIE_NAME"] == session_cookie_name(str(store_data))
    assert store.config["SESSION_COOKIE_NAME"].startswith("kiosk_store_")
    # No store yet (an empty data directory): still one name per server.
    empty = [session_cookie_name(str(tmp_path / d)) for d in ("empty-1", "empty-2")]
    assert empty[0] != empty[1] and all(re.fullmatch(r"kiosk_store_\w+_session", n) for n in empty)
    other = _store_copy(store_data, tmp_path / "other", seedmod.DEMO_STORES[1]["id"])
    assert session_cookie_name(str(other)) != store.config["SESSION_COOKIE_NAME"]
    client = store.test_client()
    client.post("/lang", data={"lang": "en"})  # the session is written
    assert client.get_cookie(store.config["SESSION_COOKIE_NAME"]) is not None
    assert client.get_cookie("session") is None
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    assert create_hub_app({"DATA_DIR": str(hub_dir)}).config["SESSION_COOKIE_NAME"] == (
        "kiosk_hub_session"
    )
    # A name given in the settings is kept.
    named = create_app(
        {"DATA_DIR": str(store_data), "TESTING": True, "SESSION_COOKIE_NAME": "till_1"}
    )
    assert named.config["SESSION_COOKIE_NAME"] == "till_1"
