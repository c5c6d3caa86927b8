"""Reads of the data-review inboxes and of source data verification (SDV) progress.

Every list of queries starts from capture.review.queries_visible (the user's sites), narrowed to the sites where
the user's role works on queries; every count from trial/access.py. Each page is a fixed number of SQL queries,
whatever the number of queries, threads, participants or item values, and none aggregates item values or queries:
counts come from the summaries capture/summaries.py keeps in step with every write, and lists are read a page at a
time in the order of an index (queries by their last activity, participants by subject id).
"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from capture import records
from capture.models import Query, QueryEvent, QueryState, SiteSummary
from capture.review import queries_visible
from trial import access
from trial.access import Action
from trial.models import Participant, Site
from trial.selectors import ON_SCHEDULE

# --- Who works on queries where --------------------------------------------------------------------------


def entry_site_ids(user: object) -> list[int]:
    """The sites where the user answers queries: those where they enter data."""
    return access.site_ids(user, Action.ENTER_DATA)


def review_site_ids(user: object) -> list[int]:
    """The sites where the user reviews data: raises queries or verifies values against the source."""
    return sorted(set(access.site_ids(user, Action.RAISE_QUERY)) | set(access.site_ids(user, Action.VERIFY)))


def review_sites(user: object) -> list[Site]:
    return list(access.sites(user).filter(pk__in=review_site_ids(user)).order_by("number"))


# --- Query lists -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryFilters:
    """What the monitor's list is narrowed to; an empty field narrows nothing."""

    site_number: int | None = None
    state: str = ""
    older_than_days: int | None = None
    newer_than_days: int | None = None  # raised at most this many days ago
    form_code: str = ""
    subject_id: str = ""
    origin: str = ""


@dataclass(frozen=True)
class QueryRow:
    query: Query
    age_days: int


def my_queries(user: object, *, state: str = "") -> QuerySet[Query]:
    """The queries waiting at the sites where the user enters data, newest activity first.

    Open and answered ones by default; `state` narrows to one state, and only "closed" shows closed ones.
    """
    queryset = _answered_by(user)
    if state in QueryState.values:
        queryset = queryset.filter(state=state)
    else:
        queryset = queryset.exclude(state=QueryState.CLOSED)
    return _listed(queryset)


def my_query_counts(user: object) -> dict[str, int]:
    """{state: number of queries} at the sites where the user enters data (one query, of the site summaries)."""
    return query_counts(entry_site_ids(user))


def query_counts(site_ids: list[int]) -> dict[str, int]:
    """{state: number of queries} at the given sites, from their summaries (one query, one row per site)."""
    totals = SiteSummary.objects.filter(site_id__in=site_ids).aggregate(
        **{state: Sum(f"queries_{state}") for state in QueryState.values}
    )
    return {state: totals[state] or 0 for state in QueryState.values}


def queries_total(site_ids: list[int], *, site_number: int | None = None, state: str | None = None) -> int:
    """How many queries the given sites (or the one of them numbered `site_number`) have, of one state or of
    all, from their summaries (one query, one row per site)."""
    summaries = SiteSummary.objects.filter(site_id__in=site_ids)
    if site_number is not None:
        summaries = summaries.filter(site__number=site_number)
    states = [state] if state in QueryState.values else QueryState.values
    counted = F(f"queries_{states[0]}")
    for name in states[1:]:
        counted = counted + F(f"queries_{name}")
    return summaries.aggregate(n=Sum(counted))["n"] or 0


def my_queries_total(counts: dict[str, int], state: str) -> int:
    """How many queries `my_queries(state=state)` lists, from `my_query_counts`: no count over the queries."""
    if state in QueryState.values:
        return counts[state]
    return counts[QueryState.OPEN] + counts[QueryState.ANSWERED]


def review_queries_total(sites: list[Site], filters: QueryFilters) -> int | None:
    """How many queries `review_queries` lists when only the site and the state narrow it, from the summaries of
    `sites` (the user's `review_sites`); None when another filter narrows it (the list is then counted)."""
    narrowing = (filters.older_than_days, filters.form_code, filters.subject_id, filters.origin)
    if any(value not in (None, "") for value in narrowing):
        return None
    ids = [site.pk for site in sites if filters.site_number in (None, site.number)]
    counts = query_counts(ids)
    return counts[filters.state] if filters.state in QueryState.values else sum(counts.values())


def review_queries(user: object, *, filters: QueryFilters, now: datetime.datetime) -> QuerySet[Query]:
    """Every query of the sites the user reviews, narrowed by `filters`, newest activity first."""
    queryset = queries_visible(user).filter(participant__site_id__in=review_site_ids(user))
    return _listed(queryset.filter(_conditions(filters, now)))


def query_rows(queries: Iterable[Query], *, now: datetime.datetime) -> list[QueryRow]:
    """The queries of one page with their age in whole days since they were raised; a query on a record with
    the record's label and link (capture.records.describe: one read per kind of record on the page)."""
    return [QueryRow(query=query, age_days=(now - query.created_at).days) for query in records.describe(queries)]


def _answered_by(user: object) -> QuerySet[Query]:
    return queries_visible(user).filter(participant__site_id__in=entry_site_ids(user))


def _conditions(filters: QueryFilters, now: datetime.datetime) -> Q:
    lookups: dict[str, object] = {
        "participant__site__number": filters.site_number,
        "state": filters.state,
        "form__code__iexact": filters.form_code,
        "participant__subject_id__iexact": filters.subject_id,
        "origin": filters.origin,
    }
    if filters.older_than_days is not None:
        lookups["created_at__lt"] = now - datetime.timedelta(days=filters.older_than_days)
    if filters.newer_than_days is not None:
        lookups["created_at__gte"] = now - datetime.timedelta(days=filters.newer_than_days)
    return Q(**{lookup: value for lookup, value in lookups.items() if value not in (None, "")})


def _listed(queryset: QuerySet[Query]) -> QuerySet[Query]:
    """What a row shows, joined in; the thread's latest message comes from a subquery, run for the rows of the
    page only, so a page is one SQL query however long the threads. The order is the stored last activity
    (kept by capture/summaries.py), read in its index's order. An automatic query has no thread: its own
    message counts."""
    events = QueryEvent.objects.filter(query=OuterRef("pk")).order_by("-at", "-pk")
    return (
        queryset.select_related("participant__site", "visit__definition", "form", "item")
        .annotate(
            last_activity=Coalesce(F("last_activity_at"), "created_at"),
            last_message=Coalesce(Subquery(events.exclude(text="").values("text")[:1]), "message"),
        )
        .order_by("-last_activity_at", "-pk")
    )


# --- Source data verification progress ------------------------------------------------------------------


@dataclass(frozen=True)
class SdvProgress:
    """Of the values a person entered (a value or the reason it is missing; derived items are computed, so never
    verified): how many a monitor verified, and how many changed since they were verified."""

    entered: int
    verified: int
    changed: int

    @property
    def percent(self) -> int | None:
        # Rounded down: 100 % only when every entered value is verified.
        return self.verified * 100 // self.entered if self.entered else None


@dataclass(frozen=True)
class SdvRow:
    subject: Site | Participant
    progress: SdvProgress


def sdv_by_site(user: object) -> list[SdvRow]:
    """One row per site the user reviews, in site order (one query, of the site summaries)."""
    sites = access.sites(user).filter(pk__in=review_site_ids(user))
    return sdv_rows(sites.annotate(**_sdv_counts()).order_by("number"))


def sdv_of_sites(site_ids: list[int]) -> list[SdvRow]:
    """One row per given site, in site order (one query, of the site summaries): the sponsor's overview."""
    sites = Site.objects.filter(pk__in=site_ids)
    return sdv_rows(sites.annotate(**_sdv_counts()).order_by("number"))


def sdv_participants(user: object, *, site_number: int | None = None) -> QuerySet[Participant]:
    """The participants with a visit schedule at the sites the user reviews, each annotated with its counts (from
    its summary), in subject id order: the site's number leads the subject id (01-0001), so this is site order
    too, read in the order of the subject id's unique index."""
    return _sdv_scope(user, site_number).select_related("site").annotate(**_sdv_counts()).order_by("subject_id")


def sdv_participants_total(user: object, *, site_number: int | None = None) -> int:
    """How many `sdv_participants` lists, counted without the summaries' join (from the site and status index)."""
    return _sdv_scope(user, site_number).count()


def _sdv_scope(user: object, site_number: int | None) -> QuerySet[Participant]:
    participants = access.participants(user).filter(site_id__in=review_site_ids(user), status__in=ON_SCHEDULE)
    if site_number is not None:
        participants = participants.filter(site__number=site_number)
    return participants


def sdv_rows(annotated: Iterable[Site | Participant]) -> list[SdvRow]:
    """Rows of sites or participants annotated with the counts of `_sdv_counts`."""
    return [
        SdvRow(subject=obj, progress=SdvProgress(entered=obj.entered, verified=obj.verified, changed=obj.changed))
        for obj in annotated
    ]


def _sdv_counts() -> dict[str, Coalesce]:
    """A site's or participant's counts, from its summary (joined; none yet: zeros)."""
    return {name: Coalesce(F(f"capture_summary__sdv_{name}"), 0) for name in ("entered", "verified", "changed")}
