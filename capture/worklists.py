"""The worklists of captured data and its review: forms to finish, to verify and to lock, visits and casebooks to
sign, queries to answer or close (see trial/worklists.py for what a worklist is).

Each selector is one queryset over the given sites, ordered on an indexed column, with EXISTS subqueries rather
than aggregates over item values, so a page of it costs the same at any size.
"""

import datetime
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from capture.models import FormInstance, FormState, Query, QueryState, Signature
from trial import access
from trial.access import Action
from trial.models import Participant, ParticipantStatus, Site, Visit, VisitProgress
from trial.worklists import WorkList

QUERY_AGES = ((0, 7), (8, 30), (31, None))  # days since raised: 0-7, 8-30, over 30


def _forms(site_ids: list[int]) -> QuerySet[FormInstance]:
    return FormInstance.objects.filter(visit__participant__site_id__in=site_ids).select_related(
        "visit__participant__site", "visit__definition", "definition"
    )


def forms_incomplete(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[FormInstance]:
    """Forms started and not complete, the longest untouched first."""
    return _forms(site_ids).filter(state=FormState.IN_PROGRESS).order_by("updated_at", "pk")


def forms_awaiting_sdv(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[FormInstance]:
    """Complete forms with an entered value not yet verified against the source (or changed since: a change clears
    the verification), oldest first. The form's SDV counters (capture/summaries.py, kept in the save's and the
    verification's transaction) decide, through the `form_awaiting_sdv` partial index."""
    return (
        _forms(site_ids)
        .filter(state=FormState.COMPLETE, first_completed_at__isnull=False, sdv_verified__lt=F("sdv_entered"))
        .order_by("first_completed_at", "pk")
    )


def forms_ready_to_lock(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[FormInstance]:
    """Complete, every entered value verified, signed, no open or answered query, and not locked: oldest first.
    The form's counters (capture/summaries.py) decide, through the `form_ready_to_lock` partial index."""
    return (
        _forms(site_ids)
        .filter(state=FormState.COMPLETE, signed=True, locked=False, first_completed_at__isnull=False)
        .filter(sdv_verified__gte=F("sdv_entered"), queries_unresolved=0)
        .order_by("first_completed_at", "pk")
    )


def visits_to_sign(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[Visit]:
    """Completed visits whose data no valid signature covers, the earliest visit first."""
    unsigned = FormInstance.objects.filter(visit_id=OuterRef("pk"), signed=False)
    return (
        Visit.objects.filter(participant__site_id__in=site_ids, progress=VisitProgress.COMPLETE)
        .filter(Exists(unsigned))
        .select_related("participant__site", "definition")
        .order_by("window_end", "pk")
    )


def casebooks_to_sign(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[Participant]:
    """Participants who left the schedule (completed, withdrawn or died) without a valid casebook signature."""
    signed = Signature.objects.filter(participant_id=OuterRef("pk"), visit__isnull=True, voided_at__isnull=True)
    ended = (ParticipantStatus.COMPLETED, ParticipantStatus.WITHDRAWN, ParticipantStatus.DIED)
    return (
        Participant.objects.filter(site_id__in=site_ids, status__in=ended)
        .filter(~Exists(signed))
        .select_related("site")
        .order_by("pk")
    )


def _queries(site_ids: list[int]) -> QuerySet[Query]:
    return Query.objects.filter(participant__site_id__in=site_ids).select_related(
        "participant__site", "visit__definition", "form", "item"
    )


def queries_to_answer(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[Query]:
    """Open queries at the sites where the user enters data, the oldest first."""
    return _queries(site_ids).filter(state=QueryState.OPEN).order_by("created_at", "pk")


def queries_to_close(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[Query]:
    """Queries the site answered, waiting for the reviewer to close or re-open them, the oldest first."""
    return _queries(site_ids).filter(state=QueryState.ANSWERED).order_by("created_at", "pk")


def queries_over_30_days(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[Query]:
    """Open queries raised more than 30 days ago (the query inbox's "older than 30 days"), the oldest first."""
    cutoff = now - datetime.timedelta(days=30)
    return _queries(site_ids).filter(state=QueryState.OPEN, created_at__lt=cutoff).order_by("created_at", "pk")


INCOMPLETE_FORMS = WorkList(
    key="incomplete_forms",
    title=_("Incomplete forms"),
    action=Action.ENTER_DATA,
    select=forms_incomplete,
    template="capture/worklists/_forms.html",
    url_name="inbox:forms_incomplete",
)
QUERIES_TO_ANSWER = WorkList(
    key="queries_to_answer",
    title=_("Queries waiting for your answer"),
    action=Action.ENTER_DATA,
    select=queries_to_answer,
    template="capture/worklists/_queries.html",
    url_name="inbox:mine",
    url_query={"state": QueryState.OPEN},
)
QUERIES_TO_CLOSE = WorkList(
    key="queries_to_close",
    title=_("Answered queries to close"),
    action=Action.RAISE_QUERY,
    select=queries_to_close,
    template="capture/worklists/_queries.html",
    url_name="inbox:queries",
    url_query={"state": QueryState.ANSWERED},
)
FORMS_AWAITING_SDV = WorkList(
    key="sdv_forms",
    title=_("Forms awaiting source data verification"),
    action=Action.VERIFY,
    select=forms_awaiting_sdv,
    template="capture/worklists/_forms.html",
    url_name="inbox:sdv_forms",
)
FORMS_TO_LOCK = WorkList(
    key="forms_to_lock",
    title=_("Forms ready to lock"),
    action=Action.LOCK,
    select=forms_ready_to_lock,
    template="capture/worklists/_forms.html",
    url_name="inbox:forms_to_lock",
)
QUERIES_OVER_30_DAYS = WorkList(
    key="queries_over_30_days",
    title=_("Queries open for more than 30 days"),
    action=Action.RAISE_QUERY,
    select=queries_over_30_days,
    template="capture/worklists/_queries.html",
    url_name="inbox:queries",
    url_query={"state": QueryState.OPEN, "older_than": "30"},
)
VISITS_TO_SIGN = WorkList(
    key="visits_to_sign",
    title=_("Visits awaiting your signature"),
    action=Action.SIGN,
    select=visits_to_sign,
    template="capture/worklists/_visits_to_sign.html",
    url_name="inbox:visits_to_sign",
)
CASEBOOKS_TO_SIGN = WorkList(
    key="casebooks_to_sign",
    title=_("Casebooks awaiting your signature"),
    action=Action.SIGN,
    select=casebooks_to_sign,
    template="capture/worklists/_casebooks.html",
    url_name="inbox:casebooks_to_sign",
)


# --- Query ageing per site ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgeingCell:
    low: int
    high: int | None
    count: int  # open queries raised between low and high days ago
    url: str  # the query inbox narrowed to exactly those


@dataclass(frozen=True)
class AgeingRow:
    site: Site
    cells: list[AgeingCell]


def query_ageing(user: object, *, now: datetime.datetime) -> list[AgeingRow]:
    """Open queries by age (0-7, 8-30, over 30 days) at each site the user reviews (one grouped query over queries,
    never over item values). The ranges match the query inbox's "older than"/"at most" filters."""
    site_ids = sorted(set(access.site_ids(user, Action.RAISE_QUERY)) | set(access.site_ids(user, Action.VERIFY)))
    open_query = Q(participants__queries__state=QueryState.OPEN)
    counts = {
        f"age_{low}": Count("participants__queries", filter=open_query & _age_range(low, high, now))
        for low, high in QUERY_AGES
    }
    sites = Site.objects.filter(pk__in=site_ids).annotate(**counts).order_by("number")
    return [AgeingRow(site=site, cells=[_cell(site, low, high) for low, high in QUERY_AGES]) for site in sites]


def _cell(site: Site, low: int, high: int | None) -> AgeingCell:
    query = urlencode({"site": site.number, **ageing_filters(low, high)})
    url = f"{reverse('inbox:queries')}?{query}"
    return AgeingCell(low=low, high=high, count=getattr(site, f"age_{low}"), url=url)


def _age_range(low: int, high: int | None, now: datetime.datetime) -> Q:
    """Raised between `low` and `high` whole days ago: "older than low - 1 days" and "at most high days old"."""
    condition = Q()
    if low:
        condition &= Q(participants__queries__created_at__lt=now - datetime.timedelta(days=low - 1))
    if high is not None:
        condition &= Q(participants__queries__created_at__gte=now - datetime.timedelta(days=high))
    return condition


def ageing_filters(low: int, high: int | None) -> dict[str, str]:
    """The query inbox's filters that list exactly the open queries of an age range."""
    filters = {"state": QueryState.OPEN}
    if low:
        filters["older_than"] = str(low - 1)
    if high is not None:
        filters["newer_than"] = str(high)
    return filters
