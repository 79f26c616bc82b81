"""The head-office JSON API for promotions (``/api/v1/hq/promotions``) on a real hub:
bearer tokens, roles, the console's validation and messages, publishing to the feed."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import requests
from PIL import Image

from .dates import PARIS_TZ, local, paris_day, z
from .hq_helpers import make_token
from .hub_fixtures import LYON, PARIS, HubClient, store_secrets, validate
from .sync_fixtures import *  # noqa: F403

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

API = "/api/v1/hq/promotions"
# A promotion a week ahead to a month ahead, read off the clock (never a written date).
START = paris_day(7, 9)
END = paris_day(30, 19)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def api(module_hub):
    """A requests session with a marketing token, and the hub."""
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + make_token(module_hub.data, "marketing")
    return module_hub, session


def body(**overrides) -> dict:
    return {
        "title_fr": "2e à -50 % sur les accessoires",
        "title_en": "Second item half price",
        "kind": "nth_percent",
        "value": 50,
        "nth": 2,
        "scope": "category",
        "targets": ["accessoires"],
        "starts_local": local(START),
        "ends_local": local(END),
        "timezone": "Europe/Paris",
        "stores": None,
        **overrides,
    }


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (1200, 400), "orange").save(buf, "PNG")
    return buf.getvalue()


def test_no_token_bad_token_wrong_role(module_hub):
    url = module_hub.url + API
    assert requests.get(url, timeout=10).status_code == 401
    r = requests.post(url, json=body(), headers={"Authorization": "Bearer hqt_nope"}, timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    ops = make_token(module_hub.data, "operations")
    r = requests.post(url, json=body(), headers={"Authorization": f"Bearer {ops}"}, timeout=10)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    admin = make_token(module_hub.data, "admin")
    r = requests.get(url, headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert r.status_code == 200


def test_create_read_patch_publish_unpublish(api):
    hub, s = api
    r = s.post(hub.url + API, json=body(), timeout=10)
    assert r.status_code == 201, r.text
    validate(r.json(), "HqPromotionResponse")
    created = r.json()["promotion"]
    pid = created["id"]
    assert r.headers["Location"] == f"{API}/{pid}"
    assert (created["status"], created["phase"], created["revision"]) == ("draft", "draft", 1)
    assert created["starts_at"] == z(START)
    assert created["created_by"].startswith("token:")

    r = s.patch(f"{hub.url}{API}/{pid}", json={"value": 40, "stores": [LYON, PARIS]}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["promotion"]["rule"]["value"] == 40
    assert r.json()["promotion"]["stores"] == sorted([LYON, PARIS])

    r = s.post(
        f"{hub.url}{API}/{pid}/image", files={"image": ("a.png", png(), "image/png")}, timeout=30
    )
    assert r.status_code == 200, r.text
    image = r.json()["promotion"]["image"]
    assert set(image["formats"]) == {"banner", "tile"}
    assert image["formats"]["banner"]["url"] == (
        f"/api/v1/promotions/{pid}/image/banner?h={image['hash']}"
    )

    r = s.post(f"{hub.url}{API}/{pid}/publish", timeout=10)
    assert r.status_code == 200 and r.json()["promotion"]["status"] == "published"
    assert r.json()["promotion"]["phase"] == "scheduled"

    # The promotion is on the change feed, as a store reads it (signed).
    store = HubClient(hub.url, LYON, store_secrets(hub.data)[LYON])
    page = store.changes(since=0, limit=2000).json()
    while page["more"]:
        page_next = store.changes(since=page["cursor"], limit=2000).json()
        page = {**page_next, "changes": page["changes"] + page_next["changes"]}
    mine = [c for c in page["changes"] if c["kind"] == "promotion" and c["key"] == pid]
    assert [c["data"]["status"] for c in mine] == ["published"]
    validate(mine[0], "PromotionChange")
    # ... and its image, signed, as WebP.
    image_r = store.request("GET", image["formats"]["banner"]["url"])
    assert image_r.status_code == 200 and image_r.headers["Content-Type"] == "image/webp"
    assert image_r.content[8:12] == b"WEBP"

    r = s.post(f"{hub.url}{API}/{pid}/unpublish", timeout=10)
    assert r.json()["promotion"]["status"] == "unpublished"
    r = s.get(f"{hub.url}{API}/{pid}", timeout=10)
    assert [h["action"] for h in r.json()["history"]] == [
        "unpublished",
        "published",
        "image",
        "updated",
        "created",
    ]
    listed = s.get(hub.url + API, params={"phase": "unpublished"}, timeout=10).json()
    validate(listed, "HqPromotionList")
    assert pid in {p["id"] for p in listed["promotions"]}


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"value": -5}, "value", "ne peut pas être négative"),
        ({"kind": "percent", "value": 101}, "value", "ne peut pas dépasser 100 %"),
        ({"ends_local": local(START - DAY)}, "ends_local", "après le début"),
        ({"scope": "sku", "targets": ["NOT-A-SKU"]}, "targets", "inconnu : NOT-A-SKU"),
        ({"stores": ["st-mars"]}, "stores", "Magasin inconnu"),
        ({"title_fr": "<script>alert('x')</script>"}, "title_fr", "pas de balises HTML"),
        ({"colour": "red"}, "colour", "Champ inconnu"),
    ],
)
def test_validation_names_the_field(api, overrides, field, words):
    hub, s = api
    r = s.post(hub.url + API, json=body(**overrides), timeout=10)
    assert r.status_code == 422, r.text
    validate(r.json(), "HqValidationError")
    assert r.json()["error"] == "invalid"
    assert words in r.json()["fields"][field]
    assert words in r.json()["message"]


def test_instants_with_an_offset_are_accepted(api):
    hub, s = api
    sent = {k: v for k, v in body().items() if k not in ("starts_local", "ends_local")}
    ends = START + DAY + timedelta(hours=1)  # sent with its Paris offset, not in UTC
    sent.update(starts_at=z(START), ends_at=ends.astimezone(PARIS_TZ).isoformat())
    r = s.post(hub.url + API, json=sent, timeout=10)
    assert r.status_code == 201, r.text
    p = r.json()["promotion"]
    assert (p["starts_local"], p["ends_local"]) == (local(START), local(ends))


def test_not_json_and_unknown_promotion(api):
    hub, s = api
    r = s.post(
        hub.url + API, data=b"{nope", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    for method, path in (("GET", ""), ("PATCH", ""), ("POST", "/publish"), ("POST", "/unpublish")):
        r = s.request(method, f"{hub.url}{API}/pr-000000000000{path}", json={}, timeout=10)
        assert r.status_code == 404 and r.json()["error"] == "not_found", (method, path)


def test_bad_images_through_the_api(api):
    hub, s = api
    pid = s.post(hub.url + API, json=body(), timeout=10).json()["promotion"]["id"]
    url = f"{hub.url}{API}/{pid}/image"
    r = s.post(url, files={"image": ("x.png", b"not an image", "image/png")}, timeout=10)
    assert r.status_code == 422 and r.json()["error"] == "not_an_image"
    assert "pas une image lisible" in r.json()["fields"]["image"]
    r = s.post(
        url, files={"image": ("big.jpg", b"\xff" * (50 * 1024 * 1024), "image/jpeg")}, timeout=60
    )
    assert r.status_code == 413
    assert r.json()["error"] == "too_large" and "dépasse 10 Mo" in r.json()["message"]
    r = s.post(url, data=b"hello", headers={"Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 422 and "multipart" in r.json()["fields"]["image"]
    assert s.get(f"{hub.url}{API}/{pid}", timeout=10).json()["promotion"]["image"] is None


def test_publishing_an_ended_promotion_is_a_conflict(api):
    hub, s = api
    pid = s.post(
        hub.url + API,
        json=body(starts_local=local(START - 300 * DAY), ends_local=local(START - 299 * DAY)),
        timeout=10,
    ).json()["promotion"]["id"]
    r = s.post(f"{hub.url}{API}/{pid}/publish", timeout=10)
    assert r.status_code == 409 and r.json()["error"] == "ended"
