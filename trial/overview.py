"""The trial's overview for the sponsor: enrolment over time against the target, and visit completion.

Each read is one grouped query over participants or visits of the given sites (never over item values).
"""

import datetime
from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import TruncMonth

from trial.models import Participant, Visit, VisitProgress

ENROLMENT_TARGET = 320  # the registry record's planned enrolment (NCT01573923)


@dataclass(frozen=True)
class EnrolmentPoint:
    month: datetime.date
    enrolled: int  # in that month
    cumulative: int


def enrolment_by_month(site_ids: list[int]) -> list[EnrolmentPoint]:
    """Participants enrolled per calendar month at the sites, with the running total (one query)."""
    months = (
        Participant.objects.filter(site_id__in=site_ids, enrolment_date__isnull=False)
        .annotate(month=TruncMonth("enrolment_date"))
        .order_by("month")
        .values("month")
        .annotate(enrolled=Count("pk"))
    )
    points, total = [], 0
    for row in months:
        total += row["enrolled"]
        points.append(EnrolmentPoint(month=row["month"], enrolled=row["enrolled"], cumulative=total))
    return points


@dataclass(frozen=True)
class VisitCompletion:
    expected: int  # visits whose window has closed
    complete: int
    missed: int

    @property
    def percent(self) -> int | None:
        return self.complete * 100 // self.expected if self.expected else None


def visit_completion(site_ids: list[int], *, today: datetime.date) -> VisitCompletion:
    """Of the visits whose window closed before today: how many were completed and how many missed (one query)."""
    closed = Visit.objects.filter(participant__site_id__in=site_ids, window_end__lt=today)
    counts = closed.aggregate(
        expected=Count("pk"),
        complete=Count("pk", filter=Q(progress=VisitProgress.COMPLETE)),
        missed=Count("pk", filter=Q(progress=VisitProgress.MISSED)),
    )
    return VisitCompletion(**counts)
