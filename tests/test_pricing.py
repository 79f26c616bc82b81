"""The one pricing function: worked examples, and the property that the hub and a store
price the same cart identically (DESIGN.md, invariant 4).

The property test goes the whole way: promotions are made at the hub by the domain
functions (validation included), published, carried to a store by the real change
feed (hub ``changes_since`` page -> store ``feed.apply_page``), and the rules are read
back from each database; the same random cart must then cost the same cents on both
sides, at random instants including each promotion's first and last moments.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import db as dbmod
from app import feed
from app import promotions as store_promotions
from app.hub import changes
from app.hub import promotions as hub_promotions
from app.pricing import Item, Rule, offers, price_cart, rule_discount, unit_price

from .hub_fixtures import LYON, PARIS, hub_db
from .sync_fixtures import *  # noqa: F403

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

PARIS_TZ = ZoneInfo("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def socks(qty: int, unit: int = 1000, sku: str = "SOCK-1") -> Item:
    return Item(sku, "accessoires", unit, qty)


# --- Worked examples ---------------------------------------------------------------


def test_base_prices_without_rules():
    cart = price_cart([socks(2), Item("BIKE", "velos", 49900, 1)])
    assert cart.total_cents == 2000 + 49900
    assert cart.discount_cents == 0
    assert all(line.promotion_id is None for line in cart.lines)


@pytest.mark.parametrize(
    ("qty", "total"),
    [(1, 1000), (2, 1500), (3, 2500), (4, 3000), (5, 4000)],
)
def test_second_at_half_price(qty, total):
    rule = Rule("pr-2e50", "nth_percent", 50, scope="category", targets=frozenset({"accessoires"}),
                label_fr="2e à -50 %", label_en="2nd at half price")  # fmt: skip
    line = price_cart([socks(qty)], rules=[rule], now=utc(2026, 11, 22)).lines[0]
    assert line.total_cents == total
    assert line.discount_cents == qty * 1000 - total
    assert (line.promotion_id, line.label_fr) == (("pr-2e50", "2e à -50 %") if qty >= 2 else
                                                  (None, ""))  # fmt: skip


def test_third_at_thirty_percent_rounds_half_up_on_the_line():
    rule = Rule("pr-3e", "nth_percent", 30, nth=3)
    # 6 units of 9.95: two discounted units, 2 x 995 x 30 % = 597 cents.
    line = price_cart([socks(6, unit=995)], rules=[rule], now=utc(2026, 1, 1)).lines[0]
    assert line.discount_cents == 597


def test_percent_rounds_half_up_once_per_line():
    rule = Rule("pr-15", "percent", 15)
    now = utc(2026, 1, 1)
    # 10.30 x 15 % = 1.545 €: half up gives 1.55 (banker's rounding would give 1.54).
    assert price_cart([socks(1, unit=1030)], rules=[rule], now=now).lines[0].discount_cents == 155
    # On the line, not per unit: 3 x 10.30 x 15 % = 4.635 € -> 4.64 (3 x 1.55 would be 4.65).
    assert price_cart([socks(3, unit=1030)], rules=[rule], now=now).lines[0].discount_cents == 464


def test_fixed_price_only_when_cheaper():
    now = utc(2026, 1, 1)
    fixed = Rule("pr-fix", "fixed", 1999)
    assert price_cart([socks(2, unit=2999)], rules=[fixed], now=now).total_cents == 3998
    # A "fixed price" above the base price is no promotion: the base price stays.
    line = price_cart([socks(2, unit=1500)], rules=[fixed], now=now).lines[0]
    assert (line.total_cents, line.promotion_id) == (3000, None)


def test_amount_off_never_below_zero():
    rule = Rule("pr-amt", "amount", 1500)
    cart = price_cart([socks(2, unit=1000), socks(1, unit=2500, sku="B")], rules=[rule],
                      now=utc(2026, 1, 1))  # fmt: skip
    assert [line.total_cents for line in cart.lines] == [0, 1000]
    assert cart.total_cents == 1000 and cart.discount_cents == 2000 + 1500


def test_minimum_quantity_counts_units_of_the_line():
    rule = Rule("pr-min3", "percent", 10, min_qty=3)
    now = utc(2026, 1, 1)
    assert price_cart([socks(2)], rules=[rule], now=now).discount_cents == 0
    assert price_cart([socks(3)], rules=[rule], now=now).discount_cents == 300
    # Two lines of two units each do not add up to three.
    two_lines = [socks(2), socks(2, sku="SOCK-2")]
    assert price_cart(two_lines, rules=[rule], now=now).discount_cents == 0


def test_priority_then_best_for_customer_then_id():
    now = utc(2026, 1, 1)
    small_but_first = Rule("pr-z", "percent", 5, priority=10)
    big = Rule("pr-b", "percent", 40, priority=0)
    bigger = Rule("pr-c", "amount", 500, priority=0)
    same_as_bigger = Rule("pr-a", "percent", 50, priority=0)
    item = [socks(1, unit=1000)]
    assert price_cart(item, rules=[big, small_but_first], now=now).lines[0].promotion_id == "pr-z"
    assert price_cart(item, rules=[big, bigger], now=now).lines[0].promotion_id == "pr-c"
    # 50 % of 10 € = 5 € off, as much as "pr-c": the smaller id wins, in any order.
    for rules in ([bigger, same_as_bigger], [same_as_bigger, bigger]):
        assert price_cart(item, rules=rules, now=now).lines[0].promotion_id == "pr-a"


def test_scope_and_stores():
    now = utc(2026, 1, 1)
    by_sku = Rule("pr-sku", "percent", 10, scope="sku", targets=frozenset({"SOCK-2"}))
    lyon_only = Rule("pr-lyon", "percent", 20, stores=frozenset({LYON}))
    cart = [socks(1), socks(1, sku="SOCK-2")]
    assert [ln.discount_cents for ln in price_cart(cart, rules=[by_sku], now=now).lines] == [0, 100]
    assert price_cart(cart, rules=[lyon_only], store_id=LYON, now=now).discount_cents == 400
    assert price_cart(cart, rules=[lyon_only], store_id=PARIS, now=now).discount_cents == 0
    # The web price (no store) gets no store-only promotion.
    assert price_cart(cart, rules=[lyon_only], store_id=None, now=now).discount_cents == 0


def test_unit_price_and_offers_for_a_product_page():
    now = utc(2026, 1, 1)
    half = Rule("pr-2e", "nth_percent", 50)
    tenth = Rule("pr-10", "percent", 10, min_qty=3)
    item = socks(7)
    line = unit_price(item, [half, tenth], now=now)
    assert (line.qty, line.total_cents, line.promotion_id) == (1, 1000, None)
    # Nothing off one unit, but the page can still say "2e à -50 %".
    assert [r.id for r in offers(item, [half, tenth], now=now)] == ["pr-2e", "pr-10"]


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        price_cart([socks(1)], rules=[Rule("pr-x", "percent", 10)], now=datetime(2026, 1, 1))


def test_discount_is_zero_for_an_unknown_kind():
    assert rule_discount(Rule("pr-new", "bogo_plus", 50), socks(4)) == 0


# --- Scheduling in Europe/Paris, through the hub's validation ------------------------


@pytest.fixture(scope="module")
def catalog_hub(hub_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """A module's own hub database (seeded catalog and stores)."""
    data = tmp_path_factory.mktemp("pricing-hub") / "hub"
    shutil.copytree(hub_template, data)
    db = hub_db(data)
    yield db
    db.close()


def _promotion(db, **overrides) -> dict:
    fields = {
        "title_fr": "Soldes",
        "kind": "percent",
        "value": 20,
        "scope": "all",
        "starts_local": "2026-03-28T20:00",
        "ends_local": "2026-03-29T08:00",
        "timezone": "Europe/Paris",
        **overrides,
    }
    return hub_promotions.create(db, fields, "test")


def test_schedule_across_spring_forward(catalog_hub):
    # Paris goes from UTC+1 to UTC+2 at 02:00 on 29 March 2026.
    row = _promotion(catalog_hub)
    assert (row["starts_at"], row["ends_at"]) == ("2026-03-28T19:00:00Z", "2026-03-29T06:00:00Z")
    hub_promotions.publish(catalog_hub, row["id"], "test", now=utc(2026, 3, 1))
    item = [socks(1)]

    def price(at: datetime) -> int:
        rules = hub_promotions.active_rules(catalog_hub, LYON, at)
        return price_cart(item, rules=rules, store_id=LYON, now=at).total_cents

    assert price(utc(2026, 3, 28, 18, 59, 59)) == 1000
    assert price(utc(2026, 3, 28, 19)) == 800  # 20:00 in Paris: it starts
    assert price(utc(2026, 3, 29, 5, 59, 59, 999999)) == 800  # 07:59:59.999 in Paris
    assert price(utc(2026, 3, 29, 6)) == 1000  # 08:00 in Paris: it has ended
    hub_promotions.unpublish(catalog_hub, row["id"], "test")


def test_a_time_skipped_by_the_clocks_is_refused(catalog_hub):
    with pytest.raises(hub_promotions.PromotionError) as err:
        _promotion(catalog_hub, starts_local="2026-03-29T02:30")
    assert "n'existe pas" in err.value.fields["starts_local"]


def test_a_time_that_happens_twice_is_the_first(catalog_hub):
    # 02:30 happens twice on 25 October 2026 in Paris: the first is 00:30 UTC (UTC+2).
    row = _promotion(catalog_hub, starts_local="2026-10-25T02:30", ends_local="2026-10-25T03:30")
    assert (row["starts_at"], row["ends_at"]) == ("2026-10-25T00:30:00Z", "2026-10-25T02:30:00Z")


def test_end_before_start_is_refused(catalog_hub):
    with pytest.raises(hub_promotions.PromotionError) as err:
        _promotion(catalog_hub, starts_local="2026-12-01T10:00", ends_local="2026-12-01T09:00")
    assert err.value.fields == {"ends_local": "La fin doit être après le début."}


# --- Hub and store price the same cart identically ---------------------------------


@pytest.fixture(scope="module")
def hub_and_store(hub_template: Path, synced_store_template: Path,
                  tmp_path_factory: pytest.TempPathFactory):  # fmt: skip
    """A hub database and a store (Lyon) database that did its first sync from a copy of
    the same hub: the store follows this hub's feed from where it stands."""
    base = tmp_path_factory.mktemp("pricing-sides")
    shutil.copytree(hub_template, base / "hub")
    shutil.copytree(synced_store_template, base / "store")
    hub = hub_db(base / "hub")
    store = dbmod.connect(dbmod.db_path(base / "store"))
    skus = [r[0] for r in hub.execute("SELECT sku FROM variants ORDER BY sku LIMIT 120")]
    refs = [r[0] for r in hub.execute("SELECT ref FROM products ORDER BY ref LIMIT 20")]
    slugs = [r[0] for r in hub.execute("SELECT slug FROM categories ORDER BY slug")]
    stores = [r[0] for r in hub.execute("SELECT id FROM stores ORDER BY id")]
    yield {"hub": hub, "store": store, "skus": skus, "refs": refs, "slugs": slugs,
           "stores": stores}  # fmt: skip
    hub.close()
    store.close()


def sync(hub, store) -> int:
    """Carry the hub's new changes to the store through the real feed appliers."""
    from app import syncstate

    applied = 0
    while True:
        page = changes.changes_since(hub, LYON, int(syncstate.cursor(store)))
        counts = feed.apply_page(store, page, LYON)
        assert counts["failed"] == 0, counts
        applied += counts["applied"]
        if not page["more"]:
            return applied


BASE_DAY = datetime(2026, 3, 27, 0, 0)  # two days before Paris springs forward


@st.composite
def promotion_fields(draw, world) -> dict:
    kind = draw(st.sampled_from(["percent", "amount", "fixed", "nth_percent"]))
    if kind in ("percent", "nth_percent"):
        value = draw(st.integers(1, 100))
    elif kind == "amount":
        value = draw(st.integers(1, 20000))
    else:
        value = draw(st.integers(0, 20000))
    scope = draw(st.sampled_from(["all", "category", "sku"]))
    if scope == "category":
        targets = draw(st.lists(st.sampled_from(world["slugs"]), min_size=1, max_size=3))
    elif scope == "sku":
        targets = draw(
            st.lists(st.sampled_from(world["skus"] + world["refs"]), min_size=1, max_size=6)
        )
    else:
        targets = []
    start = BASE_DAY + timedelta(minutes=15 * draw(st.integers(0, 4 * 24 * 4)))
    end = start + timedelta(minutes=15 * draw(st.integers(1, 4 * 24 * 3)))
    stores = draw(st.one_of(st.none(), st.lists(st.sampled_from(world["stores"]), min_size=1)))
    return {
        "title_fr": draw(st.sampled_from(["Soldes", "2e à -50 %", "Prix choc", "Été"])),
        "title_en": draw(st.sampled_from(["", "Sale", "Deal"])),
        "kind": kind,
        "value": value,
        "nth": draw(st.integers(2, 4)),
        "scope": scope,
        "targets": targets,
        "min_qty": draw(st.sampled_from([1, 1, 2, 3])),
        "priority": draw(st.sampled_from([0, 0, 1, 5])),
        "starts_local": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_local": end.strftime("%Y-%m-%dT%H:%M"),
        "timezone": "Europe/Paris",
        "stores": stores,
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_hub_and_store_price_every_cart_the_same(hub_and_store, data):
    world = hub_and_store
    hub, store = world["hub"], world["store"]
    # Start each example from no promotion in force on either side.
    for row in hub_promotions.list_promotions(hub):
        if row["status"] == "published":
            hub_promotions.unpublish(hub, row["id"], "test")
    made = []
    for fields in data.draw(st.lists(promotion_fields(world), min_size=1, max_size=5)):
        try:
            row = hub_promotions.create(hub, fields, "test")
        except hub_promotions.PromotionError as exc:
            # Only a local time skipped by the clocks may be refused here.
            assert set(exc.fields) <= {"starts_local", "ends_local"}, exc.fields
            continue
        fate = data.draw(st.sampled_from(["publish", "publish", "draft", "withdrawn"]))
        if fate != "draft":
            hub_promotions.publish(hub, row["id"], "test", now=utc(2026, 1, 1))
        if fate == "withdrawn":
            hub_promotions.unpublish(hub, row["id"], "test")
        made.append(hub_promotions.get_promotion(hub, row["id"]))
    sync(hub, store)

    lines = data.draw(
        st.lists(
            st.tuples(st.sampled_from(world["skus"]), st.integers(1, 7)),
            min_size=1,
            max_size=6,
            unique_by=lambda line: line[0],
        )  # fmt: skip
    )
    edges = [
        instant + offset
        for row in made
        for instant in (
            datetime.fromisoformat(row["starts_at"].replace("Z", "+00:00")),
            datetime.fromisoformat(row["ends_at"].replace("Z", "+00:00")),
        )  # fmt: skip
        for offset in (timedelta(0), timedelta(microseconds=-1), timedelta(seconds=1))
    ]
    anywhen = st.datetimes(
        min_value=datetime(2026, 3, 26), max_value=datetime(2026, 4, 5), timezones=st.just(UTC)
    )
    now = data.draw(st.sampled_from(edges) | anywhen if edges else anywhen)

    hub_items = store_promotions.cart_items(hub, lines)
    store_items = store_promotions.cart_items(store, lines)
    assert hub_items == store_items
    hub_rules = hub_promotions.active_rules(hub, LYON, now)
    store_rules = store_promotions.active_rules(store, now)
    assert sorted(hub_rules, key=lambda r: r.id) == sorted(store_rules, key=lambda r: r.id)
    hub_price = price_cart(hub_items, rules=hub_rules, store_id=LYON, now=now)
    store_price = price_cart(store_items, rules=store_rules, store_id=LYON, now=now)
    assert hub_price == store_price
    assert store_price.total_cents == sum(line.total_cents for line in store_price.lines)
    assert all(0 <= line.total_cents <= line.unit_cents * line.qty for line in store_price.lines)


def test_a_published_promotion_really_reaches_the_store_price(hub_and_store):
    """The pipeline of the property test carries rules (so its equality is not 0 == 0)."""
    hub, store = hub_and_store["hub"], hub_and_store["store"]
    sku = hub_and_store["skus"][0]
    row = hub_promotions.create(hub, {
        "title_fr": "Prix choc", "kind": "percent", "value": 30, "scope": "sku",
        "targets": [sku], "priority": 999, "starts_local": "2026-06-01T09:00",
        "ends_local": "2026-06-02T09:00", "stores": [LYON],
    }, "test")  # fmt: skip
    hub_promotions.publish(hub, row["id"], "test", now=utc(2026, 1, 1))
    sync(hub, store)
    at = utc(2026, 6, 1, 12)
    items = store_promotions.cart_items(store, [(sku, 2)])
    priced = price_cart(items, rules=store_promotions.active_rules(store, at), store_id=LYON,
                        now=at)  # fmt: skip
    assert priced.lines[0].promotion_id == row["id"]
    assert priced.discount_cents == (items[0].unit_cents * 2 * 30 + 50) // 100
    # Unpublished at the hub: gone from the store's price at once.
    hub_promotions.unpublish(hub, row["id"], "test")
    sync(hub, store)
    assert all(r.id != row["id"] for r in store_promotions.active_rules(store, at))
