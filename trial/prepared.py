"""Statements of a write's hot path planned once per database connection (PostgreSQL PREPARE / EXECUTE).

A statement of many joins and subqueries (the summary counters' recount) costs PostgreSQL more to plan than to run;
prepared, it is planned a few times per connection and then runs on its cached generic plan. Connections live for
minutes (CONN_MAX_AGE), so a save pays no planning.

The PREPARE is sent once per connection, on the raw connection, the way Django sets up a connection's time zone: it
is no statement of the request that first needs it, so a request's statement count does not depend on whether its
connection was new. A prepared statement outlives a rolled-back transaction, and dies with its connection (the
record of what a connection holds is kept by the connection object, weakly). The EXECUTE is an ordinary statement,
counted and timed as any other. Nothing changes on SQLite, where the caller runs its plain statements.
"""

import weakref
from collections.abc import Callable, Sequence

from django.db import connection

_prepared: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()


def execute_prepared(
    cursor: object, *, name: str, sql: Callable[[], str], types: Sequence[str], params: Sequence[object]
) -> None:
    """Run the statement `sql()` (its parameters written $1, $2... of `types`) as this connection's prepared
    statement `name`, with `params`, through `cursor` (a Django cursor of `connection`)."""
    raw = connection.connection
    names = _prepared.setdefault(raw, set())
    if name not in names:
        with connection.wrap_database_errors, raw.cursor() as raw_cursor:
            raw_cursor.execute(f"PREPARE {name} ({', '.join(types)}) AS {sql()}")
        names.add(name)
    cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", list(params))
