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
    by_month = {_month(row["month"]): row["enrolled"] for row in months}
    points, total = [], 0
    for month in _months_between(min(by_month, default=None), max(by_month, default=None)):
        total += by_month.get(month, 0)
        points.append(EnrolmentPoint(month=month, enrolled=by_month.get(month, 0), cumulative=total))
    return points


def _month(day: datetime.date | datetime.datetime) -> datetime.date:
    return datetime.date(day.year, day.month, 1)


def _months_between(first: datetime.date | None, last: datetime.date | None) -> list[datetime.date]:
    """Every month from the first to the last: a month without enrolment is a flat step, not a gap in time."""
    months = []
    while first is not None and first <= last:
        months.append(first)
        first = datetime.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return months


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
