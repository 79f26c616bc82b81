"""How long to wait before trying the hub again (docs/protocol.md, "Retries").

Full jitter: a random wait between zero and an exponentially growing ceiling, so a
hundred stores coming back after an outage do not all knock at the same second.
"""

from __future__ import annotations

import random

BASE_S = 1.0
CAP_S = 60.0
# A Retry-After is the hub's own instruction and is obeyed, but a bogus huge value
# must not silence a store for days.
MAX_RETRY_AFTER_S = 600.0


def ceiling(attempt: int, *, base: float = BASE_S, cap: float = CAP_S) -> float:
    """The largest wait after ``attempt`` failures in a row (0 for the first retry)."""
    # min() before the power would overflow for a very long outage.
    return min(cap, base * 2 ** min(attempt, 32))


def delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    retryable: bool = True,
    cap: float = CAP_S,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait: Retry-After if the hub gave one, the cap for an error that
    retrying will not fix (a 4xx), else ``uniform(0, min(cap, 2^attempt))``."""
    if retry_after is not None and retry_after >= 0:
        return min(float(retry_after), MAX_RETRY_AFTER_S)
    if not retryable:
        return cap
    return (rng or random).uniform(0, ceiling(attempt, cap=cap))
