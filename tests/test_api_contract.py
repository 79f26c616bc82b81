"""The hub's API keeps to docs/openapi.yaml where a fuzzer cannot tell: every route under
/api/v1 is documented and every documented operation exists (they cannot drift apart),
a method a path lacks is a 405 with Allow, and a query value a parameter cannot take is
a 400 naming the parameter, while a parameter the contract does not name is ignored."""

from __future__ import annotations

import re

import pytest
import requests
import yaml

from app.hub.app import create_hub_app

from .hq_helpers import make_token
from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, OPENAPI, HubClient, store_secrets

METHODS = {"get", "post", "put", "patch", "delete"}


def _shape(path: str) -> str:
    """A path template with its parameter names erased: ``/a/<x>/b`` and ``/a/{y}/b``
    are the same route (Flask and OpenAPI spell parameters differently)."""
    return re.sub(r"<(?:[^:<>]+:)?[^<>]+>|\{[^{}]+\}", "{}", path)


def test_every_api_route_is_documented_and_every_documented_operation_exists(tmp_path):
    app = create_hub_app({"DATA_DIR": str(tmp_path)})
    served = {
        (_shape(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in rule.methods or ()
        if method.lower() in METHODS
    }
    doc = yaml.safe_load(OPENAPI.read_text())
    documented = {
        (_shape(path), method)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }
    assert served, "no /api/v1 route found"
    assert served - documented == set(), "served but not in docs/openapi.yaml"
    assert documented - served == set(), "in docs/openapi.yaml but not served"


def test_every_query_parameter_documents_its_400():
    """An operation with query parameters says what a bad value gets."""
    doc = yaml.safe_load(OPENAPI.read_text())
    for path, item in doc["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method not in METHODS:
                continue
            params = [*shared, *op.get("parameters", [])]
            if any(p.get("in") == "query" for p in params):
                assert "400" in op["responses"], f"{method.upper()} {path}: no 400 documented"


@pytest.fixture(scope="module")
def signed(module_hub) -> HubClient:
    """Lyon's signed client against a hub shared by this module's tests."""
    return HubClient(module_hub.url, LYON, store_secrets(module_hub.data)[LYON])


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/v1/transactions", {"POST"}),
        ("DELETE", "/api/v1/changes", {"GET"}),
        ("PUT", "/api/v1/health", {"POST"}),
        ("POST", "/api/v1/status", {"GET"}),
        ("DELETE", "/api/v1/hq/promotions", {"GET", "POST"}),
        ("PUT", "/api/v1/hq/promotions/pr-000000000000", {"GET", "PATCH"}),
    ],
)
def test_a_method_the_path_lacks_is_405_with_allow(module_hub, method, path, allowed):
    resp = requests.request(method, module_hub.url + path, timeout=10)
    assert resp.status_code == 405, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["error"] == "method_not_allowed"
    listed = {m.strip() for m in resp.headers["Allow"].split(",")}
    assert allowed <= listed, listed
    assert method not in listed
    # Nothing else than what the path has: HEAD and OPTIONS come with any GET / route.
    assert listed <= allowed | {"HEAD", "OPTIONS"}, listed


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("since=abc", "since"),
        ("since=-1", "since"),
        ("since=", "since"),
        ("since=1e3", "since"),
        ("since=9999999999999999999", "since"),
        ("since=0&wait=31", "wait"),
        ("since=0&wait=%EF%BC%91", "wait"),  # a full-width digit: isdigit() says yes
        ("since=0&limit=0", "limit"),
        ("since=0&limit=2001", "limit"),
        ("since=0&limit=ten", "limit"),
    ],
)
def test_a_bad_feed_query_value_is_400_naming_it(signed, query, named):
    resp = signed.request("GET", f"/api/v1/changes?{query}")
    assert resp.status_code == 400, (query, resp.text)
    body = resp.json()
    assert body["error"] == "bad_request"
    assert body["message"].startswith(named), body


def test_an_unknown_query_parameter_name_is_ignored(signed):
    plain = signed.request("GET", "/api/v1/changes?since=0&limit=5")
    extra = signed.request("GET", "/api/v1/changes?since=0&limit=5&colour=blue&wait2=x")
    assert plain.status_code == extra.status_code == 200, extra.text
    assert extra.json()["changes"] == plain.json()["changes"]


def test_a_bad_image_version_is_400_naming_h(signed):
    resp = signed.request("GET", "/api/v1/promotions/pr-000000000000/image/banner?h=NOT-HEX")
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"].startswith("h ")
    # A well-formed version of an unknown promotion is still its 404.
    resp = signed.request("GET", "/api/v1/promotions/pr-000000000000/image/banner?h=abcdef12")
    assert resp.status_code == 404 and resp.json()["error"] == "unknown_promotion"


def test_an_unknown_phase_is_400_naming_it(module_hub):
    auth = {"Authorization": "Bearer " + make_token(module_hub.data, "marketing")}
    url = module_hub.url + "/api/v1/hq/promotions"
    for bad in ("bogus", "", "LIVE"):
        resp = requests.get(url, params={"phase": bad}, headers=auth, timeout=10)
        assert resp.status_code == 400, (bad, resp.text)
        assert resp.json()["message"].startswith("phase "), resp.text
    resp = requests.get(url, params={"phase": "live"}, headers=auth, timeout=10)
    assert resp.status_code == 200 and isinstance(resp.json()["promotions"], list)


def test_a_shop_page_405_is_a_page_with_allow_too(module_hub):
    resp = requests.delete(module_hub.url + "/shop/", timeout=10)
    assert resp.status_code == 405
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "GET" in {m.strip() for m in resp.headers["Allow"].split(",")}
