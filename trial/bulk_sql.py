"""Many rows in one plain INSERT, for the hot paths where the ORM's per-row model instances cost more than the
database does (the audit trail, the item values of a form save)."""

import datetime
import json
from collections.abc import Sequence
from decimal import Decimal

from django.db import connection

# SQLite allows 32,766 parameters in one statement.
_SQLITE_PARAMETERS = 32_000


def insert_rows(
    *,
    table: str,
    columns: Sequence[str],
    pg_types: Sequence[str],
    rows: Sequence[Sequence[object]],
    conflict_columns: Sequence[str] = (),
) -> None:
    """Insert `rows` (values already adapted with connection.ops); with `conflict_columns`, update the other
    columns of a row that exists (an upsert).

    On PostgreSQL the rows go as one JSON array of arrays, each value read back by its column's type
    (`pg_types`), so the statement's text is the same for any number of rows and the parameter is encoded by the
    json module in C (psycopg's array literals quote every element in Python). SQLite gets multi-row VALUES.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    names = ", ".join(quote(column) for column in columns)
    conflict = _conflict_clause(columns, conflict_columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # In the order given (the audit chain's ids follow its links), each value read as its column's type.
            fields = ", ".join(f"(e.val->>{n})::{kind}" for n, kind in enumerate(pg_types))
            cursor.execute(
                f"INSERT INTO {quote(table)} ({names}) SELECT {fields} FROM jsonb_array_elements(%s::jsonb) "
                f"WITH ORDINALITY AS e(val, pos) ORDER BY e.pos{conflict}",
                [json.dumps(rows, ensure_ascii=False, default=_json_value)],
            )
            return
        placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
        per_statement = max(1, _SQLITE_PARAMETERS // len(columns))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            cursor.execute(
                f"INSERT INTO {quote(table)} ({names}) VALUES {', '.join([placeholder] * len(chunk))}{conflict}",
                [value for row in chunk for value in row],
            )


def _json_value(value: object) -> str:
    # Read back by each column's type from its text: a date or time in ISO 8601, a number as written.
    if isinstance(value, datetime.date | datetime.datetime | datetime.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value")


def _conflict_clause(columns: Sequence[str], conflict_columns: Sequence[str]) -> str:
    if not conflict_columns:
        return ""
    quote = connection.ops.quote_name
    updates = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in columns if c not in conflict_columns)
    return f" ON CONFLICT ({', '.join(quote(c) for c in conflict_columns)}) DO UPDATE SET {updates}"
