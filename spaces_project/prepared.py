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
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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

    def run(self, values: dict[str, Any]) -> list[Model] | list[tuple]:
        params = [values[name] if name else constant for name, constant in self.params]
        with connections[self.db].cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = [row[: self.col_count] for row in cursor.fetchall()]
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

    def all(self, **values: int) -> list[Model] | list[tuple]:
        if set(values) != set(self.names):
            raise TypeError(f"expected values for {', '.join(self.names)}")
        if not all(type(v) is int for v in values.values()):
            raise TypeError("prepared query values are integers")
        return (self._compiled or self._compiled_once()).run(values)

    def first(self, **values: int) -> Model | tuple | None:
        found = self.all(**values)
        return found[0] if found else None
