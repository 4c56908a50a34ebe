"""``rows_insert``: ``bulk_create`` for the few inserts on every message's path.

Storing an SMTP transaction, appending to the provider log and queueing outbox work run for
every message, and for a one- or two-row batch ``QuerySet.bulk_create`` spends several times
longer building its statement than the database spends running it. This builds the same
``INSERT … RETURNING`` from the model's fields (each value adapted by the field itself, as
the ORM does) and caches the statement per shape.

For plain models only: concrete local fields, no multi-table inheritance, and a primary key
that is auto-incremented or set on the instance (the search document's one-to-one key). Like
``bulk_create`` it sends no signals and calls no ``save()``.

``row_insert_new`` inserts unless the unique key exists (no savepoint). On PostgreSQL,
``rows_insert_sql`` and ``statement_with`` put such inserts, with other writes, into one
statement of ``WITH`` queries; ``rows_saved`` then gives the instances their keys.
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
    # An auto-incremented key is the database's to assign; any other is the instance's value.
    fields = tuple(f for f in meta.concrete_fields if f is not meta.auto_field)
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
        with connection.cursor() as cursor:
            cursor.execute(sql, _params(chunk, fields, connection))
            ids = [row[0] for row in cursor.fetchall()]
        rows_saved(chunk, ids, using=alias)
    return list(objs)


def _params(objs: Sequence[models.Model], fields: tuple, connection: Any) -> list[Any]:
    return [
        field.get_db_prep_save(field.pre_save(obj, add=True), connection=connection)
        for obj in objs
        for field in fields
    ]


def rows_saved(objs: Sequence[models.Model], pks: Sequence[Any], *, using: str) -> None:
    """Mark instances inserted by ``rows_insert_sql``'s statement as saved, with their keys."""
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = using


def rows_insert_sql(
    objs: Sequence[models.Model], *, returning: bool, using: str | None = None
) -> tuple[str, list[Any]]:
    """``rows_insert``'s statement and parameters for ``objs``, to run as part of a larger one.

    For ``statement_with`` on PostgreSQL: an INSERT in a ``WITH`` clause costs no round trip
    of its own. ``returning``: the statement returns the new primary keys (pass them to
    ``rows_saved``). One statement, so no more rows than the backend takes parameters for.
    """
    model = type(objs[0])
    connection = connections[using or router.db_for_write(model)]
    sql, fields = _statement(model, connection, len(objs))
    if not returning:
        sql = sql.rpartition(" RETURNING ")[0]
    params = _params(objs, fields, connection)
    limit = connection.features.max_query_params
    if limit and len(params) > limit:
        raise ValueError(f"{len(objs)} rows need more parameters than one statement takes")
    return sql, params


def statement_with(
    parts: Sequence[tuple[str, str, Sequence[Any]]], final: tuple[str, Sequence[Any]]
) -> tuple[str, list[Any]]:
    """One PostgreSQL statement: ``parts`` (name, statement, parameters) as ``WITH`` queries, then ``final``.

    The statements of a message's path that need no answer in between go to the database as
    one: one round trip and one execution instead of several. A data-modifying statement in
    ``WITH`` runs whether or not ``final`` reads it; all see the same snapshot, so none may
    touch a row another one changes.
    """
    if not parts:
        return final[0], list(final[1])
    names = ", ".join(f"{name} AS ({sql})" for name, sql, _params in parts)
    params = [param for _name, _sql, part in parts for param in part]
    return f"WITH {names} {final[0]}", [*params, *final[1]]


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
    with connection.cursor() as cursor:
        cursor.execute(sql, _params([obj], fields, connection))
        row = cursor.fetchone()
    if row is None:
        return False
    rows_saved([obj], row, using=alias)
    return True
