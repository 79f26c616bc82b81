"""JSON bodies never crash a server: depth bounded, no NaN or Infinity, a 400 that says so."""

from __future__ import annotations

import pytest

from app.core import jsonsafe

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (DEEP, "nests deeper"),
        ("[" * 33 + "]" * 33, "nests deeper"),
        ('{"a": NaN}', "NaN"),
        ('{"a": -Infinity}', "Infinity"),
        ('{"a": 1e999}', "out of range"),
        (b'{"a": "\xff"}', "UTF-8"),
    ],
)
def test_refused_with_a_value_error_naming_the_problem(text, words):
    with pytest.raises(ValueError, match=words):
        jsonsafe.loads(text)


def test_what_we_accept_still_parses():
    assert jsonsafe.loads("[" * 32 + "]" * 32) is not None
    assert jsonsafe.loads('{"a": [1, 2.5, "é"]}') == {"a": [1, 2.5, "é"]}
    assert jsonsafe.depth({"a": [{"b": 1}]}) == 3 and jsonsafe.depth(4) == 0


@pytest.mark.parametrize("factory", ["store", "hub"])
def test_request_get_json_answers_400_not_500(factory, store_data, tmp_path):
    if factory == "store":
        from app.store.app import create_app

        app = create_app({"DATA_DIR": str(store_data), "TESTING": True})
    else:
        from app.hub.app import create_hub_app

        app = create_hub_app({"DATA_DIR": str(tmp_path / "hub"), "TESTING": True})
    app.config["WTF_CSRF_ENABLED"] = False

    @app.post("/_echo")
    def echo():
        from flask import jsonify, request

        return jsonify(request.get_json())

    client = app.test_client()
    r = client.post("/_echo", data=DEEP, content_type="application/json")
    assert r.status_code == 400
    if factory == "hub":  # the API's JSON names the problem; the store shows a page
        assert "nests deeper" in r.get_json()["message"]
    assert client.post("/_echo", json={"a": 1}).get_json() == {"a": 1}
    # Not a JSON content type at all: werkzeug's 415 stays a 415.
    assert client.post("/_echo", data="{}", content_type="text/plain").status_code == 415
