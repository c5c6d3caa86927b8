"""The participant search reads indexes on PostgreSQL (migration trial 0014): the ORM's icontains and iexact
compare the same upper-cased expressions the indexes hold, so the planner can use them (shown with sequential
scans off, since at a test's size a scan would win), and the search finds the same participants."""

import pytest
from django.db import connection

from tests.factories import enrolled
from trial import selectors
from trial.models import Participant, Site

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_search_uses_the_trigram_and_initials_indexes(coordinator1: object, site1: Site) -> None:
    found = enrolled(coordinator1, site1, initials="LW")
    enrolled(coordinator1, site1, initials="ZH")
    search = selectors.participant_search(Participant.objects.all(), found.subject_id[-4:].lower())
    assert list(search) == [found]
    assert list(selectors.participant_search(Participant.objects.all(), "lw")) == [found]
    # Unordered: ordered by screening number, a small table would rather walk that index and filter.
    sql, params = search.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for index in ("participant_subject_trgm", "participant_screening_trgm", "participant_initials_upper"):
        assert index in plan, plan
