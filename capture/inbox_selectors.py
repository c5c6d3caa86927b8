"""Reads of the data-review inboxes and of source data verification (SDV) progress.

Every list of queries starts from capture.review.queries_visible (the user's sites), narrowed to the sites where
the user's role works on queries; every count from trial/access.py. Each page is a fixed number of SQL queries,
whatever the number of queries, threads, participants or item values.
"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from capture import records
from capture.models import Query, QueryEvent, QueryState
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
    """{state: number of queries} at the sites where the user enters data (one query)."""
    return _state_counts(_answered_by(user))


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
    """What a row shows, joined in; the thread's latest step and message come from subqueries, so a page of
    rows is one SQL query however long the threads. An automatic query has no thread: its own message counts."""
    events = QueryEvent.objects.filter(query=OuterRef("pk")).order_by("-at", "-pk")
    return (
        queryset.select_related("participant__site", "visit__definition", "form", "item")
        .annotate(
            last_activity=Coalesce(Subquery(events.values("at")[:1]), "created_at"),
            last_message=Coalesce(Subquery(events.exclude(text="").values("text")[:1]), "message"),
        )
        .order_by("-last_activity", "-pk")
    )


def _state_counts(queryset: QuerySet[Query]) -> dict[str, int]:
    return queryset.aggregate(**{state: Count("pk", filter=Q(state=state)) for state in QueryState.values})


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
    """One row per site the user reviews, in site order (one query)."""
    sites = access.sites(user).filter(pk__in=review_site_ids(user))
    return sdv_rows(sites.annotate(**_sdv_counts("participants__visits__item_values")).order_by("number"))


def sdv_of_sites(site_ids: list[int]) -> list[SdvRow]:
    """One row per given site, in site order (one query): the sponsor's overview of verification."""
    sites = Site.objects.filter(pk__in=site_ids)
    return sdv_rows(sites.annotate(**_sdv_counts("participants__visits__item_values")).order_by("number"))


def sdv_participants(user: object, *, site_number: int | None = None) -> QuerySet[Participant]:
    """The participants with a visit schedule at the sites the user reviews, each annotated with its counts."""
    participants = access.participants(user).filter(site_id__in=review_site_ids(user), status__in=ON_SCHEDULE)
    if site_number is not None:
        participants = participants.filter(site__number=site_number)
    return (
        participants.select_related("site")
        .annotate(**_sdv_counts("visits__item_values"))
        .order_by("site__number", "subject_id")
    )


def sdv_rows(annotated: Iterable[Site | Participant]) -> list[SdvRow]:
    """Rows of sites or participants annotated with the counts of `_sdv_counts`."""
    return [
        SdvRow(subject=obj, progress=SdvProgress(entered=obj.entered, verified=obj.verified, changed=obj.changed))
        for obj in annotated
    ]


def _sdv_counts(path: str) -> dict[str, Count]:
    """Counts of a site's or participant's item values reached through `path`, in the one grouped query."""
    entered = Q(**{f"{path}__item__derived": ""}) & ~Q(
        **{
            f"{path}__number__isnull": True,
            f"{path}__text": "",
            f"{path}__date__isnull": True,
            f"{path}__missing_reason": "",
        }
    )
    return {
        "entered": Count(path, filter=entered),
        "verified": Count(path, filter=entered & Q(**{f"{path}__verified_at__isnull": False})),
        "changed": Count(path, filter=entered & Q(**{f"{path}__changed_since_verification": True})),
    }
