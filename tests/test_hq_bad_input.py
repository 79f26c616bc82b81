"""Head office's API and console on a real hub: odd input is a 422 (or a 400 for a body
that is not JSON) naming the field, never a 500; the console form comes back with the
message. Time zones that are not zones, huge numbers, deep JSON, 10,000-character
fields, wrong types and lone surrogates."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.hub.domain.promotion_validation import EDITABLE

from .dates import local, paris_day
from .hq_helpers import csrf_token, logged_in, make_token, make_user
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import hub_db, validate

API = "/api/v1/hq/promotions"
LONG = "x" * 10_000
SURROGATE = "\ud800"


@pytest.fixture(scope="module")
def api(module_hub):
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + make_token(module_hub.data, "marketing")
    return module_hub, session


def body(**overrides: Any) -> dict[str, Any]:
    out = {
        "title_fr": "Prix doux",
        "title_en": "Sweet prices",
        "kind": "percent",
        "value": 15,
        "scope": "all",
        "starts_local": local(paris_day(2)),
        "ends_local": local(paris_day(9)),
        "timezone": "Europe/Paris",
        "stores": None,
    }
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not DROP}


DROP = object()


def send(session: requests.Session, method: str, url: str, text: str | bytes) -> requests.Response:
    data = text.encode() if isinstance(text, str) else text
    return session.request(
        method, url, data=data, timeout=30, headers={"Content-Type": "application/json"}
    )


def count_promotions(data) -> int:
    db = hub_db(data)
    try:
        return db.execute("SELECT count(*) FROM promotions").fetchone()[0]
    finally:
        db.close()


# (field, value as JSON text)
API_CASES = [
    ("timezone", '"Europe"'),
    ("timezone", '"Mars/Olympus"'),
    ("timezone", '""'),
    ("timezone", '"../../etc/passwd"'),
    ("timezone", '"Europe/Paris\\u0000"'),
    ("timezone", '"\\ud800"'),
    ("timezone", "5"),
    ("timezone", '["Europe/Paris"]'),
    ("value", "1e308"),
    ("value", "1" + "0" * 400),
    ("value", "9" * 5000),
    ("value", "1e400"),
    ("value", "-1"),
    ("value", '"beaucoup"'),
    ("value", "true"),
    ("value", "{}"),
    ("nth", "1e308"),
    ("min_qty", "-1"),
    ("priority", "1" + "0" * 400),
    ("title_fr", json.dumps(LONG)),
    ("title_fr", '"\\ud800"'),
    ("title_fr", '"a\\u0007b"'),
    ("title_fr", "12"),
    ("title_fr", "[[[[[[[[[[1]]]]]]]]]]"),
    ("text_fr", json.dumps(LONG)),
    ("kind", "[]"),
    ("kind", "{}"),
    ("scope", '{"a": 1}'),
    ("scope", '"category"'),  # targets missing
    ("targets", json.dumps([LONG])),
    ("targets", '["\\ud800"]'),
    ("targets", json.dumps(["x"] * 10_000)),
    ("targets", "5"),
    ("stores", '["\\ud800"]'),
    ("stores", json.dumps([LONG])),
    ("stores", "{}"),
    ("starts_local", json.dumps(LONG)),
    ("starts_local", '"\\ud800"'),
    ("starts_local", '"0001-01-01T00:00"'),
    ("starts_local", "20261201"),
    ("ends_local", "null"),
]


def with_field(field: str, raw: str) -> str:
    """The body JSON with ``field`` set to ``raw`` (JSON text, written as is)."""
    base = body(**{field: "__RAW__"})
    if field == "targets":
        base["scope"] = "sku"  # targets count for a scope that has them
    return json.dumps(base).replace('"__RAW__"', raw)


@pytest.mark.parametrize(
    "field,raw", API_CASES, ids=[f"{f}:{i}" for i, (f, _) in enumerate(API_CASES)]
)
def test_api_create_refuses_odd_values_naming_the_field(api, field, raw):
    hub, session = api
    before = count_promotions(hub.data)
    resp = send(session, "POST", hub.url + API, with_field(field, raw))
    assert resp.status_code == 422, resp.text[:500]
    answer = resp.json()
    validate(answer, "HqValidationError")
    target = "targets" if raw == '"category"' else field
    assert target in answer["fields"], answer
    assert answer["fields"][target] and target in answer["message"]
    assert count_promotions(hub.data) == before


@pytest.mark.parametrize(
    "field,raw", API_CASES[:12], ids=[f"{f}:{i}" for i, (f, _) in enumerate(API_CASES[:12])]
)
def test_api_patch_refuses_odd_values_and_keeps_the_promotion(api, field, raw):
    hub, session = api
    created = session.post(hub.url + API, json=body(), timeout=30)
    assert created.status_code == 201, created.text
    before = created.json()["promotion"]
    url = f"{hub.url}{API}/{before['id']}"
    resp = send(session, "PATCH", url, f'{{"{field}": {raw}}}')
    assert resp.status_code == 422, resp.text[:500]
    assert field in resp.json()["fields"], resp.json()
    after = session.get(url, timeout=30).json()["promotion"]
    assert after == before


def test_api_patch_with_instants_in_an_odd_zone_or_year_is_a_422(api):
    hub, session = api
    created = session.post(hub.url + API, json=body(), timeout=30).json()["promotion"]
    url = f"{hub.url}{API}/{created['id']}"
    zone = {"timezone": "Europe", "starts_at": created["starts_at"]}
    resp = send(session, "PATCH", url, json.dumps(zone))
    assert resp.status_code == 422 and "timezone" in resp.json()["fields"], resp.text[:500]
    for change in (
        {"starts_at": "0001-01-01T00:00:00+05:00"},
        {"ends_at": "9999-12-31T23:59:59-05:00"},
        {"starts_at": SURROGATE},
    ):
        resp = send(session, "PATCH", url, json.dumps(change))
        assert resp.status_code == 422, (change, resp.text[:500])
        assert resp.json()["fields"], resp.json()


BAD_BODIES = [
    (b"not json", "JSON"),
    (b"[1, 2]", "objet JSON"),
    (b'"x"', "objet JSON"),
    (b"[" * 10_000 + b"]" * 10_000, "JSON"),
    (b'{"title_fr": ' + b"[" * 100 + b"]" * 100 + b"}", "JSON"),
    (b'{"value": NaN}', "JSON"),
    (b"\xff\xfe", "JSON"),
]


@pytest.mark.parametrize("raw,words", BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_api_body_that_is_not_an_object_is_a_400(api, raw, words):
    hub, session = api
    resp = send(session, "POST", hub.url + API, raw)
    assert resp.status_code == 400, resp.text[:500]
    answer = resp.json()
    validate(answer, "Error")
    assert answer["error"] == "bad_request" and words in answer["message"], answer


def test_unknown_fields_are_named_even_when_odd(api):
    hub, session = api
    resp = send(
        session,
        "POST",
        hub.url + API,
        json.dumps({**body(), "colour\u0000" + "z" * 500: 1, "\ud800": 2}),
    )
    assert resp.status_code == 422, resp.text[:500]
    fields = resp.json()["fields"]
    assert len(fields) == 2 and all(len(k) <= 60 for k in fields), fields
    assert all(v == "Champ inconnu." for v in fields.values())


JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from([SURROGATE, "Europe", "\x00", LONG, "2026-13-45T25:61"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(sorted(set(EDITABLE) | {"starts_at", "ends_at"})), value=JSON_VALUE)
def test_any_json_in_any_field_is_never_a_server_error(api, field, value):
    hub, session = api
    resp = send(session, "POST", hub.url + API, json.dumps(body(**{field: value})))
    assert resp.status_code in (201, 422), resp.text[:500]
    validate(resp.json(), "HqPromotionResponse" if resp.status_code == 201 else "HqValidationError")


# --- The console ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def console(module_hub):
    user = make_user(module_hub.data, "marketing")
    return module_hub, logged_in(module_hub.url, user)


def form(session: requests.Session, base: str, **overrides: str) -> dict[str, str]:
    return {
        "csrf_token": csrf_token(session, f"{base}/hq/promotions/nouvelle"),
        "title_fr": "Prix doux",
        "title_en": "",
        "text_fr": "",
        "text_en": "",
        "kind": "percent",
        "value": "15",
        "nth": "2",
        "scope": "all",
        "min_qty": "1",
        "priority": "0",
        "starts_local": local(paris_day(2)),
        "ends_local": local(paris_day(9)),
        "timezone": "Europe/Paris",
        "stores_mode": "all",
        **overrides,
    }


CONSOLE_CASES = [
    ({"timezone": "Europe"}, "Fuseau horaire inconnu"),
    ({"timezone": "Mars/Olympus"}, "Fuseau horaire inconnu"),
    ({"timezone": ""}, "Fuseau horaire inconnu"),
    ({"timezone": "Europe/Paris\x00"}, "Fuseau horaire inconnu"),
    ({"value": "1e308"}, "dépasser 100 %"),
    ({"value": "1" + "0" * 400}, "dépasser 100 %"),
    ({"value": "-1"}, "négative"),
    ({"kind": "amount", "value": "9" * 5000}, "Montant de la remise"),
    ({"priority": "1" + "0" * 400}, "Priorité"),
    ({"title_fr": LONG}, "80 caractères au plus"),
    ({"title_fr": "a\x07b"}, "Caractères de contrôle"),
    ({"text_fr": LONG}, "280 caractères au plus"),
    ({"starts_local": LONG}, "Date et heure attendues"),
    ({"starts_local": "0001-01-01T00:00"}, "Année entre 2000 et 2100"),
    ({"scope": "sku", "skus": LONG}, "codes de 100 caractères au plus"),
    ({"scope": "sku", "skus": " ".join(["x"] * 600)}, "500 codes au plus"),
    ({"scope": "category", "categories": "z" * 90}, "Catégorie inconnue"),
    ({"stores_mode": "some", "stores": LONG}, "Magasin inconnu"),
    ({"kind": "x" * 10_000}, "Type de remise inconnu"),
]


@pytest.mark.parametrize(
    "overrides,words", CONSOLE_CASES, ids=[str(i) for i in range(len(CONSOLE_CASES))]
)
def test_console_form_comes_back_with_the_message(console, overrides, words):
    hub, session = console
    before = count_promotions(hub.data)
    data = form(session, hub.url, **overrides)
    resp = session.post(
        f"{hub.url}/hq/promotions/nouvelle", data=data, allow_redirects=False, timeout=30
    )
    if words is None:
        assert resp.status_code == 302, resp.text[:500]
        return
    assert resp.status_code == 422, resp.text[:500]
    assert words in resp.text, resp.text[:3000]
    assert 'name="title_fr"' in resp.text  # the form, with what was typed
    assert count_promotions(hub.data) == before


def test_console_edit_with_an_odd_zone_re_renders(console):
    hub, session = console
    made = session.post(
        f"{hub.url}/hq/promotions/nouvelle",
        data=form(session, hub.url),
        allow_redirects=False,
        timeout=30,
    )
    assert made.status_code == 302, made.text[:500]
    page = made.headers["Location"]
    url = page if page.startswith("http") else hub.url + page
    data = {**form(session, hub.url), "csrf_token": csrf_token(session, url), "timezone": "Europe"}
    resp = session.post(url, data=data, allow_redirects=False, timeout=30)
    assert resp.status_code == 422, resp.text[:500]
    assert "Fuseau horaire inconnu" in resp.text
