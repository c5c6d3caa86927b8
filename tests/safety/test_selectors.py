"""The reads of the safety pages: notice states, the dashboard's scope, the listing's columns, constant query counts."""

import dataclasses
import datetime

import pytest
from django.utils import timezone

from safety import selectors, services
from safety.models import AdverseEvent, DeathReport, Notification
from safety.selectors import NoticeState, notice_state
from tests.factories import enrolled
from tests.safety.conftest import SERIOUS, ae_input, save_liver, visit_of
from trial.access import Action

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


def report(user, participant, **overrides) -> AdverseEvent:
    return services.adverse_event_report(user=user, participant_id=participant.pk, data=ae_input(**overrides))


@pytest.mark.parametrize(
    ("expedited_at", "notices", "unsent", "state"),
    [
        (None, 0, 0, ""),
        (NOW - HOUR, 3, 0, NoticeState.SENT),
        (NOW - 30 * HOUR, 3, 0, NoticeState.SENT),
        (NOW - HOUR, 3, 1, NoticeState.PENDING),
        (NOW - 23 * HOUR, 3, 3, NoticeState.PENDING),
        (NOW - 24 * HOUR, 3, 1, NoticeState.OVERDUE),
        (NOW - 25 * HOUR, 3, 1, NoticeState.OVERDUE),
        (NOW - 25 * HOUR, 0, 0, NoticeState.NONE),
    ],
)
def test_notice_state_is_overdue_only_when_a_notice_is_unsent_after_24_hours(expedited_at, notices, unsent, state):
    assert notice_state(expedited_at, notices, unsent, NOW) == state


def test_listing_never_reads_a_free_text_field():
    free_text = {"term", "description", "dismiss_reason", "ctcae_criterion", "participant__initials"}
    assert not free_text & set(selectors.LISTING_FIELDS)
    row_fields = {field.name for field in dataclasses.fields(selectors.ListingRow)}
    assert not {"term", "description", "initials", "cause"} & row_fields


def test_listing_is_for_reviewers_at_their_sites(coordinator1, investigator1, monitor, datamanager, sponsor, site1):
    assert selectors.listing_site_ids(coordinator1) == []
    assert selectors.listing_site_ids(investigator1) == []
    assert len(selectors.listing_site_ids(monitor)) == 3
    assert len(selectors.listing_site_ids(sponsor)) == 6
    assert selectors.listing_site_ids(monitor, Action.EXPORT) == []
    assert len(selectors.listing_site_ids(datamanager, Action.EXPORT)) == 6


def test_listing_holds_reported_events_only(coordinator1, participant, django_capture_on_commit_callbacks):
    save_liver(coordinator1, visit_of(participant, "M0"), django_capture_on_commit_callbacks)
    save_liver(coordinator1, visit_of(participant, "M3"), django_capture_on_commit_callbacks, ALT="300")
    report(coordinator1, participant, **SERIOUS)
    later = timezone.now() + 25 * HOUR
    rows = selectors.safety_listing([participant.site_id], now=later)  # the lab proposal AE-001 is not reported
    assert [(row.label, row.ctcae_term, row.serious_criteria) for row in rows] == [("AE-002", "", ("hospitalisation",))]
    assert rows[0].notice_state == NoticeState.OVERDUE  # queued at the report, unsent: this test never commits


def test_dashboard_sees_only_the_users_sites_and_narrows_to_one(
    coordinator1, coordinator2, monitor, participant, site2
):
    other = enrolled(coordinator2, site2, arm="MSC", days_ago=100)
    mine, theirs = report(coordinator1, participant), report(coordinator2, other)
    now = timezone.now()
    assert [e.pk for e in selectors.safety_dashboard(coordinator1, now=now).open_events] == [mine.pk]
    assert {e.pk for e in selectors.safety_dashboard(monitor, now=now).open_events} == {mine.pk, theirs.pk}
    narrowed = selectors.safety_dashboard(monitor, site_id=site2.pk, now=now)
    assert [e.pk for e in narrowed.open_events] == [theirs.pk]
    assert selectors.safety_dashboard(coordinator1, site_id=site2.pk, now=now).open_events == []


def test_dashboard_lists_deaths_and_ended_events_are_not_open(coordinator1, participant):
    ended = report(coordinator1, participant, end_date=timezone.localdate(), outcome="recovered")
    ongoing = report(coordinator1, participant)
    services.death_report(
        user=coordinator1,
        participant_id=participant.pk,
        death_date=timezone.localdate(),
        cause="Liver failure",
        relationship="unrelated",
    )
    board = selectors.safety_dashboard(coordinator1, now=timezone.now())
    assert [e.pk for e in board.open_events] == [ongoing.pk] and ended.pk != ongoing.pk
    assert [d.participant_id for d in board.deaths] == [participant.pk]


@pytest.mark.parametrize("count", [3, 30])
def test_selectors_run_a_constant_number_of_queries(coordinator1, participant, django_assert_num_queries, count):
    for number in range(count):
        report(coordinator1, participant, term=f"Event {number}", **(SERIOUS if number % 2 else {}))
    Notification.objects.bulk_create(
        Notification(user=coordinator1, text=f"n{n}", created_at=timezone.now()) for n in range(count)
    )
    event = AdverseEvent.objects.order_by("pk").last()
    selectors.dashboard_sites(coordinator1)  # memberships are read once per user object
    with django_assert_num_queries(5):  # the first rows of the four parts, and the overdue notices' count
        board = selectors.safety_dashboard(coordinator1, now=timezone.now())
    assert len(board.open_events) == min(count, selectors.DASHBOARD_ROWS)
    assert ("open" in board.more) == (count > selectors.DASHBOARD_ROWS)
    with django_assert_num_queries(1):
        assert len(selectors.safety_listing([participant.site_id], now=timezone.now())) == count
    with django_assert_num_queries(1):
        assert selectors.unread_count(coordinator1) == count
    with django_assert_num_queries(2):
        selectors.adverse_event_detail(event, now=timezone.now())
    with django_assert_num_queries(6):
        log = selectors.adverse_event_log(coordinator1, participant.pk)
    assert len(log.events) == count and log.death is None
    assert not DeathReport.objects.exists()
