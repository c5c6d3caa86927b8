"""The data-entry page's save: the same number of SQL statements for a 5-item and a 45-item panel."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from capture import summaries
from capture.models import ItemValue
from tests.factories import enrolled


def _post(client, visit, form, size, base, version):
    data = {f"X{n:02d}": str(base + n) for n in range(size)}
    data.update({"version": str(version), "reason": ""})
    return client.post(reverse("capture:form", args=[visit.pk, form]), data)


def test_page_save_statement_count_does_not_grow_with_items(sized_protocol, coordinator1, site1, client):
    visit = enrolled(coordinator1, site1, days_ago=100).visits.get(definition__code="M3")
    client.force_login(coordinator1)
    counts = {}
    for form, size in (("P5", 5), ("P45", 45)):
        assert _post(client, visit, form, size, 20, 0).status_code == 302  # the first save creates the form
        with CaptureQueriesContext(connection) as queries:
            response = _post(client, visit, form, size, 21, 1)
        assert response.status_code == 302
        counts[form] = len([q for q in queries if "SAVEPOINT" not in q["sql"]])
    assert counts["P5"] == counts["P45"]
    # user, memberships, visit (locked), form instances, values, one upsert, the form's version, the summary
    # counters (capture/summaries.py), audit (lock on PostgreSQL, head, insert): the target is at most 10
    summary = summaries.statement_count(with_forms=True)
    assert counts["P45"] == (10 if connection.vendor == "postgresql" else 9) + summary
    assert ItemValue.objects.filter(visit=visit, item__form__code="P45", number__isnull=False).count() == 45


def test_form_page_query_count_does_not_grow_with_items(sized_protocol, coordinator1, site1, client):
    visit = enrolled(coordinator1, site1, days_ago=100).visits.get(definition__code="M3")
    client.force_login(coordinator1)
    counts = {}
    for form, size in (("P5", 5), ("P45", 45)):
        _post(client, visit, form, size, 20, 0)
        url = reverse("capture:form", args=[visit.pk, form])
        client.get(url)  # the first view fills the process's definition caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200 and response.text.count('inputmode="decimal"') == size
        counts[form] = len(queries)
    assert counts["P5"] == counts["P45"]
