"""The sync protocol's rules (app/core/protocol.py) are the ones both sides use: the
hub's handlers, its rejection reasons, the store's feed appliers and the kiosk's form."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from app.core import protocol
from app.store.domain import order_requests

ROOT = Path(__file__).resolve().parent.parent


def test_a_city_longer_than_the_hub_accepts_is_refused_at_the_kiosk():
    address = {"line1": "3 rue des Lilas", "postcode": "69003", "city": "L" * 100}
    assert protocol.MAX_CITY < 100 <= protocol.MAX_ADDRESS_LINE
    with pytest.raises(ValueError, match="^city$"):
        order_requests.check_customer("home", "Léa Roux", "lea@example.org", address)
    address["city"] = "L" * protocol.MAX_CITY
    customer = order_requests.check_customer("home", "Léa Roux", "lea@example.org", address)
    assert customer["address"]["city"] == address["city"]
    address["line1"] = "3" * protocol.MAX_ADDRESS_LINE  # the street keeps its own limit
    order_requests.check_customer("home", "Léa Roux", "lea@example.org", address)


def test_the_hub_handles_exactly_the_protocols_transaction_types():
    from app.hub.protocol.handlers import HANDLERS

    assert set(HANDLERS) == set(protocol.TYPES)


def _reason_codes(path: Path) -> set[str]:
    """The reason codes ``Rejected(reason, …)`` / ``_rejected(id, reason, …)`` get in a
    module: string literals, or a local name assigned string literals."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
    codes: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        position = {"Rejected": 0, "_rejected": 1}.get(node.func.id)
        if position is None or len(node.args) <= position:
            continue
        arg = node.args[position]
        values = assigned.get(arg.id, []) if isinstance(arg, ast.Name) else [arg]
        for value in values:
            codes |= {
                c.value
                for c in ast.walk(value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
    return codes


def test_every_reason_the_hub_rejects_with_is_one_of_the_protocols():
    codes: set[str] = set()
    for path in sorted((ROOT / "app" / "hub" / "protocol").glob("*.py")):
        codes |= _reason_codes(path)
    assert {"invalid_payload", "unknown_type", "invalid_id", "conflict"} <= codes  # found
    assert codes <= set(protocol.REASONS)


def test_the_store_applies_exactly_the_change_kinds_of_the_protocol():
    from app.store.sync.feed import APPLIERS

    assert set(APPLIERS) == set(protocol.CHANGE_KINDS)


def test_every_change_kind_the_hub_writes_is_one_of_the_protocols():
    written: set[str] = set()
    for path in sorted((ROOT / "app").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        # append_change(db, "kind", …) and the catalog's INSERT … SELECT 'kind', …
        written |= set(re.findall(r'append_change\(\s*db,\s*"(\w+)"', source))
        written |= set(re.findall(r"SELECT '(\w+)', \w+\.\w+, NULL", source))
        for name in re.findall(
            r"append_change\(\s*db,\s*(CHANGE_\w+|protocol\.CHANGE_\w+)", source
        ):
            written.add(getattr(protocol, name.removeprefix("protocol.")))
    assert {"stock", "category", "product", "outbox_command"} <= written  # found
    assert written <= set(protocol.CHANGE_KINDS)
