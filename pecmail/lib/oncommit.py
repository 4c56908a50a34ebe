"""Work held back to the end of a block inside a transaction, minus what a savepoint rolled back.

``log_deferred`` (the provider log) and ``outbound_batch`` (SMTP sends) collect what is asked of
them inside a block and act on it once, at the block's end. Django drops the on_commit
callbacks of a savepoint that is rolled back; a ``Marker`` registered next to each item lets
the block tell, at its end, which items went with such a savepoint.
"""

from __future__ import annotations

from collections.abc import Iterable

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
