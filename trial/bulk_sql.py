"""Many rows in one plain INSERT, for the hot paths where the ORM's per-row model instances cost more than the
database does (the audit trail, the item values of a form save)."""

from collections.abc import Sequence

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

    On PostgreSQL one array per column goes through unnest(), so the statement's text, and psycopg's work on
    it, is the same for any number of rows. SQLite gets multi-row VALUES.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    names = ", ".join(quote(column) for column in columns)
    conflict = _conflict_clause(columns, conflict_columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{kind}[]" for kind in pg_types)
            cursor.execute(
                f"INSERT INTO {quote(table)} ({names}) SELECT * FROM unnest({arrays}){conflict}",
                [list(column) for column in zip(*rows, strict=True)],
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


def _conflict_clause(columns: Sequence[str], conflict_columns: Sequence[str]) -> str:
    if not conflict_columns:
        return ""
    quote = connection.ops.quote_name
    updates = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in columns if c not in conflict_columns)
    return f" ON CONFLICT ({', '.join(quote(c) for c in conflict_columns)}) DO UPDATE SET {updates}"
