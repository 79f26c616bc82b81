"""app.core.tokens: signed, expiring QR tokens minted by the hub and verified by stores."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import threading
import time

import pytest
import qrcode
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import tokens
from app.core.tokens import TokenError

# About dates and time: run again under faketime by `make test-shifted`.
pytestmark = pytest.mark.clock

NOW = 1_795_000_000
HUB = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
HUB_PUBLIC = tokens.public_key_from_b64(tokens.public_key_b64(HUB))
OTHER_HUB = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
PICKUP_CLAIMS = {"o": "ord-3f9k2m7q", "s": "st-7kq2m9"}
TOKEN = tokens.mint(HUB, "pickup", PICKUP_CLAIMS, ttl_s=7 * 86400, now=NOW)
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

QR = zxingcpp.BarcodeFormat.QRCode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b32(data: bytes) -> str:
    return base64.b32encode(data).rstrip(b"=").decode()


def _unb32(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


def _sign_raw(payload: bytes, key: Ed25519PrivateKey = HUB) -> str:
    """A token around arbitrary payload bytes, properly signed (to reach later checks)."""
    signed = f"KQ1.{_b32(payload)}"
    return f"{signed}.{_b32(key.sign(signed.encode()))}"


def _code(token: str, keys=HUB_PUBLIC, kind="pickup", now=NOW, revoked=()) -> str:
    with pytest.raises(TokenError) as info:
        tokens.verify(keys, token, kind, now=now, revoked=revoked)
    return info.value.code


def test_round_trip():
    payload = tokens.verify(HUB_PUBLIC, TOKEN, "pickup", now=NOW + 60)
    assert payload["o"] == "ord-3f9k2m7q" and payload["s"] == "st-7kq2m9"
    assert payload["k"] == "pickup" and payload["kid"] == "k1"
    assert payload["iat"] == NOW and payload["exp"] == NOW + 7 * 86400
    assert len(base64.urlsafe_b64decode(payload["jti"] + "==")) == 16


def test_format_is_compact_and_url_safe():
    prefix, body, sig = TOKEN.split(".")
    assert prefix == "KQ1" and len(sig) == 103  # 64-byte Ed25519 signature
    # Only QR "alphanumeric mode" characters (5.5 bits each, not 8).
    assert set(TOKEN) <= set(B32 + ".1")
    payload = json.loads(_unb32(body))
    assert set(payload) == {"k", "jti", "iat", "exp", "kid", "o", "s"}
    # A pickup token with an order id and a store id stays a small QR code.
    assert len(TOKEN) <= 320
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(TOKEN)
    qr.make(fit=True)
    assert qr.version <= 10


def test_default_clock_is_now():
    token = tokens.mint(HUB, "cart", {"c": "cart-1"}, ttl_s=60)
    assert tokens.verify(HUB_PUBLIC, token, "cart")["c"] == "cart-1"
    assert _code(token, kind="cart", now=time.time() + 61) == "expired"


def test_tampered_payload_is_rejected():
    prefix, body, sig = TOKEN.split(".")
    payload = json.loads(_unb32(body))
    payload["o"] = "ord-someone-else"
    forged = f"{prefix}.{_b32(json.dumps(payload, separators=(',', ':')).encode())}.{sig}"
    assert _code(forged) == "bad_signature"


def test_tampered_signature_is_rejected():
    prefix, body, sig = TOKEN.split(".")
    raw = bytearray(_unb32(sig))
    raw[10] ^= 0x01
    assert _code(f"{prefix}.{body}.{_b32(bytes(raw))}") == "bad_signature"


def test_token_from_another_hub_is_rejected():
    foreign = tokens.mint(OTHER_HUB, "pickup", PICKUP_CLAIMS, ttl_s=600, now=NOW)
    assert _code(foreign) == "bad_signature"
    assert _code(foreign, keys={"k1": HUB_PUBLIC}) == "bad_signature"


def test_a_store_with_the_public_key_only_cannot_mint():
    # What a store holds: the raw public key. It verifies, but it cannot sign.
    store_key = tokens.public_key_from_b64(tokens.public_key_b64(HUB))
    assert len(store_key) == 32
    assert tokens.verify(store_key, TOKEN, "pickup", now=NOW)["o"] == "ord-3f9k2m7q"
    public_obj = HUB.public_key()
    assert not hasattr(public_obj, "sign")
    with pytest.raises(AttributeError):
        tokens.mint(public_obj, "pickup", PICKUP_CLAIMS, ttl_s=600)  # type: ignore[arg-type]
    # A thief who makes up a private key of their own gets tokens that stores refuse.
    thief = Ed25519PrivateKey.generate()
    stolen_kiosk_token = tokens.mint(thief, "pickup", PICKUP_CLAIMS, ttl_s=600, now=NOW)
    assert _code(stolen_kiosk_token, keys=store_key) == "bad_signature"


def test_expiry_boundary():
    token = tokens.mint(HUB, "reservation", {"r": "res-1"}, ttl_s=3600, now=NOW)
    assert tokens.verify(HUB_PUBLIC, token, "reservation", now=NOW + 3599)
    assert _code(token, kind="reservation", now=NOW + 3600) == "expired"
    assert _code(token, kind="reservation", now=NOW + 10**6) == "expired"


def test_issued_in_the_future_allows_300_s_skew():
    ahead = tokens.mint(HUB, "pickup", PICKUP_CLAIMS, ttl_s=3600, now=NOW + 300)
    assert tokens.verify(HUB_PUBLIC, ahead, "pickup", now=NOW)
    too_far = tokens.mint(HUB, "pickup", PICKUP_CLAIMS, ttl_s=3600, now=NOW + 301)
    assert _code(too_far) == "not_yet_valid"


def test_wrong_kind_is_rejected():
    assert _code(TOKEN, kind="cart") == "wrong_kind"
    receipt = tokens.mint(HUB, "receipt", {"o": "ord-1"}, ttl_s=60, now=NOW)
    assert _code(receipt, kind="pickup") == "wrong_kind"


def test_revoked_jti_is_rejected():
    jti = tokens.verify(HUB_PUBLIC, TOKEN, "pickup", now=NOW)["jti"]
    assert _code(TOKEN, revoked={jti}) == "revoked"
    assert tokens.verify(HUB_PUBLIC, TOKEN, "pickup", now=NOW, revoked={"other"})


def test_key_rotation_by_kid():
    keys = {"k1": HUB_PUBLIC, "k2": tokens.public_key_from_b64(tokens.public_key_b64(OTHER_HUB))}
    new = tokens.mint(OTHER_HUB, "pickup", PICKUP_CLAIMS, ttl_s=600, now=NOW, kid="k2")
    assert tokens.verify(keys, new, "pickup", now=NOW)["kid"] == "k2"
    assert tokens.verify(keys, TOKEN, "pickup", now=NOW)["kid"] == "k1"
    # Retired key: its kid is no longer listed.
    assert _code(TOKEN, keys={"k2": keys["k2"]}) == "unknown_key"
    # A kid does not lend trust: signed by k1 but labelled k2 fails the k2 key.
    mislabelled = tokens.mint(HUB, "pickup", PICKUP_CLAIMS, ttl_s=600, now=NOW, kid="k2")
    assert _code(mislabelled, keys=keys) == "bad_signature"


def test_every_mint_has_a_fresh_random_jti():
    jtis = {
        tokens.verify(
            HUB_PUBLIC, tokens.mint(HUB, "pickup", PICKUP_CLAIMS, 600, now=NOW), "pickup", NOW
        )["jti"]
        for _ in range(200)
    }
    assert len(jtis) == 200
    # Not a counter: consecutive ids share no long common prefix.
    ordered = sorted(jtis)
    assert all(a[:6] != b[:6] for a, b in zip(ordered, ordered[1:], strict=False))


GOOD_SIG = TOKEN.split(".")[2]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage",
        "KQ1",
        "KQ1.",
        "KQ1..",
        "KQ1.a.b.c",
        "KQ2." + TOKEN[4:],
        "kq1." + TOKEN[4:],
        " " + TOKEN,
        TOKEN + "\n",
        TOKEN.lower(),
        "KQ1.@@@@." + GOOD_SIG,
        "KQ1." + TOKEN.split(".")[1] + "=." + GOOD_SIG,  # padding is not allowed
        "KQ1.A." + GOOD_SIG,  # impossible base32 length
        "KQ1.ABC." + GOOD_SIG,  # impossible base32 length
        f"KQ1.{_b64(b'{}')}.{GOOD_SIG}",  # base64url, not base32
        f"KQ1.{_b32(b'not json at all')}.{GOOD_SIG}",
        f"KQ1.{_b32(b'[1,2,3]')}.{GOOD_SIG}",  # JSON, but not an object
        f"KQ1.{_b32(b'{}')}.{GOOD_SIG}",  # no kid
        f"KQ1.{_b32(bytes([0xFF, 0xFE, 0x00]))}.{GOOD_SIG}",  # not UTF-8
        f"KQ1.{TOKEN.split('.')[1]}.{_b32(b'short')}",  # signature of the wrong length
        "KQ1.\u00e9\u00e9.\u00e9",
        None,
        b"KQ1.a.b",
    ],
)
def test_malformed_inputs(bad):
    assert _code(bad) == "malformed"


def test_signed_payload_without_standard_fields_is_malformed():
    assert _code(_sign_raw(b'{"kid":"k1"}')) == "malformed"
    no_exp = {"k": "pickup", "jti": "x", "iat": NOW, "kid": "k1"}
    assert _code(_sign_raw(json.dumps(no_exp).encode())) == "malformed"
    bool_exp = {**no_exp, "exp": True}
    assert _code(_sign_raw(json.dumps(bool_exp).encode())) == "malformed"


def test_huge_input_is_refused_before_any_decoding(monkeypatch):
    decoded = []
    real = tokens._b32d
    monkeypatch.setattr(tokens, "_b32d", lambda text: decoded.append(len(text)) or real(text))
    huge = "KQ1." + "A" * 10_000_000 + "." + GOOD_SIG
    assert _code(huge) == "malformed"
    assert decoded == []  # refused on its length alone
    deep = f"KQ1.{_b32(b'[' * 550)}.{GOOD_SIG}"
    assert _code(deep) == "malformed"


def test_mint_refuses_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        tokens.mint(HUB, "coupon", {}, ttl_s=60)
    with pytest.raises(ValueError, match="ttl"):
        tokens.mint(HUB, "pickup", {}, ttl_s=0)
    with pytest.raises(ValueError, match="reserved"):
        tokens.mint(HUB, "pickup", {"exp": 1}, ttl_s=60)
    with pytest.raises(ValueError, match="id"):
        tokens.mint(HUB, "pickup", {"customer": {"name": "Élodie Martin"}}, ttl_s=60)
    with pytest.raises(ValueError, match="too long"):
        tokens.mint(HUB, "pickup", {"o": "x" * 2000}, ttl_s=60)
    with pytest.raises(ValueError, match="kid"):
        tokens.mint(HUB, "pickup", {}, ttl_s=60, kid="")


def test_every_single_character_substitution_is_refused():
    # Exhaustive over both alphabets: this is what catches a decoder that accepts
    # non-canonical spellings of the final character (unused low bits) or lower case.
    for i, original in enumerate(TOKEN):
        for c in B64URL + ".=":
            if c != original:
                mutated = TOKEN[:i] + c + TOKEN[i + 1 :]
                with pytest.raises(TokenError):
                    tokens.verify(HUB_PUBLIC, mutated, "pickup", now=NOW)


@settings(max_examples=500, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(TOKEN) - 1),
    st.characters(codec="utf-8") | st.sampled_from(B32),
    st.sampled_from(["replace", "insert", "delete"]),
)
def test_any_single_character_mutation_fails_verification(i, c, how):
    if how == "replace":
        mutated = TOKEN[:i] + c + TOKEN[i + 1 :]
    elif how == "insert":
        mutated = TOKEN[:i] + c + TOKEN[i:]
    else:
        mutated = TOKEN[:i] + TOKEN[i + 1 :]
    if mutated == TOKEN:
        return
    with pytest.raises(TokenError):
        tokens.verify(HUB_PUBLIC, mutated, "pickup", now=NOW)


def test_keypair_and_public_key_encoding():
    pem, public = tokens.generate_keypair()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----") and len(public) == 32
    private = tokens.load_private_key(pem)
    assert tokens.public_key_from_b64(tokens.public_key_b64(private)) == public
    token = tokens.mint(private, "cart", {"c": "cart-9"}, ttl_s=60, now=NOW)
    assert tokens.verify({"k1": public}, token, "cart", now=NOW)["c"] == "cart-9"
    with pytest.raises(ValueError):
        tokens.public_key_from_b64(_b64(b"x" * 31))


def test_key_file_is_created_0600_once_and_reloaded(tmp_path):
    path = tmp_path / "hub-signing.pem"
    first = tokens.load_or_create_private_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = tokens.load_or_create_private_key(path)
    assert tokens.public_key_b64(again) == tokens.public_key_b64(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub-signing.pem"]


def test_concurrent_key_creation_agrees_on_one_key(tmp_path):
    path = tmp_path / "hub-signing.pem"
    results: list[str] = []
    barrier = threading.Barrier(16)

    def create() -> None:
        barrier.wait()
        results.append(tokens.public_key_b64(tokens.load_or_create_private_key(path)))

    threads = [threading.Thread(target=create) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    on_disk = tokens.public_key_b64(tokens.load_private_key(path.read_bytes()))
    assert set(results) == {on_disk}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub-signing.pem"]


def test_token_survives_a_qr_code_round_trip():
    png = io.BytesIO()
    qrcode.make(TOKEN, error_correction=qrcode.constants.ERROR_CORRECT_M).save(png)
    png.seek(0)
    from PIL import Image

    decoded = zxingcpp.read_barcodes(Image.open(png), formats=QR)
    assert [r.text for r in decoded] == [TOKEN]
    assert tokens.verify(HUB_PUBLIC, decoded[0].text, "pickup", now=NOW)["s"] == "st-7kq2m9"
