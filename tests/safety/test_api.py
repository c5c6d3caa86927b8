"""The safety REST API (adverse events, lab proposals, survival), as each role of site 1 and site 2 sees it."""

import datetime

import pytest
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from capture.review import lock_set
from safety.models import AdverseEvent, AdverseEventSource, AdverseEventStatus, DeathReport, SaeNotification
from safety.rules import AdverseEventInput
from safety.services import adverse_event_report, death_report
from tests.api_clients import schema_reader
from tests.factories import PASSWORD, enrolled, screened
from tests.roles import ROLES, SEES
from tests.safety.conftest import save_liver, visit_of
from trial.models import AuditRecord, Participant, ParticipantStatus, Protocol, Site

pytestmark = pytest.mark.django_db

URL = "/api/v1/adverse-events/"
# Which sites each role may take a step at.
ENTERS = {"coordinator1": {1}, "investigator1": {1}, "coordinator2": {2}}
ASSESSES = {"investigator1": {1}}
VERIFIES = {"monitor": {1, 2}}
SIGNS = {"investigator1": {1}}
ASSESSMENT = {"grade": 3, "relationship": "unlikely", "action_taken": "none", "outcome": "recovering"}


def api(user: object) -> APIClient:
    """A client that authenticates as `user` with an API token, as an integration would."""
    client = APIClient()
    _token, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def expected(role: str, site: int, allowed: dict[str, set[int]], ok: int) -> int:
    """`ok` where the role may act; 403 where it may only look; 404 where the site's data do not exist for it."""
    if site in allowed.get(role, set()):
        return ok
    return 403 if site in SEES[role] else 404


def writes() -> tuple:
    """Everything a safety step could write."""
    return (
        sorted(AdverseEvent.objects.values_list("pk", "version", "status", "verified_at", "signed_at")),
        AuditRecord.objects.count(),
        SaeNotification.objects.count(),
    )


def event_input(participant: Participant, **changes: object) -> AdverseEventInput:
    """A fever five days after enrolment, recovering: every required field, not serious."""
    if "onset_date" not in changes:
        changes["onset_date"] = participant.enrolment_date + datetime.timedelta(days=5)
    data = {
        "term": "Fever after infusion",
        "body_system": "general",
        "grade": 1,
        "relationship": "probable",
        "action_taken": "medication",
        "outcome": "recovering",
    }
    return AdverseEventInput(**{**data, **changes})


def body(participant: Participant, **changes: object) -> dict:
    """`event_input` as JSON."""
    data = event_input(participant, **changes).__dict__
    return {name: value.isoformat() if isinstance(value, datetime.date) else value for name, value in data.items()}


def report(user: object, participant: Participant, **changes: object) -> AdverseEvent:
    return adverse_event_report(user=user, participant_id=participant.pk, data=event_input(participant, **changes))


# The changes that make the fever a serious adverse event: the participant was hospitalised.
SERIOUS = {"serious": True, "serious_criteria": ["hospitalisation"], "action_taken": "hospitalisation"}


def audit_actions(event: AdverseEvent) -> list[tuple[str, str]]:
    records = AuditRecord.objects.filter(object_type="adverse_event", object_id=str(event.pk)).order_by("id")
    return list(records.values_list("action", "item_code"))


@pytest.fixture
def participant2(coordinator2, site2) -> Participant:
    return enrolled(coordinator2, site2, arm="MSC", days_ago=100)


@pytest.fixture
def events(participant, participant2, coordinator1, coordinator2) -> dict[int, AdverseEvent]:
    """A reported, not serious adverse event at site 1 and one at site 2."""
    return {1: report(coordinator1, participant), 2: report(coordinator2, participant2)}


@pytest.fixture
def proposals(
    participant, participant2, coordinator1, coordinator2, django_capture_on_commit_callbacks
) -> dict[int, AdverseEvent]:
    """ALT 300 U/L at M3 after a normal M0, at each site: the grading proposes a grade 3 ALT increase."""
    for user, person in ((coordinator1, participant), (coordinator2, participant2)):
        save_liver(user, visit_of(person, "M0"), django_capture_on_commit_callbacks)
        save_liver(user, visit_of(person, "M3"), django_capture_on_commit_callbacks, ALT="300")
    return {
        site: AdverseEvent.objects.get(participant=person, status=AdverseEventStatus.PROPOSED)
        for site, person in ((1, participant), (2, participant2))
    }


# --- Who sees and does what ----------------------------------------------------------------------------------


def test_events_keep_their_participants_subject_id_for_the_listing_order(events, proposals):
    """Reported by the site or proposed by the lab grading, an event carries its subject ID (the listings' index)."""
    for event in [*events.values(), *proposals.values()]:
        event.refresh_from_db()
        assert event.subject_id == event.participant.subject_id != ""


@pytest.mark.parametrize("role", ROLES)
def test_list_shows_only_the_users_sites(request, events, role):
    response = api(request.getfixturevalue(role)).get(URL)
    assert response.status_code == 200
    assert {event["id"] for event in response.json()["results"]} == {events[site].pk for site in SEES[role]}


@pytest.mark.parametrize("role", ROLES)
def test_event_of_another_site_is_404(request, events, role):
    client = api(request.getfixturevalue(role))
    for site, event in events.items():
        response = client.get(f"{URL}{event.pk}/")
        assert response.status_code == (200 if site in SEES[role] else 404)


@pytest.mark.parametrize("role", ROLES)
def test_report_as_each_role_of_each_site(request, participant, participant2, role):
    client = api(request.getfixturevalue(role))
    for site, person in ((1, participant), (2, participant2)):
        before = writes()
        response = client.post(URL, {"participant": person.pk, **body(person)}, format="json")
        # A role that may enter data nowhere is refused before the participant is looked up.
        assert response.status_code == (expected(role, site, ENTERS, 201) if role in ENTERS else 403)
        if response.status_code != 201:
            assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_update_as_each_role_of_each_site(request, events, role):
    client = api(request.getfixturevalue(role))
    for site, event in events.items():
        before = writes()
        response = client.patch(f"{URL}{event.pk}/", {"version": 1, "grade": 2, "reason": "Re-read"}, format="json")
        assert response.status_code == expected(role, site, ENTERS, 200)
        if response.status_code == 200:
            assert (response.json()["grade"], response.json()["version"]) == (2, 2)
        else:
            assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_confirm_as_each_role_of_each_site(request, proposals, role):
    client = api(request.getfixturevalue(role))
    for site, event in proposals.items():
        before = writes()
        response = client.post(f"{URL}{event.pk}/confirm/", {"version": 1, **ASSESSMENT}, format="json")
        assert response.status_code == expected(role, site, ASSESSES, 200)
        if response.status_code != 200:
            assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_dismiss_as_each_role_of_each_site(request, proposals, role):
    client = api(request.getfixturevalue(role))
    for site, event in proposals.items():
        before = writes()
        response = client.post(f"{URL}{event.pk}/dismiss/", {"version": 1, "reason": "Baseline"}, format="json")
        assert response.status_code == expected(role, site, ASSESSES, 200)
        if response.status_code != 200:
            assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_verify_as_each_role_of_each_site(request, events, role):
    client = api(request.getfixturevalue(role))
    for site, event in events.items():
        before = writes()
        response = client.post(f"{URL}{event.pk}/verify/", {"version": 1}, format="json")
        assert response.status_code == expected(role, site, VERIFIES, 200)
        if response.status_code != 200:
            assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_sign_as_each_role_of_each_site(request, events, role):
    client = api(request.getfixturevalue(role))
    for site, event in events.items():
        before = writes()
        response = client.post(f"{URL}{event.pk}/sign/", {"version": 1, "password": PASSWORD}, format="json")
        assert response.status_code == expected(role, site, SIGNS, 200)
        if response.status_code != 200:
            assert writes() == before


def test_coordinator_may_not_confirm_even_a_valid_assessment(proposals, coordinator1):
    response = api(coordinator1).post(f"{URL}{proposals[1].pk}/confirm/", {"version": 1, **ASSESSMENT}, format="json")
    assert response.status_code == 403
    assert AdverseEvent.objects.get(pk=proposals[1].pk).status == AdverseEventStatus.PROPOSED


def test_a_wrong_role_is_refused_before_its_body_is_read(events, monitor):
    response = api(monitor).patch(f"{URL}{events[1].pk}/", {"grade": "junk"}, format="json")
    assert response.status_code == 403


def test_anonymous_is_refused_everywhere(events, proposals):
    client = APIClient()
    event, proposal = events[1], proposals[1]
    before = writes()
    for url in (URL, f"{URL}{event.pk}/", "/api/v1/survival/"):
        assert client.get(url).status_code in {401, 403}, url
    assert client.post(URL, {"participant": event.participant_id}, format="json").status_code in {401, 403}
    assert client.patch(f"{URL}{event.pk}/", {"version": 1}, format="json").status_code in {401, 403}
    assert client.put(f"{URL}{event.pk}/", {"version": 1}, format="json").status_code in {401, 403}
    for url in (
        f"{URL}{proposal.pk}/confirm/",
        f"{URL}{proposal.pk}/dismiss/",
        f"{URL}{event.pk}/verify/",
        f"{URL}{event.pk}/sign/",
    ):
        assert client.post(url, {"version": 1, "reason": "x", "password": PASSWORD}, format="json").status_code in {
            401,
            403,
        }, url
    assert writes() == before


def test_session_login_works_as_the_token_does(participant, coordinator1):
    client = APIClient()
    client.force_login(coordinator1)
    response = client.post(URL, {"participant": participant.pk, **body(participant)}, format="json")
    assert response.status_code == 201


def test_only_json_is_accepted(participant, coordinator1):
    response = api(coordinator1).post(URL, {"participant": participant.pk, "term": "Fever"}, format="multipart")
    assert response.status_code == 415
    assert not AdverseEvent.objects.exists()


def test_unknown_event_is_404(investigator1):
    assert api(investigator1).get(f"{URL}999999/").status_code == 404
    assert (
        api(investigator1).post(f"{URL}999999/dismiss/", {"version": 1, "reason": "x"}, format="json").status_code
        == 404
    )


# --- Reporting ---------------------------------------------------------------------------------------------


def test_report_answers_201_with_the_event_and_audits_it(participant, coordinator1):
    response = api(coordinator1).post(URL, {"participant": participant.pk, **body(participant)}, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    event = AdverseEvent.objects.get(pk=data["id"])
    assert {name: data[name] for name in ("label", "participant", "subject_id", "site", "status", "source")} == {
        "label": "AE-001",
        "participant": participant.pk,
        "subject_id": participant.subject_id,
        "site": 1,
        "status": AdverseEventStatus.REPORTED,
        "source": AdverseEventSource.SITE,
    }
    assert {name: data[name] for name in body(participant)} == body(participant)
    assert (data["version"], data["created_by"], data["expedited_at"], data["notice_state"]) == (
        1,
        "coordinator1",
        None,
        "",
    )
    assert (data["lab_visit"], data["lab_visit_code"], data["lab_value"], data["ctcae_grade"]) == (None,) * 4
    assert (data["verified"], data["signed"], data["notifications"]) == (False, False, [])
    assert ("create", "") in audit_actions(event)
    assert ("update", "term") in audit_actions(event)
    second = api(coordinator1).post(URL, {"participant": participant.pk, **body(participant)}, format="json")
    assert second.json()["label"] == "AE-002"


MISSING = ["term", "body_system", "onset_date", "grade", "relationship", "action_taken", "outcome"]


@pytest.mark.parametrize(
    ("changes", "keys"),
    [
        ({name: None for name in MISSING}, MISSING),
        ({"end_date": "2000-01-01", "outcome": "recovered"}, ["end_date"]),
        ({"serious": True}, ["serious_criteria"]),
        ({"outcome": "fatal", "end_date": None}, ["end_date", "serious_criteria"]),
        ({"outcome": "better"}, ["outcome"]),
        ({"body_system": "liver"}, ["body_system"]),
        ({"serious_criteria": ["hospitalisation", "boredom"], "serious": True}, ["serious_criteria"]),
        ({"grade": 5}, ["grade"]),
        ({"grade": "three"}, ["grade"]),
        ({"onset_date": "yesterday"}, ["onset_date"]),
        ({"onset_date": "2000-01-01"}, ["onset_date"]),
        ({"grdae": 2}, ["grdae"]),
        ({"participant": None}, ["participant"]),
    ],
)
def test_report_refuses_bad_input_with_400_keyed_by_field(participant, coordinator1, changes, keys):
    payload = {"participant": participant.pk, **body(participant)}
    for name, value in changes.items():
        if value is None and name in MISSING:
            del payload[name]
        else:
            payload[name] = value
    before = writes()
    response = api(coordinator1).post(URL, payload, format="json")
    assert response.status_code == 400
    assert sorted(response.json()) == sorted(keys)
    assert writes() == before


def test_report_for_a_participant_not_enrolled_is_400(coordinator1, site1):
    candidate = screened(coordinator1, site1)
    payload = body(candidate, onset_date=timezone.localdate())
    response = api(coordinator1).post(URL, {"participant": candidate.pk, **payload}, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Adverse events are recorded for enrolled participants only."]}
    assert not AdverseEvent.objects.exists()


def test_report_of_a_serious_event_queues_and_sends_its_notices(
    participant, coordinator1, investigator1, monitor, mailoutbox, django_capture_on_commit_callbacks
):
    payload = {"participant": participant.pk, **body(participant, **SERIOUS)}
    with django_capture_on_commit_callbacks(execute=True):
        response = api(coordinator1).post(URL, payload, format="json")
    assert response.status_code == 201, response.json()
    event = AdverseEvent.objects.get(pk=response.json()["id"])
    notices = SaeNotification.objects.filter(adverse_event=event)
    assert sorted(notices.values_list("role", flat=True)) == ["investigator", "monitor", "sponsor_safety"]
    assert all(notice.sent_at is not None for notice in notices)
    assert len(mailoutbox) == 3
    assert ("expedite", "expedited_at") in audit_actions(event)

    data = api(coordinator1).get(f"{URL}{event.pk}/").json()
    assert (data["expedited"], data["expedited_at"] is not None, data["notice_state"]) == (True, True, "sent")
    assert [(n["role"], n["user"], n["sent_at"] is not None, n["overdue"]) for n in data["notifications"]] == [
        ("investigator", "investigator1", True, False),
        ("monitor", "monitor", True, False),
        ("sponsor_safety", None, True, False),
    ]


def test_a_participant_lock_makes_reports_and_changes_423(events, participant, coordinator1, datamanager):
    lock_set(user=datamanager, participant_id=participant.pk, reason="Interim")
    client = api(coordinator1)
    before = writes()
    created = client.post(URL, {"participant": participant.pk, **body(participant)}, format="json")
    changed = client.patch(f"{URL}{events[1].pk}/", {"version": 1, "grade": 2, "reason": "x"}, format="json")
    assert (created.status_code, changed.status_code) == (423, 423)
    assert "locked" in changed.json()["detail"]
    assert writes() == before


# --- Changing a reported event -----------------------------------------------------------------------------


def test_put_replaces_every_field_and_audits_each_change_with_the_reason(events, participant, coordinator1):
    event = events[1]
    payload = {**body(participant, outcome="recovered", end_date=participant.enrolment_date + datetime.timedelta(6))}
    payload.update(version=1, reason="Recovered on day 6", description="")
    response = api(coordinator1).put(f"{URL}{event.pk}/", payload, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["outcome"], data["end_date"], data["version"], data["updated_by"]) == (
        "recovered",
        payload["end_date"],
        2,
        "coordinator1",
    )
    changes = AuditRecord.objects.filter(object_type="adverse_event", object_id=str(event.pk), action="update")
    assert set(changes.filter(reason="Recovered on day 6").values_list("item_code", flat=True)) == {
        "outcome",
        "end_date",
    }


def test_put_empties_a_field_left_out(events, participant, coordinator1):
    payload = {**body(participant, description="Paracetamol"), "version": 1, "reason": "Note"}
    api(coordinator1).put(f"{URL}{events[1].pk}/", payload, format="json")
    del payload["outcome"]
    payload["version"] = 2
    response = api(coordinator1).put(f"{URL}{events[1].pk}/", payload, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["outcome"]


def test_patch_keeps_the_fields_left_out(events, coordinator1):
    response = api(coordinator1).patch(
        f"{URL}{events[1].pk}/", {"version": 1, "relationship": "possible", "reason": "Re-assessed"}, format="json"
    )
    assert response.status_code == 200
    data = response.json()
    assert (data["relationship"], data["term"], data["grade"], data["version"]) == (
        "possible",
        "Fever after infusion",
        1,
        2,
    )
    assert audit_actions(events[1])[-1] == ("update", "relationship")


def test_what_a_read_shows_can_be_sent_back(events, coordinator1):
    client = api(coordinator1)
    url = f"{URL}{events[1].pk}/"
    shown = client.get(url).json()
    response = client.put(url, {**shown, "grade": 2, "reason": "Worse than recorded"}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["grade"], response.json()["version"]) == (2, 2)


@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_change_without_reason_is_400_and_saves_nothing(events, participant, coordinator1, method):
    before = writes()
    for extra in ({}, {"reason": "  "}):
        payload = {**body(participant, grade=2), "version": 1, **extra}
        response = getattr(api(coordinator1), method)(f"{URL}{events[1].pk}/", payload, format="json")
        assert response.status_code == 400
        assert response.json() == {"reason": ["Give the reason for this change."]}
    assert writes() == before


def test_a_change_without_version_is_400(events, coordinator1):
    response = api(coordinator1).patch(f"{URL}{events[1].pk}/", {"grade": 2, "reason": "x"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["version"]


def test_a_change_on_a_stale_version_is_409_with_the_current_version(events, coordinator1, investigator1):
    url = f"{URL}{events[1].pk}/"
    assert api(investigator1).patch(url, {"version": 1, "grade": 2, "reason": "x"}, format="json").status_code == 200
    before = writes()
    response = api(coordinator1).patch(url, {"version": 1, "outcome": "not_recovered", "reason": "y"}, format="json")
    assert response.status_code == 409
    assert response.json()["current_version"] == 2
    assert "version 2, yours 1" in response.json()["detail"]
    assert writes() == before


def test_marking_serious_queues_the_expedited_notices(
    events, coordinator1, investigator1, monitor, mailoutbox, django_capture_on_commit_callbacks
):
    event = events[1]
    payload = {"version": 1, **SERIOUS, "reason": "Admitted on day 2"}
    with django_capture_on_commit_callbacks(execute=True):
        response = api(coordinator1).patch(f"{URL}{event.pk}/", payload, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["expedited"] is True
    assert SaeNotification.objects.filter(adverse_event=event).count() == 3
    assert SaeNotification.objects.filter(adverse_event=event, sent_at=None).count() == 0
    assert len(mailoutbox) == 3
    assert {"serious", "serious_criteria", "action_taken"} <= {item for _, item in audit_actions(event)}


def test_unsent_notices_are_overdue_24_hours_on(events, coordinator1, investigator1):
    event = events[1]
    # Without the commit callbacks the notices stay queued, as if the broker were down.
    payload = {"version": 1, **SERIOUS, "reason": "Admitted"}
    assert api(coordinator1).patch(f"{URL}{event.pk}/", payload, format="json").status_code == 200
    client = api(coordinator1)
    assert client.get(f"{URL}{event.pk}/").json()["notice_state"] == "pending"
    assert client.get(f"{URL}?overdue=true").json()["count"] == 0

    long_ago = timezone.now() - datetime.timedelta(hours=25)
    AdverseEvent.objects.filter(pk=event.pk).update(expedited_at=long_ago)
    SaeNotification.objects.filter(adverse_event=event).update(created_at=long_ago)
    data = client.get(f"{URL}{event.pk}/").json()
    assert data["notice_state"] == "overdue"
    assert all(notice["overdue"] for notice in data["notifications"])
    assert [row["id"] for row in client.get(f"{URL}?overdue=true").json()["results"]] == [event.pk]
    assert client.get(f"{URL}?overdue=false").json()["count"] == 0  # the other event is site 2's


def test_a_proposal_is_not_changed_but_decided(proposals, investigator1):
    response = api(investigator1).patch(
        f"{URL}{proposals[1].pk}/", {"version": 1, "grade": 3, "reason": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "confirmed or dismissed" in response.json()["non_field_errors"][0]


# --- Lab proposals ------------------------------------------------------------------------------------------


def test_a_proposal_shows_its_lab_origin(proposals, investigator1):
    proposal = proposals[1]
    data = api(investigator1).get(f"{URL}{proposal.pk}/").json()
    assert {name: data[name] for name in ("status", "source", "lab_visit_code", "lab_item_code", "lab_value")} == {
        "status": AdverseEventStatus.PROPOSED,
        "source": AdverseEventSource.LAB,
        "lab_visit_code": "M3",
        "lab_item_code": "ALT",
        "lab_value": "300",
    }
    assert (data["ctcae_term"], data["ctcae_grade"]) == ("Alanine aminotransferase increased", 3)
    assert data["ctcae_criterion"]
    assert (data["grade"], data["relationship"], data["created_by"]) == (None, "", None)
    assert data["lab_visit"] == visit_of(proposal.participant, "M3").pk


def test_status_proposed_lists_the_proposals_awaiting_the_investigator(proposals, events, investigator1):
    response = api(investigator1).get(f"{URL}?status=proposed")
    assert [row["id"] for row in response.json()["results"]] == [proposals[1].pk]


def test_confirm_makes_the_proposal_a_reported_event(proposals, investigator1):
    proposal = proposals[1]
    response = api(investigator1).post(f"{URL}{proposal.pk}/confirm/", {"version": 1, **ASSESSMENT}, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["status"], data["version"], data["decided_by"], data["decided_at"] is not None) == (
        AdverseEventStatus.REPORTED,
        2,
        "investigator1",
        True,
    )
    # What the assessment leaves out stays as the grading proposed it.
    assert (data["term"], data["body_system"], data["grade"]) == (
        "Alanine aminotransferase increased",
        "investigations",
        3,
    )
    assert ("confirm", "status") in audit_actions(proposal)


def test_confirm_without_the_assessment_is_400_keyed_by_field(proposals, investigator1):
    before = writes()
    response = api(investigator1).post(f"{URL}{proposals[1].pk}/confirm/", {"version": 1}, format="json")
    assert response.status_code == 400
    assert sorted(response.json()) == ["action_taken", "grade", "outcome", "relationship"]
    assert writes() == before


def test_confirm_as_serious_queues_the_notices(proposals, investigator1, django_capture_on_commit_callbacks):
    assessment = {**ASSESSMENT, "grade": 4, "serious": True, "serious_criteria": ["life_threatening"]}
    with django_capture_on_commit_callbacks(execute=True):
        response = api(investigator1).post(
            f"{URL}{proposals[1].pk}/confirm/", {"version": 1, **assessment}, format="json"
        )
    assert response.status_code == 200, response.json()
    # The answer leaves before the commit: the notices are still queued then, and sent once it is committed.
    assert response.json()["notice_state"] == "pending"
    assert api(investigator1).get(f"{URL}{proposals[1].pk}/").json()["notice_state"] == "sent"
    assert SaeNotification.objects.filter(adverse_event=proposals[1], sent_at__isnull=False).exists()


def test_dismiss_needs_a_reason_and_records_it(proposals, investigator1):
    url = f"{URL}{proposals[1].pk}/dismiss/"
    client = api(investigator1)
    before = writes()
    for payload in ({"version": 1}, {"version": 1, "reason": " "}):
        response = client.post(url, payload, format="json")
        assert response.status_code == 400
        assert response.json() == {"reason": ["Give the reason for this change."]}
    assert writes() == before
    response = client.post(url, {"version": 1, "reason": "Unchanged from baseline cirrhosis"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["dismiss_reason"]) == (
        AdverseEventStatus.DISMISSED,
        "Unchanged from baseline cirrhosis",
    )
    assert ("dismiss", "status") in audit_actions(proposals[1])


def test_a_decided_proposal_cannot_be_decided_again(proposals, investigator1):
    client = api(investigator1)
    url = f"{URL}{proposals[1].pk}/"
    assert client.post(f"{url}dismiss/", {"version": 1, "reason": "Baseline"}, format="json").status_code == 200
    before = writes()
    response = client.post(f"{url}confirm/", {"version": 2, **ASSESSMENT}, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["This proposal was already decided (Dismissed)."]}
    assert writes() == before


@pytest.mark.parametrize(
    ("step", "payload"),
    [("confirm", ASSESSMENT), ("dismiss", {"reason": "Baseline"})],
)
def test_a_decision_on_a_stale_version_is_409(proposals, investigator1, step, payload):
    AdverseEvent.objects.filter(pk=proposals[1].pk).update(version=2)  # as a re-grading does
    before = writes()
    response = api(investigator1).post(f"{URL}{proposals[1].pk}/{step}/", {"version": 1, **payload}, format="json")
    assert response.status_code == 409
    assert response.json()["current_version"] == 2
    assert writes() == before


# --- Verification and signature --------------------------------------------------------------------------


def test_verify_then_a_change_marks_it_changed_since_verification(events, monitor, coordinator1):
    event = events[1]
    response = api(monitor).post(f"{URL}{event.pk}/verify/", {"version": 1}, format="json")
    assert response.status_code == 200
    assert (response.json()["verified"], response.json()["verified_by"]) == (True, "monitor")
    assert ("verify", "") in audit_actions(event)
    changed = api(coordinator1).patch(f"{URL}{event.pk}/", {"version": 1, "grade": 2, "reason": "x"}, format="json")
    assert changed.json()["changed_since_verification"] is True


def test_sign_needs_the_password_and_a_change_voids_it(events, investigator1, coordinator1):
    event = events[1]
    url = f"{URL}{event.pk}/sign/"
    before = writes()
    wrong = api(investigator1).post(url, {"version": 1, "password": "guess"}, format="json")
    assert wrong.status_code == 400
    assert list(wrong.json()) == ["password"]
    after = writes()  # nothing signed: only the refusal is audited
    assert (after[0], after[2]) == (before[0], before[2])
    assert after[1] == before[1] + 1
    assert AuditRecord.objects.order_by("-id").first().action == "sign_refused"
    signed = api(investigator1).post(url, {"version": 1, "password": PASSWORD}, format="json")
    assert (signed.status_code, signed.json()["signed"], signed.json()["signed_by"]) == (200, True, "investigator1")
    changed = api(coordinator1).patch(f"{URL}{event.pk}/", {"version": 1, "grade": 2, "reason": "x"}, format="json")
    assert (changed.json()["signed"], changed.json()["signed_by"]) == (False, None)
    assert ("void", "signature") in audit_actions(event)


@pytest.mark.parametrize(("step", "user"), [("verify", "monitor"), ("sign", "investigator1")])
def test_review_on_a_stale_version_is_409(request, events, coordinator1, step, user):
    url = f"{URL}{events[1].pk}/"
    api(coordinator1).patch(url, {"version": 1, "grade": 2, "reason": "x"}, format="json")
    before = writes()
    response = api(request.getfixturevalue(user)).post(
        f"{url}{step}/", {"version": 1, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["current_version"] == 2
    assert writes() == before


@pytest.mark.parametrize(("step", "user"), [("verify", "monitor"), ("sign", "investigator1")])
def test_a_proposal_is_neither_verified_nor_signed(request, proposals, step, user):
    response = api(request.getfixturevalue(user)).post(
        f"{URL}{proposals[1].pk}/{step}/", {"version": 1, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 400


# --- The list's filters and query count --------------------------------------------------------------------


@pytest.fixture
def assorted(events, proposals, participant, coordinator1) -> dict[str, int]:
    """At site 1 a mild fever (AE-001), a lab proposal (AE-002), a serious grade 3 event (AE-003); at site 2 a
    mild fever and a lab proposal."""
    grave = report(coordinator1, participant, grade=3, **SERIOUS)
    return {
        "mild": events[1].pk,
        "proposal": proposals[1].pk,
        "grave": grave.pk,
        "other": events[2].pk,
        "other proposal": proposals[2].pk,
    }


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ("", {"mild", "grave", "proposal", "other", "other proposal"}),
        ("site=1", {"mild", "grave", "proposal"}),
        ("site=2", {"other", "other proposal"}),
        ("site=3", set()),
        ("grade=1", {"mild", "other"}),
        ("grade=3", {"grave"}),
        ("serious=true", {"grave"}),
        ("serious=false", {"mild", "proposal", "other", "other proposal"}),
        ("status=proposed", {"proposal", "other proposal"}),
        ("status=reported", {"mild", "grave", "other"}),
        ("status=dismissed", set()),
        ("source=lab", {"proposal", "other proposal"}),
        ("source=site", {"mild", "grave", "other"}),
        ("site=1&serious=false&source=site", {"mild"}),
        ("site=1&status=proposed", {"proposal"}),
    ],
)
def test_list_filters(assorted, monitor, filters, names):
    response = api(monitor).get(f"{URL}?{filters}")
    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {assorted[name] for name in names}


def test_list_filters_by_participant_and_subject(assorted, participant, participant2, monitor):
    client = api(monitor)
    by_id = client.get(f"{URL}?participant={participant2.pk}").json()["results"]
    by_subject = client.get(f"{URL}?subject={participant.subject_id}").json()["results"]
    assert [row["id"] for row in by_id] == [assorted["other"], assorted["other proposal"]]
    assert [row["id"] for row in by_subject] == [assorted["mild"], assorted["proposal"], assorted["grave"]]
    assert [row["label"] for row in by_subject] == ["AE-001", "AE-002", "AE-003"]


def test_filters_never_reach_another_site(assorted, participant2, coordinator1):
    client = api(coordinator1)
    assert client.get(f"{URL}?site=2").json()["count"] == 0
    assert client.get(f"{URL}?participant={participant2.pk}").json()["count"] == 0


@pytest.mark.parametrize("filters", ["grade=5", "grade=x", "serious=perhaps", "status=open", "site=0", "source=x"])
def test_bad_filters_are_400(events, monitor, filters):
    response = api(monitor).get(f"{URL}?{filters}")
    assert response.status_code == 400
    assert list(response.json()) == [filters.split("=")[0]]


def bulk_events(participant: Participant, count: int) -> None:
    """Reported events, half of them serious with two notices each (one sent), written in bulk."""
    now = timezone.now()
    created = AdverseEvent.objects.bulk_create(
        AdverseEvent(
            participant=participant,
            subject_id=participant.subject_id,
            number=n + 1,
            status=AdverseEventStatus.REPORTED,
            source=AdverseEventSource.SITE,
            term=f"Event {n}",
            body_system="general",
            onset_date=participant.enrolment_date,
            grade=n % 5,
            relationship="possible",
            outcome="recovering",
            serious=n % 2 == 0,
            serious_criteria=["hospitalisation"] if n % 2 == 0 else [],
            expedited_at=now if n % 2 == 0 else None,
            created_at=now,
            updated_at=now,
        )
        for n in range(count)
    )
    SaeNotification.objects.bulk_create(
        SaeNotification(
            adverse_event=event,
            recipient=f"email:{role}@example.org",
            email=f"{role}@example.org",
            role=role,
            created_at=now,
            sent_at=now if role == "monitor" else None,
        )
        for event in created
        if event.serious
        for role in ("investigator", "monitor")
    )


# Token, memberships, the count, the page.
LIST_QUERIES = 4
# Token, memberships, the event, its notices.
DETAIL_QUERIES = 4


def test_list_is_by_site_subject_and_number(participant, participant2, monitor, coordinator1):
    """The list walks the subject IDs' index: a subject ID starts with its site's number, so that is site order."""
    bulk_events(participant2, 3)
    bulk_events(participant, 3)
    rows = api(monitor).get(f"{URL}?limit=1000").json()["results"]
    numbers = dict(AdverseEvent.objects.values_list("pk", "number"))
    keys = [(row["site"], row["subject_id"], numbers[row["id"]]) for row in rows]
    assert keys == sorted(keys) and {key[0] for key in keys} == {1, 2}
    assert {row["subject_id"] for row in api(coordinator1).get(URL).json()["results"]} == {participant.subject_id}


@pytest.mark.parametrize("count", [10, 500])
def test_list_uses_constant_queries(django_assert_num_queries, participant, coordinator1, count):
    bulk_events(participant, count)
    client = api(coordinator1)
    with django_assert_num_queries(LIST_QUERIES):
        data = client.get(f"{URL}?limit=1000").json()
    assert data["count"] == len(data["results"]) == count
    assert {row["notice_state"] for row in data["results"]} == {"", "pending"}
    with django_assert_num_queries(LIST_QUERIES):
        page = client.get(f"{URL}?serious=true").json()
    assert (page["count"], len(page["results"])) == (count // 2, min(count // 2, 50))


@pytest.mark.parametrize("count", [10, 500])
def test_detail_uses_constant_queries(django_assert_num_queries, participant, coordinator1, count):
    bulk_events(participant, count)
    event = AdverseEvent.objects.get(participant=participant, number=1)
    client = api(coordinator1)
    with django_assert_num_queries(DETAIL_QUERIES):
        data = client.get(f"{URL}{event.pk}/").json()
    assert len(data["notifications"]) == 2


# --- Survival ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_survival_lists_only_the_users_sites(request, participant, participant2, role):
    response = api(request.getfixturevalue(role)).get("/api/v1/survival/")
    assert response.status_code == 200
    people = {1: participant, 2: participant2}
    assert {row["participant"] for row in response.json()["results"]} == {people[site].pk for site in SEES[role]}


def test_survival_rows_of_the_living_and_the_dead(participant, participant2, coordinator1, coordinator2, monitor):
    died_on = participant2.enrolment_date + datetime.timedelta(days=40)
    death_report(
        user=coordinator2,
        participant_id=participant2.pk,
        death_date=died_on,
        cause="Variceal bleed",
        relationship="unrelated",
    )
    rows = {row["subject_id"]: row for row in api(monitor).get("/api/v1/survival/").json()["results"]}
    assert rows[participant.subject_id] == {
        "participant": participant.pk,
        "subject_id": participant.subject_id,
        "site": 1,
        "arm": "MSC",
        "start": participant.enrolment_date.isoformat(),
        "end": participant.enrolment_date.isoformat(),
        "days": 0,
        "months": 0.0,
        "died": False,
        "censored": True,
        "vital_status": "alive",
        "death_report_missing": False,
    }
    dead = rows[participant2.subject_id]
    assert (dead["site"], dead["end"], dead["days"], dead["months"]) == (2, died_on.isoformat(), 40, 1.31)
    assert (dead["died"], dead["censored"], dead["vital_status"]) == (True, False, "dead")


def test_survival_filters_by_site_and_arm(participant, participant2, coordinator1, monitor, site1):
    conventional = enrolled(coordinator1, site1, arm="CONV", days_ago=50)
    client = api(monitor)
    assert {row["participant"] for row in client.get("/api/v1/survival/?site=1").json()["results"]} == {
        participant.pk,
        conventional.pk,
    }
    assert [row["participant"] for row in client.get("/api/v1/survival/?arm=CONV").json()["results"]] == [
        conventional.pk
    ]
    assert client.get("/api/v1/survival/?site=x").status_code == 400


def bulk_enrolled(site: Site, user: object, count: int) -> list[Participant]:
    """Enrolled participants, a third of them dead, written in bulk (the services are tested elsewhere)."""
    protocol = Protocol.objects.order_by("-version").first()
    arm = protocol.arms.get(code="MSC")
    today = timezone.localdate()
    people = Participant.objects.bulk_create(
        Participant(
            site=site,
            protocol=protocol,
            screening_number=f"S{site.number:02d}-{n:04d}",
            subject_id=f"S{site.number:02d}-{n:04d}",
            initials="AB",
            sex="F",
            date_of_birth=datetime.date(1975, 1, 1),
            status=ParticipantStatus.ENROLLED,
            arm=arm,
            enrolment_date=today - datetime.timedelta(days=n + 30),
            enrolled_at=timezone.now(),
            created_by=user,
        )
        for n in range(count)
    )
    DeathReport.objects.bulk_create(
        DeathReport(
            participant=person,
            death_date=person.enrolment_date + datetime.timedelta(days=20),
            cause="Liver failure",
            relationship="unrelated",
            reported_at=timezone.now(),
            reported_by=user,
        )
        for person in people[::3]
    )
    return people


# Token, memberships; the count and the page of participants; the page's participants with their last visit, their
# death reports, their survival contacts.
SURVIVAL_QUERIES = 7


@pytest.mark.parametrize("count", [10, 200])
def test_survival_uses_constant_queries(django_assert_num_queries, site1, coordinator1, count):
    bulk_enrolled(site1, coordinator1, count)
    client = api(coordinator1)
    with django_assert_num_queries(SURVIVAL_QUERIES):
        data = client.get("/api/v1/survival/?limit=1000").json()
    assert data["count"] == count
    assert sum(row["died"] for row in data["results"]) == len(range(0, count, 3))


def test_survival_derives_only_the_page_it_lists(django_assert_num_queries, site1, site2, coordinator1, monitor):
    """A page of participants, by site and subject, then the survival of those alone: the same statements on any
    page, each row the one the whole list holds at its place."""
    bulk_enrolled(site1, coordinator1, 120)
    bulk_enrolled(site2, coordinator1, 30)
    client = api(monitor)
    everyone = client.get("/api/v1/survival/?limit=1000").json()["results"]
    assert [(row["site"], row["subject_id"]) for row in everyone] == sorted(
        (row["site"], row["subject_id"]) for row in everyone
    )
    with django_assert_num_queries(SURVIVAL_QUERIES):
        page = client.get("/api/v1/survival/?limit=50&offset=100").json()
    assert page["count"] == 150
    assert page["results"] == everyone[100:150]
    assert page["previous"] and not page["next"]
    mine = api(coordinator1).get("/api/v1/survival/?limit=1000").json()
    assert mine["count"] == 120 and {row["site"] for row in mine["results"]} == {1}


# --- Death report --------------------------------------------------------------------------------------------


def death_url(participant: Participant) -> str:
    return f"/api/v1/participants/{participant.pk}/death-report/"


def death(participant: Participant, **changes: object) -> dict:
    died_on = participant.enrolment_date + datetime.timedelta(days=40)
    return {"death_date": died_on.isoformat(), "cause": "Variceal bleeding", "relationship": "unrelated", **changes}


@pytest.mark.parametrize("role", ROLES)
def test_death_report_as_each_role_of_each_site(request, participant, participant2, role):
    client = api(request.getfixturevalue(role))
    for site, person in ((1, participant), (2, participant2)):
        before = writes(), DeathReport.objects.count()
        response = client.post(death_url(person), death(person), format="json")
        assert response.status_code == expected(role, site, ENTERS, 201)
        if response.status_code != 201:
            assert (writes(), DeathReport.objects.count()) == before
        assert client.get(death_url(person)).status_code == (200 if site in ENTERS.get(role, set()) else 404)


def test_death_report_ends_follow_up_and_shows_in_survival(participant, coordinator1, investigator1):
    fatal = report(
        coordinator1,
        participant,
        grade=4,
        outcome="fatal",
        serious=True,
        serious_criteria=["fatal"],
        end_date=participant.enrolment_date + datetime.timedelta(days=40),
    )
    response = api(investigator1).post(death_url(participant), death(participant, autopsy=True), format="json")
    assert response.status_code == 201, response.json()
    assert response.json() | {"reported_at": None} == {
        "participant": participant.pk,
        "subject_id": participant.subject_id,
        "death_date": death(participant)["death_date"],
        "cause": "Variceal bleeding",
        "relationship": "unrelated",
        "autopsy": True,
        "adverse_event": fatal.pk,
        "adverse_event_label": "AE-001",
        "reported_at": None,
        "reported_by": "investigator1",
    }
    assert Participant.objects.get(pk=participant.pk).status == ParticipantStatus.DIED
    assert AuditRecord.objects.filter(object_type="death_report").count() == 3
    assert api(coordinator1).get(death_url(participant)).json()["cause"] == "Variceal bleeding"
    row = api(coordinator1).get("/api/v1/survival/").json()["results"][0]
    assert (row["died"], row["days"], row["end"]) == (True, 40, death(participant)["death_date"])


@pytest.mark.parametrize(
    ("changes", "keys"),
    [
        ({"death_date": None}, ["death_date"]),
        ({"death_date": "2000-01-01"}, ["death_date"]),
        ({"death_date": "2999-01-01"}, ["death_date"]),
        ({"death_date": "soon"}, ["death_date"]),
        ({"cause": " "}, ["cause"]),
        ({"relationship": "maybe"}, ["relationship"]),
    ],
)
def test_death_report_refuses_bad_input_with_400_keyed_by_field(participant, coordinator1, changes, keys):
    before = writes()
    response = api(coordinator1).post(death_url(participant), death(participant, **changes), format="json")
    assert response.status_code == 400
    assert sorted(response.json()) == keys
    assert writes() == before and not DeathReport.objects.exists()


def test_a_death_is_reported_once(participant, coordinator1):
    client = api(coordinator1)
    assert client.post(death_url(participant), death(participant), format="json").status_code == 201
    response = client.post(death_url(participant), death(participant), format="json")
    assert response.status_code == 400
    assert "already reported" in response.json()["non_field_errors"][0]


# --- Schema ------------------------------------------------------------------------------------------------


def test_schema_describes_the_safety_endpoints(site1):
    paths = schema_reader().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    assert set(paths[URL]) == {"get", "post"}
    assert set(paths[URL + "{id}/"]) == {"get", "put", "patch"}
    for step in ("confirm", "dismiss", "verify", "sign"):
        operation = paths[f"{URL}{{id}}/{step}/"]["post"]
        assert {"200", "400", "403", "404", "409"} <= set(operation["responses"]), step
    create = paths[URL]["post"]
    assert create["requestBody"]["content"]["application/json"]["examples"]
    assert create["responses"]["400"]["content"]["application/json"]["examples"]
    assert {"409", "423"} <= set(paths[URL + "{id}/"]["patch"]["responses"])
    names = {parameter["name"] for parameter in paths[URL]["get"]["parameters"]}
    assert {"participant", "subject", "site", "grade", "serious", "status", "source", "limit", "offset"} <= names
    assert "/api/v1/survival/" in paths
    assert set(paths["/api/v1/participants/{participant_id}/death-report/"]) == {"get", "post"}


def test_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi:")
