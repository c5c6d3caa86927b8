"""Data quality at the cut-off: open queries by site and age, source data verification progress, and complete
visits still waiting for the investigator's signature."""

import datetime
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from capture.inbox_selectors import SdvProgress
from capture.models import ItemValue, Query, Signature
from reports.statistics.scope import enrolled
from trial.models import Participant, Visit, VisitProgress

# Age of a query in whole days since it was raised: (label, youngest, oldest); None = no upper bound.
AGE_BUCKETS = (("0-7", 0, 7), ("8-30", 8, 30), (">30", 31, None))


@dataclass(frozen=True)
class QueryAges:
    by_bucket: dict[str, int]  # bucket label: open queries

    @property
    def total(self) -> int:
        return sum(self.by_bucket.values())


def open_queries_by_site(participants: QuerySet[Participant], *, cutoff: datetime.datetime) -> dict[int, QueryAges]:
    """{site id: open queries by age} of the queries raised by the cut-off and not closed by then (one query)."""
    still_open = Q(closed_at__isnull=True) | Q(closed_at__gt=cutoff)
    rows = (
        Query.objects.filter(still_open, participant__in=participants.values("pk"), created_at__lte=cutoff)
        .values("participant__site_id")
        .annotate(**{label: Count("pk", filter=_aged(cutoff, low, high)) for label, low, high in AGE_BUCKETS})
        .order_by()
    )
    return {
        row["participant__site_id"]: QueryAges({label: row[label] for label, _low, _high in AGE_BUCKETS})
        for row in rows
    }


def _aged(cutoff: datetime.datetime, low: int, high: int | None) -> Q:
    # Whole days of age <= n  <=>  raised less than n + 1 days before the cut-off.
    aged = Q(created_at__lte=cutoff - datetime.timedelta(days=low))
    if high is not None:
        aged &= Q(created_at__gt=cutoff - datetime.timedelta(days=high + 1))
    return aged


def sdv_by_site(participants: QuerySet[Participant], *, cutoff: datetime.datetime) -> dict[int, SdvProgress]:
    """{site id: SDV progress} of the values a person entered by the cut-off; derived items are never verified.

    `verified` counts values verified by the cut-off; `changed` those changed since their verification (one query).
    """
    entered = ItemValue.objects.filter(
        visit__participant__in=enrolled(participants, cutoff), updated_at__lte=cutoff, item__derived=""
    ).exclude(number__isnull=True, text="", date__isnull=True, missing_reason="")
    rows = (
        entered.values("visit__participant__site_id")
        .annotate(
            entered=Count("pk"),
            verified=Count("pk", filter=Q(verified_at__lte=cutoff)),
            changed=Count("pk", filter=Q(verified_at__lte=cutoff, changed_since_verification=True)),
        )
        .order_by()
    )
    return {
        row["visit__participant__site_id"]: SdvProgress(
            entered=row["entered"], verified=row["verified"], changed=row["changed"]
        )
        for row in rows
    }


@dataclass(frozen=True)
class SignatureCounts:
    complete: int  # visits complete
    unsigned: int  # of which no valid signature (of the visit or of the casebook) covers


def signatures_outstanding(
    participants: QuerySet[Participant], *, cutoff: datetime.datetime
) -> dict[int, SignatureCounts]:
    """{site id: complete visits, and those not signed at the cut-off} (one query)."""
    covering = Signature.objects.filter(
        Q(visit_id=OuterRef("pk")) | Q(visit__isnull=True),
        Q(voided_at__isnull=True) | Q(voided_at__gt=cutoff),
        participant_id=OuterRef("participant_id"),
        signed_at__lte=cutoff,
    )
    rows = (
        Visit.objects.filter(participant__in=enrolled(participants, cutoff), progress=VisitProgress.COMPLETE)
        .values("participant__site_id")
        .annotate(complete=Count("pk"), unsigned=Count("pk", filter=~Exists(covering)))
        .order_by()
    )
    return {
        row["participant__site_id"]: SignatureCounts(complete=row["complete"], unsigned=row["unsigned"]) for row in rows
    }
