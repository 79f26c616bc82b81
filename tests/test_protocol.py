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


def _change_kind(node: ast.expr) -> str | None:
    """The kind a ``CHANGE_X`` / ``protocol.CHANGE_X`` expression names (None otherwise)."""
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        name = node.attr if node.value.id == "protocol" else ""
    else:
        return None
    return getattr(protocol, name, None) if name.startswith("CHANGE_") else None


#: A change kind written into SQL: ``SELECT 'stock', …`` or ``kind = 'outbox_command'``.
_SQL_KIND = re.compile(r"(?:SELECT\s+|\bkind\s*(?:=|!=|<>|IN\s*\()\s*)'(\w+)'", re.IGNORECASE)


def test_every_change_kind_is_written_with_the_protocols_constants():
    """``append_change`` gets a ``CHANGE_*`` constant of app/core/protocol.py, never a
    string literal, and no SQL string spells a change kind (it is a bound parameter)."""
    written: set[str] = set()
    literals: list[str] = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        where = path.relative_to(ROOT)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name != "append_change":
                    continue
                arg = node.args[1] if len(node.args) > 1 else None
                arg = arg or next((k.value for k in node.keywords if k.arg == "kind"), None)
                kind = _change_kind(arg) if arg is not None else None
                if kind is None:
                    literals.append(f"{where}:{node.lineno}: append_change({ast.unparse(arg)})")
                else:
                    written.add(kind)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                for kind in _SQL_KIND.findall(node.value):
                    if kind in protocol.CHANGE_KINDS:
                        literals.append(f"{where}:{node.lineno}: SQL {kind!r}")
    assert not literals
    assert {"store", "stock", "order", "hub_key", "promotion", "outbox_command"} <= written
    assert written <= set(protocol.CHANGE_KINDS)
