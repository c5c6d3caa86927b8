"""The home page as every role's worklist: the right items and not another site's, every count a link to a list of
exactly those items, and a number of SQL queries that does not grow with the trial."""

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from capture import summaries
from capture.models import FormInstance, Query, QueryState
from capture.review import items_verify
from reports import home
from tests.factories import make_user
from tests.reports.home_data import Work, work_at
from trial.models import Role, Site

pytestmark = pytest.mark.django_db


@pytest.fixture
def work(coordinator1, coordinator2, site1, site2) -> dict[int, Work]:
    return {1: work_at(site1, coordinator1, 2), 2: work_at(site2, coordinator2, 2)}


def shown_lists(response) -> dict[str, home.ShownList]:
    return {item.worklist.key: item for section in response.context["sections"] for item in section.lists}


def pks(objects) -> set[int]:
    return {obj.pk for obj in objects}


def listed(client, url: str) -> set[int]:
    """The primary keys of every item of the list page at `url`, across its pages."""
    response = client.get(url)
    assert response.status_code == 200, url
    return {obj.pk for obj in response.context["page"].paginator.object_list}


# --- Each role sees its work, at its sites only --------------------------------------------------------------


def test_coordinator_sees_visits_forms_queries_and_candidates_of_their_site(as_user, coordinator1, work):
    response = as_user(coordinator1).get(reverse("trial:dashboard"))
    lists = shown_lists(response)
    assert set(lists) == {"visits", "incomplete_forms", "queries_to_answer", "candidates"}
    mine, other = work[1], work[2]
    assert pks(lists["incomplete_forms"].rows) == pks(mine.incomplete_forms)
    assert pks(lists["queries_to_answer"].rows) == pks(
        mine.queries["open_3"] + mine.queries["open_10"] + mine.queries["open_40"]
    )
    assert pks(lists["candidates"].rows) == pks(mine.candidates)
    # M0 is done; M3 (day 91 +/- 14) is due at 100 days: one visit to do per participant.
    assert {(v.participant_id, v.definition.code) for v in lists["visits"].rows} == {
        (p.pk, "M3") for p in mine.participants
    }
    content = response.content.decode()
    for participant in other.participants:
        assert participant.subject_id not in content
    assert other.candidates[0].screening_number not in content
    assert "Coordinator" in content or "coordinator" in content.lower()


def test_monitor_sees_answered_queries_sdv_forms_ageing_and_progress_of_their_sites(as_user, monitor, work, site1):
    # The monitor reviews sites 1-3; site 4's work is not theirs.
    site4 = Site.objects.get(number=4)
    outside = work_at(site4, make_user("coord4", {site4: Role.COORDINATOR}), 1)
    response = as_user(monitor).get(reverse("trial:dashboard"))
    lists = shown_lists(response)
    assert set(lists) == {"queries_to_close", "sdv_forms"}
    assert pks(lists["sdv_forms"].rows) == pks(work[1].sdv_forms + work[2].sdv_forms)
    assert pks(lists["queries_to_close"].rows) == pks(work[1].queries["answered"] + work[2].queries["answered"])
    monitor_data = response.context["monitor"]
    assert [(row.number, row.count) for row in monitor_data.get("sdv_by_site")] == [(1, 2), (2, 2)]
    ageing = {row.site.number: [cell.count for cell in row.cells] for row in monitor_data["ageing"]}
    assert ageing == {1: [2, 2, 2], 2: [2, 2, 2], 3: [0, 0, 0]}
    assert [row.subject.number for row in monitor_data["sdv_progress"]] == [1, 2, 3]
    content = response.content.decode()
    assert outside.participants[0].subject_id not in content


def test_investigator_sees_signatures_proposals_and_the_sae_clock_of_their_site(as_user, investigator1, work):
    response = as_user(investigator1).get(reverse("trial:dashboard"))
    lists = shown_lists(response)
    assert set(lists) == {"visits_to_sign", "casebooks_to_sign", "events_to_sign", "proposals", "serious"}
    mine = work[1]
    assert {v.participant_id for v in lists["visits_to_sign"].rows} == pks(mine.participants)
    assert {v.definition.code for v in lists["visits_to_sign"].rows} == {"M0"}
    assert pks(lists["events_to_sign"].rows) == pks(mine.events["unsigned"])
    assert pks(lists["proposals"].rows) == pks(mine.events["proposed"])
    assert pks(lists["serious"].rows) == pks(mine.events["serious"])
    assert lists["casebooks_to_sign"].count == 0  # every participant is still on schedule
    content = response.content.decode()
    assert "left" in content  # the 24-hour clock: 22 hours left
    assert "OVERDUE" not in content
    for participant in work[2].participants:
        assert participant.subject_id not in content


def test_a_serious_event_past_24_hours_shows_overdue(as_user, investigator1, work):
    serious = work[1].events["serious"][0]
    type(serious).objects.filter(pk=serious.pk).update(expedited_at=timezone.now() - datetime.timedelta(hours=25))
    content = as_user(investigator1).get(reverse("trial:dashboard")).content.decode()
    assert "OVERDUE" in content


def test_data_manager_sees_forms_to_lock_old_queries_and_the_audit_verification(as_user, datamanager, work):
    response = as_user(datamanager).get(reverse("trial:dashboard"))
    lists = shown_lists(response)
    assert set(lists) == {"forms_to_lock", "queries_over_30_days"}
    assert pks(lists["forms_to_lock"].rows) == pks(work[1].lock_forms + work[2].lock_forms)
    assert pks(lists["queries_over_30_days"].rows) == pks(work[1].queries["open_40"] + work[2].queries["open_40"])
    assert response.context["data_manager"]["audit"] == {"verified_at": None, "intact": None}
    assert b"has not been verified yet" in response.content


def test_a_form_with_an_open_query_or_an_unverified_value_is_not_ready_to_lock(as_user, datamanager, work):
    form = work[1].lock_forms[0]
    Query.objects.filter(visit=form.visit).update(form=form.definition)  # now open queries sit on it
    summaries.rebuild()  # the update bypassed the services that keep the form's query counter
    lists = shown_lists(as_user(datamanager).get(reverse("trial:dashboard")))
    assert form.pk not in pks(lists["forms_to_lock"].rows)
    assert lists["forms_to_lock"].count == 3


def test_data_manager_sees_when_the_chain_was_last_verified(as_user, datamanager, work):
    from trial.anchors import audit_check

    audit_check(full=True, source="test")
    response = as_user(datamanager).get(reverse("trial:dashboard"))
    audit = response.context["data_manager"]["audit"]
    assert audit["intact"] is True and audit["verified_at"] is not None
    assert b"Hash chain last verified" in response.content


def test_sponsor_sees_the_trial_overview(as_user, sponsor, work):
    response = as_user(sponsor).get(reverse("trial:dashboard"))
    data = response.context["sponsor"]
    assert data["enrolled"] == 4 and data["target"] == 320
    assert [point.cumulative for point in data["enrolment"]] == [4]
    assert data["open_queries"] == 12  # three open per participant
    assert data["sdv_percent"] == 50  # one of the two entered values of each participant is verified
    assert data["serious"].count == 4
    assert data["completion"].expected == 4 and data["completion"].complete == 4  # each M0
    content = response.content.decode()
    assert '<svg id="enrolment-chart" role="img"' in content
    assert 'id="enrolment-table"' in content
    assert "<script" not in content.split('id="enrolment-chart"')[1].split("</svg>")[0]
    assert "Variceal bleeding" not in content  # the sponsor reads codes, never free text
    assert data["latest_report"] is None and b"No report generated yet" in content.encode()


def test_a_user_with_two_roles_sees_both_sections_each_at_its_site(as_user, site1, site2, work):
    user = make_user("both", {site1: Role.COORDINATOR, site2: Role.MONITOR})
    response = as_user(user).get(reverse("trial:dashboard"))
    assert [section.role for section in response.context["sections"]] == [Role.COORDINATOR, Role.MONITOR]
    lists = shown_lists(response)
    assert pks(lists["incomplete_forms"].rows) == pks(work[1].incomplete_forms)
    assert pks(lists["sdv_forms"].rows) == pks(work[2].sdv_forms)


def test_an_outsider_has_no_work_and_no_list(as_user, outsider, work):
    client = as_user(outsider)
    response = client.get(reverse("trial:dashboard"))
    assert response.context["sections"] == []
    assert b"not a member of any site" in response.content
    for name in ("inbox:sdv_forms", "inbox:forms_to_lock", "trial:work_visits", "safety:work_proposals"):
        assert client.get(reverse(name)).status_code == 403


# --- Every count links to exactly its items -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["coordinator1", "investigator1", "monitor", "datamanager", "sponsor"])
def test_every_count_links_to_a_list_of_exactly_those_items(request, as_user, work, role):
    user = request.getfixturevalue(role)
    client = as_user(user)
    response = client.get(reverse("trial:dashboard"))
    lists = list(shown_lists(response).values())
    if response.context["sponsor"]:
        lists.append(response.context["sponsor"]["serious"])
    assert lists
    for item in lists:
        assert f'href="{item.url}"'.replace("&", "&amp;") in response.content.decode()
        expected = pks(item.worklist.items(user, now=timezone.now()))
        assert len(expected) == item.count
        assert listed(client, item.url) == expected, item.worklist.key


def test_monitor_site_and_ageing_links_list_exactly_their_items(as_user, monitor, work):
    client = as_user(monitor)
    data = client.get(reverse("trial:dashboard")).context["monitor"]
    for row in data["sdv_by_site"]:
        assert listed(client, row.url) == pks(work[row.number].sdv_forms)
    ages = {0: "open_3", 8: "open_10", 31: "open_40"}
    for row in data["ageing"]:
        for cell in row.cells:
            expected = pks(work[row.site.number].queries[ages[cell.low]]) if row.site.number in work else set()
            assert listed(client, cell.url) == expected
            assert cell.count == len(expected)


def test_site_table_counts_link_to_the_visits_behind_them(as_user, coordinator1, work):
    client = as_user(coordinator1)
    response = client.get(reverse("trial:dashboard"))
    [row] = response.context["rows"]
    due = listed(client, f"{reverse('trial:work_visits')}?site=1&state=due")
    overdue = listed(client, f"{reverse('trial:work_visits')}?site=1&state=overdue")
    assert len(due) == row.visits_due == 2
    assert len(overdue) == row.visits_overdue == 0


# --- The list pages: oldest first, bounded, hostile filters --------------------------------------------------


def test_sdv_forms_list_is_oldest_first_and_links_to_the_form_page(as_user, monitor, work):
    FormInstance.objects.filter(pk=work[2].sdv_forms[1].pk).update(
        first_completed_at=timezone.now() - datetime.timedelta(days=300)
    )
    response = as_user(monitor).get(reverse("inbox:sdv_forms"))
    rows = list(response.context["page"].object_list)
    assert rows[0].pk == work[2].sdv_forms[1].pk
    first = rows[0]
    assert reverse("capture:form", args=[first.visit_id, first.definition.code]) in response.content.decode()


def test_a_verified_form_leaves_the_sdv_list(as_user, monitor, work):
    form = work[1].sdv_forms[0]
    assert form.pk in listed(as_user(monitor), reverse("inbox:sdv_forms"))
    items_verify(user=monitor, visit_id=form.visit_id, form_code=form.definition.code)
    assert form.pk not in listed(as_user(monitor), reverse("inbox:sdv_forms"))


@pytest.mark.parametrize(
    "query",
    [
        {"site": "abc"},
        {"site": "4"},  # a site the monitor does not review
        {"site": "1' OR 1=1 --"},
        {"state": "<script>"},
        {"page": "999999"},
        {"page": "-1"},
        {"site": "9" * 40},
    ],
)
def test_hostile_filters_narrow_nothing_and_reveal_nothing(as_user, monitor, work, query):
    outside_site = Site.objects.get(number=4)
    outside = work_at(outside_site, make_user("coord4", {outside_site: Role.COORDINATOR}), 1)
    client = as_user(monitor)
    response = client.get(reverse("inbox:sdv_forms"), query)
    assert response.status_code == 200
    shown = {obj.pk for obj in response.context["page"].paginator.object_list}
    assert shown == pks(work[1].sdv_forms + work[2].sdv_forms)
    assert not shown & pks(outside.sdv_forms)
    assert "<script>" not in response.content.decode()


def test_the_site_filter_narrows_to_one_site(as_user, monitor, work):
    assert listed(as_user(monitor), f"{reverse('inbox:sdv_forms')}?site=2") == pks(work[2].sdv_forms)


def test_another_sites_coordinator_cannot_reach_site_1_work(as_user, coordinator2, work):
    client = as_user(coordinator2)
    assert listed(client, f"{reverse('inbox:forms_incomplete')}?site=1") == pks(work[2].incomplete_forms)
    assert client.get(reverse("inbox:sdv_forms")).status_code == 403  # not a monitor
    assert client.get(reverse("inbox:visits_to_sign")).status_code == 403  # not an investigator


def test_query_inbox_newer_than_filter_rejects_nonsense(as_user, monitor, work):
    client = as_user(monitor)
    everything = listed(client, reverse("inbox:queries"))
    assert listed(client, f"{reverse('inbox:queries')}?newer_than=-5") == everything
    assert listed(client, f"{reverse('inbox:queries')}?newer_than=abc") == everything
    recent = listed(client, f"{reverse('inbox:queries')}?newer_than=7&state=open")
    assert recent == pks(work[1].queries["open_3"] + work[2].queries["open_3"])


# --- A fixed number of SQL queries at any size -----------------------------------------------------------------

# The user and memberships (2), the site table (4), then one per list (its first rows with the whole list's count in
# a window) and each role's figures.
EXPECTED_QUERIES = {
    # Each list shown costs two queries: its first rows and its count up to COUNT_CAP.
    "coordinator1": 14,  # 4 lists
    "investigator1": 16,  # 5 lists
    "monitor": 13,  # 2 lists, SDV forms by site, query ageing, SDV progress
    "datamanager": 10,  # 2 lists
    "sponsor": 13,  # enrolment, completion, open queries, SDV, serious, latest report
}


def home_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("trial:dashboard")).status_code == 200
    return len(captured)


@pytest.mark.parametrize("role", list(EXPECTED_QUERIES))
def test_home_runs_the_same_number_of_queries_at_10_and_500_participants(
    request, as_user, site1, site2, coordinator1, django_assert_num_queries, role
):
    client = as_user(request.getfixturevalue(role))
    work_at(site1, coordinator1, 10)
    client.get(reverse("trial:dashboard"))  # the session and the protocol caches, once
    with django_assert_num_queries(EXPECTED_QUERIES[role]):
        small = client.get(reverse("trial:dashboard"))
    work_at(site1, coordinator1, 490)
    with django_assert_num_queries(EXPECTED_QUERIES[role]):
        large = client.get(reverse("trial:dashboard"))
    lists_small, lists_large = shown_lists(small), shown_lists(large)
    for key, item in lists_large.items():
        assert len(item.rows) <= 10  # the home shows the first rows only
        assert item.count >= lists_small[key].count


def test_query_ageing_is_per_state_open_only(monitor, work):
    Query.objects.filter(pk=work[1].queries["open_40"][0].pk).update(state=QueryState.CLOSED)
    rows = home.capture_lists.query_ageing(monitor, now=timezone.now())
    ageing = {row.site.number: [cell.count for cell in row.cells] for row in rows}
    assert ageing[1] == [2, 2, 1]
    assert parse_qs(urlsplit(rows[0].cells[1].url).query) == {
        "site": ["1"],
        "state": ["open"],
        "older_than": ["7"],
        "newer_than": ["30"],
    }


def test_enrolment_chart_runs_month_by_month_towards_the_target(as_user, sponsor, coordinator1, site1, site2):
    work_at(site1, coordinator1, 3, days_ago=100)
    work_at(site2, coordinator1, 2, days_ago=5)
    work_at(Site.objects.get(number=3), coordinator1, 1, days_ago=5)
    response = as_user(sponsor).get(reverse("trial:dashboard"))
    data = response.context["sponsor"]
    points = data["enrolment"]
    assert (points[0].enrolled, points[0].cumulative) == (3, 3)
    assert (points[-1].enrolled, points[-1].cumulative) == (3, 6)
    assert all(point.enrolled == 0 and point.cumulative == 3 for point in points[1:-1])  # months without enrolment
    assert [point.month.month for point in points][:2] == [points[0].month.month, points[0].month.month % 12 + 1]
    chart = data["chart"]
    first, last = chart["points"][0], chart["points"][-1]
    assert first.x == chart["pad"] and last.x == chart["right"]  # the first month on the left, the last on the right
    assert chart["bottom"] > first.y > last.y > chart["target_y"]  # rising, still below the target of 320
    assert chart["target_y"] == chart["pad"]  # the target is the top of the scale while enrolment is below it
    assert response.content.decode().count("<tr><td>20") == len(points)  # the text alternative: a row per month


def test_a_list_longer_than_the_cap_is_counted_to_the_cap_and_listed_up_to_it(as_user, datamanager, work, monkeypatch):
    from trial import worklists

    monkeypatch.setattr(worklists, "COUNT_CAP", 2)
    client = as_user(datamanager)
    lists = shown_lists(client.get(reverse("trial:dashboard")))
    item = lists["forms_to_lock"]
    assert (item.count, item.more) == (2, True)
    assert len(item.rows) == 4  # the rows shown are the list's first ones, not cut by the cap
    content = client.get(reverse("trial:dashboard")).content.decode()
    assert "data-count-link>2+</a>" in content and "More than 2" in content
    page = client.get(item.url)
    assert page.context["page"].paginator.count == 2 and page.context["page"].paginator.more
    assert len(page.context["rows"]) == 2
    assert 'id="worklist-capped"' in page.content.decode()
    monkeypatch.setattr(worklists, "COUNT_CAP", 4)
    page = client.get(item.url)
    assert (page.context["page"].paginator.count, page.context["page"].paginator.more) == (4, False)
    assert 'id="worklist-capped"' not in page.content.decode()
