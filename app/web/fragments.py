"""Rendered fragments cached by what they show (a product card, a product's head…).

A fragment's key is the values it is rendered from (the language, and the
product, stock, price… the template passes), not version counters: a card whose
price, stock or name changed has another key, so it can never be served stale, and a
sale of one product does not throw away the cards of all the others (the stock version
moves with every sale and every other store's level the hub sends).

The cache is per app and per process (each gunicorn web worker keeps its own copy; a
copy can be missing, never wrong) and bounded by the size of what it holds, least
recently used first out. Only what every shopper sees alike goes in: a template keeps
per-shopper bits (CSRF token, usual size, cart…) outside the ``{% call fragment %}``.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from markupsafe import Markup

from app.web.i18n import current_lang

EXTENSION = "fragments"
DEFAULT_MAX_BYTES = 4_000_000  # per process: ~3,000 cards (key and HTML); issue 15's RSS budget


class FragmentCache:
    """A thread-safe LRU of rendered HTML, bounded by the bytes its strings take."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> str | None:
        with self._lock:
            html = self._items.get(key)
            if html is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return html

    def put(self, key: str, html: str) -> None:
        size = _size(key, html)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= _size(key, old)
            self._items[key] = html
            self.bytes += size
            while self.bytes > self.max_bytes:
                dropped = self._items.popitem(last=False)
                self.bytes -= _size(*dropped)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0


def _size(key: str, html: str) -> int:
    return sys.getsizeof(key) + sys.getsizeof(html)


def key_of(kind: str, lang: str, root: str, parts: tuple[Any, ...]) -> str:
    """Everything a fragment is rendered from, as one string: ``repr`` of str, int,
    None, lists and dicts tells different values apart ('1' is not 1); the same values
    in another order only make another key (a miss, never a wrong page). ``root``: the
    address the app is mounted at, which its links start with."""
    return repr((kind, lang, root, parts))


def cache_for(app: Flask) -> FragmentCache:
    """The app's fragment cache (``init_app`` made it)."""
    return app.extensions[EXTENSION]


def fragment(kind: str, *parts: Any, caller: Callable[[], str]) -> Markup:
    """``{% call fragment("head", product, …) %}…{% endcall %}``: the body rendered
    once per (kind, language, ``parts``); ``parts`` must hold every value it reads."""
    return _cached(kind, parts, caller)


def cached(macro: Callable[..., str], kind: str) -> Callable[..., Markup]:
    """A macro whose arguments are everything it reads, made a cached one:
    ``{% set product_card = cached(card, "card") %}`` (cheaper than a call block for
    the 24 cards of a page: no caller made per card)."""

    def render(*args: Any) -> Markup:
        return _cached(kind, args, lambda: macro(*args))

    return render


def _cached(kind: str, parts: tuple[Any, ...], render: Callable[[], str]) -> Markup:
    cache = cache_for(current_app)
    key = key_of(kind, current_lang(), request.script_root, parts)
    html = cache.get(key)
    if html is None:
        html = str(render())
        cache.put(key, html)
    return Markup(html)  # noqa: S704 - the template's own rendering, escaped by Jinja


def init_app(app: Flask) -> None:
    """Give the app its cache (``FRAGMENT_CACHE_BYTES``) and templates ``fragment``."""
    max_bytes = int(app.config.get("FRAGMENT_CACHE_BYTES", DEFAULT_MAX_BYTES))
    app.extensions[EXTENSION] = FragmentCache(max_bytes)
    app.jinja_env.globals["fragment"] = fragment
    app.jinja_env.globals["cached"] = cached
