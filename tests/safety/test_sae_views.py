"""The SAE report's pages: the panel on the event's page, the details form, sending a version, sponsor causality."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from safety import services
from safety.models import SaeReport, SeriousAdverseEvent
from tests.factories import enrolled
from tests.safety.conftest import SERIOUS, ae_input

TODAY = timezone.localdate()


@pytest.fixture
def event(coordinator1, participant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.adverse_event_report(user=coordinator1, participant_id=participant.pk, data=ae_input(**SERIOUS))


def details_form(version=0, **overrides):
    data = {
        "version": str(version),
        "admission_date": (TODAY - datetime.timedelta(days=1)).isoformat(),
        "discharge_date": "",
        "narrative": "Variceal bleeding, banded.",
        "relevant_tests": "Hb 70 g/L",
        "relevant_history": "",
        "suspect_medications": "",
        "concomitant_medications": (
            "Propranolol | 20 mg bid | oral\nEntecavir | 0.5 mg | oral | Hepatitis B | 2024-01-01"
        ),
        "dechallenge": "na",
        "rechallenge": "",
        "reason": "",
    }
    data.update(overrides)
    return data


def test_the_event_page_shows_the_sae_panel_by_role(as_user, coordinator1, investigator1, datamanager, event):
    url = reverse("safety:adverse_event", args=[event.pk])
    coordinator = as_user(coordinator1).get(url).content.decode()
    assert 'id="sae-report"' in coordinator and 'id="sae-edit"' in coordinator
    assert 'id="sae-cioms"' not in coordinator and 'id="sae-send"' not in coordinator
    investigator = as_user(investigator1).get(url).content.decode()
    assert 'id="sae-cioms"' in investigator and "Send follow-up 1" in investigator
    assert 'data-kind="initial"' in investigator and "Initial report" in investigator
    manager = as_user(datamanager).get(url).content.decode()
    assert 'id="sae-sponsor"' in manager and 'id="sae-edit"' not in manager


def test_a_plain_event_has_no_panel(as_user, coordinator1, participant):
    plain = services.adverse_event_report(user=coordinator1, participant_id=participant.pk, data=ae_input())
    assert (
        'id="sae-report"'
        not in as_user(coordinator1).get(reverse("safety:adverse_event", args=[plain.pk])).content.decode()
    )
    response = as_user(coordinator1).get(reverse("safety:sae_details", args=[plain.pk]))
    assert response.status_code == 302


def test_the_details_page_saves_and_refuses_hostile_input(as_user, coordinator1, event):
    client = as_user(coordinator1)
    url = reverse("safety:sae_details", args=[event.pk])
    assert client.get(url).status_code == 200
    hostile = details_form(
        discharge_date=(TODAY - datetime.timedelta(days=5)).isoformat(),
        concomitant_medications="| no name\nA | 1 | 2 | 3 | 2020-99-01 | | 7 | extra",
        dechallenge="<script>",
        version="abc",
    )
    assert client.post(url, hostile).status_code == 400
    refused = client.post(
        url,
        details_form(
            discharge_date=(TODAY - datetime.timedelta(days=5)).isoformat(), concomitant_medications="| no name"
        ),
    )
    assert refused.status_code == 400
    content = refused.content.decode()
    assert "cannot precede the admission date" in content and "give its name" in content
    assert not SeriousAdverseEvent.objects.exists()
    assert client.post(url, details_form()).status_code == 302
    row = SeriousAdverseEvent.objects.get()
    assert [m["name"] for m in row.concomitant_medications] == ["Propranolol", "Entecavir"]
    assert row.concomitant_medications[1]["start_date"] == "2024-01-01"
    stale = client.post(url, details_form(version=0, narrative="Other"))
    assert stale.status_code == 409
    page = client.get(url).content.decode()
    assert "Propranolol | 20 mg bid | oral" in page


def test_the_details_page_is_site_scoped_and_for_data_enterers(as_user, coordinator2, monitor, sponsor, event):
    url = reverse("safety:sae_details", args=[event.pk])
    assert as_user(coordinator2).get(url).status_code == 404
    assert as_user(coordinator2).post(url, details_form()).status_code == 404
    assert as_user(monitor).post(url, details_form()).status_code == 403
    assert as_user(sponsor).get(url).status_code == 403
    assert not SeriousAdverseEvent.objects.exists()


def test_sending_a_follow_up_from_the_page(
    as_user, coordinator1, investigator1, event, django_capture_on_commit_callbacks
):
    as_user(coordinator1).post(reverse("safety:sae_details", args=[event.pk]), details_form())
    url = reverse("safety:sae_report_send", args=[event.pk])
    assert as_user(coordinator1).post(url, {"sequence": "1"}).status_code == 403
    client = as_user(investigator1)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"sequence": "1"}).status_code == 302
    assert list(SaeReport.objects.filter(adverse_event=event).values_list("sequence", "kind")) == [
        (0, "initial"),
        (1, "follow_up"),
    ]
    again = client.post(url, {"sequence": "1"}, follow=True)
    assert "already sent" in again.content.decode()
    assert client.post(url, {"sequence": "x"}, follow=True).status_code == 200
    assert SaeReport.objects.filter(adverse_event=event).count() == 2
    page = client.get(reverse("safety:adverse_event", args=[event.pk])).content.decode()
    assert 'data-report="1"' in page and "Follow-up 1" in page


def test_sending_is_refused_on_another_sites_event(
    as_user, coordinator2, site2, investigator1, django_capture_on_commit_callbacks
):
    other = enrolled(coordinator2, site2, days_ago=10)
    with django_capture_on_commit_callbacks(execute=True):
        theirs = services.adverse_event_report(user=coordinator2, participant_id=other.pk, data=ae_input(**SERIOUS))
    assert (
        as_user(investigator1).post(reverse("safety:sae_report_send", args=[theirs.pk]), {"sequence": "1"}).status_code
        == 404
    )


def test_the_sponsor_causality_page(as_user, datamanager, sponsor, coordinator2, event):
    url = reverse("safety:sae_sponsor_causality", args=[event.pk])
    assert as_user(sponsor).get(url).status_code == 403
    assert as_user(coordinator2).get(url).status_code == 404
    client = as_user(datamanager)
    assert client.get(url).status_code == 200
    refused = client.post(url, {"version": "0", "relationship": "maybe", "assessor": " "})
    assert refused.status_code == 400
    saved = client.post(url, {"version": "0", "relationship": "possible", "assessor": "Dr Wang", "comment": "Expected"})
    assert saved.status_code == 302
    assert SeriousAdverseEvent.objects.get().sponsor_relationship == "possible"
    assert client.post(url, {"version": "0", "relationship": "unrelated", "assessor": "Dr Wang"}).status_code == 409
