"""The data-review inboxes: the site's queries, the monitor's query list, SDV progress, and the matrix badges."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from capture import summaries
from capture.models import Query, QueryEvent, QueryEventKind, QueryOrigin, QueryState
from capture.review import items_verify, query_answer, query_close, query_raise
from capture.services import form_save
from tests.capture.conftest import NOTE
from tests.factories import enrolled, make_user
from tests.trial.test_views import make_enrolled
from trial.models import ItemDefinition, Role, Site

pytestmark = pytest.mark.django_db

LIVER = {"ALT": "30", "AST": "30", "ALB": "42", "PREALB": "250", "BILI": "15", "BILDIR": "5"}
QUERY_PAGES = ["inbox:queries", "inbox:sdv"]


def save_liver(user, visit, version=0, reason="", **changes):
    values = {"LBDAT": str(visit.target_date), **LIVER, **changes}
    return form_save(
        user=user, visit_id=visit.pk, form_code="LIVER", version=version, values=values, reason=reason, complete=True
    )


def m3_of(participant):
    return participant.visits.select_related("definition").get(definition__code="M3")


@pytest.fixture
def participant2(coordinator2, site2):
    return enrolled(coordinator2, site2, arm="CONV", days_ago=100)


@pytest.fixture
def queries(coordinator1, monitor, m3, participant2):
    """Site 1: a manual query on ALT and an automatic one (BILDIR above BILI). Site 2: a manual query on CREAT."""
    save_liver(coordinator1, m3, BILDIR="20")
    return {
        "alt": query_raise(user=monitor, visit_id=m3.pk, form_code="LIVER", item_code="ALT", message="ALT on source?"),
        "automatic": Query.objects.get(visit=m3, origin=QueryOrigin.AUTOMATIC),
        "creat": query_raise(
            user=monitor, visit_id=m3_of(participant2).pk, form_code="KIDNEY", item_code="CREAT", message="Cr unit?"
        ),
    }


def shown(response):
    return {row.query.pk for row in response.context["rows"]}


# --- Who sees which page -----------------------------------------------------------------------------------

ROLES = ["coordinator1", "investigator1", "coordinator2", "monitor", "datamanager", "sponsor", "outsider"]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("coordinator1", {"alt", "automatic"}),
        ("investigator1", {"alt", "automatic"}),
        ("coordinator2", {"creat"}),
        ("monitor", None),
        ("datamanager", None),
        ("sponsor", None),
        ("outsider", None),
    ],
)
def test_my_queries_shows_the_sites_own_queries_to_site_staff_only(request, as_user, queries, role, expected):
    response = as_user(request.getfixturevalue(role)).get(reverse("inbox:mine"))
    if expected is None:
        assert response.status_code == 403
        assert b"ALT on source?" not in response.content
        return
    assert response.status_code == 200
    assert shown(response) == {queries[name].pk for name in expected}
    assert ("ALT on source?" in response.content.decode()) == ("alt" in expected)
    assert ("Cr unit?" in response.content.decode()) == ("creat" in expected)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("monitor", {"alt", "automatic", "creat"}),
        ("datamanager", {"alt", "automatic", "creat"}),
        ("coordinator1", None),
        ("investigator1", None),
        ("coordinator2", None),
        ("sponsor", None),
        ("outsider", None),
    ],
)
def test_query_list_is_for_monitors_and_data_managers(request, as_user, queries, role, expected):
    client = as_user(request.getfixturevalue(role))
    response = client.get(reverse("inbox:queries"))
    if expected is None:
        assert response.status_code == 403
        assert b"ALT on source?" not in response.content
        assert client.get(reverse("inbox:sdv")).status_code == 403
        return
    assert response.status_code == 200
    assert shown(response) == {queries[name].pk for name in expected}
    assert client.get(reverse("inbox:sdv")).status_code == 200


@pytest.mark.parametrize("name", ["inbox:mine", *QUERY_PAGES])
def test_anonymous_is_redirected_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_a_monitor_sees_only_the_sites_they_monitor(as_user, queries, monitor, datamanager):
    site4 = Site.objects.get(number=4)
    coordinator4 = make_user("coordinator4", {site4: Role.COORDINATOR})
    visit4 = m3_of(enrolled(coordinator4, site4, days_ago=100))
    far = query_raise(user=datamanager, visit_id=visit4.pk, form_code="LIVER", item_code="AST", message="Site 4")
    for params in ({}, {"site": "4"}):
        response = as_user(monitor).get(reverse("inbox:queries"), params)
        assert far.pk not in shown(response)
    assert far.pk in shown(as_user(datamanager).get(reverse("inbox:queries"), {"site": "4"}))
    assert shown(as_user(coordinator4).get(reverse("inbox:mine"))) == {far.pk}


@pytest.mark.parametrize(
    ("role", "mine", "review"),
    [
        ("coordinator1", True, False),
        ("investigator1", True, False),
        ("monitor", False, True),
        ("datamanager", False, True),
        ("sponsor", False, False),
        ("outsider", False, False),
    ],
)
def test_navbar_links_follow_the_role(request, as_user, role, mine, review):
    content = as_user(request.getfixturevalue(role)).get(reverse("trial:dashboard")).content.decode()
    assert (f'href="{reverse("inbox:mine")}"' in content) == mine
    assert (f'href="{reverse("inbox:queries")}"' in content) == review
    assert (f'href="{reverse("inbox:sdv")}"' in content) == review


# --- My queries --------------------------------------------------------------------------------------------


def test_my_queries_counts_hides_closed_and_links_to_the_item(as_user, coordinator1, monitor, queries, m3):
    query_answer(user=coordinator1, query_id=queries["alt"].pk, message="Source says 30.")
    client = as_user(coordinator1)
    response = client.get(reverse("inbox:mine"))
    assert response.context["counts"]["open"] == 1
    assert response.context["counts"]["answered"] == 1
    content = response.content.decode()
    assert 'data-count="open">Open: 1' in content
    assert 'data-count="answered">Answered: 1' in content
    assert f'href="{reverse("capture:form", args=[m3.pk, "LIVER"])}#item-ALT"' in content
    assert f'href="{reverse("capture:form", args=[m3.pk, "LIVER"])}#item-BILDIR"' in content

    query_close(user=monitor, query_id=queries["alt"].pk)
    assert shown(client.get(reverse("inbox:mine"))) == {queries["automatic"].pk}
    assert shown(client.get(reverse("inbox:mine"), {"state": "closed"})) == {queries["alt"].pk}
    assert shown(client.get(reverse("inbox:mine"), {"state": "open"})) == {queries["automatic"].pk}


def test_my_queries_shows_the_last_message_newest_activity_first(as_user, coordinator1, monitor, queries, m3):
    later = query_raise(user=monitor, visit_id=m3.pk, form_code="LIVER", item_code="AST", message="AST too?")
    query_answer(user=coordinator1, query_id=queries["alt"].pk, message="Checked: 30 on the report.")
    rows = as_user(coordinator1).get(reverse("inbox:mine")).context["rows"]
    assert [row.query.pk for row in rows] == [queries["alt"].pk, later.pk, queries["automatic"].pk]
    messages = {row.query.pk: row.query.last_message for row in rows}
    assert messages[queries["alt"].pk] == "Checked: 30 on the report."
    assert messages[later.pk] == "AST too?"
    # An automatic query has no thread: its own message is the last word.
    assert messages[queries["automatic"].pk] == queries["automatic"].message
    assert {row.query.state for row in rows} == {QueryState.OPEN, QueryState.ANSWERED}


def test_age_is_counted_in_days_since_raised(as_user, coordinator1, queries):
    Query.objects.filter(pk=queries["alt"].pk).update(created_at=timezone.now() - datetime.timedelta(days=12, hours=1))
    rows = as_user(coordinator1).get(reverse("inbox:mine")).context["rows"]
    ages = {row.query.pk: row.age_days for row in rows}
    assert ages == {queries["alt"].pk: 12, queries["automatic"].pk: 0}


# --- The monitor's query list -----------------------------------------------------------------------------


@pytest.fixture
def more_queries(queries, monitor, coordinator1, m3):
    """Besides `queries`: a closed KIDNEY query at site 1, and the ALT query backdated by ten days."""
    closed = query_raise(user=monitor, visit_id=m3.pk, form_code="KIDNEY", item_code="BUN", message="BUN date?")
    query_close(user=monitor, query_id=closed.pk)
    Query.objects.filter(pk=queries["alt"].pk).update(created_at=timezone.now() - datetime.timedelta(days=10))
    return {**queries, "closed": closed}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"alt", "automatic", "creat", "closed"}),
        ({"site": "1"}, {"alt", "automatic", "closed"}),
        ({"site": "2"}, {"creat"}),
        ({"state": "closed"}, {"closed"}),
        ({"state": "open"}, {"alt", "automatic", "creat"}),
        ({"older_than": "7"}, {"alt"}),
        ({"form": "kidney"}, {"creat", "closed"}),
        ({"participant": "subject2"}, {"creat"}),
        ({"origin": "automatic"}, {"automatic"}),
        ({"origin": "manual", "site": "1", "state": "open"}, {"alt"}),
        ({"older_than": "soon", "site": "2"}, {"creat"}),  # an invalid filter narrows nothing
    ],
)
def test_query_list_filters(as_user, monitor, more_queries, participant2, params, expected):
    if params.get("participant") == "subject2":
        params = {**params, "participant": participant2.subject_id.lower()}
    response = as_user(monitor).get(reverse("inbox:queries"), params)
    assert response.status_code == 200
    assert shown(response) == {more_queries[name].pk for name in expected}


def test_query_list_shows_site_origin_and_link(as_user, monitor, queries, participant2):
    content = as_user(monitor).get(reverse("inbox:queries")).content.decode()
    visit2 = m3_of(participant2)
    assert f'href="{reverse("capture:form", args=[visit2.pk, "KIDNEY"])}#item-CREAT"' in content
    assert participant2.subject_id in content
    assert str(QueryOrigin.AUTOMATIC.label) in content
    assert "3 queries" in content


# --- Constant query counts --------------------------------------------------------------------------------


def bulk_queries(visit, count, *, monitor, coordinator, record_type=""):
    """`count` manual queries on the visit's ALT, every other one answered, each with its thread's events. With
    `record_type`, on the visit's participant as a record of that kind instead."""
    alt = ItemDefinition.objects.get(form__protocol=visit.participant.protocol, form__code="LIVER", code="ALT")
    target = {"visit": visit, "form": alt.form, "item": alt}
    if record_type:
        target = {"record_type": record_type, "record_id": visit.participant_id, "field_code": "initials"}
    now = timezone.now()
    created = Query.objects.bulk_create(
        Query(
            participant_id=visit.participant_id,
            **target,
            origin=QueryOrigin.MANUAL,
            state=QueryState.ANSWERED if n % 2 else QueryState.OPEN,
            message=f"Question {n}",
            created_at=now - datetime.timedelta(days=n % 40, minutes=n),
            created_by=monitor,
        )
        for n in range(count)
    )
    events = []
    for n, query in enumerate(created):
        raised = QueryEvent(
            query=query,
            kind=QueryEventKind.RAISED,
            author=monitor,
            at=query.created_at,
            text=query.message,
            state_after=QueryState.OPEN,
        )
        events.append(raised)
        if n % 2:
            events.append(
                QueryEvent(
                    query=query,
                    kind=QueryEventKind.ANSWERED,
                    author=coordinator,
                    at=query.created_at + datetime.timedelta(hours=1),
                    text=f"Answer {n}",
                    state_after=QueryState.ANSWERED,
                )
            )
    QueryEvent.objects.bulk_create(events)
    summaries.rebuild()  # loaded past the services, as a dataset builder does: the counters follow


# User and memberships (the session comes from the cache), then the page's own reads.
EXPECTED_QUERIES = {
    # + the site summaries (counts by state, and the total), one page of queries with their last message
    ("inbox:mine", "coordinator1"): 4,
    # + sites of the filter, their summaries (the total), one page of queries with their last message
    ("inbox:queries", "monitor"): 5,
}


@pytest.mark.parametrize("count", [10, 500])
@pytest.mark.parametrize(("name", "role"), list(EXPECTED_QUERIES))
def test_query_lists_run_a_constant_number_of_queries(
    request, as_user, coordinator1, monitor, m3, django_assert_num_queries, name, role, count
):
    bulk_queries(m3, count, monitor=monitor, coordinator=coordinator1)
    client = as_user(request.getfixturevalue(role))
    with django_assert_num_queries(EXPECTED_QUERIES[name, role]):
        response = client.get(reverse(name), {"site": "1"} if name == "inbox:queries" else {})
    assert response.status_code == 200
    rows = response.context["rows"]
    assert len(rows) == min(count, 50)
    assert response.context["page"].paginator.count == count
    assert rows[0].query.last_message == "Question 0"  # raised just now
    activity = [row.query.last_activity for row in rows]
    assert activity == sorted(activity, reverse=True)
    for row in rows:
        number = row.query.message.removeprefix("Question ")
        expected = f"Answer {number}" if row.query.state == QueryState.ANSWERED else row.query.message
        assert row.query.last_message == expected


@pytest.mark.parametrize("count", [10, 500])
@pytest.mark.parametrize(("name", "role"), list(EXPECTED_QUERIES))
def test_query_lists_with_record_queries_run_a_constant_number_of_queries(
    request, as_user, participant_note, coordinator1, monitor, m3, django_assert_num_queries, name, role, count
):
    bulk_queries(m3, count, monitor=monitor, coordinator=coordinator1)
    bulk_queries(m3, count, monitor=monitor, coordinator=coordinator1, record_type=NOTE)
    client = as_user(request.getfixturevalue(role))
    # One more: the labels of the page's records, in one read whatever their number.
    with django_assert_num_queries(EXPECTED_QUERIES[name, role] + 1):
        response = client.get(reverse(name), {"site": "1"} if name == "inbox:queries" else {})
    assert response.status_code == 200
    rows = response.context["rows"]
    assert len(rows) == min(2 * count, 50)
    assert response.context["page"].paginator.count == 2 * count
    assert {row.query.on_record for row in rows} == {True, False}
    label = f"Note on {m3.participant.screening_number}"
    assert {row.query.record_label for row in rows if row.query.on_record} == {label}
    assert response.content.decode().count(label) == sum(row.query.on_record for row in rows)


def test_sdv_page_runs_a_constant_number_of_queries(as_user, coordinator1, monitor, site1, django_assert_num_queries):
    make_enrolled(10, site1, coordinator1)
    client = as_user(monitor)
    # user, memberships, sites with their counts, count of participants, one page of participants with counts
    with django_assert_num_queries(5):
        small = client.get(reverse("inbox:sdv"))
    make_enrolled(120, Site.objects.get(number=2), coordinator1)
    with django_assert_num_queries(5):
        large = client.get(reverse("inbox:sdv"))
    assert len(small.context["rows"]) == 10
    assert len(large.context["rows"]) == 50
    assert large.context["page"].paginator.count == 130


# --- SDV progress ------------------------------------------------------------------------------------------


def test_sdv_counts_entered_verified_and_changed(as_user, coordinator1, monitor, m3, participant, participant2):
    save_liver(coordinator1, m3)  # 7 values: the sample date and six results
    form_save(user=coordinator1, visit_id=m3.pk, form_code="KIDNEY", version=0, missing={"BUN": "not_done"})
    assert items_verify(user=monitor, visit_id=m3.pk, form_code="LIVER") == 7
    corrected = {"LBDAT": str(m3.target_date), **LIVER, "ALT": "36"}
    del corrected["PREALB"]  # emptied: no longer a value to verify
    form_save(user=coordinator1, visit_id=m3.pk, form_code="LIVER", version=1, values=corrected, reason="Amended")

    response = as_user(monitor).get(reverse("inbox:sdv"))
    by_site = {row.subject.number: row.progress for row in response.context["site_rows"]}
    assert list(by_site) == [1, 2, 3]
    # 6 LIVER values and BUN, missing with a reason; ALT changed since it was verified.
    assert (by_site[1].entered, by_site[1].verified, by_site[1].changed) == (7, 5, 1)
    assert by_site[1].percent == 71  # rounded down: 100 only when all are verified
    assert (by_site[2].entered, by_site[2].percent) == (0, None)
    by_participant = {row.subject.pk: row.progress for row in response.context["rows"]}
    assert by_participant[participant.pk] == by_site[1]
    assert by_participant[participant2.pk].entered == 0
    content = response.content.decode()
    assert 'data-entered="7" data-verified="5" data-changed="1"' in content

    site2_only = as_user(monitor).get(reverse("inbox:sdv"), {"site": "2"})
    assert [row.subject.pk for row in site2_only.context["rows"]] == [participant2.pk]


# --- Open-query badges on the subject matrix --------------------------------------------------------------


def test_matrix_shows_the_open_query_count_of_each_visit(as_user, coordinator1, monitor, queries, m3):
    query_answer(user=coordinator1, query_id=queries["alt"].pk, message="Source says 30.")
    extra = query_raise(user=monitor, visit_id=m3.pk, form_code="LIVER", item_code="AST", message="AST?")
    query_close(user=monitor, query_id=extra.pk)
    response = as_user(coordinator1).get(reverse("trial:matrix"))
    [(_, cells)] = response.context["rows"]
    counts = {cell.visit.definition.code: cell.visit.open_queries for cell in cells if cell.visit}
    assert counts["M3"] == 2  # the open automatic one and the answered one; the closed one is not counted
    assert sum(counts.values()) == 2
    content = response.content.decode()
    assert content.count('data-open-queries="') == 1
    assert 'data-open-queries="2"' in content
