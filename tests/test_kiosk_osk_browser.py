"""The kiosk's on-screen keyboard: a finger types a search on the screen itself."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .axe_helpers import assert_axe_clean
from .conftest import screenshot

pytestmark = pytest.mark.browser

PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
# docs/kiosk.md, "Accessible mode and reach": the highest operable part of the floor
# kiosk, by screen height (portrait 1,920 px: y = 1,000; landscape 1,080 px: y = 162).
REACH_TOP = {1920: 1000, 1080: 162}


@pytest.fixture
def touch(browser):
    """A touch screen (taps, not clicks) at a kiosk size, its console errors kept."""
    contexts = []

    def make(viewport=PORTRAIT):
        context = browser.new_context(viewport=viewport, locale="fr-FR", has_touch=True)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.console_errors = errors  # type: ignore[attr-defined]
        # Content-Security-Policy refusals, as the page itself sees them.
        page.add_init_script(
            """window.__csp = [];
               document.addEventListener('securitypolicyviolation',
                 e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"""
        )
        return page

    yield make
    for context in contexts:
        context.close()


# htmx logs a request it cancels itself (hx-sync="this:replace": a newer search
# replaces one still in flight on a busy machine) as these two; a failed request adds
# its own htmx:sendError / htmx:responseError / htmx:timeout line, which stays.
_CANCELLED = re.compile(r"^htmx:(afterRequest|sendAbort), ")


def _no_errors(page) -> None:
    """No CSP refusal and no console error (but htmx's own cancelled searches)."""
    assert page.evaluate("window.__csp") == []
    assert [e for e in page.console_errors if not _CANCELLED.match(e)] == []


def _tap_keys(page, text: str) -> None:
    for ch in text:
        page.locator(f"#osk .osk-key[data-key='{ch}']").tap()


def _first_row(page) -> str:
    return " ".join(
        page.locator("#osk .osk-rows .osk-row").first.locator(".osk-key").all_inner_texts()
    )


def _scroll_to_end(page) -> None:
    """Scroll the page to its end, whichever box it scrolls in (the accessible mode's
    <main> or the window)."""
    page.evaluate(
        """() => { const m = document.querySelector('main');
                   m.scrollTop = m.scrollHeight;
                   window.scrollTo(0, document.documentElement.scrollHeight); }"""
    )


def _last_result_clears_the_keys(page) -> None:
    """At the end of the scroll, the last result shows whole above the keyboard."""
    _scroll_to_end(page)
    last = page.locator("#results .card").last.bounding_box()
    top = page.locator("#osk").bounding_box()["y"]
    assert last["y"] + last["height"] <= top + 1, (last, top)


def _card_names(page) -> list[str]:
    return page.locator("#results .card").all_inner_texts()


def test_tapping_the_field_opens_azerty_and_tapped_keys_search_like_typing(touch, store_server):
    page = touch(PORTRAIT)
    page.goto(store_server.url + "/search")
    field = page.locator("#q")
    expect(field).to_have_attribute("inputmode", "none")  # no system keyboard
    osk = page.locator("#osk")
    expect(osk).to_be_hidden()
    field.tap()
    expect(osk).to_be_visible()
    expect(osk).to_have_attribute("aria-label", "Clavier à l’écran")
    assert _first_row(page).startswith("a z e r t y")
    _tap_keys(page, "velo")
    expect(field).to_have_value("velo")
    cards = page.locator("#results .card")
    expect(cards.first).to_contain_text("Vélo", timeout=5000)
    screenshot(page, "osk-01-search-portrait-1080x1920")
    tapped = _card_names(page)
    # The results never hide under the keys: the last one scrolls above them.
    _last_result_clears_the_keys(page)
    # The same search typed on a real keyboard gives the same results.
    page.goto(store_server.url + "/search")
    page.locator("#q").press_sequentially("velo", delay=120)
    expect(page.locator("#results .card").first).to_contain_text("Vélo", timeout=5000)
    assert _card_names(page) == tapped
    _no_errors(page)


def test_english_page_has_qwerty(touch, store_server):
    page = touch(LANDSCAPE)
    page.goto(store_server.url + "/browse")
    page.get_by_role("button", name=re.compile("EN")).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.locator("#q").tap()
    expect(page.locator("#osk")).to_be_visible()
    expect(page.locator("#osk")).to_have_attribute("aria-label", "On-screen keyboard")
    assert _first_row(page).startswith("q w e r t y")
    expect(page.locator("#osk [data-osk=clear]")).to_have_text("Clear")
    expect(page.locator("#osk [data-osk=space]")).to_have_text("Space")
    _tap_keys(page, "tent")
    expect(page.locator("#q")).to_have_value("tent")
    expect(page.locator("#results .card").first).to_be_visible(timeout=5000)
    screenshot(page, "osk-04-english-landscape-1920x1080")
    _no_errors(page)


def test_accents_digits_backspace_and_clear(touch, store_server):
    page = touch(LANDSCAPE)
    page.goto(store_server.url + "/browse")
    field = page.locator("#q")
    field.tap()
    expect(page.locator("#osk [data-osk=clear]")).to_have_text("Tout effacer")
    _tap_keys(page, "randonn")
    page.locator("#osk .osk-accents [data-key='é']").tap()
    expect(field).to_have_value("randonné")
    page.locator("#osk [data-osk=backspace]").tap()
    expect(field).to_have_value("randonn")
    page.locator("#osk [data-osk=space]").tap()
    # The digits layer, and back to the letters.
    page.locator("#osk [data-osk=layer]").tap()
    assert _first_row(page).startswith("1 2 3")
    _tap_keys(page, "42")
    expect(field).to_have_value("randonn 42")
    page.locator("#osk [data-osk=layer]").tap()
    assert _first_row(page).startswith("a z e r t y")
    # Every accented letter French needs is one tap away.
    accents = "".join(page.locator("#osk .osk-accents .osk-key").all_inner_texts())
    assert set("éèêàçùâôîïëüœ") <= set(accents)
    page.locator("#osk [data-osk=clear]").tap()
    expect(field).to_have_value("")
    expect(page.locator("#results .notice")).to_contain_text("Tapez", timeout=5000)
    _no_errors(page)


def test_search_key_searches_and_puts_the_keyboard_away(touch, store_server):
    page = touch(LANDSCAPE)
    page.goto(store_server.url + "/search")
    page.locator("#q").tap()
    _tap_keys(page, "tente")
    page.locator("#osk [data-osk=enter]").tap()
    expect(page.locator("#osk")).to_be_hidden()
    expect(page.locator("#results .card").first).to_contain_text(
        re.compile("tente", re.I), timeout=5000
    )
    # Tapping the field again brings it back; a tap elsewhere puts it away.
    page.locator("#q").tap()
    expect(page.locator("#osk")).to_be_visible()
    page.locator("h1").tap()
    expect(page.locator("#osk")).to_be_hidden()
    _no_errors(page)


@pytest.mark.parametrize("viewport", [PORTRAIT, LANDSCAPE], ids=["portrait", "landscape"])
def test_keyboard_in_accessible_mode_is_big_and_low(touch, store_server, viewport):
    page = touch(viewport)
    page.goto(store_server.url + "/browse")
    page.get_by_role("button", name=re.compile("Mode accessible")).tap()
    expect(page.locator("body")).to_have_class(re.compile("a11y"))
    page.locator("#q").tap()
    osk = page.locator("#osk")
    expect(osk).to_be_visible()
    # Every key is finger-sized and sits within reach from a wheelchair: below the
    # documented reach line (docs/kiosk.md, "Accessible mode and reach": y >= 1,000 px
    # of a 1,920 px portrait screen, 162 px of a 1,080 px landscape one), and in the
    # lower half of the screen (the field and the results above it).
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('#osk .osk-key')]
              .map(k => k.getBoundingClientRect())
              .map(r => [r.top, r.bottom, r.width, r.height])"""
    )
    height = viewport["height"]
    low = max(REACH_TOP[height], height / 2)
    assert boxes and all(t >= low and b <= height for t, b, w, h in boxes), (low, boxes)
    assert all(w >= 60 and h >= 64 for t, b, w, h in boxes), boxes
    _tap_keys(page, "velo")
    expect(page.locator("#q")).to_have_value("velo")
    expect(page.locator("#results .card").first).to_contain_text("Vélo", timeout=5000)
    # The field shows what is typed, above the keys; the results scroll above them.
    form = page.locator("form.search").bounding_box()
    assert form["y"] >= 0 and form["y"] + form["height"] <= boxes[0][0], (form, boxes[0])
    name = f"{viewport['width']}x{viewport['height']}"
    screenshot(page, f"osk-02-accessible-{name}")
    _last_result_clears_the_keys(page)
    _no_errors(page)


def test_landscape_screenshot_with_results(touch, store_server):
    page = touch(LANDSCAPE)
    page.goto(store_server.url + "/search")
    page.locator("#q").tap()
    _tap_keys(page, "chaussures")
    expect(page.locator("#results .card").first).to_be_visible(timeout=5000)
    # The search form and the first results show between the top bar and the keys.
    form = page.locator("form.search").bounding_box()
    first = page.locator("#results .card").first.bounding_box()
    top = page.locator("#osk").bounding_box()["y"]
    assert form["y"] >= 0 and form["y"] + form["height"] <= first["y"] < top
    screenshot(page, "osk-03-search-landscape-1920x1080")
    _no_errors(page)


@pytest.mark.parametrize("accessible", [False, True], ids=["standard", "accessible-mode"])
def test_axe_core_finds_no_serious_violation_with_the_keyboard_open(
    touch, store_server, accessible
):
    page = touch(PORTRAIT)
    page.goto(store_server.url + "/search")
    if accessible:
        page.get_by_role("button", name=re.compile("Mode accessible")).tap()
        expect(page.locator("body")).to_have_class(re.compile("a11y"))
    page.locator("#q").tap()
    _tap_keys(page, "velo")
    expect(page.locator("#results .card").first).to_be_visible(timeout=5000)
    assert_axe_clean(page, "search with the keyboard open")
