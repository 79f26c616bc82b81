"""The store's HTTP client for the hub's sync API (docs/protocol.md), signed requests.

Every failure becomes a :class:`HubError` that says whether retrying can help and how
long the hub asked us to wait, so the worker's retry policy lives in one place.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode

import requests

from app.core.signing import sign_request

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0


class HubError(Exception):
    """The hub could not be reached or refused a request."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.timed_out = timed_out  # no answer in time (status None)

    @property
    def retryable(self) -> bool:
        """Network errors, timeouts, 408, 429 and 5xx may pass; another 4xx will not."""
        return is_retryable_status(self.status)


def is_retryable_status(status: int | None) -> bool:
    """Whether a failure with this HTTP status (None: no answer at all) is worth retrying."""
    if status is None:
        return True
    return status in (408, 429) or status >= 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HubClient:
    """Signed calls to one hub as one store, over a pooled ``requests.Session``."""

    def __init__(
        self,
        base_url: str,
        store_id: str,
        secret: str,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.store_id = store_id
        self.secret = secret
        self.session = session or requests.Session()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def request(
        self,
        method: str,
        path_qs: str,
        body: dict[str, Any] | None = None,
        *,
        read_timeout: float | None = None,
        raw_body: bytes | None = None,
    ) -> dict[str, Any]:
        """Send one signed request (``body`` as JSON, or ``raw_body`` JSON already
        written); the decoded JSON answer, or raise HubError."""
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        if raw_body is not None:
            data = raw_body
        headers = {"Accept": "application/json"}
        if body is not None or raw_body is not None:
            headers["Content-Type"] = "application/json"
        prepared = self.session.prepare_request(
            requests.Request(method, self.base_url + path_qs, data=data, headers=headers)
        )
        # Sign the path and query exactly as they go on the request line, after
        # requests has done any quoting of its own.
        prepared.headers.update(
            sign_request(self.store_id, self.secret, method, prepared.path_url, data)
        )
        timeout = (self.connect_timeout, read_timeout or self.read_timeout)
        try:
            response = self.session.send(prepared, timeout=timeout)
        except requests.Timeout as exc:
            raise HubError(
                f"the hub did not answer in time ({exc.__class__.__name__})", timed_out=True
            ) from exc
        except requests.RequestException as exc:
            raise HubError(f"cannot reach the hub: {exc.__class__.__name__}") from exc
        return _decode(response)

    def post_transactions(self, transactions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send a batch (at most 500); the hub's result per transaction, in order."""
        answer = self.request("POST", "/api/v1/transactions", {"transactions": transactions})
        return _results(answer)

    def post_transaction_texts(self, texts: list[str]) -> list[dict[str, Any]]:
        """:meth:`post_transactions` for transactions already written as JSON texts (the
        outbox keeps payloads as JSON: sent as they are, not parsed and written again)."""
        body = ('{"transactions":[' + ",".join(texts) + "]}").encode()
        return _results(self.request("POST", "/api/v1/transactions", raw_body=body))

    def get_changes(self, since: str, *, wait: int = 0, limit: int = 1000) -> dict[str, Any]:
        """One page of the change feed after ``since``, long-polling up to ``wait`` s."""
        query = urlencode({"since": since, "wait": wait, "limit": limit})
        page = self.request(
            "GET", f"/api/v1/changes?{query}", read_timeout=max(self.read_timeout, wait + 10)
        )
        if not isinstance(page.get("changes"), list):
            raise HubError("the hub's answer has no changes", status=200, code="bad_answer")
        return page

    def get_cart(self, cart_id: str, *, read_timeout: float = 4.0) -> dict[str, Any]:
        """A web cart too big for its QR token: ``{id, status, lines, updated_at}``.

        A shopper is waiting at the kiosk, so the answer is awaited a few seconds only.
        Raises HubError (``unknown_cart`` 404, ``cart_revoked`` 410, ``rate_limited`` 429).
        """
        answer = self.request(
            "GET", f"/api/v1/carts/{quote(cart_id, safe='')}", read_timeout=read_timeout
        )
        cart = answer.get("cart")
        if not isinstance(cart, dict) or not isinstance(cart.get("lines"), list):
            raise HubError("the hub's answer has no cart", status=200, code="bad_answer")
        return cart

    def report_health(self, report: dict[str, Any]) -> dict[str, Any]:
        """Send the store's health report (app/store/sync/health.py); the hub's computed values
        (``clock_skew_s``, ``sync_lag_s``, ``received_at``)."""
        return self.request("POST", "/api/v1/health", report)


def _decode(response: requests.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code == 200:
        if not isinstance(payload, dict):
            # E.g. a proxy cut the answer short: nothing tells what the hub did, retry.
            raise HubError("the hub's answer is not JSON", status=502, code="bad_answer")
        return payload
    code = payload.get("error") if isinstance(payload, dict) else None
    message = payload.get("message") if isinstance(payload, dict) else None
    retry_after = None
    if response.status_code in (429, 503):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
    raise HubError(
        f"hub answered {response.status_code}"
        + (f" {code}" if code else "")
        + (f": {message}" if message else ""),
        status=response.status_code,
        code=code,
        retry_after=retry_after,
    )


def _results(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The hub's result per transaction of a batch, in order."""
    results = answer.get("results")
    if not isinstance(results, list):
        raise HubError("the hub's answer has no results", status=200, code="bad_answer")
    return results
