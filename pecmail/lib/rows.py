"""``rows_insert``: ``bulk_create`` for the few inserts on every message's path.

Storing an SMTP transaction, appending to the provider log and queueing outbox work run for
every message, and for a one- or two-row batch ``QuerySet.bulk_create`` spends several times
longer building its statement than the database spends running it. This builds the same
``INSERT … RETURNING`` from the model's fields (each value adapted by the field itself, as
the ORM does) and caches the statement per shape.

For plain models only: concrete local fields, an auto-incremented primary key, no
multi-table inheritance. Like ``bulk_create`` it sends no signals and calls no ``save()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, connections, models, router, transaction

_STATEMENTS: dict[tuple[type[models.Model], str, int], tuple[str, tuple]] = {}


def _statement(model: type[models.Model], connection: Any, count: int) -> tuple[str, tuple]:
    key = (model, connection.vendor, count)
    if key not in _STATEMENTS:
        if len(_STATEMENTS) > 256:
            _STATEMENTS.clear()
        _STATEMENTS[key] = _statement_build(model, connection.ops.quote_name, count)
    return _STATEMENTS[key]


def _statement_build(model: type[models.Model], quote: Any, count: int) -> tuple[str, tuple]:
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key)
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    values = ", ".join([row] * count)
    table = quote(meta.db_table)
    pk = quote(meta.pk.column)
    return f"INSERT INTO {table} ({columns}) VALUES {values} RETURNING {pk}", fields  # noqa: S608 - no user input


def rows_insert(objs: Sequence[models.Model], *, using: str | None = None) -> list[models.Model]:
    """Insert unsaved instances of one model in one statement and set their primary keys."""
    if not objs:
        return list(objs)
    model = type(objs[0])
    alias = using or router.db_for_write(model)
    connection = connections[alias]
    if not connection.features.can_return_rows_from_bulk_insert:
        return model._base_manager.using(alias).bulk_create(objs)
    # As bulk_create does: no more rows per statement than the backend takes parameters for.
    size = connection.ops.bulk_batch_size(_statement(model, connection, 1)[1], objs) or len(objs)
    for start in range(0, len(objs), size):
        chunk = objs[start : start + size]
        sql, fields = _statement(model, connection, len(chunk))
        params: list[Any] = []
        for obj in chunk:
            for field in fields:
                params.append(field.get_db_prep_save(field.pre_save(obj, add=True), connection=connection))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ids = [row[0] for row in cursor.fetchall()]
        for obj, pk in zip(chunk, ids, strict=True):
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = alias
    return list(objs)


_NEW_STATEMENTS: dict[tuple[type[models.Model], str, tuple[str, ...]], tuple[str, tuple]] = {}


def row_insert_new(obj: models.Model, *, unique: tuple[str, ...], using: str | None = None) -> bool:
    """Insert ``obj`` unless a row with the same ``unique`` fields exists; True if inserted.

    ``INSERT … ON CONFLICT (unique) DO NOTHING RETURNING pk``: the claim pattern without the
    savepoint that catching an IntegrityError needs inside a transaction (two round trips per
    insert). ``unique`` must name the fields of a unique constraint of the model. Any other
    error is raised as usual. Sets the primary key when the row is inserted.
    """
    model = type(obj)
    alias = using or router.db_for_write(model)
    connection = connections[alias]
    if not connection.features.can_return_rows_from_bulk_insert:  # SQLite before 3.35
        try:
            with transaction.atomic(using=alias):
                obj.save(force_insert=True, using=alias)
        except IntegrityError:
            return False
        return True
    key = (model, connection.vendor, unique)
    if key not in _NEW_STATEMENTS:
        insert, fields = _statement_build(model, connection.ops.quote_name, 1)
        columns = ", ".join(connection.ops.quote_name(model._meta.get_field(f).column) for f in unique)
        head, _returning, pk = insert.rpartition(" RETURNING ")
        _NEW_STATEMENTS[key] = (f"{head} ON CONFLICT ({columns}) DO NOTHING RETURNING {pk}", fields)
    sql, fields = _NEW_STATEMENTS[key]
    params = [
        field.get_db_prep_save(field.pre_save(obj, add=True), connection=connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = alias
    return True
