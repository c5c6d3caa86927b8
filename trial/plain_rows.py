"""Model instances from plain SQL rows, for the few hot-path reads whose ORM statement cost more to build than to run.

A form save reads its visit (with the participant, protocol and site, the participant locked) and its form instances
in every request. Building those statements through the ORM took about twice as long as running them: clones of the
queryset, the compiler's walk of four models for select_related, the related populators. `Columns` names a model's
columns once per process; the caller writes the statement; `Columns.build` makes the instance from its part of a
row, through the same converters the ORM applies (SQLite returns dates and decimals as text, a JSON column needs
decoding), as `Model.from_db` does for a queryset. A deferred column is left out and loads on access, as `.defer()`.
"""

import functools
from collections.abc import Callable, Sequence

from django.db import connection
from django.db.models import Field, Model


class Columns:
    """The concrete columns of `model` under a table alias, but `defer`'s; or `only` these, in their order
    (attribute names)."""

    def __init__(
        self, model: type[Model], alias: str, *, defer: Sequence[str] = (), only: Sequence[str] | None = None
    ) -> None:
        self.model = model
        self.alias = alias
        if only is not None:
            self.fields: list[Field] = [model._meta.get_field(name) for name in only]
        else:
            self.fields = [field for field in model._meta.concrete_fields if field.attname not in defer]
        self.attnames = [field.attname for field in self.fields]

    def __len__(self) -> int:
        return len(self.fields)

    def sql(self) -> str:
        """The select list, `alias."column", ...`."""
        quote = connection.ops.quote_name
        return ", ".join(f"{self.alias}.{quote(field.column)}" for field in self.fields)

    def build(self, row: Sequence[object], start: int = 0) -> Model:
        """The instance of `row[start:start + len(self)]`, as the ORM would have read it."""
        return self.model.from_db(connection.alias, self.attnames, self.values(row, start))

    def values(self, row: Sequence[object], start: int = 0) -> list[object]:
        """`row[start:start + len(self)]` as the ORM's `values_list` would have read it."""
        values = list(row[start : start + len(self.fields)])
        for position, converters, expression in self._converters:
            value = values[position]
            for converter in converters:
                value = converter(value, expression, connection)
            values[position] = value
        return values

    @functools.cached_property
    def _converters(self) -> list[tuple[int, list[Callable], object]]:
        """(position, converters, column) of each column the database's backend or the field converts: worked out
        on first use, once the process's database is known."""
        found = []
        for position, field in enumerate(self.fields):
            expression = field.get_col(self.alias)
            converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
            if converters:
                found.append((position, converters, expression))
        return found
