"""Promotions: validation and bad input at the hub, image cleaning, the feed to stores,
the store's own evaluation of the schedule, and the console over HTTP."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from PIL import ExifTags, Image

from app.core import db as dbmod
from app.hub.domain import changes, promo_images
from app.hub.domain import promotions as promo
from app.hub.domain.promotion_validation import PromotionError
from app.store.domain import promotions as store_promotions
from app.store.migrations import migrate
from app.store.sync import feed, state
from app.web.i18n import format_price

from .dates import local, paris_day, z
from .hq_helpers import csrf_token, logged_in, make_user
from .hub_fixtures import LYON, PARIS, _copy_hub, drop_hub_copy, hub_db
from .sync_fixtures import *  # noqa: F403

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

# The promotion under test runs from a week ahead to a month ahead, read off the clock.
START = paris_day(7, 9)
END = paris_day(30, 19, 30)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def hub(hub_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """This module's own hub database, and its data directory (for images)."""
    data = _copy_hub(hub_template, tmp_path_factory.mktemp("promo-hub") / "hub")
    db = hub_db(data)
    db.data_dir = data  # type: ignore[attr-defined]
    yield db
    db.close()
    drop_hub_copy(data)


@pytest.fixture(scope="module")
def sku(hub) -> str:
    return hub.execute("SELECT sku FROM variants ORDER BY sku LIMIT 1").fetchone()[0]


def fields(**overrides) -> dict:
    return {
        "title_fr": "-20 % sur la randonnée",
        "title_en": "20% off hiking",
        "text_fr": "Chaussures et vestes",
        "kind": "percent",
        "value": 20,
        "scope": "category",
        "targets": ["chaussures-randonnee"],
        "starts_local": local(START),
        "ends_local": local(END),
        "timezone": "Europe/Paris",
        **overrides,
    }


def refused(hub, **overrides) -> dict[str, str]:
    with pytest.raises(PromotionError) as err:
        promo.create(hub, fields(**overrides), "test")
    return err.value.fields


def jpeg(size=(900, 300), colour="red", **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", **save)
    return buf.getvalue()


def gps_jpeg() -> bytes:
    """A phone photo: maker, GPS position and a comment in its metadata."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 7.0)})
    data = jpeg(exif=exif, comment=b"chez moi")
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # really there
    return data


# --- Validation --------------------------------------------------------------------


def test_a_valid_promotion_is_a_draft_with_its_history(hub):
    row = promo.create(hub, fields(), "marketing@siege.test")
    assert re.fullmatch(r"pr-[0-9a-z]{12}", row["id"])
    assert row["status"] == "draft" and row["revision"] == 1
    assert (row["starts_at"], row["ends_at"]) == (z(START), z(END))
    [entry] = promo.history(hub, row["id"])
    assert (entry["action"], entry["actor"]) == ("created", "marketing@siege.test")
    assert entry["changes"]["title_fr"] == [None, "-20 % sur la randonnée"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"value": -10}, "value", "ne peut pas être négative"),
        ({"value": "-10"}, "value", "ne peut pas être négative"),
        ({"value": 120}, "value", "ne peut pas dépasser 100 %"),
        ({"value": "150 %"}, "value", "ne peut pas dépasser 100 %"),
        ({"value": 0}, "value", "entre 1 et 100"),
        ({"value": 12.5}, "value", "nombre entier"),
        ({"kind": "amount", "value": -500}, "value", "ne peut pas être négative"),
        ({"kind": "fixed", "value": -1}, "value", "ne peut pas être négatif"),
        ({"kind": "bogus"}, "kind", "inconnu"),
        ({"ends_local": local(START - DAY)}, "ends_local", "après le début"),
        ({"ends_local": local(START)}, "ends_local", "après le début"),
        ({"starts_local": "demain"}, "starts_local", "Date et heure attendues"),
        ({"starts_local": local(START) + "+01:00"}, "starts_local", "sans fuseau"),
        ({"timezone": "Mars/Olympus"}, "timezone", "inconnu"),
        ({"scope": "sku", "targets": ["NOPE-123"]}, "targets", "inconnu : NOPE-123"),
        ({"targets": ["planches-a-voile"]}, "targets", "Catégorie inconnue"),
        ({"targets": []}, "targets", "au moins une catégorie"),
        ({"stores": ["st-nowhere"]}, "stores", "Magasin inconnu : st-nowhere"),
        ({"stores": []}, "stores", "au moins un magasin"),
        ({"title_fr": ""}, "title_fr", "Obligatoire"),
        ({"title_fr": "x" * 81}, "title_fr", "80 caractères au plus"),
        ({"text_fr": "x" * 281}, "text_fr", "280 caractères au plus"),
        ({"title_fr": "<script>alert(1)</script>Soldes"}, "title_fr", "pas de balises HTML"),
        ({"title_en": "<b>Sale</b>"}, "title_en", "pas de balises HTML"),
        ({"text_fr": "<img src=x onerror=alert(1)>"}, "text_fr", "pas de balises HTML"),
        ({"title_fr": "Soldes &lt;b&gt;"}, "title_fr", "pas de balises HTML"),
        ({"title_fr": "Sol\u0000des"}, "title_fr", "Caractères de contrôle"),
        ({"title_fr": "Soldes\u202e"}, "title_fr", "invisibles"),
        ({"title_fr": "Soldes\nd'hiver"}, "title_fr", "Caractères de contrôle"),
        ({"min_qty": 0}, "min_qty", "entre 1 et 99"),
        ({"priority": -1}, "priority", "entre 0 et 1000"),
        ({"kind": "nth_percent", "nth": 1}, "nth", "entre 2 et 10"),
    ],
)
def test_bad_input_is_refused_with_a_message(hub, overrides, field, message):
    errors = refused(hub, **overrides)
    assert field in errors, errors
    assert message in errors[field]


def test_every_field_at_fault_is_named_at_once(hub):
    errors = refused(
        hub, title_fr="<b>x</b>", value=-5, ends_local=local(START - 300 * DAY), stores=["st-zzz"]
    )
    assert set(errors) == {"title_fr", "value", "ends_local", "stores"}


def test_plain_text_with_lone_signs_is_fine(hub):
    row = promo.create(
        hub, fields(title_fr="Moins de 10 € > tout", text_fr="A < B\nsur 2 lignes"), "test"
    )
    assert row["title_fr"] == "Moins de 10 € > tout"
    assert row["text_fr"] == "A < B\nsur 2 lignes"


def test_product_refs_stand_for_all_their_variants(hub):
    ref, n = hub.execute(
        "SELECT p.ref, count(*) FROM products p JOIN variants v ON v.product_pk = p.pk "
        "GROUP BY p.pk HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    row = promo.create(hub, fields(scope="sku", targets=f"{ref}, {ref}"), "test")
    assert len(row["targets"]) == n and all(t.startswith(ref) for t in row["targets"])


def test_amount_larger_than_a_price_is_allowed_and_floors_at_zero(hub, sku):
    # Defined in app/core/pricing.py: the unit becomes free, never negative.
    row = promo.create(
        hub, fields(kind="amount", value=999_999, scope="sku", targets=[sku]), "test"
    )
    assert row["value"] == 999_999


# --- Publishing through the feed ---------------------------------------------------


def feed_since(hub, seq: int) -> list[dict]:
    return [c for c in changes.changes_since(hub, LYON, seq)["changes"] if c["kind"] == "promotion"]


def test_drafts_stay_at_the_hub_and_publishing_reaches_every_store(hub):
    seq = changes.last_seq(hub)
    row = promo.create(hub, fields(stores=[PARIS]), "a@siege.test")
    promo.update(hub, row["id"], {"value": 25}, "a@siege.test")
    assert feed_since(hub, seq) == []
    promo.publish(hub, row["id"], "b@siege.test", now=START - 30 * DAY)
    [change] = feed_since(hub, seq)
    # Addressed to every store (store_id NULL): each store filters on "stores" itself.
    assert hub.execute(
        "SELECT store_id FROM changes WHERE seq = ?", [change["seq"]]
    ).fetchone() == (None,)
    data = change["data"]
    assert (data["id"], data["status"], data["stores"]) == (row["id"], "published", [PARIS])
    assert data["rule"] == {
        "kind": "percent",
        "value": 25,
        "nth": 2,
        "scope": "category",
        "targets": ["chaussures-randonnee"],
        "min_qty": 1,
    }
    assert (data["starts_at"], data["timezone"]) == (z(START), "Europe/Paris")
    # An edit of a published promotion goes out again; unpublishing too.
    promo.update(hub, row["id"], {"title_fr": "-25 % rando"}, "a@siege.test")
    promo.unpublish(hub, row["id"], "c@siege.test")
    statuses = [(c["data"]["status"], c["data"]["revision"]) for c in feed_since(hub, seq)]
    assert statuses == [("published", 3), ("published", 4), ("unpublished", 5)]
    actions = [(h["action"], h["actor"]) for h in promo.history(hub, row["id"])]
    assert actions == [
        ("unpublished", "c@siege.test"),
        ("updated", "a@siege.test"),
        ("published", "b@siege.test"),
        ("updated", "a@siege.test"),
        ("created", "a@siege.test"),
    ]
    assert promo.history(hub, row["id"])[1]["changes"] == {
        "title_fr": ["-20 % sur la randonnée", "-25 % rando"]
    }


def test_an_ended_promotion_cannot_be_published(hub):
    row = promo.create(hub, fields(), "test")
    with pytest.raises(PromotionError) as err:
        promo.publish(hub, row["id"], "test", now=END + 8 * DAY)
    assert "déjà terminée" in err.value.message
    assert promo.get_promotion(hub, row["id"])["status"] == "draft"


def test_an_invalid_update_changes_nothing(hub):
    row = promo.create(hub, fields(), "test")
    with pytest.raises(PromotionError):
        promo.update(hub, row["id"], {"value": 200, "title_fr": "Nouveau"}, "test")
    assert promo.get_promotion(hub, row["id"]) == row


# --- Images ------------------------------------------------------------------------


def test_gps_and_every_other_metadata_are_stripped(hub):
    row = promo.create(hub, fields(), "test")
    row = promo.set_image(hub, hub.data_dir, row["id"], gps_jpeg(), "test")
    assert row["image_hash"] and set(row["image_formats"]) == {"banner", "tile"}
    for name, (width, height) in promo_images.FORMATS.items():
        path = promo.image_file(hub.data_dir, row, name)
        blob = path.read_bytes()
        with Image.open(path) as stored:
            assert (stored.format, stored.size) == ("WEBP", (width, height))
            assert not stored.getexif()
            assert not {"exif", "xmp", "icc_profile", "comment"} & set(stored.info)
        assert b"Exif" not in blob and b"PhoneMaker" not in blob and b"chez moi" not in blob


def test_exif_orientation_is_applied_before_cropping(tmp_path):
    # Left half red, right half blue, stored upside down (orientation 3 = turn 180°).
    img = Image.new("RGB", (960, 300), "red")
    img.paste(Image.new("RGB", (480, 300), "blue"), (480, 0))
    exif = Image.Exif()
    exif[0x0112] = 3
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif)
    banner = Image.open(io.BytesIO(promo_images.process(buf.getvalue())["banner"])).convert("RGB")
    left, right = banner.getpixel((50, 300)), banner.getpixel((1870, 300))
    assert left[2] > 200 and left[0] < 60  # blue on the left once upright
    assert right[0] > 200 and right[2] < 60


@pytest.mark.parametrize(
    ("blob", "code", "words"),
    [
        (b"", "empty", "vide"),
        (b"%PDF-1.4 this is not an image at all", "not_an_image", "n'est pas une image"),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "not_an_image",
            "n'est pas une image",
        ),
        (jpeg()[:400], "not_an_image", "n'est pas une image"),  # truncated
        (jpeg(size=(300, 100)), "too_small", "au moins 600 × 200"),
        (b"\xff" * (promo_images.MAX_BYTES + 1), "too_large", "dépasse 10 Mo"),
    ],
)
def test_bad_uploads_are_refused_with_a_message(blob, code, words):
    with pytest.raises(promo_images.ImageRejected) as err:
        promo_images.process(blob)
    assert err.value.code == code
    assert words in err.value.message


def test_gif_is_not_an_accepted_format():
    buf = io.BytesIO()
    Image.new("RGB", (900, 300), "red").save(buf, "GIF")
    with pytest.raises(promo_images.ImageRejected) as err:
        promo_images.process(buf.getvalue())
    assert err.value.code == "format" and "GIF" in err.value.message


@pytest.mark.parametrize("size", [(9000, 5000), (20000, 20000)])
def test_a_decompression_bomb_is_refused_before_decoding(size):
    # One colour: a few hundred KB of PNG, 45 MP or 400 MP (1.2 GB) once decoded.
    buf = io.BytesIO()
    Image.new("1", size).save(buf, "PNG")
    assert len(buf.getvalue()) < promo_images.MAX_BYTES
    with pytest.raises(promo_images.ImageRejected) as err:
        promo_images.process(buf.getvalue())
    assert err.value.code == "too_many_pixels"


# --- The store: feed applier, local schedule, kiosk version -------------------------


@pytest.fixture
def store(tmp_path):
    """An empty store database that knows it is Lyon."""
    db = dbmod.connect(dbmod.db_path(tmp_path / "store"))
    migrate(db)
    with dbmod.write(db):
        db.execute("INSERT INTO stores (id, name, is_self) VALUES (?, 'Lyon', 1)", [LYON])
    yield db
    db.close()


def wire(**overrides) -> dict:
    data = {
        "id": "pr-abcdefabcdef",
        "revision": 2,
        "status": "published",
        "title": {"fr": "Soldes", "en": "Sale"},
        "text": {"fr": "", "en": ""},
        "rule": {
            "kind": "percent",
            "value": 20,
            "nth": 2,
            "scope": "all",
            "targets": [],
            "min_qty": 1,
        },
        "priority": 0,
        "starts_at": z(START),
        "ends_at": z(END),
        "timezone": "Europe/Paris",
        "stores": None,
        "image": None,
    }
    data.update(overrides)
    return data


def apply(store, *datas: dict) -> dict:
    page = {
        "changes": [
            {"seq": i + 1, "kind": "promotion", "key": d.get("id"), "data": d}
            for i, d in enumerate(datas)
        ],
        "cursor": str(len(datas)),
        "more": False,
    }
    return feed.apply_page(store, page, LYON)


def test_the_store_ends_a_promotion_on_time_by_its_own_clock(store):
    apply(store, wire())
    # No hub involved from here: only the store's database and its clock.
    assert store_promotions.active_rules(store, START - timedelta(seconds=1)) == []
    [rule] = store_promotions.active_rules(store, START)
    assert (rule.id, rule.value) == ("pr-abcdefabcdef", 20)
    assert store_promotions.active_rules(store, END - timedelta(seconds=1))
    assert store_promotions.active_rules(store, END) == []


def test_the_kiosk_version_follows_the_clock_not_only_the_rows(store, tmp_path):
    apply(store, wire())
    before = store_promotions.version(store, START - DAY, tmp_path)
    assert store_promotions.version(store, START - timedelta(hours=1), tmp_path) == before
    during = store_promotions.version(store, START + DAY, tmp_path)
    after = store_promotions.version(store, END + DAY, tmp_path)
    # Before and after, nothing is in force: the same set, the same version; during, not.
    assert during != before and after == before


def test_only_the_newest_revision_is_kept_and_other_stores_are_filtered(store):
    apply(store, wire(revision=5, rule={**wire()["rule"], "value": 30}))
    apply(store, wire(revision=3))  # late, older: ignored
    [rule] = store_promotions.active_rules(store, START + DAY)
    assert rule.value == 30
    apply(store, wire(revision=6, stores=[PARIS]))
    assert store_promotions.active_rules(store, START + DAY) == []
    apply(store, wire(revision=7, stores=[PARIS, LYON]))
    assert store_promotions.active_rules(store, START + DAY)
    apply(store, wire(revision=8, status="unpublished"))
    assert store_promotions.active_rules(store, START + DAY) == []


def test_bad_promotion_data_never_reaches_a_kiosk_page(store):
    counts = apply(
        store,
        wire(id="pr-badkind00001", rule={"kind": "free_bike", "value": 1}),
        wire(id="pr-badvalue0001", rule={"kind": "percent", "value": "lots"}),
        wire(id="pr-badstores001", stores="st-lyon"),
        wire(id="../../etc/passwd"),
        wire(id="pr-badtime00001", ends_at="someday"),
        wire(
            id="pr-ok0000000001",
            title={"fr": "Sol\u0000des\u202e" + "x" * 200, "en": 5},
            image={"hash": "../x", "formats": {}},
        ),
    )
    assert (counts["failed"], counts["applied"]) == (5, 1)
    [banner] = store_promotions.banners(store, START + DAY, "en")
    assert banner["id"] == "pr-ok0000000001"
    assert "\u0000" not in banner["title"] and "\u202e" not in banner["title"]
    assert len(banner["title"]) <= store_promotions.TITLE_MAX
    assert banner["image"] is None


# --- The console over HTTP -----------------------------------------------------------


@pytest.fixture(scope="module")
def console(module_hub):
    """A marketing user logged in to a real hub."""
    user = make_user(module_hub.data, "marketing")
    return module_hub, logged_in(module_hub.url, user)


def form(session, base: str, **overrides) -> dict:
    return {
        "csrf_token": csrf_token(session, f"{base}/hq/promotions/nouvelle"),
        "title_fr": "Prix doux",
        "title_en": "Sweet prices",
        "text_fr": "",
        "text_en": "",
        "kind": "percent",
        "value": "15",
        "nth": "2",
        "scope": "all",
        "min_qty": "1",
        "priority": "0",
        "starts_local": local(START),
        "ends_local": local(END),
        "timezone": "Europe/Paris",
        "stores_mode": "all",
        **overrides,
    }


def post_form(session, base: str, data: dict, files: dict | None = None) -> requests.Response:
    return session.post(
        f"{base}/hq/promotions/nouvelle", data=data, files=files, allow_redirects=False, timeout=30
    )


def test_console_refuses_a_script_title_with_a_message(console):
    hub, session = console
    r = post_form(session, hub.url, form(session, hub.url, title_fr="<script>alert(1)</script>"))
    assert r.status_code == 422
    assert "pas de balises HTML" in r.text
    assert "<script>alert(1)</script>" not in r.text  # shown back escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_console_refuses_a_non_image_and_keeps_the_form(console):
    hub, session = console
    r = post_form(
        session,
        hub.url,
        form(session, hub.url, title_fr="Avec un PDF"),
        files={"image": ("tarifs.pdf", b"%PDF-1.4 nope", "application/pdf")},
    )
    assert r.status_code == 422
    assert "pas une image lisible" in r.text
    assert 'value="Avec un PDF"' in r.text
    # Nothing was created.
    assert "Avec un PDF" not in session.get(f"{hub.url}/hq/promotions", timeout=10).text


def test_console_says_a_50_mb_upload_is_too_large(console):
    hub, session = console
    big = b"\xff\xd8\xff" + b"\0" * (50 * 1024 * 1024)
    r = post_form(
        session, hub.url, form(session, hub.url), files={"image": ("photo.jpg", big, "image/jpeg")}
    )
    assert r.status_code == 413
    assert r.headers["Content-Type"].startswith("text/html")
    assert "dépasse 10 Mo" in r.text and "rien n'a été enregistré" in r.text


def test_console_refuses_an_11_mb_image_that_fits_in_the_request(console):
    hub, session = console
    big = b"\xff" * (promo_images.MAX_BYTES + 1024)
    r = post_form(
        session, hub.url, form(session, hub.url), files={"image": ("photo.jpg", big, "image/jpeg")}
    )
    assert r.status_code == 422
    assert "dépasse 10 Mo" in r.text


def test_console_creates_publishes_previews_and_audits(console):
    hub, session = console
    r = post_form(
        session,
        hub.url,
        form(session, hub.url, kind="amount", value="5,50"),
        files={"image": ("ete.jpg", gps_jpeg(), "image/jpeg")},
    )
    assert r.status_code == 302, r.text[:2000]
    page_url = hub.url + r.headers["Location"]
    pid = page_url.rsplit("/", 1)[1]
    page = session.get(page_url, timeout=10)
    assert "Brouillon" in page.text and 'value="5,50"' in page.text
    token = csrf_token(session, page_url)
    publish = session.post(f"{page_url}/publier", data={"csrf_token": token}, timeout=10)
    assert "Promotion publiée" in publish.text
    preview = session.get(f"{page_url}/apercu", timeout=10)
    assert 'class="promo promo-has-image"' in preview.text and "Prix doux" in preview.text
    assert "-5,50" in preview.text
    image = re.search(r'src="(/hq/promotions/[^"]+/image/banner[^"]*)"', preview.text).group(1)
    served = session.get(hub.url + image.replace("&amp;", "&"), timeout=10)
    assert served.headers["Content-Type"] == "image/webp"
    assert b"Exif" not in served.content
    english = session.get(f"{page_url}/apercu?lang=en", timeout=10)
    assert "Sweet prices" in english.text and "-€5.50" in english.text
    # Without the CSRF token, nothing is published or unpublished.
    r = session.post(f"{page_url}/depublier", data={}, timeout=10)
    assert r.status_code == 400
    db = hub_db(hub.data)
    try:
        assert db.execute("SELECT status FROM promotions WHERE id = ?", [pid]).fetchone() == (
            "published",
        )
        rows = db.execute("SELECT action, detail FROM hq_audit WHERE action LIKE 'promotion.%'")
        actions = [json.loads(d)["promotion_id"] + " " + a for a, d in rows]
    finally:
        db.close()
    assert f"{pid} promotion.created" in actions and f"{pid} promotion.published" in actions


def test_console_is_for_marketing_and_admins(module_hub):
    ops = logged_in(module_hub.url, make_user(module_hub.data, "operations"))
    assert ops.get(f"{module_hub.url}/hq/promotions", timeout=10).status_code == 403
    admin = logged_in(module_hub.url, make_user(module_hub.data, "admin"))
    assert admin.get(f"{module_hub.url}/hq/promotions", timeout=10).status_code == 200
    anonymous = requests.get(f"{module_hub.url}/hq/promotions", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302 and "/hq/login" in anonymous.headers["Location"]


def test_store_image_route_is_signed(module_hub):
    r = requests.get(f"{module_hub.url}/api/v1/promotions/pr-x/image/banner", timeout=10)
    assert r.status_code == 401


def test_store_sync_fetches_images_for_offline_kiosks(module_hub, synced_store, console):
    """A store's pull fetches the banner images of published promotions into its disk."""
    from app.store.sync.client import HubClient
    from app.store.sync.pull import pull_once

    hub, session = console
    db = hub_db(hub.data)
    try:
        row = promo.create(db, fields(title_fr="Avec image"), "test")
        promo.set_image(db, hub.data, row["id"], jpeg(colour="green"), "test")
        promo.publish(db, row["id"], "test")
    finally:
        db.close()
    store_db = dbmod.connect(dbmod.db_path(synced_store))
    try:
        from .hub_fixtures import store_secrets

        client = HubClient(hub.url, LYON, store_secrets(hub.data)[LYON])
        pull_once(store_db, client, own_store_id=LYON)
        assert store_promotions.missing_images(store_db, synced_store) == []
        hub_conn = hub_db(hub.data)
        row = promo.get_promotion(hub_conn, row["id"])
        hub_conn.close()
        for name in ("banner", "tile"):
            cached = store_promotions.image_path(synced_store, row["id"], row["image_hash"], name)
            assert cached.read_bytes() == promo.image_file(hub.data, row, name).read_bytes()
        assert state.cursor(store_db) != "0"
    finally:
        store_db.close()


def test_a_promotion_ends_on_time_in_an_offline_store(hub_server, synced_store, server_factory):
    """Synced once, then cut off from the hub: the store still starts and ends the
    promotion by its own clock, banner image included (served from its own disk)."""
    from .conftest import run_kiosk
    from .sync_fixtures import store_env

    closing = paris_day(7, 18)  # a one-day promotion, 09:00 to 18:00 in Paris
    db = hub_db(hub_server.data)
    try:
        ref, sku, base = db.execute(
            "SELECT p.ref, v.sku, p.price_cents FROM variants v JOIN products p "
            "ON p.pk = v.product_pk WHERE v.price_cents IS NULL ORDER BY v.sku LIMIT 1"
        ).fetchone()
        row = promo.create(
            db,
            fields(
                title_fr="Journée rando",
                scope="sku",
                targets=[sku],
                starts_local=local(START),
                ends_local=local(closing),
            ),
            "test",
        )
        promo.set_image(db, hub_server.data, row["id"], jpeg(colour="navy"), "test")
        promo.publish(db, row["id"], "test")
    finally:
        db.close()
    done = run_kiosk(
        "sync",
        "--data",
        str(synced_store),
        "--once",
        env=store_env(hub_server.url, hub_server.data),
    )
    assert done.returncode == 0, done.stderr
    hub_server.stop()

    def kiosk_at(instant: str) -> tuple[str, str, requests.Response | None]:
        # No hub configured at all: the store is on its own, with its clock at `instant`.
        server = server_factory(synced_store, {"KIOSK_FAKE_NOW": instant})
        try:
            attract = requests.get(server.url + "/", timeout=10).text
            price = requests.get(f"{server.url}/product/{ref}?sku={sku}", timeout=10).text
            src = re.search(r'<img class="promo-image" src="([^"]+)"', attract)
            image = requests.get(server.url + src.group(1), timeout=10) if src else None
        finally:
            server.stop()
        return attract, price, image

    attract, price, image = kiosk_at(z(closing - timedelta(seconds=1)))  # 17:59:59 in Paris
    assert "Journée rando" in attract
    assert image is not None and image.headers["Content-Type"] == "image/webp"
    assert 'class="price-was"' in price
    attract, price, image = kiosk_at(z(closing))  # 18:00 in Paris: over
    assert "Journée rando" not in attract and image is None
    assert 'class="price-was"' not in price
    assert re.search(r'<p class="price">[^<]*', price).group(0).endswith(format_price(base, "fr"))


def test_demo_promotions_are_made_once_through_the_domain(hub_data):
    from app.demo.promotions import seed_demo_promotions

    db = hub_db(hub_data)
    try:
        first = seed_demo_promotions(db, hub_data)
        again = seed_demo_promotions(db, hub_data)
        titles = {p["title"]["fr"]: p for p in first}
        assert set(titles) == {"-20 % sur la randonnée", "2e à -50 % sur les chaussettes"}
        assert [p["id"] for p in again] == [p["id"] for p in first]
        for p in first:
            assert p["status"] == "published" and p["image"]["formats"]["banner"]
            assert [h["action"] for h in promo.history(db, p["id"])] == [
                "published",
                "image",
                "created",
            ]
        socks = titles["2e à -50 % sur les chaussettes"]["rule"]
        assert (socks["kind"], socks["value"], socks["nth"]) == ("nth_percent", 50, 2)
    finally:
        db.close()


def test_the_kiosk_cart_prices_with_the_store_promotions(synced_store):
    from app.store.domain import carts

    db = dbmod.connect(dbmod.db_path(synced_store))
    try:
        sku, base = db.execute(
            "SELECT v.sku, COALESCE(v.price_cents, p.price_cents) FROM variants v "
            "JOIN products p ON p.pk = v.product_pk ORDER BY v.sku LIMIT 1"
        ).fetchone()
        rule = {
            **wire()["rule"],
            "kind": "nth_percent",
            "value": 50,
            "scope": "sku",
            "targets": [sku],
        }
        apply(db, wire(rule=rule, title={"fr": "2e à -50 %", "en": "2nd half price"}))
        during = carts.cart_view(db, [(sku, 2, base)], "fr", now=START + DAY)
        assert during["total"] == 2 * base - (base * 50 + 50) // 100
        assert during["lines"][0].promotion == "2e à -50 %"
        after = carts.cart_view(db, [(sku, 2, base)], "fr", now=END + DAY)
        assert after["total"] == 2 * base and after["discount"] == 0
    finally:
        db.close()
