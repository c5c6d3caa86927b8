"""The summary counters (capture/summaries.py): equal to the aggregates they stand for after any sequence of saves,
verifications and query actions, refused ones included; rebuilt set-based from bulk-loaded data; and the pages
that read them run the same number of SQL queries at 100 and at 1,000 participants."""

import datetime
import random

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Max, Q
from django.db.models.functions import Coalesce
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from capture import summaries
from capture.errors import LockedError, QueryTransitionError, StaleVersionError
from capture.models import FormInstance, ItemValue, ParticipantSummary, Query, QueryState, SiteSummary
from capture.review import items_verify, query_answer, query_close, query_raise, query_reopen
from capture.services import form_save
from tests.factories import enrolled, make_user
from tests.scale_data import grow
from trial.errors import InvalidInput
from trial.models import Participant, Role, Site

pytestmark = pytest.mark.django_db

ENTERED = Q(item__derived="") & ~Q(number__isnull=True, text="", date__isnull=True, missing_reason="")


def _expected_sdv(values: object) -> tuple[int, int, int]:
    counts = values.aggregate(
        entered=Count("pk", filter=ENTERED),
        verified=Count("pk", filter=ENTERED & Q(verified_at__isnull=False)),
        changed=Count("pk", filter=ENTERED & Q(changed_since_verification=True)),
    )
    return counts["entered"], counts["verified"], counts["changed"]


def _expected_queries(queries: object) -> tuple[int, int, int]:
    counts = queries.aggregate(**{state: Count("pk", filter=Q(state=state)) for state in QueryState.values})
    return counts["open"], counts["answered"], counts["closed"]


def _stored(row: object) -> tuple[int, ...]:
    return tuple(getattr(row, name) for name in summaries.COUNTERS)


def assert_counters_match_the_data() -> None:
    for form in FormInstance.objects.all():
        values = ItemValue.objects.filter(visit_id=form.visit_id, item__form_id=form.definition_id)
        assert (form.sdv_entered, form.sdv_verified, form.sdv_changed) == _expected_sdv(values), form
        unresolved = Query.objects.filter(visit_id=form.visit_id, form_id=form.definition_id).exclude(
            state=QueryState.CLOSED
        )
        assert form.queries_unresolved == unresolved.count(), form
    for participant in Participant.objects.all():
        expected = _expected_sdv(ItemValue.objects.filter(visit__participant=participant)) + _expected_queries(
            Query.objects.filter(participant=participant)
        )
        summary = ParticipantSummary.objects.filter(participant=participant).first()
        assert (_stored(summary) if summary else (0,) * 6) == expected, participant
    for site in Site.objects.all():
        expected = _expected_sdv(ItemValue.objects.filter(visit__participant__site=site)) + _expected_queries(
            Query.objects.filter(participant__site=site)
        )
        summary = SiteSummary.objects.filter(site=site).first()
        assert (_stored(summary) if summary else (0,) * 6) == expected, site
    activity = Query.objects.annotate(expected=Coalesce(Max("events__at"), "created_at"))
    assert all(query.last_activity_at == query.expected for query in activity)


def _snapshot() -> tuple:
    return (
        sorted(
            FormInstance.objects.values_list("pk", "sdv_entered", "sdv_verified", "sdv_changed", "queries_unresolved")
        ),
        sorted(ParticipantSummary.objects.values_list("pk", *summaries.COUNTERS)),
        sorted(SiteSummary.objects.filter(**{f"{c}__gt": 0 for c in summaries.COUNTERS[:1]}).values_list("pk")),
        sorted(Query.objects.values_list("pk", "last_activity_at")),
    )


class Actions:
    """Saves, verifications and query actions chosen at random, as a trial team would do them, wrong ones too."""

    REFUSED = (InvalidInput, StaleVersionError, QueryTransitionError, LockedError)

    def __init__(self, rng: random.Random, coordinators: dict, monitor: object, visits: list) -> None:
        self.rng, self.coordinators, self.monitor, self.visits = rng, coordinators, monitor, visits
        self.refused = 0

    def run(self, steps: int) -> None:
        for _ in range(steps):
            action = self.rng.choice([self.save, self.save, self.save, self.verify, self.raise_query, self.transition])
            try:
                action()
            except self.REFUSED:
                self.refused += 1

    def _version(self, visit: object, code: str) -> int:
        form = FormInstance.objects.filter(visit=visit, definition__code=code).first()
        version = form.version if form else 0
        return version if self.rng.random() > 0.1 else version + 1  # now and then a stale page

    def save(self) -> None:
        visit = self.rng.choice(self.visits)
        code = self.rng.choice(["LIVER", "KIDNEY"])
        items = ["ALT", "AST", "ALB", "BILI", "BILDIR"] if code == "LIVER" else ["BUN", "CREAT", "URATE"]
        values, missing = {"LBDAT": str(visit.target_date + datetime.timedelta(days=self.rng.choice([0, 0, 30])))}, {}
        for item in items:
            roll = self.rng.random()
            if roll < 0.15:
                missing[item] = "not_done"
            elif roll < 0.25:
                values[item] = self.rng.choice(["-1", "abc", "99999999"])  # refused: nothing may be half-saved
            elif roll < 0.85:
                values[item] = str(self.rng.randint(5, 60))
        form_save(
            user=self.coordinators[visit.participant.site_id],
            visit_id=visit.pk,
            form_code=code,
            version=self._version(visit, code),
            values=values,
            missing=missing,
            reason="Corrected from the source",
            partial=self.rng.random() < 0.3,
        )

    def verify(self) -> None:
        visit = self.rng.choice(self.visits)
        items_verify(user=self.monitor, visit_id=visit.pk, form_code=self.rng.choice(["LIVER", "KIDNEY"]))

    def raise_query(self) -> None:
        visit = self.rng.choice(self.visits)
        query_raise(user=self.monitor, visit_id=visit.pk, form_code="LIVER", item_code="ALT", message="Source?")

    def transition(self) -> None:
        query = Query.objects.order_by("?").select_related("participant").first()
        if query is None:
            return
        step = self.rng.choice(["answer", "close", "reopen"])
        if step == "answer":
            query_answer(user=self.coordinators[query.participant.site_id], query_id=query.pk, message="Checked")
        elif step == "close":
            query_close(user=self.monitor, query_id=query.pk)
        else:
            query_reopen(user=self.monitor, query_id=query.pk, message="Not resolved")


def test_counters_equal_the_aggregates_after_random_saves_verifications_and_query_actions(
    coordinator1, coordinator2, site1, site2
):
    monitor = make_user("monitor-both", {site1: Role.MONITOR, site2: Role.MONITOR})
    participants = [
        enrolled(coordinator1, site1, arm="MSC", days_ago=100),
        enrolled(coordinator1, site1, arm="CONV", days_ago=200),
        enrolled(coordinator2, site2, arm="MSC", days_ago=100),
    ]
    visits = [
        visit
        for participant in participants
        for visit in participant.visits.select_related("definition", "participant").filter(
            definition__code__in=["M0", "M3"]
        )
    ]
    actions = Actions(random.Random(1573923), {site1.pk: coordinator1, site2.pk: coordinator2}, monitor, visits)
    actions.run(60)
    assert actions.refused > 0  # the sequence tried refused writes too
    assert Query.objects.exclude(state=QueryState.OPEN).exists()
    assert ItemValue.objects.filter(changed_since_verification=True).exists()
    assert_counters_match_the_data()

    before = _snapshot()
    summaries.rebuild()  # rebuilt from the data: the same counters
    assert _snapshot() == before


def test_rebuild_brings_bulk_loaded_data_into_step(protocol, coordinator1):
    sites = list(Site.objects.order_by("number"))
    grow(30, protocol=protocol, sites=sites, user=coordinator1)
    SiteSummary.objects.update(sdv_entered=0, queries_open=7)  # counters out of step, as after a COPY
    FormInstance.objects.update(sdv_verified=0)
    Query.objects.update(last_activity_at=None)
    call_command("rebuild_summaries", stdout=open("/dev/null", "w"))  # noqa: SIM115, PTH123
    assert_counters_match_the_data()
    assert SiteSummary.objects.count() == len(sites)
    assert FormInstance.objects.filter(sdv_verified__gt=0).exists()


def test_a_refused_save_moves_no_counter(coordinator1, site1):
    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=100)
    visit = participant.visits.get(definition__code="M3")
    values = {"LBDAT": str(visit.target_date), "ALT": "30", "AST": "31"}
    form_save(user=coordinator1, visit_id=visit.pk, form_code="LIVER", version=0, values=values)
    before = _snapshot()
    with pytest.raises(InvalidInput):
        form_save(user=coordinator1, visit_id=visit.pk, form_code="LIVER", version=1, values={"ALT": "-3"})
    with pytest.raises(StaleVersionError):
        form_save(user=coordinator1, visit_id=visit.pk, form_code="LIVER", version=0, values={"ALT": "40"})
    assert _snapshot() == before
    assert ParticipantSummary.objects.get(participant=participant).sdv_entered == 3


# --- The pages that read them, at two sizes ------------------------------------------------------------------------

# (page, who) -> the SQL count, the same at both sizes: the session's user and memberships (cached after the first
# request), then the page's own reads, none of which aggregates item values or queries.
PAGES = {
    ("inbox:sdv", "manager"): 5,  # + sites with their summaries, count of participants, a page with summaries
    ("inbox:queries", "manager"): 5,  # + sites, site summaries (the total), a page of queries
    ("inbox:mine", "coordinator"): 4,  # + site summaries (counts and total), a page of queries
    # + sites, the sites' tallies, 25 + 1 rows of each of the four parts (the data has some of each), overdue notices
    ("safety:dashboard", "manager"): 9,
    ("safety:listing", "manager"): 5,  # + sites, the total (the sites' tallies), a page of events
    ("trial:matrix", "manager"): 7,
    ("trial:participant_list", "manager"): 5,
}


def _counts(clients: dict) -> dict:
    for who in clients:  # the session and the memberships, read (and cached) before counting
        clients[who].get(reverse("trial:matrix"))
    counts = {}
    for name, who in PAGES:
        with CaptureQueriesContext(connection) as queries:
            response = clients[who].get(reverse(name))
        assert response.status_code == 200, name
        counts[name, who] = len(queries)
    return counts


def test_pages_run_the_same_queries_at_100_and_1000_participants(protocol):
    sites = list(Site.objects.order_by("number"))
    manager = make_user("manager-all", dict.fromkeys(sites, Role.DATA_MANAGER))
    coordinator = make_user("coordinator-01", {sites[0]: Role.COORDINATOR})
    clients = {"manager": Client(), "coordinator": Client()}
    clients["manager"].force_login(manager)
    clients["coordinator"].force_login(coordinator)
    grow(100, protocol=protocol, sites=sites, user=coordinator)
    small = _counts(clients)
    grow(1000, protocol=protocol, sites=sites, user=coordinator)
    large = _counts(clients)
    assert small == large == PAGES
    sdv = clients["manager"].get(reverse("inbox:sdv"))
    assert sdv.context["page"].paginator.count == 1000
    assert sum(row.progress.entered for row in sdv.context["site_rows"]) == _expected_sdv(ItemValue.objects.all())[0]
    queries = clients["manager"].get(reverse("inbox:queries"))
    assert queries.context["page"].paginator.count == Query.objects.count()
    activity = [row.query.last_activity for row in queries.context["rows"]]
    assert activity == sorted(activity, reverse=True) and len(activity) == 50
    board = clients["manager"].get(reverse("safety:dashboard")).context["board"]
    assert len(board.open_events) == 25 and "open" in board.more
