import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import eligible_input, enrolled, screened
from trial.errors import AccessDenied, EligibilityError, InvalidInput
from trial.models import AuditRecord, Participant, ParticipantStatus, Screening, Visit, VisitProgress, VisitState
from trial.services import (
    participant_enrol,
    participant_screen,
    visit_missed,
)

TODAY = timezone.localdate()


def years_ago(years: int, extra_days: int = 0) -> datetime.date:
    screening = TODAY - datetime.timedelta(days=7)
    return screening.replace(year=screening.year - years) - datetime.timedelta(days=extra_days)


def answers(**changes: bool) -> dict[str, bool]:
    return {**eligible_input().answers, **changes}


FAILING_CANDIDATES = {
    "IN1": {"consent_date": None},
    "IN2": {"date_of_birth": years_ago(61)},
    "IN3": {"diagnosis": "none"},
    "IN4": {"total_bilirubin": Decimal("20"), "albumin": Decimal("40"), "ascites": "none"},
    "IN5": {"answers": answers(IN5=False)},
    **{f"EX{n}": {"answers": answers(**{f"EX{n}": True})} for n in range(1, 10)},
}


@pytest.mark.parametrize("criterion", sorted(FAILING_CANDIDATES))
def test_every_criterion_blocks_enrolment(coordinator1, site1, criterion):
    participant = screened(coordinator1, site1, **FAILING_CANDIDATES[criterion])

    assert participant.status == ParticipantStatus.SCREEN_FAILED
    assert participant.screening.failed_criteria == [criterion]
    assert participant.screen_failure_reasons[0].startswith(f"{criterion}: ")
    with pytest.raises(EligibilityError):
        participant_enrol(user=coordinator1, participant=participant, arm_code="MSC", enrolment_date=TODAY)
    assert not Visit.objects.filter(participant=participant).exists()


def test_eligible_candidate_is_recorded_with_child_pugh(coordinator1, site1):
    participant = screened(coordinator1, site1)

    assert participant.status == ParticipantStatus.ELIGIBLE
    assert participant.screening_number == "S01-001"
    assert (participant.screening.child_pugh_points, participant.screening.child_pugh_class) == (8, "B")
    assert participant.screening.eligible


@pytest.mark.parametrize(
    ("date_of_birth", "eligible"),
    [
        (years_ago(30), True),
        (years_ago(30, -1), False),
        (years_ago(60), True),
        (years_ago(61, -1), True),
        (years_ago(61), False),
    ],
)
def test_age_limits_are_inclusive_in_whole_years(coordinator1, site1, date_of_birth, eligible):
    participant = screened(coordinator1, site1, date_of_birth=date_of_birth)
    assert participant.screening.eligible is eligible


@pytest.mark.parametrize(
    ("changes", "eligible"),
    [
        ({"total_bilirubin": Decimal("20"), "ascites": "none"}, False),  # 6 points, class A
        ({"total_bilirubin": Decimal("20")}, True),  # 7 points
        ({}, True),  # 8 points
        (
            {
                "total_bilirubin": Decimal("60"),
                "albumin": Decimal("25"),
                "inr": Decimal("2.0"),
                "encephalopathy": "grade_1_2",
            },
            True,
        ),  # 3+3+2+2+2 = 12
        (
            {
                "total_bilirubin": Decimal("60"),
                "albumin": Decimal("25"),
                "inr": Decimal("2.0"),
                "encephalopathy": "grade_3_4",
            },
            False,
        ),  # 13
    ],
)
def test_child_pugh_enrolment_range_is_7_to_12(coordinator1, site1, changes, eligible):
    assert screened(coordinator1, site1, **changes).screening.eligible is eligible


def test_enrolment_lays_out_schedule_with_windows(coordinator1, site1):
    participant = enrolled(coordinator1, site1, arm="CONV", days_ago=100)
    day0 = TODAY - datetime.timedelta(days=100)

    visits = {v.definition.code: v for v in participant.visits.select_related("definition")}
    assert list(visits) == ["M0", "M3", "M6", "M9", "M12", "FU18", "FU24", "FU30", "FU36"]
    expected_days = {
        "M0": 0,
        "M3": 91,
        "M6": 182,
        "M9": 273,
        "M12": 365,
        "FU18": 547,
        "FU24": 730,
        "FU30": 912,
        "FU36": 1095,
    }
    for code, day in expected_days.items():
        target = day0 + datetime.timedelta(days=day)
        assert visits[code].target_date == target
    assert visits["M3"].window_start == day0 + datetime.timedelta(days=77)
    assert visits["M3"].window_end == day0 + datetime.timedelta(days=105)
    assert visits["M0"].window_start == day0  # baseline cannot precede enrolment
    assert visits["FU36"].window_end == day0 + datetime.timedelta(days=1125)
    assert participant.subject_id == "01-001"
    assert participant.arm.code == "CONV"
    assert participant.enrolled_by == coordinator1


def test_visit_states_follow_the_window(coordinator1, site1):
    participant = enrolled(coordinator1, site1, days_ago=100)
    states = {v.definition.code: v.state_on(TODAY) for v in participant.visits.select_related("definition")}
    assert states["M0"] == VisitState.OVERDUE
    assert states["M3"] == VisitState.DUE
    assert states["M6"] == VisitState.NOT_DUE


def test_enrolment_is_audited(coordinator1, site1):
    participant = enrolled(coordinator1, site1)
    enrol_rows = AuditRecord.objects.filter(participant=participant, action="enrol")
    assert {(r.item_code, r.new_value) for r in enrol_rows} >= {("arm", "MSC"), ("subject_id", "01-001")}
    assert AuditRecord.objects.filter(participant=participant, object_type="screening", item_code="albumin").exists()


def test_second_enrolment_of_the_same_candidate_is_refused(coordinator1, site1):
    participant = enrolled(coordinator1, site1)
    with pytest.raises(EligibilityError):
        participant_enrol(user=coordinator1, participant=participant, arm_code="CONV", enrolment_date=TODAY)
    assert participant.visits.count() == 9


def test_subject_numbers_run_per_site(coordinator1, coordinator2, site1, site2):
    first = enrolled(coordinator1, site1)
    second = enrolled(coordinator1, site1)
    other = enrolled(coordinator2, site2)
    assert [first.subject_id, second.subject_id, other.subject_id] == ["01-001", "01-002", "02-001"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"total_bilirubin": Decimal("1000.1")}, "total_bilirubin"),
        ({"albumin": Decimal("4.9")}, "albumin"),
        ({"inr": Decimal("15.01")}, "inr"),
        ({"screening_date": TODAY + datetime.timedelta(days=1)}, "screening_date"),
        ({"date_of_birth": TODAY}, "date_of_birth"),
        ({"consent_date": TODAY}, "consent_date"),
        ({"initials": "Z1"}, "initials"),
        ({"answers": {"IN5": True}}, "answers"),
        ({"answers": answers(IN2=True)}, "answers"),  # a computed criterion cannot be ticked
        ({"answers": answers(EX99=False)}, "answers"),
    ],
)
def test_bad_screening_input_names_the_field_and_writes_nothing(coordinator1, site1, changes, field):
    audit_before = AuditRecord.objects.count()
    with pytest.raises(InvalidInput) as error:
        participant_screen(user=coordinator1, site=site1, data=eligible_input(**changes))
    assert field in error.value.errors
    assert not Participant.objects.exists()
    assert not Screening.objects.exists()
    assert AuditRecord.objects.count() == audit_before


def test_hard_range_message_names_item_value_and_range(coordinator1, site1):
    with pytest.raises(InvalidInput) as error:
        participant_screen(user=coordinator1, site=site1, data=eligible_input(albumin=Decimal("80")))
    assert error.value.errors["albumin"] == ["Albumin: 80 g/L is outside the allowed range 5-70 g/L."]


@pytest.mark.parametrize(
    ("arm", "enrolment_date", "field"),
    [
        ("XYZ", TODAY, "arm"),
        ("MSC", TODAY + datetime.timedelta(days=1), "enrolment_date"),
        ("MSC", TODAY - datetime.timedelta(days=30), "enrolment_date"),
    ],
)
def test_bad_enrolment_input_writes_nothing(coordinator1, site1, arm, enrolment_date, field):
    participant = screened(coordinator1, site1)
    audit_before = AuditRecord.objects.count()
    with pytest.raises(InvalidInput) as error:
        participant_enrol(user=coordinator1, participant=participant, arm_code=arm, enrolment_date=enrolment_date)
    assert field in error.value.errors
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.ELIGIBLE and participant.subject_id is None
    assert not Visit.objects.exists()
    assert AuditRecord.objects.count() == audit_before


@pytest.mark.parametrize("role_fixture", ["monitor", "sponsor", "datamanager", "coordinator2"])
def test_roles_that_may_not_screen_or_enrol_are_refused(request, coordinator1, site1, role_fixture):
    user = request.getfixturevalue(role_fixture)
    with pytest.raises(AccessDenied):
        participant_screen(user=user, site=site1, data=eligible_input())
    participant = screened(coordinator1, site1)
    with pytest.raises(AccessDenied):
        participant_enrol(user=user, participant=participant, arm_code="MSC", enrolment_date=TODAY)


def test_investigator_may_enrol(coordinator1, investigator1, site1):
    participant = screened(coordinator1, site1)
    participant = participant_enrol(user=investigator1, participant=participant, arm_code="MSC", enrolment_date=TODAY)
    assert participant.enrolled_by == investigator1


def test_visit_cannot_be_missed_before_its_window_closes(coordinator1, site1):
    participant = enrolled(coordinator1, site1, days_ago=3)
    m0 = participant.visits.get(definition__code="M0")
    with pytest.raises(InvalidInput):
        visit_missed(user=coordinator1, visit=m0, reason="No show")
    m0.refresh_from_db()
    assert m0.progress == VisitProgress.NOT_STARTED


def test_missed_visit_keeps_its_reason_in_the_audit_trail(coordinator1, site1):
    participant = enrolled(coordinator1, site1, days_ago=40)
    m0 = participant.visits.get(definition__code="M0")
    visit_missed(user=coordinator1, visit=m0, reason="Participant in hospital elsewhere")
    assert AuditRecord.objects.get(object_type="visit", object_id=str(m0.pk)).reason == (
        "Participant in hospital elsewhere"
    )
