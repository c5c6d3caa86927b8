"""The adverse event log's services: report, correct, decide proposals, verify, sign, lock, death."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from capture.errors import LockedError, StaleVersionError
from capture.models import Lock
from capture.services import form_save
from safety import services
from safety.models import AdverseEvent, AdverseEventStatus, DeathReport, Notification, SaeNotification
from tests.factories import enrolled, make_user
from tests.safety.conftest import SERIOUS, ae_input, save_liver, visit_of
from trial.errors import AccessDenied, InvalidInput
from trial.models import AuditRecord, ParticipantStatus, Role


def audit_of(event):
    return AuditRecord.objects.filter(object_type="adverse_event", object_id=str(event.pk))


def report(user, participant, **overrides):
    return services.adverse_event_report(user=user, participant_id=participant.pk, data=ae_input(**overrides))


def test_report_numbers_events_per_participant_and_audits_each_field(coordinator1, participant):
    first = report(coordinator1, participant)
    second = report(coordinator1, participant, term="Fatigue", body_system="general")
    assert (first.label, second.label) == ("AE-001", "AE-002")
    assert first.status == AdverseEventStatus.REPORTED
    written = dict(audit_of(first).filter(action="update").values_list("item_code", "new_value"))
    assert written["term"] == "Nausea"
    assert written["grade"] == "1"
    assert audit_of(first).filter(action="create").count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"term": "  "}, "term"),
        ({"grade": 5}, "grade"),
        ({"grade": None}, "grade"),
        ({"relationship": "maybe"}, "relationship"),
        ({"onset_date": timezone.localdate() + datetime.timedelta(days=1)}, "onset_date"),
        ({"onset_date": timezone.localdate() - datetime.timedelta(days=400)}, "onset_date"),
        ({"end_date": timezone.localdate() - datetime.timedelta(days=5)}, "end_date"),
        ({"outcome": "recovered"}, "end_date"),
        ({"serious": True}, "serious_criteria"),
        ({"serious_criteria": ["fatal"]}, "serious"),
        ({"outcome": "fatal", "end_date": timezone.localdate()}, "serious_criteria"),
    ],
)
def test_bad_input_is_refused_field_by_field_and_nothing_is_written(coordinator1, participant, overrides, field):
    before = AuditRecord.objects.count()
    with pytest.raises(InvalidInput) as refused:
        report(coordinator1, participant, **overrides)
    assert field in refused.value.errors
    assert not AdverseEvent.objects.exists()
    assert AuditRecord.objects.count() == before


def test_other_site_cannot_see_or_report(coordinator2, participant):
    from django.http import Http404

    with pytest.raises(Http404):
        report(coordinator2, participant)


def test_monitor_may_not_report(monitor, participant):
    with pytest.raises(AccessDenied):
        report(monitor, participant)


def test_update_needs_a_reason_and_the_current_version(coordinator1, participant):
    event = report(coordinator1, participant)
    changed = ae_input(end_date=timezone.localdate(), outcome="recovered")
    with pytest.raises(InvalidInput) as refused:
        services.adverse_event_update(user=coordinator1, event_id=event.pk, version=1, data=changed, reason="")
    assert "reason" in refused.value.errors
    with pytest.raises(StaleVersionError):
        services.adverse_event_update(user=coordinator1, event_id=event.pk, version=0, data=changed, reason="follow-up")
    updated = services.adverse_event_update(
        user=coordinator1, event_id=event.pk, version=1, data=changed, reason="Resolved at follow-up call"
    )
    assert updated.version == 2
    row = audit_of(event).get(item_code="outcome", action="update", old_value="not_recovered")
    assert (row.new_value, row.reason) == ("recovered", "Resolved at follow-up call")


def test_a_change_after_verification_and_signature_is_marked_and_voids_the_signature(
    coordinator1, investigator1, monitor, participant
):
    event = report(coordinator1, participant)
    services.adverse_event_verify(user=monitor, event_id=event.pk, version=1)
    services.adverse_event_sign(user=investigator1, event_id=event.pk, version=1, password="test-password-123")
    services.adverse_event_update(
        user=coordinator1, event_id=event.pk, version=1, data=ae_input(grade=2), reason="Worse than first thought"
    )
    event.refresh_from_db()
    assert event.verified_at is not None and event.changed_since_verification
    assert event.signed_at is None
    assert audit_of(event).filter(action="void", reason="Signed data changed").exists()


def test_signing_needs_the_password_and_the_investigator(coordinator1, investigator1, participant):
    event = report(coordinator1, participant)
    with pytest.raises(InvalidInput) as refused:
        services.adverse_event_sign(user=investigator1, event_id=event.pk, version=1, password="wrong")
    assert "password" in refused.value.errors
    with pytest.raises(AccessDenied):
        services.adverse_event_sign(user=coordinator1, event_id=event.pk, version=1, password="test-password-123")


def test_a_participant_lock_refuses_reports_and_changes(coordinator1, datamanager, participant):
    event = report(coordinator1, participant)
    Lock.objects.create(participant=participant, locked_by=datamanager, locked_at=timezone.now(), reason="DB lock")
    with pytest.raises(LockedError):
        report(coordinator1, participant)
    with pytest.raises(LockedError):
        services.adverse_event_update(
            user=coordinator1, event_id=event.pk, version=1, data=ae_input(grade=2), reason="x"
        )


def test_marking_an_event_serious_notifies_each_recipient_once(
    coordinator1, investigator1, monitor, sponsor, participant, django_capture_on_commit_callbacks, settings
):
    settings.SAFETY_CONTACT_EMAIL = "safety@sponsor.example"
    event = report(coordinator1, participant)
    assert not SaeNotification.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.adverse_event_update(
            user=coordinator1, event_id=event.pk, version=1, data=ae_input(**SERIOUS), reason="Admitted to hospital"
        )
    notices = SaeNotification.objects.filter(adverse_event=event)
    assert sorted(notices.values_list("role", flat=True)) == ["investigator", "monitor", "sponsor_safety"]
    assert all(n.sent_at is not None for n in notices)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [investigator1.email, monitor.email, "safety@sponsor.example"]
    )
    assert "SAE" in mail.outbox[0].subject and participant.subject_id in mail.outbox[0].subject
    assert Notification.objects.filter(user__in=[investigator1, monitor]).count() == 2
    # The task delivered again: nothing is sent twice.
    from safety.notify import sae_notification_send

    assert not any(sae_notification_send(notification_id=n.pk) for n in notices)
    assert len(mail.outbox) == 3
    # A later change of the SAE does not re-open the expedited report.
    with django_capture_on_commit_callbacks(execute=True):
        services.adverse_event_update(
            user=coordinator1, event_id=event.pk, version=2, data=ae_input(**{**SERIOUS, "grade": 4}), reason="Worse"
        )
    assert SaeNotification.objects.filter(adverse_event=event).count() == 3


def test_a_grade_4_event_is_expedited_even_if_not_marked_serious(coordinator1, participant):
    event = report(coordinator1, participant, grade=4)
    assert event.expedited_at is not None
    assert SaeNotification.objects.filter(adverse_event=event).exists()


def test_monitors_of_other_sites_are_not_notified(coordinator1, participant, site2):
    other = make_user("monitor2", {site2: Role.MONITOR})
    event = report(coordinator1, participant, **SERIOUS)
    assert not SaeNotification.objects.filter(adverse_event=event, user=other).exists()


def proposal(coordinator1, participant, capture):
    save_liver(coordinator1, visit_of(participant, "M0"), capture)
    save_liver(coordinator1, visit_of(participant, "M3"), capture, ALT="300")
    return AdverseEvent.objects.get(participant=participant, status=AdverseEventStatus.PROPOSED)


def test_investigator_confirms_a_proposal_with_the_assessment(
    coordinator1, investigator1, participant, django_capture_on_commit_callbacks
):
    event = proposal(coordinator1, participant, django_capture_on_commit_callbacks)
    data = ae_input(term=event.ctcae_term, body_system="investigations", onset_date=event.onset_date, grade=2)
    with pytest.raises(AccessDenied):
        services.adverse_event_confirm(user=coordinator1, event_id=event.pk, version=event.version, data=data)
    confirmed = services.adverse_event_confirm(user=investigator1, event_id=event.pk, version=event.version, data=data)
    assert confirmed.status == AdverseEventStatus.REPORTED
    assert (confirmed.decided_by, confirmed.ctcae_grade, confirmed.grade) == (investigator1, 3, 2)
    assert audit_of(event).filter(action="confirm").exists()
    with pytest.raises(InvalidInput):
        services.adverse_event_dismiss(user=investigator1, event_id=event.pk, version=confirmed.version, reason="x")


def test_investigator_dismisses_a_proposal_only_with_a_reason(
    coordinator1, investigator1, participant, django_capture_on_commit_callbacks
):
    event = proposal(coordinator1, participant, django_capture_on_commit_callbacks)
    with pytest.raises(InvalidInput) as refused:
        services.adverse_event_dismiss(user=investigator1, event_id=event.pk, version=event.version, reason=" ")
    assert "reason" in refused.value.errors
    dismissed = services.adverse_event_dismiss(
        user=investigator1, event_id=event.pk, version=event.version, reason="Haemolysed sample; repeat was normal"
    )
    assert dismissed.status == AdverseEventStatus.DISMISSED
    assert audit_of(event).get(action="dismiss").reason == "Haemolysed sample; repeat was normal"


def test_death_report_ends_the_schedule_and_closes_later_visits(coordinator1, site1):
    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=200)
    died = timezone.localdate() - datetime.timedelta(days=60)
    m6 = visit_of(participant, "M6")
    save_liver(coordinator1, m6, lambda execute: _nothing())
    services.death_report(
        user=coordinator1,
        participant_id=participant.pk,
        death_date=died,
        cause="Variceal bleeding",
        relationship="unrelated",
    )
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.DIED and participant.death_date == died
    codes = set(participant.visits.values_list("definition__code", flat=True))
    assert {"M0", "M3", "M6"} <= codes  # M6 holds data, so it stays
    assert not codes & {"M9", "M12", "FU18", "FU36"}
    with pytest.raises(LockedError):
        form_save(user=coordinator1, visit_id=m6.pk, form_code="LIVER", version=1, values={}, partial=True, reason="x")
    with pytest.raises(InvalidInput):
        services.death_report(
            user=coordinator1, participant_id=participant.pk, death_date=died, cause="x", relationship="unrelated"
        )
    assert DeathReport.objects.get(participant=participant).cause == "Variceal bleeding"


def _nothing():
    import contextlib

    return contextlib.nullcontext()


@pytest.mark.parametrize(
    ("death_date", "cause", "relationship", "field"),
    [
        (None, "x", "unrelated", "death_date"),
        (timezone.localdate() + datetime.timedelta(days=1), "x", "unrelated", "death_date"),
        (timezone.localdate(), "", "unrelated", "cause"),
        (timezone.localdate(), "x", "", "relationship"),
    ],
)
def test_death_report_refuses_bad_input(coordinator1, participant, death_date, cause, relationship, field):
    with pytest.raises(InvalidInput) as refused:
        services.death_report(
            user=coordinator1,
            participant_id=participant.pk,
            death_date=death_date,
            cause=cause,
            relationship=relationship,
        )
    assert field in refused.value.errors
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.ENROLLED


def test_a_death_report_is_corrected_with_a_reason(coordinator1, site1):
    participant = enrolled(coordinator1, site1, arm="CONV", days_ago=200)
    first = timezone.localdate() - datetime.timedelta(days=30)
    report = services.death_report(
        user=coordinator1, participant_id=participant.pk, death_date=first, cause="Unknown", relationship="unrelated"
    )
    with pytest.raises(InvalidInput) as refused:
        services.death_report_update(
            user=coordinator1,
            participant_id=participant.pk,
            version=report.version,
            death_date=first,
            cause="Hepatorenal syndrome",
            relationship="unrelated",
            autopsy=True,
            reason="",
        )
    assert "reason" in refused.value.errors
    earlier = first - datetime.timedelta(days=3)
    services.death_report_update(
        user=coordinator1,
        participant_id=participant.pk,
        version=report.version,
        death_date=earlier,
        cause="Hepatorenal syndrome",
        relationship="unrelated",
        autopsy=True,
        reason="Death certificate received",
    )
    participant.refresh_from_db()
    assert participant.death_date == earlier
    changed = AuditRecord.objects.filter(object_type="death_report", action="update")
    assert set(changed.values_list("item_code", flat=True)) == {"death_date", "cause", "autopsy"}
    assert set(changed.values_list("reason", flat=True)) == {"Death certificate received"}
    with pytest.raises(StaleVersionError):
        services.death_report_update(
            user=coordinator1,
            participant_id=participant.pk,
            version=report.version,
            death_date=earlier,
            cause="x",
            relationship="unrelated",
            autopsy=True,
            reason="again",
        )


def test_events_are_still_recorded_after_withdrawal(coordinator1, participant):
    participant.status = ParticipantStatus.WITHDRAWN
    participant.save(update_fields=["status"])
    assert report(coordinator1, participant).status == AdverseEventStatus.REPORTED
