"""The REST API of the trial app, as each role of site 1 and site 2 sees it."""

import datetime
from dataclasses import asdict
from decimal import Decimal

import pytest
from django.contrib.staticfiles import finders
from django.http import HttpRequest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import PASSWORD, eligible_input, enrolled, screened
from tests.roles import ROLES, SEES
from trial.models import (
    AuditRecord,
    Participant,
    ParticipantStatus,
    Protocol,
    Screening,
    Site,
    Visit,
)
from trial.services import schedule

pytestmark = pytest.mark.django_db

CANNOT_WRITE = ["monitor", "datamanager", "sponsor"]


def api(user: object) -> APIClient:
    """A client that authenticates as `user` with an API token, as an integration would."""
    client = APIClient()
    _token, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def counts() -> tuple[int, int, int]:
    return Participant.objects.count(), Visit.objects.count(), AuditRecord.objects.count()


def as_json(value: object) -> object:
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def screening_body(site_number: int = 1, **overrides: object) -> dict:
    body = {field: as_json(value) for field, value in asdict(eligible_input()).items()}
    return {"site": site_number, **body, **overrides}


@pytest.fixture
def both_sites(coordinator1, coordinator2, site1, site2) -> dict[int, Participant]:
    """An eligible candidate at site 1 and one at site 2."""
    return {1: screened(coordinator1, site1), 2: screened(coordinator2, site2)}


# --- Authentication --------------------------------------------------------------------------------------


def test_token_is_issued_for_username_and_password(coordinator1):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "coordinator1", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    token = AuthToken.objects.get(user=coordinator1)
    assert body["token"].startswith(token.token_key) and body["key"] == token.token_key
    assert token.digest != body["token"]  # stored only as a hash


def test_token_refused_for_wrong_password(coordinator1):
    response = APIClient().post("/api/v1/auth/token/", {"username": "coordinator1", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert not AuthToken.objects.filter(user=coordinator1).exists()


def test_token_authenticates_requests(coordinator1):
    key = (
        APIClient()
        .post("/api/v1/auth/token/", {"username": "coordinator1", "password": PASSWORD}, format="json")
        .json()["token"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/v1/sites/")
    assert response.status_code == 200
    assert [site["number"] for site in response.json()["results"]] == [1]


def test_session_login_authenticates_requests(coordinator1):
    client = APIClient()
    # django-axes needs the request that carries the credentials
    assert client.login(request=HttpRequest(), username="coordinator1", password=PASSWORD)
    assert client.get("/api/v1/sites/").status_code == 200


@pytest.mark.parametrize("url", ["/api/v1/sites/", "/api/v1/participants/", "/api/v1/visits/"])
def test_anonymous_is_refused(url, site1):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_bad_token_is_refused(site1):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    response = client.get("/api/v1/sites/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- Sites -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "numbers"),
    [
        ("coordinator1", [1]),
        ("investigator1", [1]),
        ("coordinator2", [2]),
        ("monitor", [1, 2, 3]),
        ("datamanager", [1, 2, 3, 4, 5, 6]),
        ("sponsor", [1, 2, 3, 4, 5, 6]),
        ("outsider", []),
    ],
)
def test_sites_lists_only_the_users_sites(request, role, numbers):
    response = api(request.getfixturevalue(role)).get("/api/v1/sites/")
    assert response.status_code == 200
    assert [site["number"] for site in response.json()["results"]] == numbers


def test_site_detail_of_another_site_is_404(coordinator2, site1, site2):
    client = api(coordinator2)
    assert client.get(f"/api/v1/sites/{site1.pk}/").status_code == 404
    assert client.get(f"/api/v1/sites/{site2.pk}/").json()["number"] == 2


# --- Participants: reading -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_participants_list_is_scoped_to_the_users_sites(request, both_sites, role):
    response = api(request.getfixturevalue(role)).get("/api/v1/participants/")
    assert response.status_code == 200
    seen = {row["id"] for row in response.json()["results"]}
    assert seen == {both_sites[number].pk for number in SEES[role]}


@pytest.mark.parametrize("role", ROLES)
def test_participant_detail_of_another_site_is_404(request, both_sites, role):
    client = api(request.getfixturevalue(role))
    for number, participant in both_sites.items():
        expected = 200 if number in SEES[role] else 404
        assert client.get(f"/api/v1/participants/{participant.pk}/").status_code == expected


def test_participant_detail_shows_screening_summary(coordinator1, site1):
    participant = screened(coordinator1, site1)
    body = api(coordinator1).get(f"/api/v1/participants/{participant.pk}/").json()
    assert body["site"] == 1
    assert body["screening_number"] == "S01-001"
    assert body["subject_id"] is None
    assert body["status"] == ParticipantStatus.ELIGIBLE
    assert body["arm"] is None
    assert body["enrolled_by"] is None
    assert body["screening"]["child_pugh_points"] == 8
    assert body["screening"]["child_pugh_class"] == "B"
    assert body["screening"]["eligible"] is True
    assert body["screening"]["failed_criteria"] == []
    assert body["visits"] == []


def test_participants_filter_by_site_and_status(datamanager, coordinator1, coordinator2, site1, site2):
    eligible = screened(coordinator1, site1)
    failed = screened(coordinator1, site1, consent_date=None)
    screened(coordinator2, site2)
    client = api(datamanager)

    def ids(query: str) -> set[int]:
        return {row["id"] for row in client.get(f"/api/v1/participants/?{query}").json()["results"]}

    assert ids("site=1") == {eligible.pk, failed.pk}
    assert ids("site=1&status=screen_failed") == {failed.pk}
    assert ids("site=4") == set()


@pytest.mark.parametrize("query", ["site=abc", "status=bogus", "site=0"])
def test_participants_filter_rejects_bad_values(datamanager, query):
    response = api(datamanager).get(f"/api/v1/participants/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


# --- Participants: screening -----------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "site_number"), [("coordinator1", 1), ("investigator1", 1), ("coordinator2", 2)])
def test_screening_creates_an_eligible_participant(request, site1, site2, role, site_number):
    response = api(request.getfixturevalue(role)).post(
        "/api/v1/participants/screening/", screening_body(site_number), format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == ParticipantStatus.ELIGIBLE
    assert body["screening"]["child_pugh_class"] == "B"
    participant = Participant.objects.get(pk=body["id"])
    assert participant.site.number == site_number
    assert body["screening_number"] == f"S{site_number:02d}-001"
    assert AuditRecord.objects.filter(participant=participant, action="create").exists()


def test_screening_keeps_an_ineligible_candidate_as_screen_failure(coordinator1):
    today = timezone.localdate()
    body = screening_body(date_of_birth=today.replace(year=today.year - 70).isoformat())
    response = api(coordinator1).post("/api/v1/participants/screening/", body, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == ParticipantStatus.SCREEN_FAILED
    assert response.json()["screening"]["failed_criteria"] == ["IN2"]


@pytest.mark.parametrize("role", [*CANNOT_WRITE, "outsider"])
def test_screening_refused_to_roles_that_cannot_screen(request, site1, role):
    before = counts()
    response = api(request.getfixturevalue(role)).post(
        "/api/v1/participants/screening/", screening_body(), format="json"
    )
    assert response.status_code == 403
    assert counts() == before


@pytest.mark.parametrize(("role", "site_number"), [("coordinator1", 2), ("coordinator2", 1), ("coordinator1", 99)])
def test_screening_at_a_site_not_ones_own_is_a_site_field_error(request, site1, site2, role, site_number):
    before = counts()
    response = api(request.getfixturevalue(role)).post(
        "/api/v1/participants/screening/", screening_body(site_number), format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == ["site"]
    assert counts() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sex", "X"),
        ("date_of_birth", "not-a-date"),
        ("consent_date", "2020-02-30"),
        ("total_bilirubin", "lots"),
        ("inr", "1.234"),
        ("ascites", "severe"),
        ("answers", {"IN5": "perhaps"}),
        ("answers", ["IN5"]),
        ("site", "first"),
    ],
)
def test_screening_rejects_badly_typed_values_per_field(coordinator1, field, value):
    before = counts()
    response = api(coordinator1).post(
        "/api/v1/participants/screening/", screening_body(**{field: value}), format="json"
    )
    assert response.status_code == 400
    assert field in response.json()
    assert counts() == before


def test_screening_requires_every_field(coordinator1):
    before = counts()
    response = api(coordinator1).post("/api/v1/participants/screening/", {}, format="json")
    assert response.status_code == 400
    assert {"site", "initials", "sex", "date_of_birth", "answers"} <= set(response.json())
    assert counts() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("total_bilirubin", "5000.0"),
        ("albumin", "1.0"),
        ("initials", "Z1"),
        ("screening_date", (timezone.localdate() + datetime.timedelta(days=3)).isoformat()),
        ("consent_date", timezone.localdate().isoformat()),
        ("answers", {"IN5": True}),
    ],
)
def test_screening_reports_protocol_rule_breaks_per_field(coordinator1, field, value):
    before = counts()
    response = api(coordinator1).post(
        "/api/v1/participants/screening/", screening_body(**{field: value}), format="json"
    )
    assert response.status_code == 400
    assert field in response.json()
    assert all(isinstance(message, str) for message in response.json()[field])
    assert counts() == before


# --- Participants: enrolment -----------------------------------------------------------------------------


def enrol_body(**overrides: object) -> dict:
    return {"arm": "MSC", "enrolment_date": timezone.localdate().isoformat(), **overrides}


@pytest.mark.parametrize("role", ["coordinator1", "investigator1"])
def test_enrolment_gives_subject_id_and_visits(request, coordinator1, site1, role):
    participant = screened(coordinator1, site1)
    user = request.getfixturevalue(role)
    response = api(user).post(f"/api/v1/participants/{participant.pk}/enrol/", enrol_body(), format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == ParticipantStatus.ENROLLED
    assert body["subject_id"] == "01-001"
    assert body["arm"] == "MSC"
    assert body["enrolled_by"] == role
    assert [visit["code"] for visit in body["visits"]] == "M0 M3 M6 M9 M12 FU18 FU24 FU30 FU36".split()
    baseline = body["visits"][0]
    assert baseline["target_date"] == baseline["window_start"] == timezone.localdate().isoformat()
    assert baseline["state"] == "due"
    assert body["visits"][1]["state"] == "not_due"


@pytest.mark.parametrize("role", ["coordinator2", "outsider"])
def test_enrolment_of_another_sites_participant_is_404(request, coordinator1, site1, role):
    participant = screened(coordinator1, site1)
    before = counts()
    response = api(request.getfixturevalue(role)).post(
        f"/api/v1/participants/{participant.pk}/enrol/", enrol_body(), format="json"
    )
    assert response.status_code == 404
    assert counts() == before


@pytest.mark.parametrize("role", CANNOT_WRITE)
def test_enrolment_refused_to_roles_that_cannot_enrol(request, coordinator1, site1, role):
    participant = screened(coordinator1, site1)
    before = counts()
    response = api(request.getfixturevalue(role)).post(
        f"/api/v1/participants/{participant.pk}/enrol/", enrol_body(), format="json"
    )
    assert response.status_code == 403
    assert counts() == before
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.ELIGIBLE


def test_enrolment_of_a_screen_failure_is_400_with_the_reason(coordinator1, site1):
    participant = screened(coordinator1, site1, consent_date=None)
    before = counts()
    response = api(coordinator1).post(f"/api/v1/participants/{participant.pk}/enrol/", enrol_body(), format="json")
    assert response.status_code == 400
    assert "Only an eligible candidate can be enrolled" in response.json()["non_field_errors"][0]
    assert counts() == before


def test_enrolment_twice_is_400(coordinator1, site1):
    participant = enrolled(coordinator1, site1)
    before = counts()
    response = api(coordinator1).post(f"/api/v1/participants/{participant.pk}/enrol/", enrol_body(), format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert counts() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arm", "PLACEBO"),
        ("arm", ""),
        ("enrolment_date", "tomorrow"),
        ("enrolment_date", (timezone.localdate() + datetime.timedelta(days=1)).isoformat()),
        ("enrolment_date", (timezone.localdate() - datetime.timedelta(days=30)).isoformat()),
    ],
)
def test_enrolment_rejects_bad_input_per_field(coordinator1, site1, field, value):
    participant = screened(coordinator1, site1)
    before = counts()
    response = api(coordinator1).post(
        f"/api/v1/participants/{participant.pk}/enrol/", enrol_body(**{field: value}), format="json"
    )
    assert response.status_code == 400
    assert field in response.json()
    assert counts() == before


def test_enrolment_requires_both_fields(coordinator1, site1):
    participant = screened(coordinator1, site1)
    response = api(coordinator1).post(f"/api/v1/participants/{participant.pk}/enrol/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"arm", "enrolment_date"}


def test_enrolment_of_unknown_participant_is_404(coordinator1):
    response = api(coordinator1).post("/api/v1/participants/999999/enrol/", enrol_body(), format="json")
    assert response.status_code == 404


# --- Read-only roles and methods -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["sponsor", "monitor", "coordinator1"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_resources_cannot_be_changed_directly(request, coordinator1, site1, role, method):
    participant = enrolled(coordinator1, site1)
    visit = participant.visits.first()
    client = api(request.getfixturevalue(role))
    before = counts()
    for url in (
        f"/api/v1/participants/{participant.pk}/",
        f"/api/v1/visits/{visit.pk}/",
        f"/api/v1/sites/{site1.pk}/",
        "/api/v1/participants/",
    ):
        assert getattr(client, method)(url, {}, format="json").status_code in {403, 405}
    assert counts() == before


def test_sponsor_reads_but_never_writes(sponsor, coordinator1, site1):
    participant = screened(coordinator1, site1)
    client = api(sponsor)
    assert client.get(f"/api/v1/participants/{participant.pk}/").status_code == 200
    assert client.post("/api/v1/participants/screening/", screening_body(), format="json").status_code == 403
    assert client.post(f"/api/v1/participants/{participant.pk}/enrol/", enrol_body(), format="json").status_code == 403


# --- Visits ----------------------------------------------------------------------------------------------


@pytest.fixture
def enrolled_both_sites(coordinator1, coordinator2, site1, site2) -> dict[int, Participant]:
    return {1: enrolled(coordinator1, site1, days_ago=100), 2: enrolled(coordinator2, site2)}


@pytest.mark.parametrize("role", ROLES)
def test_visits_list_is_scoped_to_the_users_sites(request, enrolled_both_sites, role):
    response = api(request.getfixturevalue(role)).get("/api/v1/visits/?limit=100")
    assert response.status_code == 200
    participants = {row["participant"] for row in response.json()["results"]}
    assert participants == {enrolled_both_sites[number].pk for number in SEES[role]}
    assert response.json()["count"] == 9 * len(SEES[role])


@pytest.mark.parametrize("role", ROLES)
def test_visit_detail_of_another_site_is_404(request, enrolled_both_sites, role):
    client = api(request.getfixturevalue(role))
    for number, participant in enrolled_both_sites.items():
        visit = participant.visits.first()
        expected = 200 if number in SEES[role] else 404
        assert client.get(f"/api/v1/visits/{visit.pk}/").status_code == expected


def test_visits_filter_by_participant_and_show_state(coordinator1, enrolled_both_sites):
    participant = enrolled_both_sites[1]
    response = api(coordinator1).get(f"/api/v1/visits/?participant={participant.pk}")
    rows = response.json()["results"]
    assert [row["code"] for row in rows][:3] == ["M0", "M3", "M6"]
    by_code = {row["code"]: row for row in rows}
    # Enrolled 100 days ago: M0's window has closed, M3 (day 91 +/- 14) is due, M6 is not due yet.
    assert by_code["M0"]["state"] == "overdue"
    assert by_code["M3"]["state"] == "due"
    assert by_code["M6"]["state"] == "not_due"
    assert by_code["M3"]["kind"] == "visit"
    assert by_code["FU18"]["kind"] == "follow_up"
    assert by_code["M3"]["name"] == "Month 3"
    assert by_code["M3"]["progress"] == "not_started"
    assert by_code["M3"]["visit_date"] is None


def test_visits_filter_by_another_sites_participant_is_empty(coordinator2, enrolled_both_sites):
    response = api(coordinator2).get(f"/api/v1/visits/?participant={enrolled_both_sites[1].pk}")
    assert response.json()["count"] == 0


# --- Query counts ----------------------------------------------------------------------------------------


def bulk_enrolled(site: Site, user: object, count: int) -> list[Participant]:
    """Enrolled participants with their screening and visits, written in bulk (the services are tested above)."""
    protocol = Protocol.objects.order_by("-version").first()
    arm = protocol.arms.get(code="MSC")
    today = timezone.localdate()
    participants = Participant.objects.bulk_create(
        Participant(
            site=site,
            protocol=protocol,
            screening_number=f"B{site.number:02d}-{n:04d}",
            subject_id=f"B{site.number:02d}-{n:04d}",
            initials="AB",
            sex="F",
            date_of_birth=datetime.date(1975, 1, 1),
            status=ParticipantStatus.ENROLLED,
            arm=arm,
            enrolment_date=today - datetime.timedelta(days=n),
            enrolled_at=timezone.now(),
            enrolled_by=user,
            created_by=user,
        )
        for n in range(count)
    )
    data = eligible_input()
    Screening.objects.bulk_create(
        Screening(
            participant=participant,
            screening_date=participant.enrolment_date,
            consent_date=participant.enrolment_date,
            diagnosis=data.diagnosis,
            total_bilirubin=data.total_bilirubin,
            albumin=data.albumin,
            inr=data.inr,
            ascites=data.ascites,
            encephalopathy=data.encephalopathy,
            answers=data.answers,
            child_pugh_points=8,
            child_pugh_class="B",
            eligible=True,
            failed_criteria=[],
            screened_by=user,
        )
        for participant in participants
    )
    Visit.objects.bulk_create(visit for participant in participants for visit in schedule(participant))
    return participants


# Token lookup, the user's memberships, the page's count, the page's rows.
LIST_QUERIES = 4


@pytest.mark.parametrize("count", [10, 200])
def test_participants_list_uses_constant_queries(django_assert_num_queries, coordinator1, site1, count):
    bulk_enrolled(site1, coordinator1, count)
    client = api(coordinator1)
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/api/v1/participants/?limit=500")
    rows = response.json()["results"]
    assert len(rows) == count
    assert all(row["screening"]["child_pugh_class"] == "B" and row["enrolled_by"] == "coordinator1" for row in rows)


@pytest.mark.parametrize("count", [10, 200])
def test_visits_list_uses_constant_queries(django_assert_num_queries, coordinator1, site1, count):
    bulk_enrolled(site1, coordinator1, count)
    client = api(coordinator1)
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/api/v1/visits/?limit=5000")
    assert len(response.json()["results"]) == 9 * count


def test_lists_are_by_site_and_screening_number(request, coordinator1, coordinator2, site1, site2):
    """The screening number starts with the site's number, so ordering by it (on its index, no join of the sites)
    lists by site; a coordinator's lists hold their own site's alone."""
    bulk_enrolled(site2, coordinator2, 3)
    bulk_enrolled(site1, coordinator1, 3)
    monitor = request.getfixturevalue("monitor")
    people = api(monitor).get("/api/v1/participants/").json()["results"]
    keys = [(row["site"], row["screening_number"]) for row in people]
    assert keys == sorted(keys) and {site for site, _number in keys} == {1, 2}
    visits = api(monitor).get("/api/v1/visits/?limit=500").json()["results"]
    order = [row["id"] for row in people]
    assert [row["participant"] for row in visits] == sorted((row["participant"] for row in visits), key=order.index)
    mine = api(coordinator1).get("/api/v1/participants/").json()["results"]
    assert {row["site"] for row in mine} == {1} and len(mine) == 3


@pytest.mark.parametrize("count", [10, 200])
def test_participant_detail_uses_constant_queries(django_assert_num_queries, coordinator1, site1, count):
    participant = bulk_enrolled(site1, coordinator1, count)[0]
    client = api(coordinator1)
    # Token, memberships, the participant, its visits.
    with django_assert_num_queries(4):
        response = client.get(f"/api/v1/participants/{participant.pk}/")
    assert len(response.json()["visits"]) == 9


# --- Schema and docs -------------------------------------------------------------------------------------


def test_schema_lists_the_endpoints(coordinator1):
    client = APIClient()
    client.force_login(coordinator1)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/auth/token/",
        "/api/v1/sites/",
        "/api/v1/participants/",
        "/api/v1/participants/{id}/",
        "/api/v1/participants/screening/",
        "/api/v1/participants/{id}/enrol/",
        "/api/v1/visits/",
        "/api/v1/visits/{id}/",
    ):
        assert path in paths
    screening = paths["/api/v1/participants/screening/"]["post"]
    assert screening["requestBody"]["content"]["application/json"]["examples"]
    assert "400" in screening["responses"] and "403" in screening["responses"]


def test_docs_page_uses_local_assets_only(site1, coordinator1):
    client = APIClient()
    client.force_login(coordinator1)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>" not in page  # its script is a file of its own (Content-Security-Policy)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "http://" not in page and "https://" not in page
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
