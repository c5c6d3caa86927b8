"""Survival time and censoring, derived from death reports, SURV contacts and visits; never typed."""

import datetime

from django.utils import timezone

from capture.services import form_save
from safety import services
from safety.survival import survival_of
from tests.factories import enrolled
from tests.safety.conftest import visit_of
from trial import access
from trial.models import Participant

TODAY = timezone.localdate()


def days_ago(n):
    return TODAY - datetime.timedelta(days=n)


def surv(user, participant, visit_code, **values):
    visit = visit_of(participant, visit_code)
    form_save(user=user, visit_id=visit.pk, form_code="SURV", version=0, values=values)


def by_subject(user):
    return {row.subject_id: row for row in survival_of(access.participants(user))}


def test_death_report_is_the_event(coordinator1, site1):
    participant = enrolled(coordinator1, site1, days_ago=300)
    services.death_report(
        user=coordinator1,
        participant_id=participant.pk,
        death_date=days_ago(100),
        cause="Liver failure",
        relationship="unrelated",
    )
    row = by_subject(coordinator1)[participant.subject_id]
    assert (row.died, row.days, row.vital_status, row.death_report_missing) == (True, 200, "dead", False)
    assert row.months == round(200 / 30.4375, 2)


def test_alive_contact_censors_at_the_last_known_alive_date(coordinator1, site1):
    participant = enrolled(coordinator1, site1, days_ago=560)  # FU18 at day 548 +/- 30 is open
    surv(
        coordinator1,
        participant,
        "FU18",
        CONTDAT=days_ago(5).isoformat(),
        VITAL="alive",
        LKADAT=days_ago(5).isoformat(),
    )
    row = by_subject(coordinator1)[participant.subject_id]
    assert (row.died, row.censored, row.days, row.vital_status) == (False, True, 555, "alive")


def test_lost_to_follow_up_is_censored_at_the_last_known_alive_date(coordinator1, site1):
    participant = enrolled(coordinator1, site1, days_ago=560)
    surv(
        coordinator1,
        participant,
        "FU18",
        CONTDAT=days_ago(2).isoformat(),
        VITAL="lost",
        LKADAT=days_ago(200).isoformat(),
    )
    row = by_subject(coordinator1)[participant.subject_id]
    assert (row.died, row.days, row.vital_status) == (False, 360, "lost")


def test_a_death_recorded_on_follow_up_without_a_report_still_counts_and_is_flagged(coordinator1, site1):
    participant = enrolled(coordinator1, site1, days_ago=560)
    surv(
        coordinator1,
        participant,
        "FU18",
        CONTDAT=days_ago(3).isoformat(),
        VITAL="dead",
        LKADAT=days_ago(40).isoformat(),
        DTHDAT=days_ago(30).isoformat(),
    )
    row = by_subject(coordinator1)[participant.subject_id]
    assert (row.died, row.days, row.death_report_missing) == (True, 530, True)


def test_no_follow_up_yet_censors_at_enrolment_or_the_last_visit(coordinator1, site1):
    participant = enrolled(coordinator1, site1, days_ago=10)
    row = by_subject(coordinator1)[participant.subject_id]
    assert (row.died, row.days) == (False, 0)


def test_only_the_users_sites_and_constant_queries(coordinator1, coordinator2, site1, site2, django_assert_num_queries):
    for _ in range(3):
        enrolled(coordinator1, site1, days_ago=30)
    enrolled(coordinator2, site2, days_ago=30)
    assert len(survival_of(access.participants(coordinator1))) == 3
    access.site_roles(coordinator1)
    with django_assert_num_queries(3):
        survival_of(access.participants(coordinator1))
    assert Participant.objects.count() == 4
