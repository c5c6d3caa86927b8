"""The safety pages as each role sees them: the AE log and form, an event's page and its actions, the death report,
the site safety dashboard, the sponsor's listing and the in-app notifications."""

import csv
import datetime
import io
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from capture.models import FormInstance
from capture.review import lock_set
from safety import services
from safety.models import AdverseEvent, AdverseEventStatus, DeathReport, Notification, SaeNotification
from safety.notify import OVERDUE_AFTER
from safety.selectors import DASHBOARD_ROWS
from safety.survival import survival_of
from tests.factories import PASSWORD, enrolled, screened
from tests.roles import ROLES, SEES
from tests.safety.conftest import SERIOUS, ae_input, save_liver, visit_of
from trial.models import AuditRecord, Participant, ParticipantStatus

pytestmark = pytest.mark.django_db

ENTERS = {"coordinator1": {1}, "investigator1": {1}, "coordinator2": {2}}
LISTS = {"monitor", "datamanager", "sponsor"}
EXPORTS = {"datamanager", "sponsor"}
# Free text that must never reach the sponsor's listing: it could identify the participant.
SECRET_TERM = "Zebra-7Q rash after the fall at Mr Wang's farm"
SECRET_DESCRIPTION = "Seen by Dr Li in bed 12"
STALE_MESSAGE = "Someone changed this adverse event after you opened it"


def today() -> datetime.date:
    return timezone.localdate()


def report(user, participant, **overrides) -> AdverseEvent:
    return services.adverse_event_report(user=user, participant_id=participant.pk, data=ae_input(**overrides))


def ae_post(**overrides) -> dict[str, object]:
    """What the AE form posts for a mild, unrelated, ongoing event that began yesterday."""
    data = {
        "term": "Headache",
        "body_system": "nervous",
        "onset_date": (today() - datetime.timedelta(days=1)).isoformat(),
        "end_date": "",
        "grade": "1",
        "relationship": "unlikely",
        "action_taken": "none",
        "outcome": "not_recovered",
        "description": "",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def writes() -> tuple[int, int, int]:
    return AdverseEvent.objects.count(), AuditRecord.objects.count(), DeathReport.objects.count()


def log_url(participant: Participant) -> str:
    return reverse("safety:participant_adverse_events", args=[participant.pk])


def report_url(participant: Participant) -> str:
    return reverse("safety:adverse_event_report", args=[participant.pk])


def death_url(participant: Participant) -> str:
    return reverse("safety:death_report", args=[participant.pk])


def event_url(event: AdverseEvent, name: str = "adverse_event") -> str:
    return reverse(f"safety:{name}", args=[event.pk])


def field_error(content: str, name: str) -> str:
    """The error crispy shows under the field `name`, or '' when it shows none."""
    found = re.search(rf'id="error_\d+_id_{name}"[^>]*>\s*<strong>(.*?)</strong>', content, re.S)
    return found.group(1) if found else ""


@pytest.fixture
def participant2(coordinator2, site2) -> Participant:
    return enrolled(coordinator2, site2, arm="MSC", days_ago=100)


@pytest.fixture
def events(coordinator1, coordinator2, participant, participant2) -> dict[int, AdverseEvent]:
    """One reported event at site 1 and one at site 2."""
    return {1: report(coordinator1, participant), 2: report(coordinator2, participant2)}


@pytest.fixture
def proposal(coordinator1, participant, django_capture_on_commit_callbacks) -> AdverseEvent:
    """ALT at six times the upper limit at M3, normal at M0: the grading proposes a grade 3 event."""
    save_liver(coordinator1, visit_of(participant, "M0"), django_capture_on_commit_callbacks)
    save_liver(coordinator1, visit_of(participant, "M3"), django_capture_on_commit_callbacks, ALT="300")
    return AdverseEvent.objects.get(participant=participant, status=AdverseEventStatus.PROPOSED)


# --- Access ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_log_and_event_pages_are_404_at_another_site(request, as_user, events, role):
    client = as_user(request.getfixturevalue(role))
    for number, event in events.items():
        expected = 200 if number in SEES[role] else 404
        assert client.get(log_url(event.participant)).status_code == expected, number
        assert client.get(event_url(event)).status_code == expected, number


@pytest.mark.parametrize("role", ROLES)
def test_report_and_death_forms_are_for_site_staff_who_enter_data(request, as_user, events, role):
    client = as_user(request.getfixturevalue(role))
    for number, event in events.items():
        if number in ENTERS.get(role, set()):
            expected = 200
        else:
            expected = 403 if number in SEES[role] else 404
        for url in (
            report_url(event.participant),
            death_url(event.participant),
            event_url(event, "adverse_event_update"),
        ):
            assert client.get(url).status_code == expected, (url, number)


@pytest.mark.parametrize("role", ROLES)
def test_dashboard_is_for_every_site_member_and_listing_for_reviewers(request, as_user, events, role):
    client = as_user(request.getfixturevalue(role))
    assert client.get(reverse("safety:dashboard")).status_code == (403 if role == "outsider" else 200)
    assert client.get(reverse("safety:listing")).status_code == (200 if role in LISTS else 403)
    assert client.get(reverse("safety:listing_csv")).status_code == (200 if role in EXPORTS else 403)


@pytest.mark.parametrize("role", ["coordinator2", "outsider"])
def test_posts_to_another_sites_participant_or_event_are_404_and_write_nothing(request, as_user, events, role):
    client = as_user(request.getfixturevalue(role))
    event = events[1]
    before = writes()
    assert client.post(report_url(event.participant), ae_post()).status_code == 404
    assert client.post(death_url(event.participant), {"death_date": today().isoformat()}).status_code == 404
    update = {**ae_post(), "version": "1", "reason": "x"}
    assert client.post(event_url(event, "adverse_event_update"), update).status_code == 404
    assert client.post(event_url(event, "adverse_event_verify"), {"version": "1"}).status_code == 404
    assert writes() == before


def test_anonymous_is_sent_to_the_login_page(client, events):
    event = events[1]
    urls = [
        log_url(event.participant),
        report_url(event.participant),
        death_url(event.participant),
        event_url(event),
        event_url(event, "adverse_event_update"),
        event_url(event, "adverse_event_confirm"),
        reverse("safety:dashboard"),
        reverse("safety:listing"),
        reverse("safety:listing_csv"),
        reverse("safety:notifications"),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login"))
    assert client.get(reverse("safety:notification_badge")).status_code == 204


# --- The log and the report form ------------------------------------------------------------------------------------


def test_log_lists_the_events_with_their_state_and_the_report_button_for_site_staff(
    as_user, coordinator1, monitor, participant, proposal
):
    report(coordinator1, participant, term="Nausea")
    content = as_user(coordinator1).get(log_url(participant)).content.decode()
    assert 'id="report-event"' in content and 'id="report-death"' in content
    assert "AE-001" in content and "AE-002" in content and "Nausea" in content
    assert "Alanine aminotransferase increased" in content
    assert 'data-review="awaiting"' in content and 'data-review="not-verified"' in content
    survival = survival_of(Participant.objects.filter(pk=participant.pk))[0]
    assert re.search(rf'id="survival-time">{survival.days} days \({survival.months} months\)<', content)
    assert f"Censored on {survival.end.isoformat()}" in content and 'data-vital="alive"' in content
    monitor_view = as_user(monitor).get(log_url(participant)).content.decode()
    assert "Nausea" in monitor_view and 'id="report-event"' not in monitor_view


def test_a_candidate_not_enrolled_has_no_report_button(as_user, coordinator1, site1):
    candidate = screened(coordinator1, site1)
    content = as_user(coordinator1).get(log_url(candidate)).content.decode()
    assert 'id="report-event"' not in content and "Survival is followed from enrolment." in content


def test_report_creates_the_event_and_its_audit_trail(as_user, coordinator1, participant):
    response = as_user(coordinator1).post(report_url(participant), ae_post(description="Resolved with rest"))
    event = AdverseEvent.objects.get(participant=participant)
    assert response.status_code == 302 and response.url == event_url(event)
    assert (event.term, event.grade, event.status, event.version) == ("Headache", 1, "reported", 1)
    records = AuditRecord.objects.filter(object_type="adverse_event", object_id=str(event.pk))
    assert records.filter(action="create").count() == 1
    assert dict(records.filter(action="update").values_list("item_code", "new_value"))["term"] == "Headache"
    page = as_user(coordinator1).get(response.url).content.decode()
    assert "AE-001 was reported." in page
    assert 'data-action="create"' in page and "Resolved with rest" in page


def test_serious_criteria_are_checkboxes_and_a_serious_report_queues_notices(as_user, coordinator1, participant):
    client = as_user(coordinator1)
    form_page = client.get(report_url(participant)).content.decode()
    assert re.search(r'<input type="checkbox"[^>]*name="serious_criteria" value="hospitalisation"', form_page)
    post = ae_post(serious="on", serious_criteria=["hospitalisation", "life_threatening"], grade="3")
    assert client.post(report_url(participant), post).status_code == 302
    event = AdverseEvent.objects.get(participant=participant)
    assert event.serious and event.serious_criteria == ["hospitalisation", "life_threatening"]
    assert event.expedited_at is not None
    assert list(event.notifications.values_list("role", flat=True)) == ["sponsor_safety"]  # no investigator yet


def test_bad_input_shows_each_error_beside_its_field_and_saves_nothing(as_user, coordinator1, participant):
    before = writes()
    tomorrow = (today() + datetime.timedelta(days=1)).isoformat()
    post = ae_post(term="", onset_date=tomorrow, serious_criteria=["fatal"])
    response = as_user(coordinator1).post(report_url(participant), post)
    assert response.status_code == 400
    assert writes() == before
    content = response.content.decode()
    assert "Nothing was saved." in content
    assert field_error(content, "term") == "This field is required."
    assert field_error(content, "onset_date") == "The onset date cannot be in the future."
    assert "The criterion &#x27;Fatal&#x27; needs the outcome &#x27;Fatal&#x27;." in field_error(content, "outcome")
    assert 'value="Headache"' not in content and f'value="{tomorrow}"' in content  # what was typed is kept


def test_an_unparseable_date_is_refused_before_the_service(as_user, coordinator1, participant):
    before = writes()
    response = as_user(coordinator1).post(report_url(participant), ae_post(onset_date="31/02/2025"))
    assert response.status_code == 400
    assert field_error(response.content.decode(), "onset_date")
    assert writes() == before


# --- Update ---------------------------------------------------------------------------------------------------------


def test_update_needs_a_reason_and_then_records_it(as_user, coordinator1, participant):
    event = report(coordinator1, participant)
    client = as_user(coordinator1)
    form_page = client.get(event_url(event, "adverse_event_update")).content.decode()
    assert re.search(r'<input type="hidden" name="version" value="1"', form_page)
    assert 'value="Nausea"' in form_page and 'name="reason"' in form_page
    post = {**ae_post(term="Nausea", body_system="gastrointestinal", grade="2"), "version": "1", "reason": ""}
    before = writes()
    response = client.post(event_url(event, "adverse_event_update"), post)
    assert response.status_code == 400
    assert field_error(response.content.decode(), "reason") == "Give the reason for this change."
    assert writes() == before
    response = client.post(event_url(event, "adverse_event_update"), {**post, "reason": "Source re-read: grade 2"})
    assert response.status_code == 302
    event.refresh_from_db()
    assert (event.grade, event.version) == (2, 2)
    change = AuditRecord.objects.get(
        object_type="adverse_event", object_id=str(event.pk), item_code="grade", action="update", old_value="1"
    )
    assert change.reason == "Source re-read: grade 2"


def test_update_on_a_stale_version_shows_the_conflict_and_saves_nothing(as_user, coordinator1, participant):
    event = report(coordinator1, participant)
    services.adverse_event_update(
        user=coordinator1, event_id=event.pk, version=1, data=ae_input(grade=2), reason="first correction"
    )
    post = {**ae_post(term="Nausea", body_system="gastrointestinal", grade="3"), "version": "1", "reason": "mine"}
    response = as_user(coordinator1).post(event_url(event, "adverse_event_update"), post)
    assert response.status_code == 409
    content = response.content.decode()
    assert STALE_MESSAGE in content and 'id="saved-now"' in content
    assert re.search(r'<input type="hidden" name="version" value="2"', content)  # the next save builds on it
    event.refresh_from_db()
    assert (event.grade, event.version) == (2, 2)


def test_locked_participant_cannot_be_reported_or_changed(as_user, coordinator1, datamanager, participant):
    event = report(coordinator1, participant)
    lock_set(user=datamanager, participant_id=participant.pk, reason="Database lock for the interim analysis")
    client = as_user(coordinator1)
    before = writes()
    response = client.post(report_url(participant), ae_post())
    assert response.status_code == 423 and "locked by the data manager" in response.content.decode()
    post = {**ae_post(term="Nausea", body_system="gastrointestinal", grade="2"), "version": "1", "reason": "late"}
    response = client.post(event_url(event, "adverse_event_update"), post)
    assert response.status_code == 423 and 'id="locked-error"' in response.content.decode()
    assert writes() == before


# --- The investigator's decisions on lab proposals -----------------------------------------------------------------


def test_confirm_form_is_prefilled_from_the_proposal(as_user, investigator1, proposal):
    response = as_user(investigator1).get(event_url(proposal, "adverse_event_confirm"))
    assert response.status_code == 200
    form = response.context["form"]
    assert form["term"].value() == "Alanine aminotransferase increased"
    assert form["onset_date"].value() == proposal.onset_date
    assert form["grade"].value() is None and form["relationship"].value() is None  # the investigator's call
    assert "CTCAE grade 3" in response.content.decode()


def test_investigator_confirms_a_proposal(as_user, investigator1, proposal):
    post = {
        **ae_post(term="ALT increased", body_system="investigations", grade="3", outcome="not_recovered"),
        "onset_date": proposal.onset_date.isoformat(),
        "version": str(proposal.version),
    }
    response = as_user(investigator1).post(event_url(proposal, "adverse_event_confirm"), post)
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == AdverseEventStatus.REPORTED and proposal.decided_by == investigator1
    assert AuditRecord.objects.filter(object_id=str(proposal.pk), action="confirm").exists()


def test_investigator_dismisses_a_proposal_only_with_a_reason(as_user, investigator1, proposal):
    client = as_user(investigator1)
    url = event_url(proposal, "adverse_event_dismiss")
    response = client.post(url, {"version": str(proposal.version), "reason": " "})
    assert response.status_code == 400
    assert field_error(response.content.decode(), "reason") == "Give the reason for this change."
    proposal.refresh_from_db()
    assert proposal.status == AdverseEventStatus.PROPOSED
    response = client.post(url, {"version": str(proposal.version), "reason": "Unchanged from screening cirrhosis"})
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == AdverseEventStatus.DISMISSED
    assert proposal.dismiss_reason == "Unchanged from screening cirrhosis"


@pytest.mark.parametrize("role", ["coordinator1", "monitor", "sponsor"])
def test_only_the_investigator_decides_proposals(request, as_user, proposal, role):
    client = as_user(request.getfixturevalue(role))
    page = client.get(event_url(proposal)).content.decode()
    assert 'id="confirm-event"' not in page and 'id="dismiss-form"' not in page
    version = str(proposal.version)
    assert client.get(event_url(proposal, "adverse_event_confirm")).status_code == 403
    post = {**ae_post(grade="3"), "version": version}
    assert client.post(event_url(proposal, "adverse_event_confirm"), post).status_code == 403
    assert (
        client.post(event_url(proposal, "adverse_event_dismiss"), {"version": version, "reason": "no"}).status_code
        == 403
    )
    proposal.refresh_from_db()
    assert proposal.status == AdverseEventStatus.PROPOSED


def test_event_page_shows_the_lab_origin_and_the_investigators_actions(as_user, investigator1, proposal):
    content = as_user(investigator1).get(event_url(proposal)).content.decode()
    origin = content[content.index('id="lab-origin"') :]
    assert re.search(r'data-field="lab_item_code">ALT<', origin)
    assert re.search(r'data-field="lab_value">300 U/L<', origin)  # with the item's unit
    assert re.search(r'data-field="ctcae_grade">3<', origin) and "M3" in origin
    # The criterion as a sentence: the value, the bound it crossed in the item's unit and how CTCAE sets it.
    assert 'data-field="ctcae_criterion">300 U/L, above 250 U/L (5.0 × ULN): grade 3<' in origin
    assert 'id="confirm-event"' in content and 'id="dismiss-form"' in content
    assert 'data-action="propose"' in content
    assert "{% block" not in content


# --- Verification and signature --------------------------------------------------------------------------------


def test_monitor_verifies_and_investigator_signs_with_the_password(
    as_user, coordinator1, investigator1, monitor, participant
):
    event = report(coordinator1, participant)
    assert 'id="verify-event"' not in as_user(coordinator1).get(event_url(event)).content.decode()
    assert as_user(coordinator1).post(event_url(event, "adverse_event_verify"), {"version": "1"}).status_code == 403
    client = as_user(monitor)
    assert 'id="verify-event"' in client.get(event_url(event)).content.decode()
    assert client.post(event_url(event, "adverse_event_verify"), {"version": "1"}).status_code == 302
    client = as_user(investigator1)
    response = client.post(event_url(event, "adverse_event_sign"), {"version": "1", "password": "wrong"})
    assert response.status_code == 400
    assert field_error(response.content.decode(), "password") == (
        "The password is not correct: the signature was not recorded."
    )
    assert (
        client.post(event_url(event, "adverse_event_sign"), {"version": "1", "password": PASSWORD}).status_code == 302
    )
    event.refresh_from_db()
    assert event.verified_by == monitor and event.signed_by == investigator1
    page = client.get(event_url(event)).content.decode()
    assert 'data-review="verified"' in page and 'data-review="signed"' in page


# --- Death --------------------------------------------------------------------------------------------------------


def test_death_report_ends_the_schedule_and_later_visits_refuse_data(
    as_user, coordinator1, monitor, participant, django_capture_on_commit_callbacks
):
    m3 = visit_of(participant, "M3")
    save_liver(coordinator1, m3, django_capture_on_commit_callbacks)
    died = participant.enrolment_date + datetime.timedelta(days=10)
    client = as_user(coordinator1)
    post = {"death_date": died.isoformat(), "cause": "Variceal bleeding", "relationship": "unrelated", "autopsy": "no"}
    response = client.post(death_url(participant), post)
    assert response.status_code == 302 and response.url == log_url(participant)
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.DIED and participant.death_date == died
    log = client.get(log_url(participant)).content.decode()
    assert f"Died on {died.isoformat()}" in log and 'id="report-death"' not in log
    assert 'data-vital="dead"' in log
    assert (
        f"Died on {died.isoformat()}"
        in client.get(reverse("trial:participant_detail", args=[participant.pk])).content.decode()
    )
    version = FormInstance.objects.get(visit=m3, definition__code="LIVER").version
    form_url = reverse("capture:form", args=[m3.pk, "LIVER"])
    entry = {"version": str(version), "LBDAT": m3.target_date.isoformat(), "ALT": "31", "reason": "late"}
    response = client.post(form_url, entry)
    assert response.status_code == 423 and "this visit&#x27;s schedule has ended" in response.content.decode()
    again = client.post(death_url(participant), post)
    assert again.status_code == 200 and DeathReport.objects.count() == 1  # shown, not reported twice
    assert as_user(monitor).get(death_url(participant)).status_code == 403


def test_death_report_needs_date_cause_and_relationship(as_user, coordinator1, participant):
    before = writes()
    response = as_user(coordinator1).post(death_url(participant), {"death_date": "", "cause": "", "autopsy": "no"})
    assert response.status_code == 400
    content = response.content.decode()
    assert field_error(content, "death_date") == "This field is required."
    assert field_error(content, "cause") == "This field is required."
    assert field_error(content, "relationship") == "Choose the relationship to the study treatment."
    assert writes() == before


# --- The dashboard and the listing ------------------------------------------------------------------------------


def test_dashboard_shows_overdue_for_an_sae_unsent_after_24_hours(
    as_user, coordinator1, monitor, participant, proposal
):
    old = report(coordinator1, participant, term="Hepatic encephalopathy", **SERIOUS)
    fresh = report(coordinator1, participant, term="Pneumonia", body_system="infections", **SERIOUS)
    report(coordinator1, participant, term="Fatigue", body_system="general")
    AdverseEvent.objects.filter(pk=old.pk).update(expedited_at=timezone.now() - datetime.timedelta(hours=25))
    response = as_user(monitor).get(reverse("safety:dashboard"))
    content = response.content.decode()
    serious = content[content.index('id="serious-table"') :]
    assert re.search(rf'data-event="{old.pk}" data-notice="overdue"', serious)
    assert re.search(rf'data-event="{fresh.pk}" data-notice="pending"', serious)
    overdue_row = re.search(rf'data-event="{old.pk}".*?</tr>', serious, re.S).group(0)
    assert "OVERDUE" in overdue_row
    assert re.search(r'data-count="overdue">1<', content)
    assert re.search(r'data-count="open">3<', content)
    proposals = content[content.index('id="proposal-table"') :]
    assert event_url(proposal) in proposals


def test_dashboard_filters_by_site(as_user, monitor, events):
    client = as_user(monitor)
    both = client.get(reverse("safety:dashboard")).content.decode()
    assert f'data-event="{events[1].pk}"' in both and f'data-event="{events[2].pk}"' in both
    site2 = client.get(reverse("safety:dashboard"), {"site": "2"}).content.decode()
    assert f'data-event="{events[1].pk}"' not in site2 and f'data-event="{events[2].pk}"' in site2
    foreign = as_user(monitor).get(reverse("safety:dashboard"), {"site": "6"}).content.decode()  # not the monitor's
    assert f'data-event="{events[1].pk}"' in foreign


def test_sponsor_listing_shows_codes_and_never_free_text(
    as_user, coordinator1, investigator1, sponsor, participant, proposal
):
    report(coordinator1, participant, term=SECRET_TERM, description=SECRET_DESCRIPTION, **SERIOUS)
    services.adverse_event_confirm(
        user=investigator1,
        event_id=proposal.pk,
        version=proposal.version,
        data=ae_input(term="ALT rise", body_system="investigations", onset_date=proposal.onset_date, grade=3),
    )
    client = as_user(sponsor)
    content = client.get(reverse("safety:listing")).content.decode()
    listing = content[content.index('id="safety-listing"') :]
    assert participant.subject_id in listing and "hospitalisation" in listing
    assert "Alanine aminotransferase increased" in listing  # the CTCAE term of the lab-derived event
    for secret in ("Zebra-7Q", "Mr Wang", "Dr Li", "ALT rise", participant.initials + ")"):
        assert secret not in content, secret
    download = client.get(reverse("safety:listing_csv"))
    assert download["Content-Type"].startswith("text/csv")
    text = download.content.decode()
    assert "Zebra-7Q" not in text and "Dr Li" not in text and "ALT rise" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["serious"] for row in rows} == {"Y", "N"}
    assert {row["ctcae_term"] for row in rows} == {"", "Alanine aminotransferase increased"}


def _many_events(coordinator, participant, count: int) -> None:
    for number in range(count):
        overrides = SERIOUS if number % 3 == 0 else {}
        report(coordinator, participant, term=f"Event {number}", **overrides)


@pytest.mark.parametrize("count", [3, 30])
def test_dashboard_and_listing_run_a_constant_number_of_queries(
    as_user, coordinator1, investigator1, sponsor, participant, django_assert_num_queries, count
):
    _many_events(coordinator1, participant, count)
    client = as_user(sponsor)
    client.get(reverse("safety:dashboard"))  # the session is read once, before counting
    # the user, memberships, sites, the sites' tallies, then the first open events, serious events and deaths (no
    # proposal: the tallies count none, so none is read), and the number of overdue notices
    with django_assert_num_queries(8):
        dashboard = client.get(reverse("safety:dashboard"))
    assert len(dashboard.context["board"].serious) == min(DASHBOARD_ROWS, len(range(0, count, 3)))
    # the user, memberships, sites, then the total (the sites' tallies) and a page of the listing
    with django_assert_num_queries(5):
        listing = client.get(reverse("safety:listing"))
    assert listing.context["page"].paginator.count == count


def test_dashboard_shows_the_first_rows_of_each_part_and_counts_every_overdue_notice(
    as_user, coordinator1, investigator1, monitor, participant
):
    _many_events(coordinator1, participant, 3 * DASHBOARD_ROWS + 3)  # 26 serious ones, 52 more open ones
    AdverseEvent.objects.filter(expedited_at__isnull=False).update(expedited_at=timezone.now() - OVERDUE_AFTER * 2)
    SaeNotification.objects.update(sent_at=None)  # every notice still unsent a day later
    board = as_user(monitor).get(reverse("safety:dashboard")).context["board"]
    assert len(board.serious) == len(board.open_events) == DASHBOARD_ROWS
    assert {"serious", "open"} <= board.more and "proposals" not in board.more
    assert board.overdue == 26  # every overdue event, not only the 25 shown
    page = as_user(monitor).get(reverse("safety:dashboard")).content.decode()
    assert 'data-count="serious">25+' in page and 'data-more="serious"' in page


# --- Notifications --------------------------------------------------------------------------------------------


def test_notifications_page_lists_and_marks_read_and_the_badge_counts_in_one_query(
    as_user, coordinator1, investigator1, participant, django_assert_num_queries
):
    event = report(coordinator1, participant)
    now = timezone.now()
    for text in ("SAE one", "SAE two"):
        Notification.objects.create(user=investigator1, adverse_event=event, text=text, created_at=now)
    Notification.objects.create(user=coordinator1, text="not yours", created_at=now)
    client = as_user(investigator1)
    client.get(reverse("safety:dashboard"))
    with django_assert_num_queries(2):  # the user, then the count
        badge = client.get(reverse("safety:notification_badge")).content.decode()
    assert 'data-unread="2"' in badge
    page = client.get(reverse("safety:notifications")).content.decode()
    assert page.count('data-unread="true"') == 2 and "not yours" not in page
    assert event_url(event) in page
    assert not Notification.objects.filter(user=investigator1, read_at__isnull=True).exists()
    assert Notification.objects.filter(user=coordinator1, read_at__isnull=True).exists()
    assert "data-unread=" not in client.get(reverse("safety:notification_badge")).content.decode()


def test_pages_load_the_bell_count_after_the_page_not_with_it(as_user, coordinator1, participant):
    content = as_user(coordinator1).get(reverse("trial:participant_detail", args=[participant.pk])).content.decode()
    assert f'hx-get="{reverse("safety:notification_badge")}"' in content
    assert log_url(participant) in content
