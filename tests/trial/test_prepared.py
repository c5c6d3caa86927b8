"""Hot statements prepared once per connection (trial/prepared.py): counted as one statement each run, and still
there after a rollback."""

import pytest
from django.db import connection, transaction

from trial.prepared import execute_prepared


def _add_one(value: int) -> int:
    with connection.cursor() as cursor:
        execute_prepared(cursor, name="test_add_one", sql=lambda: "SELECT $1 + 1", types=["bigint"], params=[value])
        return cursor.fetchone()[0]


def test_prepared_statement_is_one_statement_and_outlives_a_rollback(is_postgres, django_assert_num_queries):
    if not is_postgres:
        pytest.skip("PREPARE is PostgreSQL's")
    with django_assert_num_queries(1):  # the PREPARE is the connection's set-up, not a statement of the caller's
        assert _add_one(1) == 2
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        assert _add_one(2) == 3
        raise ZeroDivisionError
    with django_assert_num_queries(1):
        assert _add_one(3) == 4
