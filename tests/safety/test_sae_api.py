"""The SAE report's API: read, complete, send a version, sponsor causality; hostile input and other sites."""

import datetime

import pytest
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from safety import services
from safety.models import SaeNotification, SaeReport, SeriousAdverseEvent
from tests.factories import enrolled
from tests.safety.conftest import SERIOUS, ae_input

TODAY = timezone.localdate()


def api(user):
    client = APIClient()
    _token, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def event(coordinator1, participant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.adverse_event_report(user=coordinator1, participant_id=participant.pk, data=ae_input(**SERIOUS))


def url(event, tail=""):
    return f"/api/v1/adverse-events/{event.pk}/sae/{tail}"


DETAILS = {
    "version": 0,
    "admission_date": (TODAY - datetime.timedelta(days=1)).isoformat(),
    "narrative": "Bleeding varices, banded.",
    "concomitant_medications": [{"name": "Propranolol", "dose": "20 mg bid", "start_date": "2024-02-01"}],
}


def test_read_complete_and_send_a_follow_up(coordinator1, investigator1, event, django_capture_on_commit_callbacks):
    read = api(coordinator1).get(url(event))
    assert read.status_code == 200
    assert read.json()["details"] is None and read.json()["next_sequence"] == 1
    saved = api(coordinator1).put(url(event), DETAILS, format="json")
    assert saved.status_code == 200, saved.json()
    assert saved.json()["details"]["concomitant_medications"][0]["start_date"] == "2024-02-01"
    with django_capture_on_commit_callbacks(execute=True):
        sent = api(investigator1).post(url(event, "reports/"), {"sequence": 1}, format="json")
    assert sent.status_code == 201 and sent.json()["kind"] == "follow_up"
    report = SaeReport.objects.get(adverse_event=event, sequence=1)
    assert SaeNotification.objects.filter(report=report, sent_at__isnull=False).exists()
    again = api(investigator1).post(url(event, "reports/"), {"sequence": 1}, format="json")
    assert again.status_code == 400 and "sequence" in again.json()


@pytest.mark.parametrize(
    "body",
    [
        {"version": 0, "narrative": "x" * 10001},
        {"version": 0, "concomitant_medications": [{"dose": "no name"}]},
        {"version": 0, "concomitant_medications": "Propranolol"},
        {"version": 0, "concomitant_medications": [{"name": "A", "log_form_id": 123456}]},
        {"version": 0, "discharge_date": TODAY.isoformat()},
        {"version": 0, "admission_date": "2999-01-01"},
        {"version": 0, "dechallenge": "perhaps"},
        {"version": "one"},
        {},
    ],
)
def test_hostile_details_are_400_and_save_nothing(coordinator1, event, body):
    response = api(coordinator1).put(url(event), body, format="json")
    assert response.status_code == 400
    assert not SeriousAdverseEvent.objects.exists()


def test_a_stale_version_is_409(coordinator1, event):
    assert api(coordinator1).put(url(event), DETAILS, format="json").status_code == 200
    conflict = api(coordinator1).put(url(event), {**DETAILS, "narrative": "Other"}, format="json")
    assert conflict.status_code == 409 and conflict.json()["current_version"] == 1


def test_roles_and_other_sites(coordinator1, coordinator2, site2, sponsor, monitor, datamanager, event):
    assert api(coordinator2).get(url(event)).status_code == 404
    assert api(coordinator2).put(url(event), DETAILS, format="json").status_code == 404
    assert api(sponsor).put(url(event), DETAILS, format="json").status_code == 403
    assert api(monitor).post(url(event, "reports/"), {"sequence": 1}, format="json").status_code == 403
    assert api(coordinator1).post(url(event, "reports/"), {"sequence": 1}, format="json").status_code == 403
    causality = {"version": 0, "relationship": "possible", "assessor": "Dr Wang"}
    assert api(sponsor).post(url(event, "sponsor-causality/"), causality, format="json").status_code == 403
    assert api(coordinator2).post(url(event, "sponsor-causality/"), causality, format="json").status_code == 404
    hostile = api(datamanager).post(url(event, "sponsor-causality/"), {**causality, "relationship": "x"}, format="json")
    assert hostile.status_code == 400
    recorded = api(datamanager).post(url(event, "sponsor-causality/"), causality, format="json")
    assert recorded.status_code == 200 and recorded.json()["details"]["sponsor_relationship"] == "possible"
    other = enrolled(coordinator2, site2, days_ago=10)
    plain = services.adverse_event_report(user=coordinator2, participant_id=other.pk, data=ae_input(onset_date=TODAY))
    assert api(coordinator2).get(url(plain)).status_code == 400
    assert api(coordinator1).get(url(plain)).status_code == 404


def test_the_schema_still_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/adverse-events/{id}/sae/reports/" in (tmp_path / "schema.yaml").read_text()
