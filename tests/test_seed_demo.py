import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from capture.demo import CORRECTION_REASON
from capture.models import FormInstance, ItemValue, Query, Signature
from trial.audit import audit_verify
from trial.models import AuditRecord, Participant, ParticipantStatus, Visit, VisitState


@pytest.fixture
def seeded(protocol):
    with override_settings(DEBUG=True):
        call_command("seed_demo")


def test_demo_is_a_living_trial(seeded):
    statuses = {status: Participant.objects.filter(status=status).count() for status in ParticipantStatus.values}
    assert statuses["enrolled"] + statuses["died"] == 34 and statuses["died"] == 1
    assert statuses["eligible"] == 3 and statuses["screen_failed"] == 7
    assert Participant.objects.values("site").distinct().count() == 6
    assert Participant.objects.filter(status="enrolled").values("arm").distinct().count() == 2
    today = timezone.localdate()
    states = {state: 0 for state in VisitState.values}
    for visit in Visit.objects.all():
        states[visit.state_on(today)] += 1
    assert all(states[state] > 0 for state in VisitState.values), states


def test_past_visits_hold_realistic_values_and_future_ones_none(seeded):
    assert ItemValue.objects.filter(flags__0="high").exists()
    assert ItemValue.objects.filter(flags__0="low").exists()
    assert ItemValue.objects.filter(missing_reason="not_done").exists()
    assert AuditRecord.objects.filter(reason=CORRECTION_REASON).exists()
    assert Query.objects.filter(origin="automatic", state="open").exists()
    future = Visit.objects.filter(window_start__gt=timezone.localdate())
    assert not ItemValue.objects.filter(visit__in=future).exists()
    assert not FormInstance.objects.filter(visit__in=future).exists()
    assert audit_verify().intact


def test_demo_review_has_queries_in_every_state_verified_forms_and_a_signature(seeded):
    manual = set(Query.objects.filter(origin="manual").values_list("state", flat=True))
    assert manual == {"open", "answered", "closed"}
    assert Query.objects.filter(origin="manual").values("visit__participant__site").distinct().count() >= 2
    assert ItemValue.objects.filter(verified_at__isnull=False).exists()
    assert Signature.objects.filter(voided_at=None).count() == 3
    assert FormInstance.objects.filter(signed=True).exists() and FormInstance.objects.filter(locked=True).exists()


def test_seeding_twice_adds_nothing(seeded):
    count = Participant.objects.count()
    with override_settings(DEBUG=True):
        call_command("seed_demo")
    assert Participant.objects.count() == count


def test_seed_demo_is_refused_without_debug(protocol):
    with pytest.raises(CommandError, match="refused"):
        call_command("seed_demo")
    assert not Participant.objects.exists()


def test_demo_safety_has_graded_proposals_events_in_both_arms_an_sae_and_a_death(seeded):
    from safety.models import AdverseEvent, DeathReport, FormGrading, SaeNotification

    reported = AdverseEvent.objects.filter(status="reported")
    assert set(reported.values_list("participant__arm__code", flat=True)) == {"MSC", "CONV"}
    assert set(reported.values_list("grade", flat=True)) >= {1, 2, 3, 4}
    assert AdverseEvent.objects.filter(status="proposed", source="lab").exists()
    assert AdverseEvent.objects.filter(status="dismissed", source="lab").exclude(decided_by=None).exists()
    assert any("hospitalisation" in event.serious_criteria for event in reported.filter(serious=True))
    assert SaeNotification.objects.exists() and not SaeNotification.objects.filter(sent_at=None).exists()
    death = DeathReport.objects.get()
    assert death.participant.status == "died" and death.adverse_event.outcome == "fatal"
    assert FormGrading.objects.count() > 0
    assert audit_verify().intact


def test_demo_logs_hold_every_participants_therapy_history_and_some_deviations(seeded):
    from capture.logs.demo import CORRECTION_REASON as DOSE_CORRECTED
    from capture.models import LogRow, LogValue

    enrolled = Participant.objects.exclude(subject_id=None)
    with_therapy = LogRow.objects.filter(definition__code="CM", removed_at=None).values("participant").distinct()
    with_history = LogRow.objects.filter(definition__code="MH").values("participant").distinct()
    assert with_therapy.count() == with_history.count() == enrolled.count() == 34
    classes = set(LogValue.objects.filter(item__code="CMCLAS").values_list("row__participant__arm__code", "text"))
    assert {("MSC", "antiviral"), ("CONV", "antiviral"), ("MSC", "diuretic"), ("CONV", "diuretic")} <= classes
    aetiologies = set(LogValue.objects.filter(item__code="MHETIOL").values_list("text", flat=True))
    assert {"HBV", "NA"} <= aetiologies and len(aetiologies) >= 3
    assert LogRow.objects.filter(definition__code="DV").count() >= 3
    assert AuditRecord.objects.filter(object_type="log_row", reason=DOSE_CORRECTED).exists()
    assert LogRow.objects.exclude(removed_at=None).exists()


def test_demo_queries_have_a_past_in_every_ageing_bucket_and_a_consistent_thread(seeded):
    now, today = timezone.now(), timezone.localdate()
    waiting = Query.objects.exclude(state="closed").filter(visit__isnull=False)
    ages = [(now - query.created_at).days for query in waiting]
    buckets = {"0-7": sum(age <= 7 for age in ages), "8-30": sum(8 <= age <= 30 for age in ages)}
    buckets[">30"] = sum(age > 30 for age in ages)
    assert all(count >= 2 for count in buckets.values()), buckets
    assert Query.objects.filter(origin="manual", state="answered").count() >= 2  # waiting for the monitor to close
    for query in Query.objects.filter(visit__isnull=False).select_related("visit").prefetch_related("events"):
        assert timezone.localtime(query.created_at).date() >= (query.visit.visit_date or query.visit.target_date)
        times = [query.created_at, *sorted(event.at for event in query.events.all())]
        assert times == sorted(times) and times[-1] <= now, query.pk
        assert query.closed_at is None or query.created_at <= query.closed_at <= now
        assert timezone.localtime(query.created_at).date() < today or query.origin == "automatic"
    assert audit_verify().intact  # the trail still holds when the seed wrote, untouched


def test_demo_has_no_overdue_visit_before_a_later_one_and_missed_visits_say_why(seeded):
    today = timezone.localdate()
    for participant in Participant.objects.filter(status="enrolled").prefetch_related("visits__definition"):
        visits = sorted(
            (visit for visit in participant.visits.all() if visit.definition.kind == "visit"),
            key=lambda visit: visit.target_date,
        )
        states = [visit.state_on(today) for visit in visits]
        if "overdue" in states:
            later = states[states.index("overdue") + 1 :]
            assert not {"complete", "missed", "in_progress", "overdue"} & set(later), (participant, states)
    missed = {str(pk) for pk in Visit.objects.filter(progress="missed").values_list("pk", flat=True)}
    reasons = dict(
        AuditRecord.objects.filter(object_type="visit", item_code="progress", new_value="missed").values_list(
            "object_id", "reason"
        )
    )
    assert len(missed) >= 2 and set(reasons) == missed and all(reasons.values())
    assert len(set(reasons.values())) >= 2


def test_demo_has_forms_in_every_review_state(seeded):
    complete = FormInstance.objects.filter(state="complete")
    verified = complete.filter(visit__item_values__verified_at__isnull=False).distinct()
    ready = verified.filter(signed=True, locked=False).exclude(visit__queries__state__in=["open", "answered"])
    assert complete.filter(signed=False, locked=False).exists()
    assert verified.exists() and ready.exists()
    assert complete.filter(locked=True).exists()
    assert complete.filter(visit__queries__state="open").exists()
