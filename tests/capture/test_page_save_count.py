"""The save of a form, as a page POST and as an API PUT: the same number of SQL statements for a 5-, 10- and
45-item panel, and every statement counted (PERFORMANCE.md: at most 15 whatever the item count).

What a save of a form already created costs, in order (the test's own transaction turns the request's outermost
transaction into a savepoint: in production those two lines are the BEGIN and COMMIT Django does not log):
- the page: the session's user, the user's memberships; [SAVEPOINT] the visit and its participant, locked in one
  statement; the form instances, locked; the visit's stored values; one upsert of every changed value; the form's
  version; the audit chain's lock (PostgreSQL), its head, one insert of every record [RELEASE] (the service runs in
  the page's transaction, without a savepoint of its own: capture.services.form_save_locked);
- the API: the token (knox), the memberships; [SAVEPOINT] then the same as the page from the visit lock on (the
  visit is refused, 404 or 403, before the body is read) [RELEASE].
"""

import pytest
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from capture import summaries
from capture.models import FormInstance, ItemValue
from tests.factories import enrolled
from trial.models import AuditRecord

# Every statement of the request, savepoints included, on SQLite and PostgreSQL (where the audit chain's advisory
# lock and its head are one call, trial/audit.py).
PAGE_SAVE = 11
API_SAVE = 11
SIZES = (("P5", 5), ("P10", 10), ("P45", 45))


def _post(client, visit, form, size, base, version, **extra):
    data = {f"X{n:02d}": str(base + n) for n in range(size)}
    data.update({"version": str(version), "reason": ""}, **extra)
    return client.post(reverse("capture:form", args=[visit.pk, form]), data)


def _put(client, visit, form, size, base, version):
    values = {f"X{n:02d}": str(base + n) for n in range(size)}
    return client.put(f"/api/v1/visits/{visit.pk}/forms/{form}/", {"version": version, "values": values}, format="json")


def _token_client(user) -> APIClient:
    client = APIClient()
    _token, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def m3(sized_protocol, coordinator1, site1):
    return enrolled(coordinator1, site1, days_ago=100).visits.get(definition__code="M3")


def _expected(base: int) -> int:
    # The summary counters (capture/summaries.py) take one statement on PostgreSQL, a few on SQLite.
    return base + summaries.statement_count(with_forms=True)


@pytest.mark.parametrize(("form", "size"), SIZES)
def test_page_save_statement_count_does_not_grow_with_items(
    m3, coordinator1, client, django_assert_num_queries, form, size
):
    client.force_login(coordinator1)
    assert _post(client, m3, form, size, 20, 0).status_code == 302  # the first save creates the form
    audited = AuditRecord.objects.count()
    with django_assert_num_queries(_expected(PAGE_SAVE)):
        response = _post(client, m3, form, size, 21, 1)
    assert response.status_code == 302
    assert AuditRecord.objects.count() == audited + size  # a record per changed value, in the one insert
    assert ItemValue.objects.filter(visit=m3, item__form__code=form, number=21 + size - 1).count() == 1
    assert FormInstance.objects.get(visit=m3, definition__code=form).version == 2


@pytest.mark.parametrize(("form", "size"), SIZES)
def test_api_save_statement_count_does_not_grow_with_items(m3, coordinator1, django_assert_num_queries, form, size):
    client = _token_client(coordinator1)
    assert _put(client, m3, form, size, 20, 0).status_code == 200
    audited = AuditRecord.objects.count()
    with django_assert_num_queries(_expected(API_SAVE)):
        response = _put(client, m3, form, size, 21, 1)
    assert response.status_code == 200, response.json()
    assert len(response.json()["changed"]) == size
    assert AuditRecord.objects.count() == audited + size
    assert FormInstance.objects.get(visit=m3, definition__code=form).version == 2


def test_refused_saves_cost_no_more_and_write_nothing(m3, coordinator1, client, django_assert_max_num_queries):
    """A stale version or an entry out of its hard range is refused before any write, at no more statements than a
    save."""
    client.force_login(coordinator1)
    api = _token_client(coordinator1)
    assert _post(client, m3, "P45", 45, 20, 0).status_code == 302
    audited = AuditRecord.objects.count()
    with django_assert_max_num_queries(_expected(PAGE_SAVE)):
        stale = _post(client, m3, "P45", 45, 500, 0)
    assert stale.status_code == 409
    with django_assert_max_num_queries(_expected(API_SAVE)):
        hostile = api.put(
            f"/api/v1/visits/{m3.pk}/forms/P45/",
            {"version": 1, "values": {"X00": "5000", "X01": "'; DROP TABLE capture_itemvalue; --"}},
            format="json",
        )
    assert hostile.status_code == 400
    assert set(hostile.json()) >= {"X00", "X01"}
    assert AuditRecord.objects.count() == audited
    assert FormInstance.objects.get(visit=m3, definition__code="P45").version == 1
    assert not ItemValue.objects.filter(visit=m3, item__form__code="P45", number__gte=500).exists()


def test_form_page_query_count_does_not_grow_with_items(m3, coordinator1, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(coordinator1)
    counts = {}
    for form, size in SIZES:
        _post(client, m3, form, size, 20, 0)
        url = reverse("capture:form", args=[m3.pk, form])
        client.get(url)  # the first view fills the process's definition caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200 and response.text.count('inputmode="decimal"') == size
        counts[form] = len(queries)
    assert counts["P5"] == counts["P10"] == counts["P45"]
