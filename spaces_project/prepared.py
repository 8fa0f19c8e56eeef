"""Querysets compiled to SQL once per process, for the pages people load most.

Building and compiling a queryset is pure Python, and for a query with a few ``Exists`` rules it
costs more than the database takes to answer it (the Space page's query: ~5 ms of the process's
time per request under load, against ~0.1 ms executing). A ``PreparedQuery`` builds its queryset
once with stand-in values, compiles it, and then runs the same SQL with each call's values,
turning rows into model instances exactly as the queryset would (``select_related`` objects and
annotations included). The queryset stays the one statement of what is asked.

The compiled shape is checked when it is first built: compiling again with other stand-ins must
give the same SQL with the stand-ins in the same places, so a queryset whose SQL depends on its
values (``__in`` lists, ``None`` becoming ``IS NULL``) is refused instead of answered wrongly.

Several prepared queries can be asked in one statement (``ask_together``), so a page that needs
the signed-in user and its own rows makes one round trip to the database instead of two: a round
trip costs the process ~50–70 µs of CPU in system calls alone, and under load each also hands the
interpreter lock to another thread and back (docs/benchmarks.md, session 6). The rows are kept for
the rest of the request, and the first call of the same query with the same values takes them
instead of asking again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesListIterable,
    get_related_populators,
)

# Stand-in values: integers no real row carries, distinct per argument and per trial.
_STAND_IN_BASE = (-(2**52), -(2**51))


class PreparedQueryError(TypeError):
    """The queryset's SQL depends on its values, so it can't be compiled once."""


class _Compiled:
    """One database's SQL for the shape, with what turns its rows into instances (or, for a
    ``values_list`` queryset, into tuples)."""

    def __init__(self, queryset: QuerySet, sql: str, params: list, slots: dict[int, str], compiler) -> None:
        db = queryset.db
        self.sql, self.db = sql, db
        # Each parameter: (argument name, None) for a value of the call's, (None, value) for a constant.
        self.params = [(slots[i], None) if i in slots else (None, value) for i, value in enumerate(params)]
        self.col_count = compiler.col_count
        # Columns the SQL returns beyond the selected ones (ordering by an unselected expression).
        self.width = None if compiler.has_extra_select else compiler.col_count
        fields = [s[0] for s in compiler.select[: compiler.col_count]]
        self.converters = compiler.get_converters(fields)
        self.apply_converters = compiler.apply_converters
        self.flat = queryset._iterable_class is FlatValuesListIterable
        if queryset._iterable_class is not ModelIterable:
            if not self.flat and queryset._iterable_class is not ValuesListIterable:
                raise PreparedQueryError("a prepared query returns instances or values_list rows")
            self.model = None
            return
        klass_info, select = compiler.klass_info, compiler.select
        self.model = klass_info["model"]
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.model_span = (start, end)
        self.init_list = [f[0].target.attname for f in select[start:end]]
        self.related_populators = get_related_populators(klass_info, select, db)
        self.annotation_col_map = dict(compiler.annotation_col_map or {})

    def params_for(self, values: dict[str, Any]) -> list:
        return [values[name] if name else constant for name, constant in self.params]

    def run(self, values: dict[str, Any]) -> list[Model] | list[tuple]:
        with connections[self.db].cursor() as cursor:
            cursor.execute(self.sql, self.params_for(values))
            return self.answer(cursor.fetchall())

    def answer(self, rows: list) -> list[Model] | list[tuple]:
        """What the queryset would return for these rows of this SQL."""
        rows = [row[: self.col_count] for row in rows]
        if self.converters:
            rows = list(self.apply_converters(rows, self.converters))
        if self.model is None:
            return [row[0] for row in rows] if self.flat else [tuple(row) for row in rows]
        start, end = self.model_span
        objects = []
        for row in rows:
            obj = self.model.from_db(self.db, self.init_list, row[start:end])
            for populator in self.related_populators:
                populator.populate(row, obj)
            for name, position in self.annotation_col_map.items():
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects


class PreparedQuery:
    """``build(**values)`` returns a queryset; calls run its compiled SQL.

    Every argument must be an integer (ids). ``all(**values)`` returns what the queryset would:
    model instances, or for a ``values_list`` queryset tuples (values, when flat);
    ``first(**values)`` the first of them or None.
    """

    def __init__(self, build: Callable[..., QuerySet], *names: str) -> None:
        self.build, self.names = build, names
        self._compiled: _Compiled | None = None
        self._lock = threading.Lock()

    def _compile(self, base: int) -> tuple[QuerySet, list, str, object]:
        stand_ins = {name: base - i for i, name in enumerate(self.names)}
        queryset = self.build(**stand_ins)
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        return queryset, list(params), sql, compiler

    def _compiled_once(self) -> _Compiled:
        with self._lock:
            if self._compiled is not None:
                return self._compiled
            (queryset, params, sql, compiler), (_, other_params, other_sql, _) = (
                self._compile(base) for base in _STAND_IN_BASE
            )
            if sql != other_sql or len(params) != len(other_params):
                raise PreparedQueryError("the queryset's SQL depends on its values")
            slots = {}
            for i, (value, other) in enumerate(zip(params, other_params, strict=True)):
                for j, name in enumerate(self.names):
                    if value == _STAND_IN_BASE[0] - j and other == _STAND_IN_BASE[1] - j:
                        slots[i] = name
                        break
                else:
                    if value != other:
                        raise PreparedQueryError(f"parameter {i} changes with the values but is none of them")
            if set(slots.values()) != set(self.names):
                raise PreparedQueryError("an argument does not reach the SQL as a parameter")
            self._compiled = _Compiled(queryset, sql, params, slots, compiler)
            return self._compiled

    def _checked(self, values: dict[str, int]) -> dict[str, int]:
        if set(values) != set(self.names):
            raise TypeError(f"expected values for {', '.join(self.names)}")
        if not all(type(v) is int for v in values.values()):
            raise TypeError("prepared query values are integers")
        return values

    def all(self, **values: int) -> list[Model] | list[tuple]:
        self._checked(values)
        answered = _answered.get()
        if answered:
            found = answered.pop(_answer_key(self, values), None)
            if found is not None:
                return found
        return (self._compiled or self._compiled_once()).run(values)

    def first(self, **values: int) -> Model | tuple | None:
        found = self.all(**values)
        return found[0] if found else None


# Answers asked ahead in this request (``ask_together``): {(query, sorted values): rows}.
_answered: ContextVar[dict | None] = ContextVar("spaces_prepared_answered", default=None)
# The combined SQL of each combination of queries asked together.
_together_sql: dict[tuple[_Compiled, ...], str] = {}


def _answer_key(query: PreparedQuery, values: dict[str, int]) -> tuple:
    return query, tuple(sorted(values.items()))


@contextmanager
def answers_kept() -> Iterator[None]:
    """Within this block (a request), rows that ``ask_together`` fetched wait for their query's
    first call; anything not taken is dropped at the end."""
    token = _answered.set({})
    try:
        yield
    finally:
        _answered.reset(token)


def ask_together(*asks: tuple[PreparedQuery, dict[str, int]]) -> bool:
    """Fetch what each (query, values) returns, in one statement, and keep the rows for the first
    ``query.all(**values)`` (or ``.first``) in this ``answers_kept`` block. Returns whether they
    were asked: not outside such a block, nor for queries on different databases or whose SQL
    returns extra columns (they are then simply run when called, as always).

    The statement joins the queries' results side by side (``FULL JOIN ... ON TRUE``: a query with
    no rows leaves its columns empty, the others are still answered). Each query's rows are
    numbered in the order its own SQL yields them (``row_number() OVER ()``, a window with no
    ordering of its own over the query as a subquery: PostgreSQL and SQLite number the rows as the
    subquery's ``ORDER BY`` delivers them; tests/test_prepared.py checks it on both) and taken
    apart again by that number, so a query of several rows gets them once each and in its own
    order whatever the join does with them."""
    answered = _answered.get()
    if answered is None:
        return False
    compiled = tuple(query._compiled or query._compiled_once() for query, _ in asks)
    if len({c.db for c in compiled}) != 1 or any(c.width is None for c in compiled):
        return False
    sql = _together_sql.get(compiled)
    if sql is None:
        parts = [
            # Django's own compiled SQL; every value is a parameter.
            f'(SELECT row_number() OVER () AS "_n{i}", "_p{i}".* FROM ({c.sql}) "_p{i}") "_q{i}"'  # noqa: S608
            for i, c in enumerate(compiled)
        ]
        sql = _together_sql[compiled] = "SELECT * FROM " + " FULL JOIN ".join(  # noqa: S608
            part if i == 0 else f"{part} ON TRUE" for i, part in enumerate(parts)
        )
    params = []
    for (query, values), c in zip(asks, compiled, strict=True):
        params += c.params_for(query._checked(values))
    with connections[compiled[0].db].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    start = 0
    for (query, values), c in zip(asks, compiled, strict=True):
        numbered = {}
        for row in rows:
            if row[start] is not None:
                numbered[row[start]] = row[start + 1 : start + 1 + c.width]
        answered[_answer_key(query, values)] = c.answer([numbered[n] for n in sorted(numbered)])
        start += 1 + c.width
    return True
