"""The hub look-up behind a scanned card this store does not hold (issue 14).

:func:`app.store.domain.card_lookup.learn` takes an ``ask(card_id)`` callable and knows
nothing of the hub client; :func:`asker` makes it for the kiosk: None while the link to
the hub is down (the kiosk does not wait for a hub it knows it cannot reach), else a
signed ``POST /api/v1/cards/lookup`` with a short timeout (:data:`CONNECT_TIMEOUT_S` +
:data:`READ_TIMEOUT_S` <= 0.8 s: a shopper is standing at the kiosk).

A card the hub does not know is remembered a minute (:data:`MISS_TTL_S`) so scanning it
again does not use up the store's look-up budget at the hub: in ``memo.db``, shared by
every web worker (app/store/sync/memo.py), or in this process without a data directory.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlite_utils import Database

from app.store.domain.card_lookup import Ask
from app.store.sync import memo, state
from app.store.sync.client import HubClient, HubError

CONNECT_TIMEOUT_S = 0.2  # a refused or lost connection shows at once
READ_TIMEOUT_S = 0.6
MISS_TTL_S = 60.0
MAX_MISSES = 256

_misses: dict[str, float] = {}
_misses_lock = threading.Lock()
_quick: dict[tuple[str, str], HubClient] = {}


def _quick_client(client: HubClient) -> HubClient:
    """A client for the same hub and store with the kiosk's short timeouts."""
    key = (client.base_url, client.store_id)
    quick = _quick.get(key)
    if quick is None or quick.secret != client.secret:
        quick = HubClient(
            client.base_url,
            client.store_id,
            client.secret,
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
        )
        _quick[key] = quick
    return quick


def _missed(card_id: str, now: float) -> bool:
    with _misses_lock:
        for key in [k for k, at in _misses.items() if now - at >= MISS_TTL_S]:
            del _misses[key]
        return card_id in _misses


def _remember_miss(card_id: str, now: float) -> None:
    with _misses_lock:
        if len(_misses) >= MAX_MISSES:
            _misses.clear()
        _misses[card_id] = now


def look_up(
    client: HubClient, card_id: str, misses: memo.Memo | None = None
) -> dict[str, Any] | None:
    """The hub's data for a live card, None for a card it does not know (404); raises
    HubError on any other failure (down, slow, rate-limited, a bad answer). ``misses``:
    where the cards the hub does not know are remembered (this process's memory when
    None)."""
    now = time.monotonic()
    if misses.get(card_id) if misses is not None else _missed(card_id, now):
        return None
    try:
        answer = _quick_client(client).request("POST", "/api/v1/cards/lookup", {"card_id": card_id})
    except HubError as exc:
        if exc.status == 404:
            if misses is not None:
                misses.put(card_id, True)
            else:
                _remember_miss(card_id, now)
            return None
        raise
    card = answer.get("card")
    if not isinstance(card, dict):
        raise HubError("the hub's answer has no card", status=200, code="bad_answer")
    return card


def asker(db: Database, client: HubClient | None) -> Ask | None:
    """The kiosk's ``ask`` for card_lookup.learn: None without a hub or while the link
    to it is down (app/store/sync/state.py)."""
    if client is None or not state.is_online(db):
        return None
    path = memo.path_of(db)
    misses = memo.Memo(path, "card_miss", MISS_TTL_S) if path else None
    return lambda card_id: look_up(client, card_id, misses)
