"""Click-and-collect in the store: web orders to prepare, hand over and take back.

Orders arrive from the hub's change feed (:mod:`.feed`). Every staff action is one
write transaction (``BEGIN IMMEDIATE``) that changes the order, appends to the audit
log and queues what the hub must learn in the outbox, so nothing done at the counter is
lost when the hub is unreachable. One module per job; import the one holding the name:

    status    the statuses in their order, OrderError, touch (change an order's row)
    calendar  opening and closing days, when a ready order expires
    queries   one order, the counter's lists and counts, search; require guards
    preparation  picking list, scanning units in, short lines, ready on a shelf slot
    pickup    the pickup QR and code, the hand-over
    returns   finding the order and taking goods back
    expiry    expiring orders past their last day, the last-day reminder
    feed      applying the hub's ``order`` changes

Domain code: nothing here imports Flask.
"""
