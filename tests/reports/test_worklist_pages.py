"""Every worklist's full list page (the page a home count links to) runs the same number of SQL queries at 10 and at
500 participants: a page of rows, its count, nothing per row."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.reports.home_data import work_at

pytestmark = pytest.mark.django_db

# (url name, the role that works that list)
PAGES = [
    ("trial:work_visits", "coordinator1"),
    ("trial:work_candidates", "coordinator1"),
    ("inbox:forms_incomplete", "coordinator1"),
    ("inbox:sdv_forms", "monitor"),
    ("inbox:forms_to_lock", "datamanager"),
    ("inbox:visits_to_sign", "investigator1"),
    ("inbox:casebooks_to_sign", "investigator1"),
    ("safety:work_events_to_sign", "investigator1"),
    ("safety:work_proposals", "investigator1"),
    ("safety:work_serious", "investigator1"),
    ("safety:work_serious_events", "sponsor"),
]


def _count(client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured), len(response.context["page"].object_list)


@pytest.mark.parametrize(("name", "role"), PAGES)
def test_list_page_runs_the_same_queries_at_10_and_500_participants(request, as_user, site1, coordinator1, name, role):
    client = as_user(request.getfixturevalue(role))
    url = reverse(name)
    work_at(site1, coordinator1, 10)
    client.get(url)  # the session and the protocol caches, once
    small, small_rows = _count(client, url)
    work_at(site1, coordinator1, 490)
    large, large_rows = _count(client, url)
    assert small == large, f"{name}: {small} SQL queries at 10 participants, {large} at 500"
    assert small <= 15
    assert large_rows >= small_rows  # the larger trial lists at least as much work on its first page
