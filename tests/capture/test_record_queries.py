"""Queries on records that are not items of a visit (the safety app's adverse events), through capture.records.

The record type here is the tests' own (`participant_note`, tests/capture/conftest.py): a participant stands for the
record, so these tests need nothing of the app that will register real ones.
"""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from capture import records
from capture.errors import OpenQueriesError
from capture.models import Query, QueryEvent, QueryEventKind, QueryOrigin, QueryState
from capture.page_selectors import queries_of_record
from capture.review import (
    lock_set,
    query_answer,
    query_close,
    query_raise,
    query_raise_on_record,
    query_reopen,
)
from capture.services import form_save
from tests.api_clients import schema_reader
from tests.capture.conftest import NOTE
from tests.factories import enrolled, make_user
from tests.roles import ROLES, SEES
from trial.errors import AccessDenied, InvalidInput
from trial.models import AuditRecord, Role, Site

pytestmark = pytest.mark.django_db

RAISES = {"monitor", "datamanager"}


@pytest.fixture
def participant2(coordinator2, site2):
    return enrolled(coordinator2, site2, arm="CONV", days_ago=100)


@pytest.fixture
def note_query(participant_note, monitor, participant):
    """An open query on the initials of the site 1 participant's note."""
    return query_raise_on_record(
        user=monitor, record_type=NOTE, record_id=participant.pk, field_code="initials", message="Initials on ICF?"
    )


@pytest.fixture
def monitor2(site2):
    """A monitor of site 2 only."""
    return make_user("monitor2", {site2: Role.MONITOR})


def writes() -> tuple:
    return (
        sorted(Query.objects.values_list("pk", "state")),
        QueryEvent.objects.count(),
        AuditRecord.objects.count(),
    )


def api(user: object) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- Services ----------------------------------------------------------------------------------------------


def test_a_record_query_goes_through_the_whole_thread(note_query, monitor, coordinator1, participant):
    assert (note_query.participant, note_query.visit, note_query.form, note_query.item) == (
        participant,
        None,
        None,
        None,
    )
    assert (note_query.record_type, note_query.record_id, note_query.field_code) == (NOTE, participant.pk, "initials")
    assert note_query.on_record and note_query.origin == QueryOrigin.MANUAL

    query_answer(user=coordinator1, query_id=note_query.pk, message="ZW, as on the consent form.")
    query_reopen(user=monitor, query_id=note_query.pk, message="The consent form says ZWW.")
    query_answer(user=coordinator1, query_id=note_query.pk, message="Corrected.")
    query = query_close(user=monitor, query_id=note_query.pk)

    assert query.state == QueryState.CLOSED and query.closed_by == monitor
    assert list(query.events.values_list("kind", "author__username", "state_after")) == [
        (QueryEventKind.RAISED, "monitor", "open"),
        (QueryEventKind.ANSWERED, "coordinator1", "answered"),
        (QueryEventKind.REOPENED, "monitor", "open"),
        (QueryEventKind.ANSWERED, "coordinator1", "answered"),
        (QueryEventKind.CLOSED, "monitor", "closed"),
    ]
    assert AuditRecord.objects.filter(object_type="query", object_id=str(query.pk)).count() == 5


def test_raising_on_a_record_is_audited_with_the_record(note_query, participant, site1):
    row = AuditRecord.objects.get(object_type="query", object_id=str(note_query.pk))
    assert (row.username, row.participant_id, row.site_id, row.action) == ("monitor", participant.pk, site1.pk, "raise")
    # The record type and field in the columns a visit query fills with its form and item.
    assert (row.form_code, row.item_code) == (NOTE, "initials")
    assert (row.old_value, row.new_value, row.reason) == ("", QueryState.OPEN, "Initials on ICF?")


def test_a_query_on_the_whole_record(participant_note, datamanager, participant):
    query = query_raise_on_record(user=datamanager, record_type=NOTE, record_id=participant.pk, message="Complete?")
    assert (query.field_code, query.state) == ("", QueryState.OPEN)
    assert AuditRecord.objects.get(object_type="query", object_id=str(query.pk)).item_code == ""


def test_another_sites_monitor_and_staff_do_not_find_the_record_or_its_query(
    note_query, monitor2, coordinator2, participant
):
    before = writes()
    with pytest.raises(Http404):
        query_raise_on_record(user=monitor2, record_type=NOTE, record_id=participant.pk, message="Not my site")
    with pytest.raises(Http404):
        query_close(user=monitor2, query_id=note_query.pk)
    with pytest.raises(Http404):
        query_answer(user=coordinator2, query_id=note_query.pk, message="Not my site")
    assert writes() == before


@pytest.mark.parametrize("role", ["coordinator1", "investigator1", "sponsor"])
def test_only_monitors_and_data_managers_raise_on_a_record(request, participant_note, participant, role):
    before = writes()
    with pytest.raises(AccessDenied):
        query_raise_on_record(
            user=request.getfixturevalue(role), record_type=NOTE, record_id=participant.pk, message="May I?"
        )
    assert writes() == before


def test_site_staff_answer_and_monitors_close_a_record_query(note_query, coordinator1, monitor):
    with pytest.raises(AccessDenied):
        query_close(user=coordinator1, query_id=note_query.pk)
    with pytest.raises(AccessDenied):
        query_answer(user=monitor, query_id=note_query.pk, message="I answer myself")


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"message": ""}, "message"),
        ({"message": "   "}, "message"),
        ({"field_code": "ALT"}, "field_code"),  # an item code is not a field of this record
        ({"record_type": "lab_sample"}, "record_type"),  # nobody registered it
    ],
)
def test_refused_input_is_a_field_error_and_nothing_is_saved(participant_note, monitor, participant, fields, key):
    before = writes()
    with pytest.raises(InvalidInput) as error:
        query_raise_on_record(
            user=monitor, **{"record_type": NOTE, "record_id": participant.pk, "message": "Why?", **fields}
        )
    assert list(error.value.errors) == [key]
    assert writes() == before


def test_a_record_that_does_not_exist_is_404(participant_note, monitor, site1):
    with pytest.raises(Http404):
        query_raise_on_record(user=monitor, record_type=NOTE, record_id=999999, message="?")
    assert not Query.objects.exists()


def test_a_participant_lock_counts_open_record_queries_a_visit_lock_does_not(note_query, datamanager, participant, m3):
    lock_set(user=datamanager, participant_id=participant.pk, visit_id=m3.pk)
    with pytest.raises(OpenQueriesError) as error:
        lock_set(user=datamanager, participant_id=participant.pk)
    assert error.value.open_queries == 1


def test_queries_of_record_lists_the_records_threads_in_two_queries(
    participant_note,
    note_query,
    monitor,
    coordinator1,
    coordinator2,
    participant,
    participant2,
    django_assert_num_queries,
):
    query_answer(user=coordinator1, query_id=note_query.pk, message="Checked.")
    whole = query_raise_on_record(user=monitor, record_type=NOTE, record_id=participant.pk, message="Complete?")
    query_close(user=monitor, query_id=whole.pk)
    query_raise_on_record(user=monitor, record_type=NOTE, record_id=participant2.pk, message="Other record")
    with django_assert_num_queries(2):
        found = queries_of_record(coordinator1, NOTE, participant.pk)
        threads = [[event.kind for event in query.thread] for query in found]
    assert [query.pk for query in found] == [note_query.pk, whole.pk]  # open and answered ones first
    assert threads == [["raised", "answered"], ["raised", "closed"]]
    assert queries_of_record(coordinator2, NOTE, participant.pk) == []


# --- The model ---------------------------------------------------------------------------------------------


def test_visit_queries_name_the_visits_participant(coordinator1, monitor, m3):
    form_save(
        user=coordinator1,
        visit_id=m3.pk,
        form_code="LIVER",
        version=0,
        values={"LBDAT": str(m3.target_date), "BILI": "15", "BILDIR": "20"},  # direct above total: automatic query
    )
    query_raise(user=monitor, visit_id=m3.pk, form_code="LIVER", item_code="ALT", message="ALT?")
    queries = Query.objects.select_related("visit")
    assert {query.origin for query in queries} == {QueryOrigin.AUTOMATIC, QueryOrigin.MANUAL}
    assert all(query.participant_id == query.visit.participant_id == m3.participant_id for query in queries)


@pytest.mark.parametrize(
    "target",
    [
        {},  # neither a visit nor a record
        {"record_type": NOTE},  # a record without its id
        {"record_id": 1},  # an id without its kind
        {"visit": "m3", "record_type": NOTE, "record_id": 1},  # both
        {"visit": "m3", "field_code": "initials"},  # a record's field on a visit
    ],
)
def test_the_database_refuses_a_query_on_neither_or_both(m3, participant, target):
    target = {key: m3 if value == "m3" else value for key, value in target.items()}
    with pytest.raises(IntegrityError), transaction.atomic():
        Query.objects.create(
            participant=participant, origin=QueryOrigin.MANUAL, message="?", created_at=timezone.now(), **target
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_participant_of_existing_queries_from_their_visit(coordinator1, monitor, m3):
    m0 = m3.participant.visits.get(definition__code="M0")
    other = enrolled(coordinator1, m3.participant.site, days_ago=100).visits.get(definition__code="M3")
    raised = [
        query_raise(user=monitor, visit_id=visit.pk, form_code="LIVER", message="?").pk for visit in (m3, m0, other)
    ]
    executor = MigrationExecutor(connection)
    executor.migrate([("capture", "0003_review")])  # the participant column goes
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # and comes back, filled from the visit

    queries = Query.objects.filter(pk__in=raised).select_related("visit")
    assert len(queries) == 3
    assert all(query.participant_id == query.visit.participant_id for query in queries)
    assert {query.participant_id for query in queries} == {m3.participant_id, other.participant_id}


# --- The registry ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Adverse-Event", "a_record_type_name_too_long", "", "1note"])
def test_a_record_type_is_a_short_lower_case_name(name):
    with pytest.raises(ImproperlyConfigured):
        records.register(name, label=str, url=str, participant_for=None, fields=dict)
    assert name not in records.registered()


def test_a_record_type_is_registered_once(participant_note):
    with pytest.raises(ImproperlyConfigured):
        records.register(NOTE, label=str, url=str, participant_for=None, fields=dict)
    assert records.find(NOTE) is participant_note


def test_a_query_on_a_kind_no_longer_registered_is_named_by_type_and_id(note_query, participant):
    records.unregister(NOTE)
    [query] = records.describe([Query.objects.get(pk=note_query.pk)])
    assert (query.record_label, query.record_url, query.record_field) == (f"{NOTE} {participant.pk}", "", "initials")


def test_labels_are_read_once_per_kind_whatever_the_number_of_queries(
    participant_note, monitor, participant, participant2, django_assert_num_queries
):
    for record in (participant, participant2, participant):
        query_raise_on_record(user=monitor, record_type=NOTE, record_id=record.pk, message="?")
    queries = list(Query.objects.all())
    with django_assert_num_queries(1):
        records.describe(queries)
    labels = {query.record_id: query.record_label for query in queries}
    assert labels == {record.pk: f"Note on {record.screening_number}" for record in (participant, participant2)}


# --- Pages -------------------------------------------------------------------------------------------------


def test_the_inboxes_list_record_queries_with_the_records_label_and_link(
    as_user, note_query, coordinator1, coordinator2, monitor, participant
):
    url = reverse("trial:participant_detail", args=[participant.pk])
    for user, page in ((coordinator1, "inbox:mine"), (monitor, "inbox:queries")):
        response = as_user(user).get(reverse(page))
        assert [row.query.pk for row in response.context["rows"]] == [note_query.pk]
        content = response.content.decode()
        assert f"Note on {participant.screening_number}" in content
        assert 'data-field="initials">Initials</span>' in content
        assert f'href="{url}"' in content
    assert as_user(coordinator2).get(reverse("inbox:mine")).context["rows"] == []


@pytest.mark.parametrize(
    ("params", "listed"),
    [
        ({"site": "1"}, {"note"}),
        ({"site": "2"}, {"other"}),
        ({"participant": "first"}, {"note"}),
        ({"state": "open"}, {"note", "other"}),
        ({"form": "LIVER"}, set()),  # a record has no form
    ],
)
def test_the_query_list_filters_record_queries_by_site_and_participant(
    as_user, note_query, monitor, participant, participant2, params, listed
):
    other = query_raise_on_record(user=monitor, record_type=NOTE, record_id=participant2.pk, message="?")
    if params.get("participant") == "first":
        params = {"participant": participant.subject_id}
    response = as_user(monitor).get(reverse("inbox:queries"), params)
    ids = {"note": note_query.pk, "other": other.pk}
    assert {row.query.pk for row in response.context["rows"]} == {ids[name] for name in listed}


def test_the_query_page_of_a_record_query_and_its_steps(
    as_user, client, note_query, coordinator1, coordinator2, participant
):
    page = reverse("review:query", args=[note_query.pk])
    assert as_user(coordinator2).get(page).status_code == 404
    response = as_user(coordinator1).get(page)
    assert response.status_code == 200
    content = response.content.decode()
    assert f"Note on {participant.screening_number}" in content and "Initials" in content
    assert 'formaction="{}"'.format(reverse("review:query_answer", args=[note_query.pk])) in content

    answered = client.post(reverse("review:query_answer", args=[note_query.pk]), {"message": "As on the ICF."})
    assert answered.status_code == 302
    assert answered.url == reverse("trial:participant_detail", args=[participant.pk]) + f"#query-{note_query.pk}"
    assert Query.objects.get(pk=note_query.pk).state == QueryState.ANSWERED


def raise_url(participant):
    return reverse("review:record_query_raise", args=[NOTE, participant.pk])


def test_monitor_raises_a_record_query_from_its_page(as_user, participant_note, monitor, participant):
    client = as_user(monitor)
    page = client.get(raise_url(participant), {"field": "date_of_birth"})
    assert page.status_code == 200
    assert "Date of birth" in page.content.decode()
    response = client.post(raise_url(participant), {"field_code": "date_of_birth", "message": "DOB on source?"})
    query = Query.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("trial:participant_detail", args=[participant.pk]) + f"#query-{query.pk}"
    assert (query.record_type, query.record_id, query.field_code) == (NOTE, participant.pk, "date_of_birth")


@pytest.mark.parametrize(
    ("body", "message"),
    [({"message": ""}, "Write a message."), ({"field_code": "X", "message": "?"}, "X is not a field")],
)
def test_a_refused_record_query_is_explained_and_writes_nothing(
    as_user, participant_note, monitor, participant, body, message
):
    before = writes()
    response = as_user(monitor).post(raise_url(participant), body)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert writes() == before


def test_the_record_query_page_is_refused_to_other_sites_and_roles(
    as_user, participant_note, coordinator1, monitor2, participant
):
    assert as_user(coordinator1).get(raise_url(participant)).status_code == 403
    assert as_user(coordinator1).post(raise_url(participant), {"message": "?"}).status_code == 403
    assert as_user(monitor2).get(raise_url(participant)).status_code == 404
    assert as_user(monitor2).post(raise_url(participant), {"message": "?"}).status_code == 404
    unknown = reverse("review:record_query_raise", args=["lab_sample", participant.pk])
    assert as_user(monitor2).get(unknown).status_code == 404
    assert not Query.objects.exists()


# --- API ---------------------------------------------------------------------------------------------------


def record_body(participant, **fields) -> dict:
    return {
        "record_type": NOTE,
        "record_id": participant.pk,
        "field_code": "initials",
        "message": "Initials?",
        **fields,
    }


def test_the_api_raises_a_record_query_and_lists_it(participant_note, monitor, coordinator1, participant):
    response = api(monitor).post("/api/v1/queries/", record_body(participant), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    query = Query.objects.get()
    assert data | {"created_at": None, "events": None} == {
        "id": query.pk,
        "visit": None,
        "visit_code": None,
        "participant": participant.subject_id,
        "site": 1,
        "form": None,
        "item": None,
        "record_type": NOTE,
        "record_id": participant.pk,
        "field_code": "initials",
        "record_label": f"Note on {participant.screening_number}",
        "origin": QueryOrigin.MANUAL,
        "check_code": "",
        "state": QueryState.OPEN,
        "message": "Initials?",
        "created_at": None,
        "created_by": "monitor",
        "closed_at": None,
        "closed_by": None,
        "events": None,
    }
    listed = api(coordinator1).get("/api/v1/queries/", {"record_type": NOTE, "record_id": participant.pk}).json()
    assert [(item["id"], item["record_label"]) for item in listed["results"]] == [(query.pk, data["record_label"])]
    assert api(coordinator1).get("/api/v1/queries/", {"record_id": participant.pk + 1}).json()["results"] == []


@pytest.mark.parametrize("role", ROLES)
def test_api_raise_on_a_record_as_each_role_of_each_site(request, participant_note, participant, participant2, role):
    client = api(request.getfixturevalue(role))
    for site, record in ((1, participant), (2, participant2)):
        before = writes()
        response = client.post("/api/v1/queries/", record_body(record), format="json")
        assert response.status_code == (201 if role in RAISES else 403), (site, response.json())
        if response.status_code != 201:
            assert writes() == before


def test_api_raise_on_another_sites_record_is_404(participant_note, monitor2, participant):
    before = writes()
    response = api(monitor2).post("/api/v1/queries/", record_body(participant), format="json")
    assert response.status_code == 404
    assert writes() == before


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"message": " "}, "message"),
        ({"field_code": "ALT"}, "field_code"),
        ({"record_type": "lab_sample"}, "record_type"),
        ({"record_type": ""}, "record_type"),
        ({"record_id": None}, "record_id"),
        ({"record_id": 0}, "record_id"),
        ({"visit": "m3"}, "non_field_errors"),
        ({"form": "LIVER"}, "non_field_errors"),
    ],
)
def test_api_raise_on_a_record_refuses_bad_input_with_400(participant_note, monitor, participant, m3, fields, key):
    body = record_body(participant, **fields)
    body = {name: m3.pk if value == "m3" else value for name, value in body.items() if value is not None}
    before = writes()
    response = api(monitor).post("/api/v1/queries/", body, format="json")
    assert response.status_code == 400
    assert key in response.json()
    assert writes() == before


@pytest.mark.parametrize("role", ROLES)
def test_api_lists_and_shows_record_queries_only_to_their_sites(
    request, participant_note, monitor, participant, participant2, role
):
    queries = {
        site: query_raise_on_record(user=monitor, record_type=NOTE, record_id=record.pk, message="?").pk
        for site, record in ((1, participant), (2, participant2))
    }
    client = api(request.getfixturevalue(role))
    listed = {query["id"] for query in client.get("/api/v1/queries/").json()["results"]}
    assert listed == {queries[site] for site in SEES[role]}
    for site, pk in queries.items():
        assert client.get(f"/api/v1/queries/{pk}/").status_code == (200 if site in SEES[role] else 404)


def test_api_thread_of_a_record_query(note_query, monitor, coordinator1, coordinator2):
    url = f"/api/v1/queries/{note_query.pk}/"
    assert api(coordinator2).post(f"{url}answer/", {"message": "?"}, format="json").status_code == 404
    assert api(coordinator1).post(f"{url}close/", {}, format="json").status_code == 403
    answered = api(coordinator1).post(f"{url}answer/", {"message": "ZW on the ICF."}, format="json")
    assert (answered.status_code, answered.json()["state"]) == (200, QueryState.ANSWERED)
    closed = api(monitor).post(f"{url}close/", {}, format="json")
    assert (closed.status_code, closed.json()["state"], closed.json()["record_type"]) == (200, "closed", NOTE)


def test_the_schema_documents_raising_on_a_record(site1):
    schema = schema_reader().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/queries/"]["post"]
    assert "record_type" in operation["description"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert any(example["value"].get("record_type") for example in examples.values())
    raise_fields = schema["components"]["schemas"]["QueryRaiseRequest"]["properties"]
    assert {"visit", "record_type", "record_id", "field_code"} <= set(raise_fields)
    query_fields = schema["components"]["schemas"]["Query"]["properties"]
    assert {"record_type", "record_id", "field_code", "record_label"} <= set(query_fields)


def test_a_site_4_record_is_not_found_by_a_monitor_of_sites_1_to_3(participant_note, monitor, protocol):
    site4 = Site.objects.get(number=4)
    record = enrolled(make_user("coordinator4", {site4: Role.COORDINATOR}), site4, days_ago=10)
    response = api(monitor).post("/api/v1/queries/", record_body(record), format="json")
    assert response.status_code == 404
