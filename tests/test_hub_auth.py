"""Signed requests against a real hub: good, bad, skewed, replayed, unsigned."""

from __future__ import annotations

import time

import pytest
import requests

from app.core import signing

from .hub_fixtures import *  # noqa: F403
from .hub_fixtures import LYON, PARIS, HubClient, store_secrets, validate

PATH = "/api/v1/changes?since=0&wait=0&limit=1"


@pytest.fixture(scope="module")
def client(module_hub) -> HubClient:
    return HubClient(module_hub.url, LYON, store_secrets(module_hub.data)[LYON])


def _auth_error(resp: requests.Response, code: str) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    validate(body, "AuthError")
    assert body["error"] == code


def test_a_signed_request_is_accepted(client):
    resp = client.request("GET", PATH)
    assert resp.status_code == 200, resp.text
    validate(resp.json(), "ChangesPage")


def test_bad_signature(client):
    headers = client.headers("GET", PATH)
    headers[signing.H_SIGNATURE] = "v1=" + "0" * 64
    _auth_error(client.request("GET", PATH, headers=headers), "bad_signature")


def test_signed_with_another_stores_secret(module_hub, client):
    other = HubClient(module_hub.url, LYON, store_secrets(module_hub.data)[PARIS])
    _auth_error(other.request("GET", PATH), "bad_signature")


def test_unknown_store_gets_the_same_answer_as_a_wrong_secret(module_hub, client):
    stranger = HubClient(module_hub.url, "st-zzzzzz", client.secret)
    wrong = HubClient(module_hub.url, LYON, "cd" * 32)
    a, b = stranger.request("GET", PATH), wrong.request("GET", PATH)
    _auth_error(a, "bad_signature")
    assert a.json() == b.json()
    assert client.secret not in a.text


def test_query_tampering_breaks_the_signature(client):
    headers = client.headers("GET", PATH)
    _auth_error(
        client.request("GET", PATH.replace("limit=1", "limit=2"), headers=headers),
        "bad_signature",
    )


def test_body_tampering_breaks_the_signature(client):
    body = b'{"transactions": []}'
    headers = client.headers("POST", "/api/v1/transactions", body)
    resp = client.request("POST", "/api/v1/transactions", b'{"transactions":[ ]}', headers=headers)
    _auth_error(resp, "bad_signature")


@pytest.mark.parametrize("offset", [-301, 400])
def test_clock_skew(client, offset):
    _auth_error(client.request("GET", PATH, timestamp=int(time.time()) + offset), "clock_skew")


def test_replayed_nonce(client):
    headers = client.headers("GET", PATH)
    assert client.request("GET", PATH, headers=headers).status_code == 200
    _auth_error(client.request("GET", PATH, headers=headers), "replayed")


def test_same_nonce_for_another_store_is_not_a_replay(module_hub, client):
    nonce = "ab" * 16
    paris = HubClient(module_hub.url, PARIS, store_secrets(module_hub.data)[PARIS])
    assert client.request("GET", PATH, nonce=nonce).status_code == 200
    assert paris.request("GET", PATH, nonce=nonce).status_code == 200


@pytest.mark.parametrize(
    "header", [signing.H_STORE, signing.H_TIMESTAMP, signing.H_NONCE, signing.H_SIGNATURE]
)
def test_missing_header(client, header):
    headers = client.headers("GET", PATH)
    del headers[header]
    _auth_error(client.request("GET", PATH, headers=headers), "missing_auth")


def test_unsigned_post_is_refused(module_hub):
    resp = requests.post(module_hub.url + "/api/v1/transactions", json={"transactions": []})
    _auth_error(resp, "missing_auth")


def test_status_is_unsigned_and_documented(module_hub):
    resp = requests.get(module_hub.url + "/api/v1/status", timeout=5)
    assert resp.status_code == 200
    body = resp.json()
    validate(body, "Status")
    assert body["stores"] == 3 and body["last_seq"] > 0


def test_errors_are_json_with_security_headers(module_hub):
    resp = requests.get(module_hub.url + "/api/v1/nothing-here", timeout=5)
    assert resp.status_code == 404
    validate(resp.json(), "Error")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    resp = requests.get(module_hub.url + "/", timeout=5)
    assert resp.ok and "hub" in resp.text and LYON not in resp.text
