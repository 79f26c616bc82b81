"""The kiosk's product page: the action bar in sight at both kiosk orientations, a change
of colour that keeps the size, "Ajouté" where the shopper looks, and the other stores'
stock labelled with its real age (the hub link's last contact, not a level's date)."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from app.core import clock
from app.store.sync import state

from .axe_helpers import serious_violations
from .conftest import screenshot

HUB = "http://127.0.0.1:9"  # nothing listens; the tests write the link's state by hand
PARIS = ZoneInfo("Europe/Paris")
PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
OTHERS_LABEL = re.compile(r'<span class="stale">stock au ([^<]+)</span>')


def _product(db, colours: int = 3) -> dict:
    """A product in ``colours`` colours, each in the same sizes (at least 4), with its
    variants by colour and size: ``{"ref", "colours": [code...], "sku": {(code, size)}}``."""
    ref = db.execute(
        """SELECT p.ref FROM products p JOIN variants v ON v.product_pk = p.pk
           GROUP BY p.pk HAVING count(DISTINCT v.colour_code) = ? AND count(DISTINCT v.size) >= 4
           ORDER BY p.pk LIMIT 1""",
        [colours],
    ).fetchone()[0]
    rows = db.execute(
        """SELECT v.sku, v.colour_code, v.size FROM variants v
           JOIN products p ON p.pk = v.product_pk
           WHERE p.ref = ? ORDER BY v.colour_code, v.size_order""",
        [ref],
    ).fetchall()
    codes = list(dict.fromkeys(code for _, code, _ in rows))
    sizes = list(dict.fromkeys(size for _, _, size in rows))
    return {
        "ref": ref,
        "colours": codes,
        "sizes": sizes,
        "sku": {(code, size): sku for sku, code, size in rows},
    }


def _drop_variant(db, sku: str) -> None:
    """This store's catalogue without one variant (a colour that does not come in a size)."""
    db.execute("DELETE FROM stock_levels WHERE sku = ?", [sku])
    db.execute("DELETE FROM variants WHERE sku = ?", [sku])
    db.conn.commit()


@pytest.fixture
def hub_app(store_data):
    """The store app configured with a hub (the link's state is what the tests set)."""
    from app.store.app import create_app

    return create_app({"DATA_DIR": str(store_data), "TESTING": True, "HUB_URL": HUB})


# --- HTTP: the choice ----------------------------------------------------------------


def test_colour_links_carry_the_chosen_size(client, store_db):
    p = _product(store_db)
    first, second = p["colours"][:2]
    size = p["sizes"][2]
    html = client.get(f"/product/{p['ref']}", query_string={"sku": p["sku"][(first, size)]}).text
    # Every colour link keeps the size; the server resolves it in that colour.
    for code in p["colours"]:
        href = f'href="/product/{p["ref"]}?colour={code}&amp;size={size}"'
        assert href in html
    html = client.get(f"/product/{p['ref']}", query_string={"colour": second, "size": size}).text
    assert f'data-sku="{p["sku"][(second, size)]}"' in html
    assert re.search(rf'class="size [^"]* is-on"[^>]*>\s*<span class="size-label">{size}<', html)


def test_a_colour_without_the_chosen_size_opens_with_no_size_chosen(client, store_db):
    p = _product(store_db)
    first, second = p["colours"][:2]
    size = p["sizes"][1]
    _drop_variant(store_db, p["sku"][(second, size)])
    html = client.get(f"/product/{p['ref']}", query_string={"colour": second, "size": size}).text
    assert 'class="here"' not in html and "is-on" in html  # the colour is on, no size
    assert 'class="colour is-on"' in html and f'data-colour="{second}"' in html
    assert "Choisissez une taille" in html and 'action="/panier/ajouter"' not in html
    # The open panel polls for that colour, not for some size chosen for the shopper.
    assert f"/product/{p['ref']}/stock?sku=&amp;colour={second}" in html
    panel = client.get(f"/product/{p['ref']}/stock", query_string={"colour": second}).text
    assert 'class="size badge' in panel and "is-on" not in panel
    # Nonsense stays harmless: no such colour opens the product as usual.
    r = client.get(f"/product/{p['ref']}", query_string={"colour": "x" * 5000, "size": "é"})
    assert r.status_code == 200 and 'class="here"' in r.text


# --- HTTP: the other stores' stock age -------------------------------------------------


def _others_labels(client, ref: str, sku: str) -> list[str]:
    html = client.get(f"/product/{ref}", query_string={"sku": sku}).text
    assert "Dans nos autres magasins" in html
    return OTHERS_LABEL.findall(html)


def _label(moment, now) -> str:
    """How the shopper reads ``moment`` at ``now``: ``15:22`` the same (Paris) day, else
    ``03/12/2026 15:22``."""
    local = moment.astimezone(PARIS)
    same_day = local.date() == now.astimezone(PARIS).date()
    return f"{local:%H:%M}" if same_day else f"{local:%d/%m/%Y %H:%M}"


@pytest.mark.clock
def test_fresh_link_shows_no_stock_age_however_old_the_levels(hub_app, store_db, fake_clock):
    p = _product(store_db)
    sku = p["sku"][(p["colours"][0], p["sizes"][0])]
    # The other stores' levels have not changed for a week: still today's figures.
    week_ago = clock.iso(fake_clock.now - timedelta(days=7))
    store_db.execute("UPDATE stock_levels SET as_of = ?", [week_ago])
    store_db.conn.commit()
    state.record_success(store_db, "pull", fake_clock.now - timedelta(seconds=20))
    client = hub_app.test_client()
    assert _others_labels(client, p["ref"], sku) == []
    html = client.get(f"/product/{p['ref']}", query_string={"sku": sku}).text
    assert "stock au" not in html


@pytest.mark.clock
def test_quiet_link_labels_other_stores_with_the_last_contact(hub_app, store_db, fake_clock):
    p = _product(store_db)
    sku = p["sku"][(p["colours"][0], p["sizes"][0])]
    client = hub_app.test_client()
    heard = fake_clock.now.replace(second=0) - timedelta(seconds=30)
    state.record_success(store_db, "pull", heard)
    assert _others_labels(client, p["ref"], sku) == []
    page = client.get(f"/product/{p['ref']}", query_string={"sku": sku}).text
    version = re.search(r'data-stock-version="([^"]+)"', page).group(1)
    poll = f"/product/{p['ref']}/stock"
    assert client.get(poll, query_string={"sku": sku, "v": version}).status_code == 204

    # Nothing heard since: past the threshold the figures say how old they are.
    fake_clock.set(heard + timedelta(seconds=hub_app.config["STALE_AFTER_SECONDS"] + 1))
    labels = _others_labels(client, p["ref"], sku)
    assert labels and set(labels) == {_label(heard, fake_clock.now)}
    # An open page learns it on its next poll (the panel's version changed).
    panel = client.get(poll, query_string={"sku": sku, "v": version})
    assert panel.status_code == 200 and OTHERS_LABEL.search(panel.text)
    with client.session_transaction() as s:
        s["lang"] = "en"
    html = client.get(f"/product/{p['ref']}", query_string={"sku": sku}).text
    assert re.search(r'<span class="stale">stock as of \d{1,2}:\d\d\s?[AP]M</span>', html)

    # Heard from again: the label goes.
    state.record_success(store_db, "pull", fake_clock.now)
    with client.session_transaction() as s:
        s["lang"] = "fr"
    assert _others_labels(client, p["ref"], sku) == []


@pytest.mark.clock
def test_a_contact_on_another_day_gives_the_date_too(hub_app, store_db, fake_clock):
    p = _product(store_db)
    sku = p["sku"][(p["colours"][0], p["sizes"][0])]
    heard = fake_clock.now - timedelta(days=2)
    state.record_success(store_db, "pull", heard)
    labels = _others_labels(hub_app.test_client(), p["ref"], sku)
    local = heard.astimezone(PARIS)
    assert set(labels) == {f"{local:%d/%m/%Y %H:%M}"}


@pytest.mark.clock
def test_never_heard_from_the_hub_labels_with_the_figures_own_time(client, store_db, fake_clock):
    """Without a hub (or before its first answer) the figures are as old as their load."""
    p = _product(store_db)
    sku = p["sku"][(p["colours"][0], p["sizes"][0])]
    loaded = fake_clock.now.replace(second=0) - timedelta(minutes=40)
    store_db.execute("UPDATE stock_levels SET as_of = ?", [clock.iso(loaded)])
    store_db.conn.commit()
    assert set(_others_labels(client, p["ref"], sku)) == {_label(loaded, fake_clock.now)}


# --- Browser: the action bar -----------------------------------------------------------


def _size(page, label: str):
    """The size button whose label is exactly ``label`` ("S" is not "XS")."""
    exact = re.compile(rf"^\s*{re.escape(label)}\s*$")
    return page.locator(".size").filter(has=page.locator(".size-label", has_text=exact))


def _in_view(page, selector: str) -> None:
    """``selector`` is shown whole inside the viewport, with the page not scrolled."""
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None, selector
    assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= size["width"], (selector, box)
    assert box["y"] + box["height"] <= size["height"], (selector, box)


def _not_under_the_bar(page) -> None:
    """Scrolled to the end, the page's last content is above the bar, not under it."""
    # The window scrolls, or main in its own box (the accessible mode's reach layout).
    page.evaluate(
        """() => { for (const el of [document.scrollingElement, document.querySelector('main')])
                     el.scrollTop = el.scrollHeight; }"""
    )
    # Scrolled to the end indeed (a smooth scroll takes a moment), not after a fixed pause.
    page.wait_for_function(
        """() => [document.scrollingElement, document.querySelector('main')].every(
                   el => el.scrollTop + el.clientHeight >= el.scrollHeight - 1)"""
    )
    bar = page.locator("#buy-bar").bounding_box()
    last = page.locator("article.product").bounding_box()
    assert last["y"] + last["height"] <= bar["y"] + 1, (last, bar)


@pytest.mark.browser
@pytest.mark.parametrize(
    ("viewport", "accessible"),
    [(PORTRAIT, False), (LANDSCAPE, False), (PORTRAIT, True)],
    ids=["portrait", "landscape", "portrait-accessible"],
)
def test_the_action_bar_is_in_sight_without_scrolling(
    browser, store_server, store_db, viewport, accessible
):
    p = _product(store_db)
    second = p["colours"][1]
    size = p["sizes"][-1]  # the last size: the lowest on the page
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"{store_server.url}/product/{p['ref']}")
        if accessible:  # larger type, the content pushed down within reach
            page.locator("#a11y-toggle").click()
            expect(page.locator("body")).to_have_class(re.compile("a11y"))
        page.locator(f'.colour[data-colour="{second}"]').click()
        _size(page, size).click()
        expect(page.locator(".here")).to_have_attribute("data-sku", p["sku"][(second, size)])
        # The size is a link: measure the new page once loaded, styles and all (its DOM
        # is there before its stylesheet, which the browser checks again on each visit).
        page.wait_for_load_state("load")
        assert page.evaluate("window.scrollY") == 0
        bar = page.locator("#buy-bar")
        expect(bar.locator(".buy-size")).to_contain_text(size)
        expect(bar.locator(".here")).to_contain_text("Dans ce magasin")
        expect(bar.locator("#price .price")).to_contain_text("€")
        expect(bar.locator("#buy-add")).to_have_text("Ajouter à mon panier")
        for part in ("#buy-bar", ".buy-what", ".buy-size", "#buy-bar .here", "#price", "#buy-add"):
            _in_view(page, part)
        name = ("portrait" if viewport is PORTRAIT else "landscape") + (
            "-accessible" if accessible else ""
        )
        screenshot(page, f"product-bar-{name}")
        _not_under_the_bar(page)
        for part in (".buy-size", "#buy-bar .here", "#price", "#buy-add"):
            _in_view(page, part)  # still there at the other end of the page

        # "Ajouté" on the button itself, in the bar, and said by the live region.
        page.locator("#buy-add").click()
        expect(page).to_have_url(re.compile(r"added=1"))
        page.wait_for_load_state("load")
        added = bar.locator("#buy-add")
        expect(added).to_contain_text("Ajouté")
        _in_view(page, "#buy-add")
        status = page.locator("#buy-bar [aria-live=polite]")
        expect(status).to_have_attribute("role", "status")
        expect(status).to_have_text("Ajouté à votre panier.")
        expect(page.locator(".cart-link .count")).to_have_text("1")
        screenshot(page, f"product-bar-added-{name}")
        assert errors == []
    finally:
        context.close()


# Where the page scrolls: <main> in its own box in the accessible mode's reach layout,
# the window otherwise.
_SCROLLED = """() => { const m = document.querySelector('main');
  return {window: Math.round(window.scrollY), main: Math.round(m.scrollTop)}; }"""


@pytest.mark.browser
@pytest.mark.parametrize(
    ("viewport", "accessible", "box"),
    [(LANDSCAPE, False, "window"), (PORTRAIT, True, "main"), (LANDSCAPE, True, "main")],
    ids=["landscape-window", "portrait-accessible-main", "landscape-accessible-main"],
)
def test_adding_keeps_the_shoppers_place_on_the_page(
    browser, store_server, store_db, viewport, accessible, box
):
    """ "Ajouter" reloads the page: it opens again where the shopper was, in the box the
    page scrolls in (the window, or <main> in the accessible mode)."""
    p = _product(store_db)
    sku = p["sku"][(p["colours"][0], p["sizes"][0])]
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    try:
        page.goto(f"{store_server.url}/product/{p['ref']}?sku={sku}")
        if accessible:
            page.locator("#a11y-toggle").click()
            expect(page.locator("body")).to_have_class(re.compile("a11y"))
        # Half-way down the page, in the box that scrolls.
        scroller = (
            "document.querySelector('main')" if box == "main" else "document.scrollingElement"
        )
        page.evaluate(
            f"""() => {{ const el = {scroller};
                       el.scrollTop = Math.round((el.scrollHeight - el.clientHeight) / 2); }}"""
        )
        page.wait_for_function(f"() => {scroller}.scrollTop > 100")
        before = page.evaluate(_SCROLLED)
        other = "window" if box == "main" else "main"
        assert before[box] > 100 and before[other] == 0, before  # that box, and only it
        page.locator("#buy-add").click()
        expect(page).to_have_url(re.compile(r"added=1"))
        expect(page.locator("#buy-add")).to_contain_text("Ajouté")
        page.wait_for_load_state("load")
        page.wait_for_function(f"() => {scroller}.scrollTop > 0", timeout=5000)
        after = page.evaluate(_SCROLLED)
        assert abs(after[box] - before[box]) <= 2, (before, after)
        _in_view(page, "#buy-add")  # the "Ajouté" where the shopper looks
        name = ("portrait" if viewport is PORTRAIT else "landscape") + (
            "-accessible" if accessible else ""
        )
        screenshot(page, f"product-added-kept-place-{name}")
    finally:
        context.close()


@pytest.mark.browser
def test_changing_colour_keeps_the_size_and_drops_it_when_absent(page, store_server, store_db):
    p = _product(store_db)
    first, second, third = p["colours"][:3]
    size = p["sizes"][1]
    _drop_variant(store_db, p["sku"][(third, size)])
    page.goto(f"{store_server.url}/product/{p['ref']}?sku={p['sku'][(first, size)]}")
    page.locator(f'.colour[data-colour="{second}"]').click()
    expect(page.locator(".here")).to_have_attribute("data-sku", p["sku"][(second, size)])
    expect(page.locator(".size.is-on .size-label")).to_have_text(size)
    expect(page.locator(".colour.is-on")).to_have_attribute("data-colour", second)
    expect(page.locator(".buy-size")).to_contain_text(size)

    # The third colour does not come in that size: no size chosen, none made up.
    page.locator(f'.colour[data-colour="{third}"]').click()
    expect(page.locator(".colour.is-on")).to_have_attribute("data-colour", third)
    expect(page.locator(".size.is-on")).to_have_count(0)
    expect(page.locator(".here")).to_have_count(0)
    expect(page.locator("#buy-add")).to_have_count(0)
    expect(page.locator("#buy-bar .buy-pick")).to_have_text("Choisissez une taille")
    screenshot(page, "product-bar-no-size")
    # Choosing a size then brings "Ajouter" back.
    other = p["sizes"][0]
    _size(page, other).click()
    expect(page.locator(".here")).to_have_attribute("data-sku", p["sku"][(third, other)])
    expect(page.locator("#buy-add")).to_be_visible()
    assert page.console_errors == []


@pytest.mark.browser
def test_product_page_states_have_no_serious_axe_violation(page, store_server, store_db):
    p = _product(store_db)
    first = p["colours"][0]
    sku = p["sku"][(first, p["sizes"][0])]
    problems = {}
    for label, query in (
        ("chosen", f"sku={sku}"),
        ("added", f"sku={sku}&added=1"),
        ("no-size", f"colour={first}"),
    ):
        page.goto(f"{store_server.url}/product/{p['ref']}?{query}")
        found = serious_violations(page)
        if found:
            problems[label] = found
    assert problems == {}
