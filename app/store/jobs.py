"""The store server's timers: work that runs by the clock, not on a request.

Domain code says what to do (:func:`app.store.domain.orders.expiry.expire_due`,
:func:`app.store.domain.reservations.expire_due`); this module only decides when, in a
thread of ``kiosk serve`` with its own database connection. The sync worker's threads
live with the sync code (app/store/sync/worker.py).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from app.core import db as dbmod
from app.store.domain import forgetting, reservations
from app.store.domain.orders import expiry

log = logging.getLogger(__name__)


class ExpiryTimer:
    """Runs the expiries every ``interval`` seconds (own connection): web orders past
    their last day and reservations past their time; and what the store forgets
    (app/store/domain/forgetting.py)."""

    def __init__(self, path: Any, interval: float = 60) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self.first_round = threading.Event()  # set once every job ran once
        self._thread = threading.Thread(target=self._run, name="order-expiry", daemon=True)

    def start(self) -> ExpiryTimer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        db = dbmod.connect(self.path)
        try:
            while not self._stop.is_set():
                # Each guarded on its own: a bad row in one must not stop the other, nor
                # the timer.
                jobs = (
                    ("order", expiry.expire_due),
                    ("reservation", reservations.expire_due),
                    ("forgetting", forgetting.forget_due),  # personal data no longer needed
                )
                for name, job in jobs:
                    try:
                        job(db)
                    except Exception:
                        log.exception("%s expiry failed", name)
                self.first_round.set()
                self._stop.wait(self.interval)
        finally:
            self.first_round.set()  # never leave anyone waiting for it
            db.close()
