"""Work held back to the end of a block inside a transaction, minus what a savepoint rolled back.

``log_deferred`` (the provider log) and ``outbound_batch`` (SMTP sends) collect what is asked of
them inside a block and act on it once, at the block's end. Django drops the on_commit
callbacks of a savepoint that is rolled back; a ``Marker`` registered next to each item lets
the block tell, at its end, which items went with such a savepoint.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction


class Marker:
    """An on_commit no-op standing for one held-back item."""

    def __call__(self) -> None:
        return None


def marker() -> Marker:
    """A marker registered with on_commit in the current transaction (or savepoint)."""
    mark = Marker()
    transaction.on_commit(mark)
    return mark


def alive[T](items: Iterable[tuple[T, Marker]]) -> list[T]:
    """The items whose marker is still registered: not rolled back with a savepoint."""
    registered = {id(func) for _sids, func, _robust in connection.run_on_commit}
    return [item for item, mark in items if id(mark) in registered]


class Held[T]:
    """What one outermost ``HeldBack.block()`` collected."""

    def __init__(self) -> None:
        self.items: list[tuple[T, Marker]] = []

    def alive(self) -> list[T]:
        return alive(self.items)


class HeldBack[T]:
    """Items held back, per thread, while a ``block()`` is open.

    ``add`` holds items (False when no block is open: the caller acts at once); ``block()``
    yields a ``Held`` to act on after the block, or None for a nested block (the outermost
    one acts). A block must run inside a transaction.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._local = threading.local()

    def add(self, items: Iterable[T]) -> bool:
        held: Held[T] | None = getattr(self._local, "held", None)
        if held is None:
            return False
        held.items.extend((item, marker()) for item in items)
        return True

    @contextmanager
    def block(self) -> Iterator[Held[T] | None]:
        if getattr(self._local, "held", None) is not None:
            yield None
            return
        if not connection.in_atomic_block:
            raise RuntimeError(f"{self.name}() runs inside transaction.atomic()")
        held: Held[T] = Held()
        self._local.held = held
        try:
            yield held
        finally:
            self._local.held = None
