"""Developer tools run from the repository's root (``python -m tools.X``): not part of the
product (``app``), nothing in ``app`` imports them."""
