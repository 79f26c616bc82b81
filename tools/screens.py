"""Every screen ``make screenshots`` takes: how a person reaches it in the real demo.

A screen is a step of its area's walk (one browser context per area and size, so the
cart, the staff login and the head-office session carry from step to step). A step
brings the page to the screen; the runner (tools/screenshots.py) then photographs it.
Elements are found as a person finds them: by address, role and visible French text,
so the screens can change under the tool. A step raises :class:`Missing` when the
feature is not there (yet): the screen is listed as missing, the run goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

Page = Any  # playwright.sync_api.Page (imported lazily: the tool starts without it)


class Missing(Exception):
    """The screen's feature is not in the product (yet): listed, not a failure."""


@dataclass(frozen=True)
class Size:
    name: str
    width: int
    height: int
    mobile: bool = False
    touch: bool = True  # kiosks, tablets and phones are touch screens; the desktop is not

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}"


PORTRAIT = Size("kiosk portrait", 1080, 1920)
LANDSCAPE = Size("kiosk landscape", 1920, 1080)
TABLET = Size("tablet", 1280, 800)
DESKTOP = Size("desktop", 1440, 900, touch=False)
PHONE = Size("phone", 390, 844, mobile=True)


@dataclass(frozen=True)
class Screen:
    name: str  # <screen> in <area>-<screen>-<size>.png
    caption: str
    step: Callable[[Page, dict], None]


@dataclass(frozen=True)
class Area:
    name: str
    title: str
    sizes: tuple[Size, ...]
    screens: tuple[Screen, ...]


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


def _first_link(page: Page, pattern: str, what: str) -> str:
    """The address of the first link whose href matches ``pattern`` (a regex)."""
    for href in page.locator("a[href]").evaluate_all("els => els.map(e => e.href)"):
        if re.search(pattern, href):
            return href
    raise RuntimeError(f"no link to {what} on {page.url}")


def _expect_url(page: Page, pattern: str, what: str) -> None:
    try:
        page.wait_for_url(re.compile(pattern), timeout=15000)
    except Exception as exc:
        raise RuntimeError(
            f"{what}: expected an address matching {pattern}, at {page.url}"
        ) from exc


# --- The shopper kiosk (portrait and landscape) -------------------------------------


def kiosk_attract(page: Page, demo: dict) -> None:
    page.goto(demo["kiosk"])


def kiosk_browse(page: Page, demo: dict) -> None:
    page.goto(_url(demo["kiosk"], "browse"))


def kiosk_category(page: Page, demo: dict) -> None:
    page.goto(_url(demo["kiosk"], "browse"))
    page.goto(_first_link(page, r"/category/[^/?#]+", "a category"))


def _search(page: Page, demo: dict, words: str) -> None:
    page.goto(_url(demo["kiosk"], "search") + "?q=" + words)
    page.locator("#results").wait_for(state="attached")


def kiosk_search(page: Page, demo: dict) -> None:
    _search(page, demo, "chaussures")
    if page.locator("#results a[href*='/product/']").count() == 0:
        raise RuntimeError("a search for « chaussures » found no product")


def kiosk_search_typo(page: Page, demo: dict) -> None:
    _search(page, demo, "chausures")
    suggestion = page.get_by_text(re.compile(r"Vouliez-vous dire|Did you mean"))
    if suggestion.count() == 0 and page.locator("#results a[href*='/product/']").count() == 0:
        raise Missing("the search does not forgive typos: « chausures » finds nothing")


def kiosk_keyboard(page: Page, demo: dict) -> None:
    """The on-screen keyboard, opened by a tap in the search field, typing « velo »."""
    page.goto(_url(demo["kiosk"], "search"))
    page.locator("#q").click()
    keyboard = page.get_by_role("group", name=re.compile("Clavier|keyboard", re.I))
    try:
        keyboard.first.wait_for(state="visible", timeout=5000)
    except Exception:
        raise Missing("no on-screen keyboard opens from the search field") from None
    for letter in "velo":
        keyboard.first.get_by_role("button", name=letter, exact=True).first.click()
    page.wait_for_timeout(600)  # the results' answer (htmx, 200 ms delay)


def kiosk_product(page: Page, demo: dict) -> None:
    """A product with a colour and a size chosen: a sample barcode, as if scanned."""
    sample = next((b for b in demo["barcodes"] if (b.get("qty") or 0) > 1), demo["barcodes"][0])
    page.goto(_url(demo["kiosk"], "scan") + "?code=" + sample["ean"])
    _expect_url(page, r"/product/", "the product page of a scanned barcode")
    page.get_by_role("button", name=re.compile(r"Ajouter|Add")).first.wait_for()


def kiosk_cart(page: Page, demo: dict) -> None:
    """The product page's « Ajouter », then the cart."""
    kiosk_product(page, demo)
    page.get_by_role("button", name=re.compile(r"Ajouter|Add")).first.click()
    page.wait_for_timeout(500)
    page.goto(_url(demo["kiosk"], "panier"))
    if page.get_by_role("button", name=re.compile(r"Réserver|Reserve")).count() == 0:
        raise RuntimeError("the cart shows no « Réserver » after an item was added")


def kiosk_cart_scan(page: Page, demo: dict) -> None:
    page.goto(_url(demo["kiosk"], "panier/scanner"))


def kiosk_cart_merge(page: Page, demo: dict) -> None:
    """A phone's cart scanned while the kiosk's cart holds an item: merge or replace."""
    if not demo["carts"]:
        raise RuntimeError("the demo has no online cart to scan (demo.json)")
    page.goto(_url(demo["kiosk"], "panier"))
    if page.get_by_role("button", name=re.compile(r"Réserver|Reserve")).count() == 0:
        kiosk_cart(page, demo)
    page.goto(_url(demo["kiosk"], "scan") + "?code=" + quote(demo["carts"][0]["qr_payload"]))
    if "/panier/fusion" not in page.url:
        raise Missing(f"scanning a phone cart over a full kiosk cart asks nothing ({page.url})")


def kiosk_ticket(page: Page, demo: dict) -> None:
    """The reservation ticket: the cart's « Réserver ce qui est ici »."""
    page.goto(_url(demo["kiosk"], "panier"))
    reserve = page.get_by_role("button", name=re.compile(r"Réserver|Reserve"))
    if reserve.count() == 0:
        kiosk_cart(page, demo)
    reserve.first.click()
    _expect_url(page, r"/panier/reservation/", "the reservation ticket")


def kiosk_cart_long(page: Page, demo: dict) -> None:
    """The demo's 30-line phone cart scanned at the kiosk (replacing what is there)."""
    longest = max(demo["carts"], key=lambda c: c["lines"], default=None)
    if longest is None:
        raise RuntimeError("the demo has no online cart to scan (demo.json)")
    page.goto(_url(demo["kiosk"], "scan") + "?code=" + quote(longest["qr_payload"]))
    if "/panier/fusion" in page.url:
        page.get_by_role("button", name=re.compile(r"Remplacer|Replace")).first.click()
    _expect_url(
        page, r"/panier/?(\?.*)?$", f"the kiosk cart after scanning {longest['lines']} lines"
    )


def kiosk_accessible(page: Page, demo: dict) -> None:
    """The product page after a tap on « Mode accessible » (last: it stays on)."""
    kiosk_product(page, demo)
    toggle = page.get_by_role("button", name=re.compile(r"Mode accessible|Accessible"))
    if toggle.count() == 0:
        raise Missing("no « Mode accessible » button on the product page")
    toggle.first.click()
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)


KIOSK = Area(
    "kiosk",
    "Shopper kiosk",
    (PORTRAIT, LANDSCAPE),
    (
        Screen(
            "attract", "Attract screen: what the kiosk shows when nobody uses it", kiosk_attract
        ),
        Screen("browse", "Categories: the first screen after a tap", kiosk_browse),
        Screen("category", "A category: products with their stock here", kiosk_category),
        Screen("search", "Search « chaussures » with its results", kiosk_search),
        Screen("search-typo", "Search with a typo: « chausures »", kiosk_search_typo),
        Screen("keyboard", "On-screen keyboard typing « velo »", kiosk_keyboard),
        Screen(
            "product", "Product page, colour and size chosen (a scanned barcode)", kiosk_product
        ),
        Screen("cart", "Cart after « Ajouter »", kiosk_cart),
        Screen("cart-scan", "Scan the cart from a phone", kiosk_cart_scan),
        Screen(
            "cart-merge",
            "A phone's cart scanned over a kiosk cart: merge or replace",
            kiosk_cart_merge,
        ),
        Screen("ticket", "Reservation ticket", kiosk_ticket),
        Screen(
            "cart-long", "A 30-line cart from a phone: total and actions in sight", kiosk_cart_long
        ),
        Screen("accessible", "Product page in the accessible mode", kiosk_accessible),
    ),
)


# --- The counter: staff tablet --------------------------------------------------------


def _staff_goto(page: Page, demo: dict, path: str) -> None:
    """Open a staff page, logging in through the form first when it asks (a demo login
    from demo.json: the manager's name, ticked, and PIN)."""
    page.goto(_url(demo["kiosk"], path))
    if "/staff/login" not in page.url:
        return
    logins = demo["logins"]
    login = next((m for m in logins if m["role"] == "manager"), logins[0])
    who = page.get_by_label(login["name"])
    if who.count():
        who.first.check()
    else:  # names shown as buttons or tiles rather than radio buttons
        page.get_by_role("button", name=re.compile(re.escape(login["name"]))).first.click()
    pin = page.locator("input[name=pin]")
    if pin.count():
        pin.first.fill(login["pin"])
    else:  # a keypad of digits on the screen
        for digit in login["pin"]:
            page.get_by_role("button", name=digit, exact=True).first.click()
    page.get_by_role("button", name=re.compile(r"Se connecter|Log in")).click()
    _expect_url(page, r"/staff/(?!login\b)", f"{login['name']}'s staff login")
    page.goto(_url(demo["kiosk"], path))


def counter_login(page: Page, demo: dict) -> None:
    page.goto(_url(demo["kiosk"], "staff/login"))


def counter_orders(page: Page, demo: dict) -> None:
    _staff_goto(page, demo, "staff/orders")


def counter_preparation(page: Page, demo: dict) -> None:
    """The first order to prepare, then its « Préparer »."""
    _staff_goto(page, demo, "staff/orders?view=to_prepare")
    page.goto(_first_link(page, r"/staff/orders/o-[^/?#]+$", "an order to prepare"))
    page.get_by_role("link", name=re.compile(r"^\s*(Préparer|Prepare)\s*$")).first.click()
    _expect_url(page, r"/staff/orders/[^/]+/prepare", "an order's preparation")


NEXT_TO_PICK = """() => {
  for (const li of document.querySelectorAll('main li')) {
    const text = li.innerText, count = text.match(/(\\d+)\\s*\\/\\s*(\\d+)/);
    const ean = text.match(/\\b(\\d{13})\\b/);
    if (count && ean && Number(count[1]) < Number(count[2])) return ean[1];
  }
  return null;
}"""


def _prepare_an_order(page: Page, demo: dict) -> str:
    """Prepare the first order to prepare as staff do (each item's barcode scanned, a
    shelf slot, « Commande prête »); its page's address."""
    counter_preparation(page, demo)
    order_page = page.url.rsplit("/prepare", 1)[0]
    for _ in range(60):
        ean = page.evaluate(NEXT_TO_PICK)
        if not ean:
            break
        field = page.get_by_placeholder(re.compile(r"Code-barres|Barcode"))
        field.fill(ean)
        with page.expect_response(lambda r: r.request.method == "POST"):
            field.press("Enter")
        page.wait_for_timeout(200)
    page.locator("input[name=shelf_slot]").fill("A-12")
    with page.expect_response(lambda r: r.request.method == "POST"):
        page.get_by_role("button", name=re.compile(r"^\s*(Commande prête|Ready)\s*$")).click()
    page.wait_for_timeout(300)
    return order_page


def counter_label(page: Page, demo: dict) -> None:
    """A ready order's bag label in its print view (an order prepared for it first)."""
    try:
        page.goto(_prepare_an_order(page, demo))
        label = _first_link(page, r"/staff/orders/[^/]+/label$", "the bag label")
    except Exception as exc:
        raise Missing(f"no bag label's print view after preparing an order: {exc}") from None
    page.goto(label)


def counter_returns(page: Page, demo: dict) -> None:
    _staff_goto(page, demo, "staff/returns")


def counter_sync(page: Page, demo: dict) -> None:
    _staff_goto(page, demo, "staff/status")


COUNTER = Area(
    "counter",
    "Counter: the staff tablet",
    (TABLET,),
    (
        Screen("login", "Staff login (name and PIN)", counter_login),
        Screen("orders", "Click-and-collect orders to prepare", counter_orders),
        Screen("preparation", "Preparing an order", counter_preparation),
        Screen("label", "A ready order's bag label, to print", counter_label),
        Screen("returns", "Returns", counter_returns),
        Screen("sync", "Sync with head office", counter_sync),
    ),
)


# --- Head office (desktop) -----------------------------------------------------------


def hq_login(page: Page, demo: dict) -> None:
    page.goto(_url(demo["hub"], "hq/login"))


def _hq_goto(page: Page, demo: dict, path: str) -> None:
    """Open a head-office page, logging in first when it asks (demo.json's admin)."""
    page.goto(_url(demo["hub"], path))
    if "/hq/login" not in page.url:
        return
    logins = demo["hq_logins"]
    login = next((u for u in logins if u["role"] == "admin"), logins[0])
    page.locator("input[name=email]").fill(login["email"])
    page.locator("input[name=password]").fill(login["password"])
    page.locator("form:has(input[name=password]) [type=submit]").first.click()
    _expect_url(page, r"/hq/(?!login\b)", f"head office's login as {login['email']}")
    page.goto(_url(demo["hub"], path))


def hq_home(page: Page, demo: dict) -> None:
    _hq_goto(page, demo, "hq/")


def hq_promotions(page: Page, demo: dict) -> None:
    _hq_goto(page, demo, "hq/promotions")


def hq_promotion(page: Page, demo: dict) -> None:
    """The demo's first promotion: its form and its banner preview."""
    if not demo["promotions"]:
        raise RuntimeError("the demo has no promotion (demo.json)")
    _hq_goto(page, demo, "hq/" + demo["promotions"][0]["console_url"].split("/hq/", 1)[1])


def hq_promotion_new(page: Page, demo: dict) -> None:
    _hq_goto(page, demo, "hq/promotions/nouvelle")


def hq_fleet(page: Page, demo: dict) -> None:
    _hq_goto(page, demo, "hq/flotte")


def hq_journal(page: Page, demo: dict) -> None:
    _hq_goto(page, demo, "hq/journal")


def hq_users(page: Page, demo: dict) -> None:
    _hq_goto(page, demo, "hq/utilisateurs")


HQ = Area(
    "hq",
    "Head office (desktop)",
    (DESKTOP,),
    (
        Screen("login", "Head-office login", hq_login),
        Screen("home", "Home", hq_home),
        Screen("promotions", "Promotions", hq_promotions),
        Screen("promotion", "A promotion: its form and banner preview", hq_promotion),
        Screen("promotion-new", "A new promotion", hq_promotion_new),
        Screen("fleet", "The fleet of stores", hq_fleet),
        Screen("journal", "The journal: who changed what, when", hq_journal),
        Screen("users", "Head-office users and their roles", hq_users),
    ),
)


# --- The web shop on a phone ---------------------------------------------------------


def shop_home(page: Page, demo: dict) -> None:
    page.goto(demo["shop"])


def shop_category(page: Page, demo: dict) -> None:
    page.goto(demo["shop"])
    page.goto(_first_link(page, r"/shop/rayon/[^/?#]+", "a category"))


def shop_product(page: Page, demo: dict) -> None:
    shop_category(page, demo)
    page.goto(_first_link(page, r"/shop/produit/[^/?#]+", "a product"))


def shop_cart(page: Page, demo: dict) -> None:
    """The demo's first online cart, with its QR in sight (to scan at a kiosk)."""
    if not demo["carts"]:
        raise RuntimeError("the demo has no online cart (demo.json)")
    page.goto(demo["carts"][0]["shop_url"])
    qr = page.get_by_role("img", name=re.compile(r"QR"))
    if qr.count() == 0:
        raise RuntimeError(f"the cart page shows no QR code ({page.url})")
    # The QR's bottom at the screen's bottom: the cart's last lines above it, in sight.
    qr.first.evaluate("el => { el.scrollIntoView({block: 'end'}); window.scrollBy(0, 16); }")


def shop_order(page: Page, demo: dict) -> None:
    """A click-and-collect order ready for pickup, as its customer's link opens it."""
    if not demo["orders"]:
        raise RuntimeError("the demo has no order ready for pickup (demo.json)")
    page.goto(demo["orders"][0]["customer_page"])


SHOP = Area(
    "shop",
    "Web shop on a phone",
    (PHONE,),
    (
        Screen("home", "Home", shop_home),
        Screen("category", "A category", shop_category),
        Screen("product", "A product", shop_product),
        Screen("cart", "Cart with its QR, to scan at a kiosk", shop_cart),
        Screen("order", "An order ready for pickup (the customer's page)", shop_order),
    ),
)

AREAS = (KIOSK, COUNTER, HQ, SHOP)


def demo_facts(manifest: dict) -> dict:
    """What the steps need from demo.json, under short names."""
    store = manifest["stores"][0]
    return {
        "kiosk": store["kiosk_url"],
        "hub": manifest["hub"]["url"],
        "shop": manifest["hub"]["shop_url"],
        "logins": manifest["logins"],
        "hq_logins": manifest["hq"]["logins"],
        "barcodes": store["sample_barcodes"] or manifest["sample_barcodes"],
        "promotions": manifest.get("promotions", []),
        "carts": manifest.get("carts", []),
        "orders": store.get("ready_orders") or manifest.get("ready_orders", []),
    }
