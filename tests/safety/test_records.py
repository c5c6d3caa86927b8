"""Queries on adverse events: raised by the monitor, answered by the site, shown on the event's page."""

import pytest
from django.http import Http404
from django.urls import reverse

from capture import review
from capture.models import Query
from safety import services
from tests.safety.conftest import ae_input
from trial.errors import AccessDenied, InvalidInput
from trial.models import AuditRecord


@pytest.fixture
def event(coordinator1, participant):
    return services.adverse_event_report(user=coordinator1, participant_id=participant.pk, data=ae_input())


def test_monitor_raises_a_query_on_a_field_and_the_site_answers(event, monitor, coordinator1, as_user):
    page = reverse("review:record_query_raise", args=["adverse_event", event.pk]) + "?field=onset_date"
    response = as_user(monitor).post(
        page, {"message": "Onset is 2 days earlier in the chart", "field_code": "onset_date"}
    )
    query = Query.objects.get(record_type="adverse_event", record_id=event.pk)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("safety:adverse_event", args=[event.pk]))
    assert (query.participant_id, query.field_code, query.visit_id) == (event.participant_id, "onset_date", None)
    assert AuditRecord.objects.filter(object_type="query", object_id=str(query.pk), action="raise").exists()
    review.query_answer(user=coordinator1, query_id=query.pk, message="Corrected")
    html = as_user(coordinator1).get(reverse("safety:adverse_event", args=[event.pk])).content.decode()
    assert "Onset is 2 days earlier in the chart" in html and "Corrected" in html


def test_the_site_cannot_raise_and_other_sites_cannot_see(event, coordinator1, site2):
    from tests.factories import make_user
    from trial.models import Role

    with pytest.raises(AccessDenied):
        review.query_raise_on_record(user=coordinator1, record_type="adverse_event", record_id=event.pk, message="x")
    other = make_user("monitor2", {site2: Role.MONITOR})
    with pytest.raises(Http404):
        review.query_raise_on_record(user=other, record_type="adverse_event", record_id=event.pk, message="x")


def test_a_query_names_a_field_of_the_form(event, monitor):
    with pytest.raises(InvalidInput) as refused:
        review.query_raise_on_record(
            user=monitor, record_type="adverse_event", record_id=event.pk, message="x", field_code="shoe_size"
        )
    assert "field_code" in refused.value.errors
    assert not Query.objects.exists()
