"""What the transaction handlers share: the refusal, ids, instants, canonical JSON.

Every handler (``handler(db, store_id, payload, tx_id) -> result``, listed in
:mod:`app.hub.protocol.handlers`) runs inside its item's savepoint
(:mod:`app.hub.protocol.transactions`), validates everything before writing anything,
and raises :class:`Rejected` to refuse.
"""

from __future__ import annotations

import json
import re
import uuid
from contextvars import ContextVar
from datetime import UTC
from typing import Any

from app.core.clock import parse_iso
from app.core.jsonsafe import json_default
from app.core.protocol import MAX_INSTANT, MAX_UUID

#: The envelope's ``occurred_at`` of the transaction being applied (when the store says
#: it happened; set by :mod:`app.hub.protocol.transactions` around each handler), for a
#: handler that orders events by it: a consent withdrawn offline at a kiosk
#: (:mod:`app.hub.protocol.consent`) against a choice made online meanwhile.
OCCURRED_AT: ContextVar[str | None] = ContextVar("occurred_at", default=None)


class Rejected(Exception):
    """A transaction the hub refuses; ``reason`` is the protocol's stable code
    (:data:`app.core.protocol.REASONS`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def invalid(message: str) -> Rejected:
    """An ``invalid_payload`` refusal."""
    return Rejected("invalid_payload", message)


# One encoder for every call: json.dumps with these options builds a new one each time
# (a hub batch hashes and records thousands of items).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_default
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: equal JSON values give equal strings."""
    return _CANONICAL.encode(value)


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_id(value: Any) -> str | None:
    """The canonical (lower-case, hyphenated) form of a UUID, or None if it is not one."""
    if not isinstance(value, str) or len(value) > MAX_UUID:
        return None
    if _CANONICAL_UUID.fullmatch(value):
        return value  # what str(uuid.UUID(value)) gives back, without building one
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def is_instant(value: Any) -> bool:
    """An ISO-8601 instant the hub can show and compare (years 1970 to 9998)."""
    if not isinstance(value, str) or len(value) > MAX_INSTANT:
        return False
    try:
        # To UTC too: "0001-01-01T00:00:00+05:00" parses but cannot be shown or compared.
        moment = parse_iso(value).astimezone(UTC)
    except (ValueError, OverflowError):
        return False
    return 1970 <= moment.year <= 9998
