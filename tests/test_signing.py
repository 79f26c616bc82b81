"""app.core.signing: the request signature shared by the hub and the stores."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.core import signing

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

SECRET = "ab" * 32
STORE = "st-7kq2m9"
NOW = 1_795_000_000


def _verify(headers, method="GET", path="/api/v1/changes?since=0", body=b"", now=NOW):
    return signing.verify_request(headers, method, path, body, {STORE: SECRET}.get, now=now)


def test_string_to_sign_is_the_six_documented_lines():
    text = signing.string_to_sign("post", "/api/v1/x?a=1", "123", "n" * 32, b"{}")
    assert text == (
        b"v1\nPOST\n/api/v1/x?a=1\n123\n"
        + b"n" * 32
        + b"\n"
        + hashlib.sha256(b"{}").hexdigest().encode()
    )
    expected = hmac.new(bytes.fromhex(SECRET), text, hashlib.sha256).hexdigest()
    assert signing.signature(SECRET, text) == "v1=" + expected


def test_round_trip():
    headers = signing.sign_request(STORE, SECRET, "GET", "/api/v1/changes?since=0", timestamp=NOW)
    store_id, nonce, ts = _verify(headers)
    assert (store_id, ts) == (STORE, NOW) and len(nonce) == 32


@pytest.mark.parametrize(
    "change",
    [
        {"method": "POST"},
        {"path": "/api/v1/changes?since=1"},
        {"body": b"x"},
    ],
)
def test_anything_signed_changed_is_a_bad_signature(change):
    headers = signing.sign_request(STORE, SECRET, "GET", "/api/v1/changes?since=0", timestamp=NOW)
    with pytest.raises(signing.AuthError) as err:
        _verify(headers, **change)
    assert err.value.code == "bad_signature"


def test_unknown_store_and_wrong_secret_get_the_same_answer():
    good = signing.sign_request(STORE, "cd" * 32, "GET", "/p", timestamp=NOW)
    unknown = signing.sign_request("st-zzzzzz", SECRET, "GET", "/p", timestamp=NOW)
    answers = []
    for headers in (good, unknown):
        with pytest.raises(signing.AuthError) as err:
            _verify(headers, path="/p")
        answers.append((err.value.code, err.value.message))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("offset", [301, -301, 10_000])
def test_clock_skew_over_300_s(offset):
    headers = signing.sign_request(STORE, SECRET, "GET", "/p", timestamp=NOW + offset)
    with pytest.raises(signing.AuthError) as err:
        _verify(headers, path="/p")
    assert err.value.code == "clock_skew"


@pytest.mark.parametrize("offset", [300, -300])
def test_skew_of_exactly_300_s_is_accepted(offset):
    headers = signing.sign_request(STORE, SECRET, "GET", "/p", timestamp=NOW + offset)
    assert _verify(headers, path="/p")[0] == STORE


@pytest.mark.parametrize(
    "bad",
    [
        {"drop": signing.H_STORE},
        {"drop": signing.H_TIMESTAMP},
        {"drop": signing.H_NONCE},
        {"drop": signing.H_SIGNATURE},
        {signing.H_TIMESTAMP: "12a"},
        {signing.H_TIMESTAMP: "²"},  # a digit for str.isdigit(), not for int()
        {signing.H_TIMESTAMP: "9" * 5000},  # int() refuses it: must be a 401, not a 500
        {signing.H_NONCE: "short"},
        {signing.H_NONCE: "z" * 32},
        {signing.H_SIGNATURE: "deadbeef"},
    ],
)
def test_missing_or_malformed_headers(bad):
    headers = signing.sign_request(STORE, SECRET, "GET", "/p", timestamp=NOW)
    headers.pop(bad.pop("drop", None), None)
    headers.update(bad)
    with pytest.raises(signing.AuthError) as err:
        _verify(headers, path="/p")
    assert err.value.code == "missing_auth"


def test_signatures_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", spy)
    headers = signing.sign_request(STORE, SECRET, "GET", "/p", timestamp=NOW)
    _verify(headers, path="/p")
    with pytest.raises(signing.AuthError):
        _verify(signing.sign_request("st-nobody", SECRET, "GET", "/p", timestamp=NOW), path="/p")
    # Also for an unknown store: no early exit that would tell the two apart by timing.
    assert len(calls) == 2


def test_new_secret_is_32_random_bytes_in_hex():
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b and len(bytes.fromhex(a)) == 32
