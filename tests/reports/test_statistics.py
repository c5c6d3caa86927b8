"""The report statistics against numbers worked out by hand from the fixed trial (tests/reports/fixed_dataset.py).

Sample SD: sqrt(sum of squared deviations / (n - 1)). Median: the middle value, or the mean of the two middle ones.
"""

import datetime
import math
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from capture.models import ItemValue, Query, QueryOrigin
from reports import statistics as stats
from reports.statistics.survival import product_limit
from safety.models import AdverseEvent, LabGrading
from tests.factories import enrolled
from tests.reports import fixed_dataset
from trial import access
from trial.models import ItemDefinition, Visit

CRITERIA = ["IN1", "IN2", "IN3", "IN4", "IN5"] + [f"EX{n}" for n in range(1, 10)]
CLINIC_VISITS = ["M0", "M3", "M6", "M9", "M12"]


@pytest.fixture
def trial(coordinator1, coordinator2, site1, site2):
    return fixed_dataset.build(coordinator1, coordinator2, site1, site2)


@pytest.fixture
def everyone(trial, sponsor):
    """The sponsor sees every site."""
    return access.participants(sponsor)


def approx(value):
    return pytest.approx(value, abs=0.0005)


# --- Enrolment -------------------------------------------------------------------------------------------


def test_enrolment_counts_screening_failures_by_criterion_and_enrolments_by_site_and_arm(trial, everyone):
    summary = stats.enrolment_summary(everyone, cutoff=trial.cutoff, criterion_codes=CRITERIA)
    # 6 enrolled + F1 + F2 + E1
    assert (summary.screened, summary.screen_failures, summary.eligible_not_enrolled) == (9, 2, 1)
    # F1: IN2 (aged 64-65); F2: IN4 (Child-Pugh 5) and EX5 (HIV): 3 reasons for 2 failures
    assert summary.failures_by_criterion == {"IN2": 1, "IN4": 1, "EX5": 1}
    s1, s2 = trial.site1.pk, trial.site2.pk
    assert summary.enrolled_by_site_arm == {(s1, "MSC"): 2, (s1, "CONV"): 1, (s2, "MSC"): 1, (s2, "CONV"): 2}
    assert (summary.enrolled, summary.enrolled_in_arm("MSC"), summary.enrolled_at_site(s2)) == (6, 3, 3)


def test_a_cutoff_before_enrolment_sees_only_the_screening(trial, everyone):
    # Screened a week before enrolment (day -7); enrolment entered on day 0.
    before = trial.cutoff - datetime.timedelta(days=fixed_dataset.ENROLLED_DAYS_AGO + 3)
    summary = stats.enrolment_summary(everyone, cutoff=before, criterion_codes=CRITERIA)
    assert (summary.screened, summary.eligible_not_enrolled, summary.enrolled) == (6, 6, 0)


def test_consort_flow_follows_each_arm_through_the_visits(trial, everyone):
    flow = stats.consort_flow(everyone, cutoff=trial.cutoff, visit_codes=CLINIC_VISITS)

    def cells(arm):
        visits = flow.arms[arm].visits
        return {code: (v.complete, v.missed, v.pending, v.off_schedule) for code, v in visits.items()}

    # MSC: P1 C C C C C; P2 C C M I x (died day 300); P4 C I x x x (died day 100)
    msc = flow.arms["MSC"]
    assert (msc.enrolled, msc.died, msc.withdrawn, msc.completed) == (3, 2, 0, 0)
    assert cells("MSC") == {
        "M0": (3, 0, 0, 0),
        "M3": (2, 0, 1, 0),
        "M6": (1, 1, 0, 1),
        "M9": (1, 0, 1, 1),
        "M12": (1, 0, 0, 2),
    }
    # CONV: P3 C C x x x (died day 150); P5 C C C M C; P6 C C - - - (withdrawn)
    conv = flow.arms["CONV"]
    assert (conv.enrolled, conv.died, conv.withdrawn) == (3, 1, 1)
    assert cells("CONV") == {
        "M0": (3, 0, 0, 0),
        "M3": (3, 0, 0, 0),
        "M6": (1, 0, 1, 1),
        "M9": (0, 1, 1, 1),
        "M12": (1, 0, 1, 1),
    }


# --- Visit completion ------------------------------------------------------------------------------------


def test_visit_completion_by_site_and_visit(trial, everyone):
    table = stats.visit_completion(everyone, cutoff=trial.cutoff)
    s1, s2 = trial.site1.pk, trial.site2.pk
    follow_up = ["FU18", "FU24", "FU30", "FU36"]  # day 547 - 30 > day 400: not due for the living
    assert table == {
        (s1, "M0"): {"complete": 3},
        (s1, "M3"): {"complete": 3},
        (s1, "M6"): {"complete": 1, "missed": 1},
        (s1, "M9"): {"complete": 1, "in_progress": 1},
        (s1, "M12"): {"complete": 1},
        **{(s1, code): {"not_due": 1} for code in follow_up},
        (s2, "M0"): {"complete": 3},
        (s2, "M3"): {"complete": 2, "in_progress": 1},
        (s2, "M6"): {"complete": 1, "overdue": 1},
        (s2, "M9"): {"missed": 1, "overdue": 1},
        (s2, "M12"): {"complete": 1, "overdue": 1},
        **{(s2, code): {"not_due": 2} for code in follow_up},
    }


def test_visit_states_in_sql_match_visit_state_on(trial, everyone):
    day = stats.cutoff_day(trial.cutoff)
    for probe in (day, day - datetime.timedelta(days=300), day - datetime.timedelta(days=395)):
        cutoff = trial.cutoff - (day - probe)
        annotated = dict(
            stats.visits.visit_states(stats.enrolled(everyone, trial.cutoff), cutoff).values_list("pk", "state")
        )
        assert annotated == {visit.pk: visit.state_on(probe) for visit in Visit.objects.filter(pk__in=annotated)}


# --- Labs ------------------------------------------------------------------------------------------------


def lab(trial, participants, **kwargs):
    return stats.numeric_summary(participants, cutoff=trial.cutoff, **kwargs)


def summary(n, mean, sd, median):
    return (n, approx(mean), None if sd is None else approx(sd), approx(median))


def as_tuple(found):
    floats = (None if value is None else float(value) for value in (found.mean, found.sd, found.median))
    return (found.n, *floats)


def test_lab_summary_n_mean_sd_median_by_arm_and_visit(trial, everyone):
    table = lab(trial, everyone, forms=["LIVER", "KIDNEY", "LIPGLU"], items=[("CLIN", "CPSCORE")])
    key = stats.LabKey
    # ALB M0 MSC: 29, 31, 36 -> mean 32; deviations -3, -1, 4 -> (9+1+16)/2 = 13 -> SD 3.606; median 31
    assert as_tuple(table[key("LIVER", "ALB", "MSC", "M0")]) == summary(3, 32.0, 3.6056, 31.0)
    # ALB M0 CONV: 30, 32, 35 -> mean 32.333; deviations -2.333, -0.333, 2.667 -> 12.667/2 = 6.333 -> SD 2.517
    assert as_tuple(table[key("LIVER", "ALB", "CONV", "M0")]) == summary(3, 32.3333, 2.5166, 32.0)
    # ALB M3 MSC: 30, 34, 41 -> mean 35; deviations -5, -1, 6 -> 62/2 = 31 -> SD 5.568; median 34
    assert as_tuple(table[key("LIVER", "ALB", "MSC", "M3")]) == summary(3, 35.0, 5.5678, 34.0)
    # ALB M3 CONV: 28, 33 (P6 not done) -> mean 30.5; 2 x 2.5^2 / 1 = 12.5 -> SD 3.536; median (28+33)/2 = 30.5
    assert as_tuple(table[key("LIVER", "ALB", "CONV", "M3")]) == summary(2, 30.5, 3.5355, 30.5)
    # BILI M0 CONV: 38, 42 (P6's 44 was saved after the cut-off) -> mean 40, SD sqrt(8) = 2.828, median 40
    assert as_tuple(table[key("LIVER", "BILI", "CONV", "M0")]) == summary(2, 40.0, 2.8284, 40.0)
    # ALT M0 MSC: 60, 80 -> mean 70, SD sqrt(200) = 14.142, median 70
    assert as_tuple(table[key("LIVER", "ALT", "MSC", "M0")]) == summary(2, 70.0, 14.1421, 70.0)
    # CREAT M0 MSC: 70 alone -> no SD
    assert as_tuple(table[key("KIDNEY", "CREAT", "MSC", "M0")]) == summary(1, 70.0, None, 70.0)
    # CPSCORE M0 CONV: 8, 8, 10 -> mean 8.667, SD sqrt((0.444+0.444+1.778)/2) = 1.155, median 8
    assert as_tuple(table[key("CLIN", "CPSCORE", "CONV", "M0")]) == summary(3, 8.6667, 1.1547, 8.0)
    # CPSCORE M3 CONV: 9, 7, 8 -> mean 8, SD 1, median 8
    assert as_tuple(table[key("CLIN", "CPSCORE", "CONV", "M3")]) == summary(3, 8.0, 1.0, 8.0)
    # No cytokine, no other form's item, and no group without values
    assert {k.form for k in table} == {"LIVER", "KIDNEY", "CLIN"}
    assert {k.item for k in table if k.form == "CLIN"} == {"CPSCORE"}
    assert key("LIVER", "ALT", "CONV", "M0") not in table


def test_median_of_an_even_group_averages_the_two_middle_values(trial, everyone, coordinator1, site1):
    # A fourth MSC ALB value at M3: 30, 34, 41, 50 -> median (34 + 41) / 2 = 37.5, mean 38.75
    extra = enrolled(coordinator1, site1, arm="MSC", days_ago=100)
    visit = extra.visits.get(definition__code="M3")
    ItemValue.objects.create(
        visit=visit,
        item=ItemDefinition.objects.get(form__code="LIVER", code="ALB"),
        number=Decimal("50"),
        updated_at=trial.cutoff - datetime.timedelta(hours=2),
    )
    later = timezone.now()  # the extra participant was enrolled after the fixed trial's cut-off
    found = stats.numeric_summary(everyone, cutoff=later, forms=["LIVER"])[stats.LabKey("LIVER", "ALB", "MSC", "M3")]
    # deviations -8.75, -4.75, 2.25, 11.25 -> (76.5625 + 22.5625 + 5.0625 + 126.5625) / 3 = 76.917 -> SD 8.770
    assert as_tuple(found) == summary(4, 38.75, 8.7702, 37.5)


def _crp_at_m3(trial, user, site, numbers: list[str]) -> stats.Summary:
    """The MSC CRP M3 summary of participants added with these values (the fixed trial has no CRP)."""
    item = ItemDefinition.objects.get(form__code="CYTO", code="CRP")
    for number in numbers:
        visit = enrolled(user, site, arm="MSC", days_ago=100).visits.get(definition__code="M3")
        ItemValue.objects.create(
            visit=visit, item=item, number=Decimal(number), updated_at=trial.cutoff - datetime.timedelta(hours=2)
        )
    everyone = access.participants(user)
    return stats.numeric_summary(everyone, cutoff=timezone.now(), forms=["CYTO"])[
        stats.LabKey("CYTO", "CRP", "MSC", "M3")
    ]


def test_printed_mean_is_rounded_half_up_from_the_exact_decimal(trial, coordinator1, site1):
    from reports.pdf.layout import number

    # (62.01 + 3 x 62.02) / 4 = 62.0175 exactly; a float holds 62.017499999..., which printed 62.017.
    found = _crp_at_m3(trial, coordinator1, site1, ["62.01", "62.02", "62.02", "62.02"])
    assert (found.n, found.mean, found.median) == (4, Decimal("62.0175"), Decimal("62.02"))
    assert f"{float(found.mean):.3f}" == "62.017"
    assert number(found.mean, 3) == "62.018"
    assert number(Decimal("-0.125"), 2) == "-0.13" and number(Decimal("2.5"), 0) == "3"


def test_sd_is_exact_where_a_sum_of_squares_cancels(trial, coordinator1, site1):
    from fractions import Fraction
    from statistics import variance

    # Large values a little apart: the sum-of-squares formula in floating point loses every digit of the spread.
    numbers = ["9999999.000001", "9999999.000002", "9999999.000003", "9999999.000004", "9999999.000006"]
    found = _crp_at_m3(trial, coordinator1, site1, numbers)
    exact = variance([Fraction(n) for n in numbers])  # on Fractions, statistics.variance is exact
    assert found.n == 5
    assert abs(found.sd**2 - Decimal(exact.numerator) / Decimal(exact.denominator)) < Decimal("1e-50")
    assert found.mean == Decimal("9999999.0000032") and found.median == Decimal("9999999.000003")
    squares = sum(float(n) ** 2 for n in numbers) - sum(float(n) for n in numbers) ** 2 / 5
    assert abs(squares / 4 - float(exact)) > 1000 * float(exact)  # what the float formula gave


def test_cytokine_change_from_baseline(trial, everyone):
    change = stats.change_from_baseline(everyone, cutoff=trial.cutoff, forms=["CYTO"])
    # IL6 MSC M3: P1 10 -> 6 (-4), P2 12 -> 9 (-3); P4 has no M3 -> n 2, mean -3.5, SD sqrt(0.5) = 0.707
    msc = change[stats.LabKey("CYTO", "IL6", "MSC", "M3")]
    assert (msc.n, msc.mean, float(msc.sd)) == (2, Decimal("-3.5"), approx(0.7071))
    # IL6 CONV M3: P3 9 -> 11 (+2), P5 7 -> 8 (+1); P6's 14 came after the cut-off -> n 2, mean 1.5
    conv = change[stats.LabKey("CYTO", "IL6", "CONV", "M3")]
    assert (conv.n, conv.mean) == (2, Decimal("1.5"))
    assert set(change) == {stats.LabKey("CYTO", "IL6", arm, "M3") for arm in ("MSC", "CONV")}  # none at M0


def test_cytokine_summary_by_arm_and_visit(trial, everyone):
    # IL6 M0 MSC: 10, 12, 8 -> mean 10, SD 2, median 10
    found = lab(trial, everyone, forms=["CYTO"])[stats.LabKey("CYTO", "IL6", "MSC", "M0")]
    assert as_tuple(found) == summary(3, 10.0, 2.0, 10.0)


def test_hepatitis_status_by_marker_arm_and_visit(trial, everyone):
    status = stats.hepatitis_status(everyone, cutoff=trial.cutoff)
    key = stats.LabKey
    assert status[key("HEPAT", "HBSAG", "MSC", "M0")] == {"positive": 2, "negative": 1}
    assert status[key("HEPAT", "HBSAG", "CONV", "M0")] == {"negative": 1, "indeterminate": 1, "positive": 1}
    assert status[key("HEPAT", "HBSAG", "MSC", "M3")] == {"positive": 1}
    assert status[key("HEPAT", "HCVAB", "MSC", "M0")] == {"negative": 3}
    assert status[key("HEPAT", "HCVAB", "CONV", "M0")] == {"negative": 3}
    assert len(status) == 5


# --- Safety ----------------------------------------------------------------------------------------------


def test_reported_adverse_events_by_grade_and_by_relationship(trial, everyone):
    # Counted: P1 g1 unrelated, P1 g2 possible, P2 g3 probable, P4 g4 unrelated (MSC); P3 g2 unlikely,
    # P5 g1 possible (CONV). Left out: P5's open proposal and dismissed one, P6's (reported after the cut-off),
    # P3's lab proposal confirmed after the cut-off.
    by_grade = stats.adverse_events_by_grade(everyone, cutoff=trial.cutoff)
    assert by_grade == {
        (1, "MSC"): (1, 1),
        (2, "MSC"): (1, 1),
        (3, "MSC"): (1, 1),
        (4, "MSC"): (1, 1),
        (1, "CONV"): (1, 1),
        (2, "CONV"): (1, 1),
    }
    by_relationship = stats.adverse_events_by_relationship(everyone, cutoff=trial.cutoff)
    assert by_relationship == {
        ("unrelated", "MSC"): (2, 2),  # P1 and P4
        ("possible", "MSC"): (1, 1),
        ("probable", "MSC"): (1, 1),
        ("unlikely", "CONV"): (1, 1),
        ("possible", "CONV"): (1, 1),
    }
    # events, participants with any, participants with a serious one
    assert stats.participants_with_events(everyone, cutoff=trial.cutoff) == {"MSC": (4, 3, 2), "CONV": (2, 2, 0)}


def test_serious_events_are_listed_without_free_text(trial, everyone):
    rows = stats.serious_events(everyone, cutoff=trial.cutoff)
    assert [(r.subject_id, r.label, r.term, r.grade, r.relationship, r.outcome) for r in rows] == [
        ("01-002", "AE-001", "Hepatic encephalopathy", 3, "probable", "recovering"),
        ("02-001", "AE-001", fixed_dataset.CHINESE_TERM, 4, "unrelated", "fatal"),
    ]
    assert rows[1].serious_criteria == ["fatal", "life_threatening"]
    assert not any("Wang" in str(value) for row in rows for value in vars(row).values())


def test_lab_gradings_by_term_grade_and_arm(trial, everyone):
    table = stats.lab_gradings(everyone, cutoff=trial.cutoff)
    # BILI grade 1: P1 M3, P2 M0 (MSC), P3 M3 (CONV); grade 2: P2 M3; grade 0 (P5) and after the cut-off (P6) not
    assert table == {
        "Blood bilirubin increased": {(1, "MSC"): (2, 2), (1, "CONV"): (1, 1), (2, "MSC"): (1, 1)},
        "Alanine aminotransferase increased": {(3, "MSC"): (1, 1)},
    }


def test_deaths_are_listed_by_date(trial, everyone):
    rows = stats.deaths(everyone, cutoff=trial.cutoff)
    assert [(r.subject_id, r.arm_code, r.days_from_enrolment, r.cause) for r in rows] == [
        ("02-001", "MSC", 100, fixed_dataset.CHINESE_TERM),
        ("01-003", "CONV", 150, "Liver failure"),
        ("01-002", "MSC", 300, "Hepatic encephalopathy"),
    ]


# --- Survival --------------------------------------------------------------------------------------------


def test_kaplan_meier_by_arm(trial, everyone):
    curves = stats.kaplan_meier(everyone, cutoff=trial.cutoff)
    msc, conv = curves["MSC"], curves["CONV"]
    # MSC: P4 died day 100, P2 died day 300, P1 censored day 370 (last visit)
    # S(100) = 1 - 1/3 = 0.6667; S(300) = 0.6667 x (1 - 1/2) = 0.3333
    assert (msc.n, msc.events) == (3, 2)
    assert msc.survival_at(3) == approx(1.0)  # day 91.3
    assert msc.survival_at(6) == approx(0.6667)  # day 182.6
    assert msc.survival_at(12) == approx(0.3333)  # day 365.25
    # at risk (time >= t): month 0: 3; 6: P2 (300), P1 (370); 12: P1; 18: none
    assert [msc.at_risk(m) for m in stats.AT_RISK_MONTHS] == [3, 2, 1, 0, 0, 0, 0]
    # CONV: P6 (withdrawn: censored at the last visit, M3 on day 91), P3 died day 150, P5 censored day 370.
    # S(150) = 1 - 1/2 = 0.5 (P3 and P5 at risk on day 150)
    assert (conv.n, conv.events) == (3, 1)
    assert (conv.survival_at(6), conv.survival_at(12)) == (approx(0.5), approx(0.5))
    assert [conv.at_risk(m) for m in stats.AT_RISK_MONTHS] == [3, 1, 1, 0, 0, 0, 0]
    assert [(round(m, 2), s) for m, s in conv.points()] == [
        (0.0, 1.0),
        (round(150 / 30.4375, 2), 1.0),
        (round(150 / 30.4375, 2), 0.5),
        (round(370 / 30.4375, 2), 0.5),
    ]


def test_kaplan_meier_censors_at_the_cutoff(trial, everyone):
    # Cut-off on day 200: P4 (day 100) is an event; P2 (dies day 300) and P1 are censored on day 200.
    day_200 = trial.cutoff - datetime.timedelta(days=fixed_dataset.ENROLLED_DAYS_AGO - 200)
    curves = stats.kaplan_meier(everyone, cutoff=day_200)
    msc = curves["MSC"]
    assert msc.times == ((100, True), (200, False), (200, False))
    assert (msc.survival_at(6), msc.survival_at(12)) == (approx(0.6667), approx(0.6667))
    assert curves["CONV"].times == ((91, False), (150, True), (200, False))


def test_product_limit_counts_those_censored_on_an_event_day_as_at_risk():
    # Days: 10 event, 20 event + 20 censored, 30 censored, 40 event.
    # S(10) = 4/5 = 0.8; S(20) = 0.8 x (1 - 1/4) = 0.6; S(40) = 0.6 x (1 - 1/1) = 0
    curve = product_limit("X", [(10, True), (20, True), (20, False), (30, False), (40, True)])
    assert [(s.days, s.at_risk, s.events, s.censored, round(s.survival, 4)) for s in curve.steps] == [
        (10, 5, 1, 0, 0.8),
        (20, 4, 1, 1, 0.6),
        (30, 2, 0, 1, 0.6),
        (40, 1, 1, 0, 0.0),
    ]


# --- Data quality ----------------------------------------------------------------------------------------


def test_open_queries_by_site_and_age(trial, everyone):
    table = stats.open_queries_by_site(everyone, cutoff=trial.cutoff)
    # Site 1: ages 3 and 7 (0-7), 20 (8-30), 40 (answered: >30). Site 2: age 10, closed after the cut-off (8-30);
    # the one closed before and the one raised after the cut-off are not open at it.
    assert table[trial.site1.pk].by_bucket == {"0-7": 2, "8-30": 1, ">30": 1}
    assert table[trial.site2.pk].by_bucket == {"0-7": 0, "8-30": 1, ">30": 0}
    assert table[trial.site1.pk].total == 4


def test_sdv_progress_by_site(trial, everyone):
    table = stats.sdv_by_site(everyone, cutoff=trial.cutoff)
    # Site 1 entered: ALB 6, BILI 6, ALT 1, CREAT 1, IL6 6, HBSAG 4, HCVAB 3 = 27 (CPSCORE is derived).
    # Verified by the cut-off: P1's M0 ALB, BILI, ALT, CREAT, IL6, HBSAG, HCVAB = 7 (P2's ALB only after it),
    # of which BILI changed since.
    site1 = table[trial.site1.pk]
    assert (site1.entered, site1.verified, site1.changed, site1.percent) == (27, 7, 1, 25)
    # Site 2: ALB 6 (P6's "not done" counts), BILI 4 (P6's M0 after the cut-off), ALT 1, IL6 4, HBSAG 3, HCVAB 3
    site2 = table[trial.site2.pk]
    assert (site2.entered, site2.verified, site2.changed) == (21, 1, 0)


def test_signatures_outstanding_by_site(trial, everyone):
    table = stats.signatures_outstanding(everyone, cutoff=trial.cutoff)
    # Site 1 complete: P1 5, P2 2, P3 2 = 9. Signed: P1 M0; P2's casebook covers both of P2's.
    # P3 M0's was voided before the cut-off, P3 M3's signed after it: 4 + 0 + 2 = 6 outstanding.
    assert table[trial.site1.pk] == stats.SignatureCounts(complete=9, unsigned=6)
    # Site 2 complete: P4 1, P5 4, P6 2 = 7; P5 M0's signature was voided only after the cut-off: 6 outstanding.
    assert table[trial.site2.pk] == stats.SignatureCounts(complete=7, unsigned=6)


# --- Scope and query counts ------------------------------------------------------------------------------


def test_a_viewer_of_site_1_sees_only_site_1_numbers(trial, coordinator1):
    mine = access.participants(coordinator1)
    s1 = trial.site1.pk
    enrolment = stats.enrolment_summary(mine, cutoff=trial.cutoff, criterion_codes=CRITERIA)
    assert (enrolment.screened, enrolment.screen_failures, enrolment.eligible_not_enrolled) == (4, 1, 0)
    assert enrolment.enrolled_by_site_arm == {(s1, "MSC"): 2, (s1, "CONV"): 1}
    # ALB M3 MSC at site 1: P1 30, P2 34 -> mean 32.0, SD sqrt(8) = 2.828, median 32.0
    alb = lab(trial, mine, forms=["LIVER"])[stats.LabKey("LIVER", "ALB", "MSC", "M3")]
    assert as_tuple(alb) == summary(2, 32.0, 2.8284, 32.0)
    assert {site for site, _visit in stats.visit_completion(mine, cutoff=trial.cutoff)} == {s1}
    assert set(stats.open_queries_by_site(mine, cutoff=trial.cutoff)) == {s1}
    assert set(stats.sdv_by_site(mine, cutoff=trial.cutoff)) == {s1}
    assert set(stats.signatures_outstanding(mine, cutoff=trial.cutoff)) == {s1}
    assert [r.subject_id for r in stats.serious_events(mine, cutoff=trial.cutoff)] == ["01-002"]
    assert [r.subject_id for r in stats.deaths(mine, cutoff=trial.cutoff)] == ["01-003", "01-002"]
    assert stats.participants_with_events(mine, cutoff=trial.cutoff) == {"MSC": (3, 2, 1), "CONV": (1, 1, 0)}
    # MSC at site 1: P2 died day 300, P1 censored day 370: S(12) = 1 - 1/2 = 0.5
    assert stats.kaplan_meier(mine, cutoff=trial.cutoff)["MSC"].survival_at(12) == approx(0.5)
    assert [site.number for site in stats.sites_of(mine)] == [1]


def test_a_user_without_sites_sees_nothing(trial, outsider):
    nobody = access.participants(outsider)
    assert stats.enrolment_summary(nobody, cutoff=trial.cutoff, criterion_codes=CRITERIA).screened == 0
    assert stats.numeric_summary(nobody, cutoff=trial.cutoff, forms=["LIVER"]) == {}
    assert stats.kaplan_meier(nobody, cutoff=trial.cutoff) == {}


SELECTORS = {  # name: (call, queries)
    "enrolment": (lambda p, c: stats.enrolment_summary(p, cutoff=c, criterion_codes=CRITERIA), 2),
    "consort": (lambda p, c: stats.consort_flow(p, cutoff=c, visit_codes=CLINIC_VISITS), 2),
    "visits": (lambda p, c: stats.visit_completion(p, cutoff=c), 1),
    "labs": (lambda p, c: stats.numeric_summary(p, cutoff=c, forms=["LIVER", "CYTO"], items=[("CLIN", "CPSCORE")]), 1),
    "change": (lambda p, c: stats.change_from_baseline(p, cutoff=c, forms=["CYTO"]), 2),
    "hepatitis": (lambda p, c: stats.hepatitis_status(p, cutoff=c), 1),
    "grade": (lambda p, c: stats.adverse_events_by_grade(p, cutoff=c), 1),
    "relationship": (lambda p, c: stats.adverse_events_by_relationship(p, cutoff=c), 1),
    "with_events": (lambda p, c: stats.participants_with_events(p, cutoff=c), 1),
    "serious": (lambda p, c: stats.serious_events(p, cutoff=c), 1),
    "gradings": (lambda p, c: stats.lab_gradings(p, cutoff=c), 1),
    "deaths": (lambda p, c: stats.deaths(p, cutoff=c), 1),
    "survival": (lambda p, c: stats.kaplan_meier(p, cutoff=c), 1),
    "queries": (lambda p, c: stats.open_queries_by_site(p, cutoff=c), 1),
    "sdv": (lambda p, c: stats.sdv_by_site(p, cutoff=c), 1),
    "signatures": (lambda p, c: stats.signatures_outstanding(p, cutoff=c), 1),
}


def query_counts(participants, cutoff):
    counts = {}
    for name, (call, _expected) in SELECTORS.items():
        with CaptureQueriesContext(connection) as queries:
            call(participants, cutoff)
        counts[name] = len(queries)
    return counts


def grow(trial, user, site, n):
    """n more enrolled participants, each with lab values, a serious event, a query and a lab grading."""
    items = {
        code: ItemDefinition.objects.get(form__code=form, code=code)
        for form, code in [("LIVER", "ALB"), ("CYTO", "IL6"), ("HEPAT", "HBSAG")]
    }
    saved = trial.cutoff - datetime.timedelta(days=2)
    for i in range(n):
        participant = enrolled(user, site, arm=["MSC", "CONV"][i % 2], days_ago=200)
        m0, m3 = (participant.visits.get(definition__code=code) for code in ("M0", "M3"))
        Visit.objects.filter(pk__in=[m0.pk, m3.pk]).update(progress="complete")
        ItemValue.objects.bulk_create(
            [
                ItemValue(visit=m0, item=items["ALB"], number=30 + i, updated_at=saved),
                ItemValue(visit=m3, item=items["ALB"], number=31 + i, updated_at=saved),
                ItemValue(visit=m0, item=items["IL6"], number=5 + i, updated_at=saved),
                ItemValue(visit=m3, item=items["IL6"], number=4 + i, updated_at=saved),
                ItemValue(visit=m0, item=items["HBSAG"], text="negative", updated_at=saved),
            ]
        )
        AdverseEvent.objects.create(
            participant=participant,
            subject_id=participant.subject_id,
            number=1,
            status="reported",
            source="site",
            term="Fever",
            body_system="other",
            onset_date=m3.target_date,
            grade=3,
            relationship="possible",
            outcome="recovered",
            serious=True,
            serious_criteria=["hospitalisation"],
            created_at=saved,
            updated_at=saved,
        )
        Query.objects.create(
            participant=participant, visit=m0, origin=QueryOrigin.MANUAL, message="?", created_at=saved
        )
        LabGrading.objects.create(
            participant=participant,
            visit=m3,
            item_code="BILI",
            term="Blood bilirubin increased",
            value=30,
            grade=1,
            criterion="test",
            form_version=1,
            graded_at=saved,
        )


def test_each_selector_runs_the_same_few_queries_at_two_sizes(trial, everyone, coordinator1, site1):
    query_counts(everyone, trial.cutoff)  # the protocol's definitions are read once per process
    small = query_counts(everyone, trial.cutoff)
    grow(trial, coordinator1, site1, 8)
    later = timezone.now()  # the new participants were enrolled after the fixed trial's cut-off
    large = query_counts(everyone, later)
    assert small == large == {name: expected for name, (_call, expected) in SELECTORS.items()}
    assert stats.enrolment_summary(everyone, cutoff=later, criterion_codes=CRITERIA).enrolled == 14
    assert len(stats.serious_events(everyone, cutoff=later)) == 2 + 8


# --- Survival against lifelines ----------------------------------------------------------------------------

# (days, died): ties of deaths, of censorings, and of a death with a censoring; a censoring at the end.
SURVIVAL_SETS = {
    "ties": (
        [(5, True), (8, True), (8, True), (12, False), (12, True), (15, True), (20, False), (21, True), (30, False)],
        [(6, True), (9, False), (9, False), (14, True), (18, True), (25, False), (25, False), (33, True), (40, False)],
    ),
    "heavy censoring": (
        [(3, False), (4, True), (7, False), (7, False), (10, True), (11, False), (16, False), (16, True)],
        [(2, True), (2, True), (3, True), (5, False), (6, True), (6, True), (8, False), (9, True), (13, True)],
    ),
    "median not reached": (
        [(10, True), (20, False), (30, False), (40, True), (50, False), (60, False), (70, False)],
        [(4, True), (5, True), (8, True), (8, False), (9, True), (12, True), (14, True)],
    ),
}


def _lifelines(times):
    from lifelines import KaplanMeierFitter

    fitter = KaplanMeierFitter().fit([d for d, _ in times], [died for _, died in times])
    return fitter


def _none_for_inf(value):
    return None if math.isinf(value) else value


@pytest.mark.parametrize("name", sorted(SURVIVAL_SETS))
def test_kaplan_meier_intervals_and_median_match_lifelines(name):
    from lifelines.utils import median_survival_times

    for arm, times in zip(("A", "B"), SURVIVAL_SETS[name], strict=True):
        curve = product_limit(arm, times)
        fitter = _lifelines(times)
        interval = fitter.confidence_interval_
        for step in curve.steps:
            assert step.survival == pytest.approx(fitter.survival_function_.loc[step.days].iloc[0], abs=1e-12)
            low, high = step.confidence
            assert low == pytest.approx(interval.loc[step.days].iloc[0], abs=1e-9)
            assert high == pytest.approx(interval.loc[step.days].iloc[1], abs=1e-9)
        assert curve.median() == _none_for_inf(fitter.median_survival_time_)
        bounds = median_survival_times(interval)
        assert curve.median_confidence() == (
            _none_for_inf(bounds.iloc[0, 0]),
            _none_for_inf(bounds.iloc[0, 1]),
        )


def test_median_interval_is_not_reached_where_the_upper_limit_stays_above_half():
    curve = product_limit("A", SURVIVAL_SETS["median not reached"][0])
    assert curve.median() is None and curve.median_confidence()[1] is None


@pytest.mark.parametrize("name", sorted(SURVIVAL_SETS))
def test_log_rank_matches_lifelines(name):
    from lifelines.statistics import logrank_test

    first, second = SURVIVAL_SETS[name]
    expected = logrank_test(
        [d for d, _ in first], [d for d, _ in second], [e for _, e in first], [e for _, e in second]
    )
    found = stats.log_rank(product_limit("A", first), product_limit("B", second))
    assert found.chi_square == pytest.approx(expected.test_statistic, rel=1e-9)
    assert found.p_value == pytest.approx(expected.p_value, rel=1e-9)
    assert found.observed == (sum(e for _, e in first), sum(e for _, e in second))
    assert sum(found.expected) == pytest.approx(sum(found.observed))


def test_log_rank_without_deaths_is_not_computed():
    assert stats.log_rank(product_limit("A", [(5, False)]), product_limit("B", [(7, False)])) is None


def test_kaplan_meier_of_the_fixed_trial_gives_medians_and_intervals(trial, everyone):
    curves = stats.kaplan_meier(everyone, cutoff=trial.cutoff)
    msc = curves["MSC"]
    # MSC: deaths on days 100 and 300, censored 370: S drops to 0.3333 on day 300, so the median is day 300.
    assert msc.median() == 300
    low, high = msc.confidence_at(6)
    assert low < msc.survival_at(6) < high
    assert stats.log_rank(curves["MSC"], curves["CONV"]).observed == (2, 1)


def test_printed_percentages_round_half_up():
    from reports.pdf.layout import percent

    # 1 of 8 is 12.5% exactly: half up gives 13%, where formatting the float rounds half to even (12%).
    assert f"{100 * 1 / 8:.0f}" == "12"
    assert (percent(1, 8), percent(3, 8), percent(2, 3), percent(0, 0)) == ("1 (13%)", "3 (38%)", "2 (67%)", "–")
