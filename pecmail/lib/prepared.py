"""``PreparedRead`` and ``PreparedUpdate``: ORM statements compiled once per process.

A handful of reads run for every message on the certification pipeline (the submission being
accepted, the inbound row being processed, the Sent copy a receipt refers to, the mailbox a
delivery goes to). For each, Django spends about 0.8 ms of CPU building the queryset and
compiling its SQL, and the database a tenth of that running it. A ``PreparedRead`` builds its
queryset once per shape of the arguments, with marker values in their place, and keeps the
compiled statement; from then on it only puts the real values into the parameters, runs the
statement through the connection's cursor wrapper, as the ORM does (tests that count queries
see it), and turns the rows into what the queryset would have returned: model instances with
their ``select_related`` objects, or ``values_list`` rows, through the same converters.
``PreparedUpdate`` does the same for ``filter(…).update(…)``, the other statement on that path.

Arguments are ``str`` or ``int`` values, or lists or tuples of them (for ``__in``). They must
reach the SQL unchanged (``exact``, ``in``, comparisons; not ``iexact`` or ``contains``, whose
value some backends rewrite): a marker not found exactly once among the compiled parameters
is a ``TypeError`` at the first call, never a wrong query. Results come back as a list.

Built on the compiler's documented-by-use interface (what ``ModelIterable`` and
``QuerySet.update`` call), so ``tests/foundation/test_prepared.py`` compares every kind of
result with the ORM's own, on both backends: a Django upgrade that changes it fails there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesListIterable,
    get_related_populators,
)
from django.db.models.sql import UpdateQuery

# A str marker holds the characters LIKE escaping rewrites, so such a lookup is caught.
_STR_MARKER = "\x00prepared%_\\{}\x00"
_INT_MARKER = -(2**62)

# Where an argument goes: (index of the argument, index in it when it is a list, else None).
Slot = tuple[int, int | None]


class _Plan:
    """One compiled shape: the statement, where each argument goes, how to read the rows."""

    def __init__(self, queryset: QuerySet, alias: str, markers: list[tuple[Any, Slot]]) -> None:
        self.alias = alias
        self.iterable = queryset._iterable_class
        if self.iterable not in (ModelIterable, ValuesListIterable, FlatValuesListIterable):
            raise TypeError("prepared read: only model and values_list reads")
        compiler = queryset.query.get_compiler(using=alias)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:  # e.g. pk__in=[]: the ORM returns nothing without a query
            self.sql = None
            return
        self.sql, self.params = sql, list(params)
        self.positions = [(_position(self.params, marker, slot), slot) for marker, slot in markers]
        self.compiler = compiler
        select = compiler.select
        self.converters = compiler.get_converters([s[0] for s in select[0 : compiler.col_count]])
        if self.iterable is ModelIterable:
            klass_info = compiler.klass_info
            fields = klass_info["select_fields"]
            self.model = klass_info["model"]
            self.start, self.end = fields[0], fields[-1] + 1
            self.init_list = [f[0].target.attname for f in select[self.start : self.end]]
            self.fetch_mode = queryset._fetch_mode
            self.populators = get_related_populators(klass_info, select, alias, self.fetch_mode)
            self.annotations = list(compiler.annotation_col_map.items())
        else:
            query = queryset.query
            names = [*query.extra_select, *query.values_select, *query.annotation_select]
            wanted = list(queryset._fields) or names
            # values_list("b", "a") selects in the query's own order: put them back as asked.
            self.order = None if wanted == names else [names.index(n) for n in wanted]

    def run(self, args: Sequence[Any]) -> list[Any]:
        if self.sql is None:
            return []
        params = list(self.params)
        for position, (arg, element) in self.positions:
            params[position] = args[arg] if element is None else args[arg][element]
        with connections[self.alias].cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        if self.iterable is ModelIterable:
            objects = []
            for row in rows:
                obj = self.model.from_db(
                    self.alias, self.init_list, row[self.start : self.end], fetch_mode=self.fetch_mode
                )
                for populator in self.populators:
                    populator.populate(row, obj)
                for name, position in self.annotations:
                    setattr(obj, name, row[position])
                objects.append(obj)
            return objects
        if self.order is not None:
            rows = [[row[i] for i in self.order] for row in rows]
        if self.iterable is FlatValuesListIterable:
            return [row[0] for row in rows]
        return [tuple(row) for row in rows]


class PreparedRead:
    """``PreparedRead(build)``; ``read(*args)`` returns ``list(build(*args))`` (see the module)."""

    def __init__(self, build: Callable[..., QuerySet]) -> None:
        self.build = build
        # Per thread: a compiled query holds its connection, and connections are per thread.
        self._local = threading.local()

    def __call__(self, *args: Any, using: str | None = None) -> list[Any]:
        shape = tuple(_kind(arg, i) for i, arg in enumerate(args))
        plans = _plans(self._local)
        plan = plans.get((using, shape))
        if plan is None:
            plan = plans[(using, shape)] = self._plan(shape, using)
        return plan.run(args)

    def first(self, *args: Any, using: str | None = None) -> Any:
        """The first result or None (order the queryset in ``build`` when several can match)."""
        rows = self(*args, using=using)
        return rows[0] if rows else None

    def _plan(self, shape: tuple, using: str | None) -> _Plan:
        queryset, markers = _built(self.build, shape)
        return _Plan(queryset, using or router.db_for_read(queryset.model), markers)


class PreparedUpdate:
    """``PreparedUpdate(build, "a", "b")``; ``update(*args, a=…, b=…)`` runs
    ``build(*args).update(a=…, b=…)`` as a statement compiled once per shape of ``args``.

    ``args`` go into the WHERE clause, as for ``PreparedRead``; the values are prepared for
    the database by their fields at every call, as ``QuerySet.update`` does. Returns the
    number of rows updated. A value that is an expression (``F()``, ``Value``) goes through
    ``QuerySet.update`` itself.
    """

    def __init__(self, build: Callable[..., QuerySet], *names: str) -> None:
        self.build = build
        self.names = names
        self._local = threading.local()

    def __call__(self, *args: Any, using: str | None = None, **values: Any) -> int:
        if set(values) != set(self.names):
            raise TypeError(f"prepared update: the values are {', '.join(self.names)}")
        if any(hasattr(value, "resolve_expression") for value in values.values()):
            return self.build(*args).update(**values)
        shape = tuple(_kind(arg, i) for i, arg in enumerate(args))
        plans = _plans(self._local)
        plan = plans.get((using, shape))
        if plan is None:
            plan = plans[(using, shape)] = self._plan(shape, using, values)
        alias, sql, template, fields, placeholders, compiler, positions = plan
        if sql is None:
            return 0
        connection = connections[alias]
        params: list[Any] = []
        for (name, field), placeholder in zip(fields, placeholders, strict=True):
            value_sql, value_params = _set_value(field, values[name], compiler, connection)
            if value_sql != placeholder:  # e.g. a backend that writes NULL another way
                return self.build(*args).update(**values)
            params += value_params
        params += template
        for position, (arg, element) in positions:
            params[position] = args[arg] if element is None else args[arg][element]
        # As QuerySet.update: an error marks the enclosing atomic block for rollback.
        with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def _plan(self, shape: tuple, using: str | None, values: dict[str, Any]) -> tuple:
        queryset, markers = _built(self.build, shape)
        alias = using or router.db_for_write(queryset.model)
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values({name: values[name] for name in self.names})
        fields = [(name, queryset.model._meta.get_field(name)) for name in self.names]
        compiler = query.get_compiler(alias)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            return alias, None, [], fields, [], compiler, []
        # The SET values come first, in the order given, then the WHERE clause's parameters.
        placeholders, count = [], 0
        for name, field in fields:
            value_sql, value_params = _set_value(field, values[name], compiler, connections[alias])
            placeholders.append(value_sql)
            count += len(value_params)
        template = list(params[count:])
        positions = [(count + _position(template, marker, slot), slot) for marker, slot in markers]
        return alias, sql, template, fields, placeholders, compiler, positions


# Shapes kept per statement and thread: an ``__in`` list of every length up to this is a few
# kilobytes each; past it they are compiled again (long lists are rare on the pipeline).
PLANS_MAX = 64


def _plans(local: threading.local) -> dict:
    plans = local.__dict__.setdefault("plans", {})
    if len(plans) >= PLANS_MAX:
        plans.clear()
    return plans


def _set_value(field: Any, value: Any, compiler: Any, connection: Any) -> tuple[str, tuple]:
    """A value's placeholder and parameters, as ``SQLUpdateCompiler.as_sql`` writes them."""
    value = _save_value(field, value, connection)
    if (placeholder_sql := getattr(field, "get_placeholder_sql", None)) is not None:
        sql, params = placeholder_sql(value, compiler, connection)
        return sql, tuple(params)
    return "%s", (value,)


def _save_value(field: Any, value: Any, connection: Any) -> Any:
    """A value as ``SQLUpdateCompiler`` puts it into its statement."""
    if hasattr(value, "prepare_database_save"):
        value = value.prepare_database_save(field)
    return field.get_db_prep_save(value, connection=connection)


def _built(build: Callable[..., QuerySet], shape: tuple) -> tuple[QuerySet, list[tuple[Any, Slot]]]:
    """``build`` called with a marker in place of every value; returns its queryset and the markers."""
    markers: list[tuple[Any, Slot]] = []

    def marker(kind: type, slot: Slot) -> Any:
        value = _STR_MARKER.format(len(markers)) if kind is str else _INT_MARKER - len(markers)
        markers.append((value, slot))
        return value

    values = [
        [marker(kind, (i, j)) for j in range(length)] if length is not None else marker(kind, (i, None))
        for i, (kind, length) in enumerate(shape)
    ]
    return build(*values), markers


def _position(params: list[Any], marker: Any, slot: Slot) -> int:
    found = [i for i, p in enumerate(params) if type(p) is type(marker) and p == marker]
    if len(found) != 1:
        raise TypeError(
            f"prepared statement: argument {slot[0]} does not reach the SQL unchanged exactly once; "
            "use exact or in lookups on str or int values"
        )
    return found[0]


def _kind(arg: Any, index: int) -> tuple[type, int | None]:
    """An argument's shape: (str or int, None) for a value, (element type, length) for a list."""
    if isinstance(arg, list | tuple):
        kinds = {_scalar(v, index) for v in arg}
        if len(kinds) > 1:
            raise TypeError(f"prepared read: argument {index} mixes str and int")
        return (kinds.pop() if kinds else str), len(arg)
    return _scalar(arg, index), None


def _scalar(value: Any, index: int) -> type:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"prepared read: argument {index} must be str or int, or a list of them")
    return str if isinstance(value, str) else int
