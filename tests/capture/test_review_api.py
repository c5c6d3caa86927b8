"""The review API (queries, verification, signatures, locks), as each role of site 1 and site 2 sees it."""

import datetime

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from capture import summaries
from capture.definitions import visit_forms
from capture.models import (
    FormInstance,
    ItemValue,
    Lock,
    Query,
    QueryEvent,
    QueryEventKind,
    QueryOrigin,
    QueryState,
    Signature,
)
from capture.review import SIGNATURE_MEANING, lock_set, query_close, query_raise
from capture.services import form_save
from tests.api_clients import schema_reader
from tests.capture.conftest import NOTE
from tests.factories import PASSWORD, enrolled, make_user
from tests.roles import ROLES, SEES
from trial.models import AuditRecord, ItemDefinition, Participant, Role, Site, Visit

pytestmark = pytest.mark.django_db

# Which sites each role may take a review step at.
ANSWERS = {"coordinator1": {1}, "investigator1": {1}, "coordinator2": {2}}
RAISES = {"monitor": {1, 2}, "datamanager": {1, 2}}
VERIFIES = {"monitor": {1, 2}}
SIGNS = {"investigator1": {1}}
LOCKS = {"datamanager": {1, 2}}
LIVER = {"ALT": "30", "AST": "30", "ALB": "42", "PREALB": "250", "BILI": "15", "BILDIR": "5"}
LOCKED_MESSAGE = "These data are locked by the data manager: they cannot be changed until unlocked."


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
    """Everything a review step could write."""
    return (
        sorted(Query.objects.values_list("pk", "state")),
        QueryEvent.objects.count(),
        AuditRecord.objects.count(),
        sorted(Signature.objects.values_list("pk", "voided_at")),
        sorted(Lock.objects.values_list("pk", "released_at")),
        ItemValue.objects.filter(verified_at__isnull=False).count(),
    )


def form_url(visit: Visit, form: str = "LIVER") -> str:
    return f"/api/v1/visits/{visit.pk}/forms/{form}/"


def liver(visit: Visit, **changes: str) -> dict[str, str]:
    return {"LBDAT": str(visit.target_date), **LIVER, **changes}


def save_liver(user: object, visit: Visit, **changes: str) -> None:
    form_save(user=user, visit_id=visit.pk, form_code="LIVER", version=0, values=liver(visit, **changes), complete=True)


def complete_visit(user: object, visit: Visit) -> None:
    for spec in visit_forms(visit):
        missing = {item.code: "not_done" for item in spec.entered}
        form_save(user=user, visit_id=visit.pk, form_code=spec.code, version=0, missing=missing, complete=True)


def m3_of(participant: Participant) -> Visit:
    return participant.visits.select_related("definition", "participant__protocol", "participant__arm").get(
        definition__code="M3"
    )


@pytest.fixture
def m3_site2(coordinator2, site2) -> Visit:
    return m3_of(enrolled(coordinator2, site2, arm="MSC", days_ago=100))


@pytest.fixture
def visits(m3, m3_site2) -> dict[int, Visit]:
    """The M3 visit (inside its window) of an MSC-arm participant at site 1 and one at site 2."""
    return {1: m3, 2: m3_site2}


@pytest.fixture
def saved(visits, coordinator1, coordinator2) -> dict[int, Visit]:
    """Both visits with a completed liver panel."""
    save_liver(coordinator1, visits[1])
    save_liver(coordinator2, visits[2])
    return visits


@pytest.fixture
def queries(saved, monitor) -> dict[int, Query]:
    """An open manual query on ALT at each site."""
    return {
        site: query_raise(user=monitor, visit_id=visit.pk, form_code="LIVER", item_code="ALT", message="ALT?")
        for site, visit in saved.items()
    }


# --- Queries: who sees and does what ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_query_list_shows_only_the_users_sites(request, queries, role):
    response = api(request.getfixturevalue(role)).get("/api/v1/queries/")
    assert response.status_code == 200
    assert {query["id"] for query in response.json()["results"]} == {queries[site].pk for site in SEES[role]}


@pytest.mark.parametrize("role", ROLES)
def test_query_of_another_site_is_404(request, queries, role):
    client = api(request.getfixturevalue(role))
    for site, query in queries.items():
        response = client.get(f"/api/v1/queries/{query.pk}/")
        assert response.status_code == (200 if site in SEES[role] else 404)


@pytest.mark.parametrize("role", ROLES)
def test_raise_as_each_role_of_each_site(request, saved, role):
    client = api(request.getfixturevalue(role))
    for visit in saved.values():
        before = writes()
        body = {"visit": visit.pk, "form": "LIVER", "item": "ALB", "message": "Albumin on the source?"}
        response = client.post("/api/v1/queries/", body, format="json")
        # Raising is a monitor's and a data manager's step: any other role is refused before the visit is looked up.
        assert response.status_code == (201 if role in RAISES else 403)
        if response.status_code != 201:
            assert writes() == before


def test_raise_on_a_site_the_monitor_does_not_monitor_is_404(protocol, monitor):
    site4 = Site.objects.get(number=4)
    visit = m3_of(enrolled(make_user("coordinator4", {site4: Role.COORDINATOR}), site4, days_ago=100))
    before = writes()
    response = api(monitor).post("/api/v1/queries/", {"visit": visit.pk, "message": "?"}, format="json")
    assert response.status_code == 404
    assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_answer_as_each_role_of_each_site(request, queries, role):
    client = api(request.getfixturevalue(role))
    for site, query in queries.items():
        before = writes()
        response = client.post(f"/api/v1/queries/{query.pk}/answer/", {"message": "30 on source"}, format="json")
        assert response.status_code == expected(role, site, ANSWERS, 200)
        if response.status_code == 200:
            assert response.json()["state"] == QueryState.ANSWERED
        else:
            assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_close_as_each_role_of_each_site(request, queries, role):
    client = api(request.getfixturevalue(role))
    for site, query in queries.items():
        before = writes()
        response = client.post(f"/api/v1/queries/{query.pk}/close/", {}, format="json")
        assert response.status_code == expected(role, site, RAISES, 200)
        if response.status_code == 200:
            assert response.json()["state"] == QueryState.CLOSED
        else:
            assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_reopen_as_each_role_of_each_site(request, queries, monitor, role):
    for query in queries.values():
        query_close(user=monitor, query_id=query.pk)
    client = api(request.getfixturevalue(role))
    for site, query in queries.items():
        before = writes()
        response = client.post(f"/api/v1/queries/{query.pk}/reopen/", {"message": "Not resolved"}, format="json")
        assert response.status_code == expected(role, site, RAISES, 200)
        if response.status_code == 200:
            assert response.json()["state"] == QueryState.OPEN
        else:
            assert writes() == before


# --- Queries: the state machine ------------------------------------------------------------------------------


def test_raise_answers_201_with_the_query_and_its_thread(saved, monitor):
    m3 = saved[1]
    body = {"visit": m3.pk, "form": "LIVER", "item": "ALT", "message": "ALT 30 on the source?"}
    response = api(monitor).post("/api/v1/queries/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    query = Query.objects.get(pk=data["id"])
    assert data | {"created_at": None, "events": None} == {
        "id": query.pk,
        "visit": m3.pk,
        "visit_code": "M3",
        "participant": m3.participant.subject_id,
        "site": 1,
        "form": "LIVER",
        "item": "ALT",
        "record_type": "",
        "record_id": None,
        "field_code": "",
        "record_label": None,
        "origin": QueryOrigin.MANUAL,
        "check_code": "",
        "state": QueryState.OPEN,
        "message": "ALT 30 on the source?",
        "created_at": None,
        "created_by": "monitor",
        "closed_at": None,
        "closed_by": None,
        "events": None,
    }
    assert [(e["kind"], e["author"], e["text"], e["state_after"]) for e in data["events"]] == [
        (QueryEventKind.RAISED, "monitor", "ALT 30 on the source?", QueryState.OPEN)
    ]


def test_queries_on_a_form_and_on_a_visit(saved, datamanager):
    client = api(datamanager)
    on_form = client.post("/api/v1/queries/", {"visit": saved[1].pk, "form": "KIDNEY", "message": "?"}, format="json")
    on_visit = client.post("/api/v1/queries/", {"visit": saved[1].pk, "message": "Visit date?"}, format="json")
    assert (on_form.status_code, on_form.json()["form"], on_form.json()["item"]) == (201, "KIDNEY", None)
    assert (on_visit.status_code, on_visit.json()["form"], on_visit.json()["item"]) == (201, None, None)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"form": "NOPE", "message": "?"}, "form"),
        ({"form": "LIVER", "item": "BUN", "message": "?"}, "item"),
        ({"item": "ALT", "message": "?"}, "form"),
        ({"form": "LIVER", "message": "  "}, "message"),
        ({"form": "LIVER"}, "message"),
        ({"visit": "M3", "message": "?"}, "visit"),
    ],
)
def test_raise_refuses_bad_input_with_400_keyed_by_field(saved, monitor, body, key):
    before = writes()
    response = api(monitor).post("/api/v1/queries/", {"visit": saved[1].pk, **body}, format="json")
    assert response.status_code == 400
    assert key in response.json()
    assert writes() == before


def test_the_whole_thread_through_the_api(queries, monitor, coordinator1):
    query = queries[1]
    site, reviewer = api(coordinator1), api(monitor)
    url = f"/api/v1/queries/{query.pk}/"
    steps = [
        (site, "answer", "The report says 30.", QueryState.ANSWERED),
        (site, "answer", "Report attached.", QueryState.ANSWERED),  # an answer may be completed
        (reviewer, "reopen", "The attached report says 36.", QueryState.OPEN),
        (site, "answer", "Corrected to 36.", QueryState.ANSWERED),
        (reviewer, "close", "", QueryState.CLOSED),
        (reviewer, "reopen", "Closed by mistake.", QueryState.OPEN),
        (reviewer, "close", "Accepted.", QueryState.CLOSED),
    ]
    for client, step, message, state in steps:
        response = client.post(f"{url}{step}/", {"message": message}, format="json")
        assert response.status_code == 200, (step, response.json())
        assert response.json()["state"] == state

    data = site.get(url).json()
    assert (data["closed_by"], data["closed_at"] is not None) == ("monitor", True)
    assert [(e["kind"], e["author"], e["state_after"]) for e in data["events"]] == [
        ("raised", "monitor", "open"),
        ("answered", "coordinator1", "answered"),
        ("answered", "coordinator1", "answered"),
        ("reopened", "monitor", "open"),
        ("answered", "coordinator1", "answered"),
        ("closed", "monitor", "closed"),
        ("reopened", "monitor", "open"),
        ("closed", "monitor", "closed"),
    ]
    assert data["events"][3]["text"] == "The attached report says 36."
    assert AuditRecord.objects.filter(object_type="query", object_id=str(query.pk)).count() == 8


@pytest.mark.parametrize(
    ("before", "illegal", "message"),
    [
        ([], "reopen", "A query that is open cannot be re-opened."),
        (["answer", "close"], "close", "A query that is closed cannot be closed."),
        (["close"], "answer", "A query that is closed cannot be answered."),
    ],
)
def test_illegal_transitions_are_400_with_a_clear_message(queries, monitor, coordinator1, before, illegal, message):
    query = queries[1]
    clients = {"answer": api(coordinator1), "close": api(monitor), "reopen": api(monitor)}
    for step in before:
        response = clients[step].post(f"/api/v1/queries/{query.pk}/{step}/", {"message": "x"}, format="json")
        assert response.status_code == 200
    written = writes()
    response = clients[illegal].post(f"/api/v1/queries/{query.pk}/{illegal}/", {"message": "x"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [message]}
    assert writes() == written


@pytest.mark.parametrize(("step", "user"), [("answer", "coordinator1"), ("reopen", "monitor")])
def test_answer_and_reopen_need_a_message(request, queries, monitor, step, user):
    if step == "reopen":
        query_close(user=monitor, query_id=queries[1].pk)
    client = api(request.getfixturevalue(user))
    for body in ({"message": " "}, {}):
        before = writes()
        response = client.post(f"/api/v1/queries/{queries[1].pk}/{step}/", body, format="json")
        assert response.status_code == 400
        assert list(response.json()) == ["message"]
        assert writes() == before


def test_unknown_query_is_404(monitor, site1):
    assert api(monitor).get("/api/v1/queries/999999/").status_code == 404
    assert api(monitor).post("/api/v1/queries/999999/close/", {}, format="json").status_code == 404


# --- Queries: the list's filters and query count ------------------------------------------------------------


@pytest.fixture
def assorted(saved, monitor, coordinator1, coordinator2) -> dict[str, int]:
    """A manual item query and an automatic one at site 1, a form query at site 2 (answered), an old one."""
    m3, other = saved[1], saved[2]
    form_save(
        user=coordinator1,
        visit_id=m3.pk,
        form_code="LIVER",
        version=1,
        values=liver(m3, BILDIR="20"),
        reason="Report amended",
    )
    on_form = query_raise(user=monitor, visit_id=other.pk, form_code="KIDNEY", message="Haemolysed?")
    api(coordinator2).post(f"/api/v1/queries/{on_form.pk}/answer/", {"message": "No"}, format="json")
    old = query_raise(user=monitor, visit_id=m3.pk, message="Visit date?")
    Query.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=30))
    return {
        "manual": query_raise(user=monitor, visit_id=m3.pk, form_code="LIVER", item_code="ALT", message="ALT?").pk,
        "automatic": Query.objects.get(origin=QueryOrigin.AUTOMATIC).pk,
        "form": on_form.pk,
        "old": old.pk,
    }


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ("", {"manual", "automatic", "form", "old"}),
        ("site=1", {"manual", "automatic", "old"}),
        ("site=2", {"form"}),
        ("state=answered", {"form"}),
        ("state=open", {"manual", "automatic", "old"}),
        ("state=closed", set()),
        ("origin=automatic", {"automatic"}),
        ("origin=manual", {"manual", "form", "old"}),
        ("form=LIVER", {"manual", "automatic"}),
        ("item=BILDIR", {"automatic"}),
        ("form=KIDNEY&state=answered", {"form"}),
        ("older_than_days=7", {"old"}),
        ("older_than_days=0", {"manual", "automatic", "form", "old"}),
    ],
)
def test_query_list_filters(assorted, monitor, filters, names):
    response = api(monitor).get(f"/api/v1/queries/?{filters}")
    assert response.status_code == 200
    assert {query["id"] for query in response.json()["results"]} == {assorted[name] for name in names}


def test_query_list_filters_by_participant_and_visit(assorted, saved, monitor):
    client = api(monitor)
    subject = saved[2].participant.subject_id
    by_participant = client.get(f"/api/v1/queries/?participant={subject}").json()["results"]
    assert [query["id"] for query in by_participant] == [assorted["form"]]
    assert by_participant[0]["participant"] == subject
    by_visit = client.get(f"/api/v1/queries/?visit={saved[1].pk}").json()["results"]
    assert {query["id"] for query in by_visit} == {assorted["manual"], assorted["automatic"], assorted["old"]}


def test_query_list_filters_stay_within_the_users_sites(assorted, coordinator2):
    response = api(coordinator2).get("/api/v1/queries/?site=1")
    assert response.json()["results"] == []


@pytest.mark.parametrize("filters", ["state=pending", "older_than_days=-1", "site=one", "origin=robot"])
def test_bad_filters_are_400(monitor, site1, filters):
    assert api(monitor).get(f"/api/v1/queries/?{filters}").status_code == 400


def bulk_queries(visit: Visit, user: object, count: int, record_type: str = "") -> None:
    """`count` answered queries on the visit's ALT, or with `record_type` on the participant as such a record."""
    now = timezone.now()
    alt = ItemDefinition.objects.get(form__protocol=visit.participant.protocol, form__code="LIVER", code="ALT")
    target = {"visit": visit, "form": alt.form, "item": alt}
    if record_type:
        target = {"record_type": record_type, "record_id": visit.participant_id}
    created = Query.objects.bulk_create(
        Query(
            participant_id=visit.participant_id,
            **target,
            origin=QueryOrigin.MANUAL,
            message=f"Q{n}",
            created_at=now,
        )
        for n in range(count)
    )
    QueryEvent.objects.bulk_create(
        QueryEvent(query=query, kind=kind, author=user, at=now, state_after=state)
        for query in created
        for kind, state in ((QueryEventKind.RAISED, QueryState.OPEN), (QueryEventKind.ANSWERED, QueryState.ANSWERED))
    )
    summaries.rebuild()  # written past the services: the summary counters (the list's total) counted again


# Token, memberships, the total (the sites' summaries), the page of queries (visit, participant, site, form, item,
# users joined), the page's events with their authors.
LIST_QUERIES = 5


@pytest.mark.parametrize("count", [10, 500])
def test_query_list_uses_constant_queries(django_assert_num_queries, m3, monitor, count):
    bulk_queries(m3, monitor, count)
    client = api(monitor)
    with django_assert_num_queries(LIST_QUERIES):
        data = client.get("/api/v1/queries/?limit=1000").json()
    assert data["count"] == len(data["results"]) == count
    assert all(len(query["events"]) == 2 for query in data["results"])
    with django_assert_num_queries(LIST_QUERIES):
        page = client.get("/api/v1/queries/").json()
    assert (page["count"], len(page["results"])) == (count, min(count, 50))


@pytest.mark.parametrize("count", [10, 500])
def test_query_list_with_record_queries_uses_constant_queries(
    django_assert_num_queries, participant_note, m3, monitor, count
):
    bulk_queries(m3, monitor, count)
    bulk_queries(m3, monitor, count, record_type=NOTE)
    client = api(monitor)
    # One more: the labels of the listed records, in one read whatever their number.
    with django_assert_num_queries(LIST_QUERIES + 1):
        data = client.get("/api/v1/queries/?limit=1000").json()
    assert data["count"] == len(data["results"]) == 2 * count
    on_records = [query for query in data["results"] if query["record_type"]]
    assert len(on_records) == count
    assert {query["record_label"] for query in on_records} == {f"Note on {m3.participant.screening_number}"}
    with django_assert_num_queries(LIST_QUERIES + 1):
        page = client.get("/api/v1/queries/?record_type=participant_note").json()
    assert (page["count"], len(page["results"])) == (count, min(count, 50))


# --- Source data verification ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_verify_as_each_role_of_each_site(request, saved, role):
    client = api(request.getfixturevalue(role))
    for site, visit in saved.items():
        before = writes()
        response = client.post(f"{form_url(visit)}verify/", {"items": ["ALT", "AST"]}, format="json")
        assert response.status_code == expected(role, site, VERIFIES, 200)
        if response.status_code == 200:
            assert response.json() == {"verified": 2}
        else:
            assert writes() == before


def test_verify_the_whole_form_then_nothing_is_left(saved, monitor):
    client = api(monitor)
    assert client.post(f"{form_url(saved[1])}verify/", {}, format="json").json() == {"verified": 7}
    assert client.post(f"{form_url(saved[1])}verify/", {}, format="json").json() == {"verified": 0}
    assert ItemValue.objects.filter(visit=saved[1], verified_at__isnull=False).count() == 7


@pytest.mark.parametrize(
    ("form", "body", "key"),
    [("LIVER", {"items": ["NOPE"]}, "NOPE"), ("NOPE", {}, "form"), ("LIVER", {"items": "ALT"}, "items")],
)
def test_verify_refuses_what_is_not_of_the_form(saved, monitor, form, body, key):
    response = api(monitor).post(f"{form_url(saved[1], form)}verify/", body, format="json")
    assert response.status_code == 400
    assert key in response.json()
    assert not ItemValue.objects.filter(verified_at__isnull=False).exists()


def test_a_change_through_the_api_clears_the_verification(m3, coordinator1, monitor):
    site = api(coordinator1)
    saved = site.put(form_url(m3), {"version": 0, "values": liver(m3), "complete": True}, format="json")
    assert saved.status_code == 200
    assert api(monitor).post(f"{form_url(m3)}verify/", {}, format="json").json() == {"verified": 7}

    change = {"version": 1, "values": liver(m3, ALT="36"), "reason": "Lab amended the result"}
    assert site.put(form_url(m3), change, format="json").status_code == 200
    values = {value.item.code: value for value in ItemValue.objects.filter(visit=m3).select_related("item")}
    assert values["ALT"].verified_at is None and values["ALT"].changed_since_verification
    assert values["AST"].verified_at is not None and not values["AST"].changed_since_verification


# --- Signatures ----------------------------------------------------------------------------------------


@pytest.fixture
def complete(visits, coordinator1, coordinator2) -> dict[int, Visit]:
    """Both visits with every form complete."""
    complete_visit(coordinator1, visits[1])
    complete_visit(coordinator2, visits[2])
    return visits


@pytest.mark.parametrize("role", ROLES)
def test_sign_a_visit_as_each_role_of_each_site(request, complete, role):
    client = api(request.getfixturevalue(role))
    for site, visit in complete.items():
        before = writes()
        response = client.post(f"/api/v1/visits/{visit.pk}/sign/", {"password": PASSWORD}, format="json")
        assert response.status_code == expected(role, site, SIGNS, 201)
        if response.status_code != 201:
            assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_sign_a_casebook_as_each_role_of_each_site(request, visits, role):
    client = api(request.getfixturevalue(role))
    for site, visit in visits.items():
        before = writes()
        response = client.post(
            f"/api/v1/participants/{visit.participant_id}/sign/", {"password": PASSWORD}, format="json"
        )
        assert response.status_code == expected(role, site, SIGNS, 201)
        if response.status_code == 201:
            assert (response.json()["visit"], response.json()["visit_code"]) == (None, None)
        else:
            assert writes() == before


def test_sign_answers_201_with_the_signature(complete, investigator1):
    m3 = complete[1]
    response = api(investigator1).post(f"/api/v1/visits/{m3.pk}/sign/", {"password": PASSWORD}, format="json")
    assert response.status_code == 201, response.json()
    signature = Signature.objects.get()
    assert response.json() | {"signed_at": None} == {
        "id": signature.pk,
        "participant": m3.participant_id,
        "subject_id": m3.participant.subject_id,
        "visit": m3.pk,
        "visit_code": "M3",
        "signed_by": "investigator1",
        "signed_at": None,
        "meaning": SIGNATURE_MEANING,
        "voided_at": None,
        "void_reason": "",
    }
    assert all(FormInstance.objects.filter(visit=m3).values_list("signed", flat=True))


@pytest.mark.parametrize("meaning", ["I reviewed the casebook.", "", 42])
def test_a_meaning_of_the_clients_own_is_refused_and_nothing_signed(visits, investigator1, meaning):
    body = {"password": PASSWORD, "meaning": meaning}
    audited = AuditRecord.objects.count()
    response = api(investigator1).post(f"/api/v1/participants/{visits[1].participant_id}/sign/", body, format="json")
    assert response.status_code == 400
    assert "fixed" in response.json()["meaning"][0]
    assert not Signature.objects.exists()
    assert AuditRecord.objects.count() == audited


def test_the_signature_means_the_fixed_statement(visits, investigator1):
    for body in ({"password": PASSWORD}, {"password": PASSWORD, "meaning": SIGNATURE_MEANING}):
        url = f"/api/v1/participants/{visits[1].participant_id}/sign/"
        assert api(investigator1).post(url, body, format="json").status_code == 201
    assert set(Signature.objects.values_list("meaning", flat=True)) == {SIGNATURE_MEANING}


@pytest.mark.parametrize("password", ["wrong", "", None])
def test_wrong_password_is_400_keyed_password_and_nothing_signed(complete, investigator1, password):
    client = api(investigator1)
    for url in (f"/api/v1/visits/{complete[1].pk}/sign/", f"/api/v1/participants/{complete[1].participant_id}/sign/"):
        body = {} if password is None else {"password": password}
        before = writes()
        response = client.post(url, body, format="json")
        assert response.status_code == 400
        assert list(response.json()) == ["password"]
        # Nothing signed; only a refused password (not a missing one) is written to the audit trail.
        after = writes()
        assert after[:2] + after[3:] == before[:2] + before[3:]
        assert after[2] == before[2] + (password is not None)


def test_a_visit_with_incomplete_forms_cannot_be_signed(saved, investigator1):
    response = api(investigator1).post(f"/api/v1/visits/{saved[1].pk}/sign/", {"password": PASSWORD}, format="json")
    assert response.status_code == 400
    assert "CLIN" in response.json()["non_field_errors"][0]
    assert not Signature.objects.exists()


def test_a_change_through_the_api_voids_the_signature(complete, coordinator1, investigator1):
    m3 = complete[1]
    signed = api(investigator1).post(f"/api/v1/visits/{m3.pk}/sign/", {"password": PASSWORD}, format="json")
    assert signed.status_code == 201
    version = FormInstance.objects.get(visit=m3, definition__code="LIVER").version
    missing = {code: "not_done" for code in ("LBDAT", "AST", "ALB", "PREALB", "BILI", "BILDIR")}
    change = {"version": version, "values": {"ALT": "30"}, "missing": missing, "reason": "Result received late"}
    response = api(coordinator1).put(form_url(m3), change, format="json")
    assert response.status_code == 200, response.json()

    listed = api(investigator1).get(f"/api/v1/signatures/?participant={m3.participant_id}").json()["results"]
    assert len(listed) == 1
    assert listed[0]["voided_at"] is not None and listed[0]["void_reason"] == "Signed data changed"


@pytest.mark.parametrize("role", ROLES)
def test_signature_list_shows_only_the_users_sites(request, visits, investigator1, role):
    url = f"/api/v1/participants/{visits[1].participant_id}/sign/"
    response = api(investigator1).post(url, {"password": PASSWORD}, format="json")
    assert response.status_code == 201
    listed = api(request.getfixturevalue(role)).get("/api/v1/signatures/").json()["results"]
    assert [signature["id"] for signature in listed] == ([response.json()["id"]] if 1 in SEES[role] else [])


def test_signature_list_filters_by_participant(visits, investigator1):
    client = api(investigator1)
    client.post(f"/api/v1/participants/{visits[1].participant_id}/sign/", {"password": PASSWORD}, format="json")
    other = enrolled(investigator1, visits[1].participant.site, days_ago=10)
    assert client.get(f"/api/v1/signatures/?participant={other.pk}").json()["results"] == []
    assert len(client.get(f"/api/v1/signatures/?participant={visits[1].participant_id}").json()["results"]) == 1


def bulk_signatures(user: object, enrollers: dict[Site, object], count: int) -> None:
    """`count` participants at each site (enrolled by its coordinator) with a casebook signature each, a day apart
    (the services are tested elsewhere)."""
    now = timezone.now()
    for site, coordinator in enrollers.items():
        people = [enrolled(coordinator, site, days_ago=30) for _ in range(count)]
        Signature.objects.bulk_create(
            Signature(
                participant=person,
                signed_by=user,
                signed_at=now - datetime.timedelta(days=n),
                meaning=SIGNATURE_MEANING,
            )
            for n, person in enumerate(people)
        )


# Token, memberships, the total (the sites' tallies), the page of signatures (participant, visit, signer joined).
SIGNATURE_LIST_QUERIES = 4


def test_signature_list_runs_the_same_queries_at_3_and_60_participants(
    django_assert_num_queries, site1, site2, investigator1, coordinator1, coordinator2, datamanager
):
    """A count and a page, newest first, walked on an index: the same statements at any size; a coordinator's list
    holds only their site's."""
    client = api(datamanager)
    bulk_signatures(investigator1, {site1: coordinator1, site2: coordinator2}, 3)
    with django_assert_num_queries(SIGNATURE_LIST_QUERIES):
        small = client.get("/api/v1/signatures/").json()
    assert small["count"] == len(small["results"]) == 6
    bulk_signatures(investigator1, {site1: coordinator1, site2: coordinator2}, 57)
    with django_assert_num_queries(SIGNATURE_LIST_QUERIES):
        large = client.get("/api/v1/signatures/").json()
    assert (large["count"], len(large["results"])) == (120, 50)
    times = [row["signed_at"] for row in large["results"]]
    assert times == sorted(times, reverse=True)
    coordinator = api(coordinator1)
    coordinator.get("/api/v1/signatures/")
    with django_assert_num_queries(SIGNATURE_LIST_QUERIES):
        mine = coordinator.get("/api/v1/signatures/?limit=1000").json()
    sites = set(
        Participant.objects.filter(pk__in=[row["participant"] for row in mine["results"]]).values_list(
            "site__number", flat=True
        )
    )
    assert mine["count"] == 60 and sites == {1}


# --- Locks ---------------------------------------------------------------------------------------------


def lock_body(visit: Visit, /, **fields: object) -> dict:
    return {"participant": visit.participant_id, "visit": visit.pk, "form": "LIVER", "reason": "Interim", **fields}


@pytest.mark.parametrize("role", ROLES)
def test_lock_as_each_role_of_each_site(request, saved, role):
    client = api(request.getfixturevalue(role))
    for visit in saved.values():
        before = writes()
        response = client.post("/api/v1/locks/", lock_body(visit), format="json")
        # Locking is the data manager's step: any other role is refused before the participant is looked up.
        assert response.status_code == (201 if role in LOCKS else 403)
        if response.status_code != 201:
            assert writes() == before


def test_lock_of_a_site_the_data_manager_does_not_manage_is_404(saved, site1):
    datamanager1 = make_user("datamanager1", {site1: Role.DATA_MANAGER})
    before = writes()
    response = api(datamanager1).post("/api/v1/locks/", lock_body(saved[2]), format="json")
    assert response.status_code == 404
    assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_release_as_each_role_of_each_site(request, saved, datamanager, role):
    locks = {
        site: lock_set(user=datamanager, participant_id=visit.participant_id, visit_id=visit.pk, form_code="LIVER")
        for site, visit in saved.items()
    }
    client = api(request.getfixturevalue(role))
    for site, lock in locks.items():
        before = writes()
        response = client.post(f"/api/v1/locks/{lock.pk}/release/", {"reason": "Reviewed"}, format="json")
        assert response.status_code == expected(role, site, LOCKS, 200)
        if response.status_code == 200:
            assert response.json()["released_by"] == "datamanager"
        else:
            assert writes() == before


def test_locked_form_put_is_423_and_nothing_written_until_released(saved, coordinator1, datamanager):
    m3 = saved[1]
    response = api(datamanager).post("/api/v1/locks/", lock_body(m3), format="json")
    assert response.status_code == 201, response.json()
    lock = response.json()
    assert (lock["visit_code"], lock["form"], lock["locked_by"], lock["released_at"]) == (
        "M3",
        "LIVER",
        "datamanager",
        None,
    )

    site = api(coordinator1)
    change = {"version": 1, "values": liver(m3, ALT="99"), "reason": "Late correction"}
    before = (writes(), list(ItemValue.objects.values_list("pk", "number")))
    response = site.put(form_url(m3), change, format="json")
    assert response.status_code == 423
    assert response.json() == {"detail": LOCKED_MESSAGE}
    assert (writes(), list(ItemValue.objects.values_list("pk", "number"))) == before
    kidney = {"version": 0, "values": {"BUN": "5"}}
    assert site.put(form_url(m3, "KIDNEY"), kidney, format="json").status_code == 200  # not locked

    released = api(datamanager).post(f"/api/v1/locks/{lock['id']}/release/", {"reason": "Done"}, format="json")
    assert released.status_code == 200
    assert released.json()["release_reason"] == "Done" and released.json()["released_at"] is not None
    assert site.put(form_url(m3), change, format="json").status_code == 200


def test_participant_lock_makes_a_form_not_yet_started_423(visits, coordinator1, datamanager):
    m3 = visits[1]
    response = api(datamanager).post("/api/v1/locks/", {"participant": m3.participant_id}, format="json")
    assert response.status_code == 201
    assert (response.json()["visit"], response.json()["form"]) == (None, None)
    response = api(coordinator1).put(
        form_url(m3, "SYMPT"), {"version": 0, "values": {"APPETITE": "poor"}}, format="json"
    )
    assert response.status_code == 423
    assert not FormInstance.objects.exists()


def test_lock_with_open_queries_is_409_then_201_when_confirmed(queries, datamanager):
    m3 = queries[1].visit
    client = api(datamanager)
    before = writes()
    response = client.post("/api/v1/locks/", lock_body(m3), format="json")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "1 query is still open on these data: confirm to lock them anyway.",
        "open_queries": 1,
    }
    assert writes() == before
    response = client.post("/api/v1/locks/", lock_body(m3, confirm_open_queries=True), format="json")
    assert response.status_code == 201
    assert Lock.objects.get().reason == "Interim"


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"visit": None}, "visit"),  # a form without its visit
        ({"form": "SURV"}, "form"),  # not collected at M3
        ({"participant": "x"}, "participant"),
        ({"confirm_open_queries": "perhaps"}, "confirm_open_queries"),
    ],
)
def test_lock_refuses_bad_input_with_400(saved, datamanager, fields, key):
    response = api(datamanager).post("/api/v1/locks/", lock_body(saved[1], **fields), format="json")
    assert response.status_code == 400
    assert key in response.json()
    assert not Lock.objects.exists()


def test_lock_of_another_participants_visit_is_400(saved, datamanager):
    body = lock_body(saved[1], visit=saved[2].pk)
    response = api(datamanager).post("/api/v1/locks/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["visit"]
    assert not Lock.objects.exists()


def test_release_needs_a_reason_and_happens_once(saved, datamanager):
    lock = lock_set(user=datamanager, participant_id=saved[1].participant_id)
    client = api(datamanager)
    url = f"/api/v1/locks/{lock.pk}/release/"
    for body in ({"reason": ""}, {}):
        response = client.post(url, body, format="json")
        assert response.status_code == 400 and list(response.json()) == ["reason"]
    assert client.post(url, {"reason": "Reviewed"}, format="json").status_code == 200
    before = writes()
    response = client.post(url, {"reason": "Again"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["This lock was already released."]}
    assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_lock_list_shows_only_the_users_sites_and_filters_by_participant(request, saved, datamanager, role):
    locks = {site: lock_set(user=datamanager, participant_id=visit.participant_id).pk for site, visit in saved.items()}
    client = api(request.getfixturevalue(role))
    listed = {lock["id"] for lock in client.get("/api/v1/locks/").json()["results"]}
    assert listed == {locks[site] for site in SEES[role]}
    filtered = client.get(f"/api/v1/locks/?participant={saved[1].participant_id}").json()["results"]
    assert [lock["id"] for lock in filtered] == ([locks[1]] if 1 in SEES[role] else [])


# --- Everyone else ---------------------------------------------------------------------------------------


def test_anonymous_is_refused_everywhere(queries, datamanager):
    query, visit = queries[1], queries[1].visit
    lock = lock_set(user=datamanager, participant_id=visit.participant_id, confirm_open_queries=True)
    client = APIClient()
    before = writes()
    for url in ("/api/v1/queries/", f"/api/v1/queries/{query.pk}/", "/api/v1/signatures/", "/api/v1/locks/"):
        assert client.get(url).status_code in {401, 403}, url
    for url in (
        "/api/v1/queries/",
        f"/api/v1/queries/{query.pk}/answer/",
        f"/api/v1/queries/{query.pk}/close/",
        f"/api/v1/queries/{query.pk}/reopen/",
        f"{form_url(visit)}verify/",
        f"/api/v1/visits/{visit.pk}/sign/",
        f"/api/v1/participants/{visit.participant_id}/sign/",
        "/api/v1/locks/",
        f"/api/v1/locks/{lock.pk}/release/",
    ):
        assert client.post(url, {"message": "x", "password": PASSWORD}, format="json").status_code in {401, 403}, url
    assert writes() == before


def test_session_login_works_as_the_token_does(queries, coordinator1):
    client = APIClient()
    client.force_login(coordinator1)
    response = client.post(f"/api/v1/queries/{queries[1].pk}/answer/", {"message": "ok"}, format="json")
    assert response.status_code == 200


def test_only_json_is_accepted(queries, coordinator1):
    response = api(coordinator1).post(f"/api/v1/queries/{queries[1].pk}/answer/", {"message": "ok"}, format="multipart")
    assert response.status_code == 415
    assert Query.objects.get(pk=queries[1].pk).state == QueryState.OPEN


# --- Schema ------------------------------------------------------------------------------------------------


def test_schema_describes_the_review_endpoints_with_examples(site1):
    paths = schema_reader().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    examples = {
        ("/api/v1/queries/", "post", "201"),
        ("/api/v1/queries/{id}/answer/", "post", "200"),
        ("/api/v1/visits/{visit_id}/forms/{form_code}/verify/", "post", "200"),
        ("/api/v1/visits/{visit_id}/sign/", "post", "201"),
        ("/api/v1/locks/", "post", "201"),
        ("/api/v1/locks/", "post", "409"),
    }
    for path, method, status in examples:
        operation = paths[path][method]
        assert operation["requestBody"]["content"]["application/json"]["examples"], path
        assert operation["responses"][status]["content"]["application/json"]["examples"], (path, status)
        assert {"403", "404"} <= set(operation["responses"]), path
    for path in ("/api/v1/queries/{id}/", "/api/v1/signatures/", "/api/v1/locks/{id}/release/"):
        assert path in paths
    assert "/api/v1/queries/{id}/close/" in paths and "/api/v1/queries/{id}/reopen/" in paths
    assert "/api/v1/participants/{participant_id}/sign/" in paths
