"""A progress bar on stderr for long CLI work that reports ``progress(done, total)``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import click


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A percent bar; yields the ``progress(done, total)`` callback to hand to the work."""
    with click.progressbar(length=100, label=label, file=sys.stderr) as bar:
        shown = 0

        def progress(done: int, total: int) -> None:
            nonlocal shown
            pct = int(done * 100 / max(total, 1))
            bar.update(pct - shown)
            shown = pct

        yield progress
