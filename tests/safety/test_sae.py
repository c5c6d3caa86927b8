"""Serious adverse event reports: details, versions with their own notices, sponsor causality, CIOMS I form."""

import datetime
import io

import pytest
from django.core import mail
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from capture.errors import LockedError, StaleVersionError
from capture.models import Lock
from capture.services import form_save
from safety import services
from safety.models import SaeNotification, SaeReport, SeriousAdverseEvent
from safety.notify import sae_notification_send
from safety.sae import services as sae
from safety.sae.rules import SaeDetailsInput
from tests.factories import enrolled
from tests.safety.conftest import SERIOUS, ae_input, visit_of
from trial.errors import AccessDenied, InvalidInput
from trial.models import AuditRecord

TODAY = timezone.localdate()
NARRATIVE = "Admitted with variceal bleeding on day 3 after the infusion; banded, transfused, discharged stable."


def serious_event(user, participant, capture, **overrides):
    with capture(execute=True):
        return services.adverse_event_report(
            user=user, participant_id=participant.pk, data=ae_input(**{**SERIOUS, **overrides})
        )


def details(**overrides):
    data = {
        "admission_date": TODAY - datetime.timedelta(days=1),
        "narrative": NARRATIVE,
        "relevant_tests": "Hb 72 g/L on admission",
        "relevant_history": "Hepatitis B cirrhosis since 2009",
        "concomitant_medications": [{"name": "Propranolol", "dose": "20 mg bid", "route": "oral"}],
        "dechallenge": "na",
    }
    data.update(overrides)
    return SaeDetailsInput(**data)


def infuse(user, participant):
    m0 = visit_of(participant, "M0")
    values = {"INFDAT": m0.target_date.isoformat(), "CELLDOSE": "4.1", "VOLUME": "40", "LOT": "L-1", "REACT": "no"}
    form_save(user=user, visit_id=m0.pk, form_code="INFUS", version=0, values=values)


def test_the_initial_report_is_written_and_sent_once_when_the_event_is_expedited(
    coordinator1, investigator1, monitor, participant, django_capture_on_commit_callbacks
):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    initial = SaeReport.objects.get(adverse_event=event)
    assert (initial.sequence, initial.kind, initial.submitted_by) == (0, "initial", None)
    assert initial.snapshot["event"]["serious_criteria"] == ["hospitalisation"]
    assert set(SaeNotification.objects.filter(report=initial).values_list("role", flat=True)) >= {
        "investigator",
        "monitor",
    }
    assert all("initial report" in message.subject for message in mail.outbox)


def test_a_follow_up_report_sends_its_own_notice_once_per_recipient(
    coordinator1, investigator1, monitor, participant, django_capture_on_commit_callbacks
):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    sae.sae_details_save(user=coordinator1, event_id=event.pk, version=0, data=details())
    sent_before = len(mail.outbox)
    recipients = SaeNotification.objects.filter(report__sequence=0, adverse_event=event).count()
    with django_capture_on_commit_callbacks(execute=True):
        follow_up = sae.sae_report_submit(user=investigator1, event_id=event.pk, sequence=1)
    notices = SaeNotification.objects.filter(report=follow_up)
    assert notices.count() == recipients and all(notice.sent_at for notice in notices)
    assert len(mail.outbox) == sent_before + recipients
    assert all("follow-up 1" in message.subject for message in mail.outbox[sent_before:])
    assert follow_up.snapshot["sae"]["narrative"] == NARRATIVE
    # Redelivered tasks and a form sent twice send nothing more.
    assert not any(sae_notification_send(notification_id=notice.pk) for notice in notices)
    with pytest.raises(InvalidInput) as refused:
        sae.sae_report_submit(user=investigator1, event_id=event.pk, sequence=1)
    assert "sequence" in refused.value.errors
    assert len(mail.outbox) == sent_before + recipients
    audit = AuditRecord.objects.filter(object_type="sae_report", object_id=str(follow_up.pk))
    assert list(audit.values_list("action", "new_value")) == [("submit", "Follow-up 1")]


def test_the_final_report_closes_the_series(
    coordinator1, investigator1, participant, django_capture_on_commit_callbacks
):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    sae.sae_details_save(user=coordinator1, event_id=event.pk, version=0, data=details())
    with pytest.raises(InvalidInput) as refused:
        sae.sae_report_submit(user=investigator1, event_id=event.pk, sequence=1, final=True)
    assert "outcome" in refused.value.errors  # still not recovered
    services.adverse_event_update(
        user=coordinator1,
        event_id=event.pk,
        version=1,
        data=ae_input(**SERIOUS, outcome="recovered", end_date=TODAY),
        reason="Recovered",
    )
    final = sae.sae_report_submit(user=investigator1, event_id=event.pk, sequence=1, final=True)
    assert final.kind == "final" and final.snapshot["event"]["outcome"] == "recovered"
    with pytest.raises(InvalidInput):
        sae.sae_report_submit(user=investigator1, event_id=event.pk, sequence=2)


def test_a_follow_up_needs_the_narrative_and_the_admission_of_a_hospitalisation(
    coordinator1, investigator1, participant, django_capture_on_commit_callbacks
):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    with pytest.raises(InvalidInput) as refused:
        sae.sae_report_submit(user=investigator1, event_id=event.pk, sequence=1)
    assert set(refused.value.errors) == {"narrative", "admission_date"}
    assert SaeReport.objects.filter(adverse_event=event).count() == 1


def test_only_the_investigator_sends_reports_and_other_sites_do_not_see_them(
    coordinator1, coordinator2, monitor, sponsor, participant, django_capture_on_commit_callbacks
):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    for user in (coordinator1, monitor, sponsor):
        with pytest.raises(AccessDenied):
            sae.sae_report_submit(user=user, event_id=event.pk, sequence=1)
    with pytest.raises(Http404):
        sae.sae_details_save(user=coordinator2, event_id=event.pk, version=0, data=details())


def test_details_are_checked_and_audited_and_a_change_needs_a_reason(
    coordinator1, participant, django_capture_on_commit_callbacks
):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    hostile = details(
        admission_date=TODAY,
        discharge_date=TODAY - datetime.timedelta(days=2),
        narrative="x" * 10001,
        concomitant_medications=[{"name": ""}, {"name": "A", "start_date": "2020-13-01"}, {"name": "B", "evil": 1}],
        suspect_medications="<script>",
        dechallenge="maybe",
    )
    with pytest.raises(InvalidInput) as refused:
        sae.sae_details_save(user=coordinator1, event_id=event.pk, version=0, data=hostile)
    assert set(refused.value.errors) == {
        "discharge_date",
        "narrative",
        "concomitant_medications",
        "suspect_medications",
        "dechallenge",
    }
    assert not SeriousAdverseEvent.objects.exists()
    row = sae.sae_details_save(user=coordinator1, event_id=event.pk, version=0, data=details())
    assert row.version == 1 and row.concomitant_medications[0]["log_form_id"] is None
    with pytest.raises(StaleVersionError):
        sae.sae_details_save(user=coordinator1, event_id=event.pk, version=0, data=details(narrative="Other"))
    with pytest.raises(InvalidInput) as refused:
        sae.sae_details_save(user=coordinator1, event_id=event.pk, version=1, data=details(narrative="Other"))
    assert "reason" in refused.value.errors
    sae.sae_details_save(
        user=coordinator1, event_id=event.pk, version=1, data=details(narrative="Other"), reason="Typo"
    )
    audit = AuditRecord.objects.filter(
        object_type="serious_adverse_event", object_id=str(event.pk), item_code="narrative"
    )
    assert list(audit.values_list("new_value", "reason")) == [(NARRATIVE, ""), ("Other", "Typo")]


def test_a_medication_names_only_a_row_of_this_participants_log(
    coordinator1, participant, django_capture_on_commit_callbacks
):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    with pytest.raises(InvalidInput) as refused:
        sae.sae_details_save(
            user=coordinator1,
            event_id=event.pk,
            version=0,
            data=details(concomitant_medications=[{"name": "Propranolol", "log_form_id": 999999}]),
        )
    assert "medication log" in refused.value.errors["concomitant_medications"][0]


def test_a_non_serious_event_has_no_sae_report(coordinator1, participant):
    event = services.adverse_event_report(user=coordinator1, participant_id=participant.pk, data=ae_input())
    with pytest.raises(InvalidInput):
        sae.sae_details_save(user=coordinator1, event_id=event.pk, version=0, data=details())


def test_locked_data_take_no_sae_details(coordinator1, datamanager, participant, django_capture_on_commit_callbacks):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    from django.utils import timezone

    Lock.objects.create(participant=participant, locked_by=datamanager, locked_at=timezone.now(), reason="DB lock")
    with pytest.raises(LockedError):
        sae.sae_details_save(user=coordinator1, event_id=event.pk, version=0, data=details())


def test_the_data_manager_records_the_sponsors_causality(
    coordinator1, investigator1, datamanager, sponsor, participant, django_capture_on_commit_callbacks
):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    for user in (sponsor, investigator1):
        with pytest.raises(AccessDenied):
            sae.sae_sponsor_causality_record(
                user=user, event_id=event.pk, version=0, relationship="possible", assessor="Dr Wang"
            )
    with pytest.raises(InvalidInput) as refused:
        sae.sae_sponsor_causality_record(user=datamanager, event_id=event.pk, version=0, relationship="x", assessor="")
    assert set(refused.value.errors) == {"relationship", "assessor"}
    row = sae.sae_sponsor_causality_record(
        user=datamanager, event_id=event.pk, version=0, relationship="possible", assessor="Dr Wang"
    )
    assert (row.sponsor_relationship, row.sponsor_recorded_by) == ("possible", datamanager)
    with pytest.raises(InvalidInput):  # a change needs a reason
        sae.sae_sponsor_causality_record(
            user=datamanager, event_id=event.pk, version=1, relationship="probable", assessor="Dr Wang"
        )
    event.refresh_from_db()
    assert event.relationship == "unlikely"  # the investigator's own stays


def pdf_text(content: bytes) -> str:
    """The PDF's text with every run of whitespace (line breaks in narrow boxes) as one space."""
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).split())


def test_the_cioms_form_holds_every_required_field(
    as_user, coordinator1, investigator1, datamanager, participant, django_capture_on_commit_callbacks
):
    infuse(coordinator1, participant)
    event = serious_event(
        coordinator1, participant, django_capture_on_commit_callbacks, serious_criteria=["hospitalisation", "tumour"]
    )
    sae.sae_details_save(user=coordinator1, event_id=event.pk, version=0, data=details())
    sae.sae_sponsor_causality_record(
        user=datamanager, event_id=event.pk, version=1, relationship="possible", assessor="Dr Wang"
    )
    sae.sae_report_submit(user=investigator1, event_id=event.pk, sequence=1)
    response = as_user(investigator1).get(reverse("reports:sae_cioms", args=[event.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    for expected in (
        "1. Patient initials",
        participant.initials,
        "1a. Country",
        "China",
        "2a. Age",
        "3. Sex",
        "4-6. Reaction onset",
        event.onset_date.isoformat(),
        "[X] Involved or prolonged inpatient hospitalisation",
        "[ ] Patient died",
        "[ ] Congenital anomaly",
        "[ ] Other medically important condition",
        "[X] Tumour, particularly hepatocellular carcinoma",
        "Nausea",
        "Admitted with variceal bleeding",
        "Hb 72 g/L",
        "14. Suspect drug(s)",
        "Umbilical cord mesenchymal stem cells (UC-MSC)",
        "4.10 x10^7 cells",
        "Intravenous infusion",
        "Liver cirrhosis",
        "18. Therapy dates",
        "19. Therapy duration",
        "20. Did reaction abate",
        "21. Did reaction reappear",
        "22. Concomitant drug(s)",
        "Propranolol",
        "23. Other relevant history",
        "Hepatitis B cirrhosis",
        "24a. Name and address of manufacturer",
        "Alliancells",
        "24d. Report source",
        "Date of this report",
        "25a. Report type",
        "[X] Follow-up: Follow-up 1",
        "Investigator's causality",
        "Unlikely",
        "Sponsor's causality",
        "Possible (Dr Wang)",
        "Hospital admission",
    ):
        assert expected in text, expected
    initial = as_user(investigator1).get(reverse("reports:sae_cioms", args=[event.pk]) + "?report=0")
    assert "[X] Initial" in pdf_text(initial.content)
    assert "Admitted with variceal bleeding" not in pdf_text(initial.content)  # as it was sent


@pytest.mark.parametrize("query", ["?report=7", "?report=-1", "?report=abc", "?report=%00"])
def test_the_cioms_form_refuses_an_unknown_version(
    as_user, coordinator1, investigator1, participant, query, django_capture_on_commit_callbacks
):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    response = as_user(investigator1).get(reverse("reports:sae_cioms", args=[event.pk]) + query)
    # A control character in the address is refused before any view runs (400); any other unknown version is 404.
    assert response.status_code == (400 if "%00" in query else 404)


def test_the_cioms_form_is_site_scoped_and_not_for_coordinators(
    as_user,
    investigator1,
    coordinator1,
    coordinator2,
    site2,
    monitor,
    sponsor,
    datamanager,
    participant,
    django_capture_on_commit_callbacks,
):
    event = serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    url = reverse("reports:sae_cioms", args=[event.pk])
    assert as_user(coordinator2).get(url).status_code == 404
    assert as_user(coordinator1).get(url).status_code == 403
    for user in (monitor, sponsor, datamanager):
        assert as_user(user).get(url).status_code == 200
    plain = services.adverse_event_report(user=coordinator1, participant_id=participant.pk, data=ae_input())
    assert as_user(monitor).get(reverse("reports:sae_cioms", args=[plain.pk])).status_code == 404
    other = enrolled(coordinator2, site2, days_ago=10)
    theirs = serious_event(coordinator2, other, django_capture_on_commit_callbacks, onset_date=TODAY)
    assert as_user(investigator1).get(reverse("reports:sae_cioms", args=[theirs.pk])).status_code == 404
