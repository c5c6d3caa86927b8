"""Safety tables: reported adverse events by protocol grade and by relationship, the serious ones listed, lab
values graded by CTCAE, and deaths. Listings carry coded fields and the event term only, never the free-text
description, which may name people or places."""

import datetime
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet

from reports.statistics.scope import cutoff_day, enrolled
from safety.models import AdverseEvent, AdverseEventStatus, DeathReport, LabGrading
from trial.models import Participant


def reported_events(participants: QuerySet[Participant], *, cutoff: datetime.datetime) -> QuerySet[AdverseEvent]:
    """Adverse events reported by the cut-off: created by then and, for a lab proposal, confirmed by then."""
    return AdverseEvent.objects.filter(
        Q(decided_at__isnull=True) | Q(decided_at__lte=cutoff),
        participant__in=enrolled(participants, cutoff),
        status=AdverseEventStatus.REPORTED,
        created_at__lte=cutoff,
    )


def adverse_events_by_grade(
    participants: QuerySet[Participant], *, cutoff: datetime.datetime
) -> dict[tuple[int, str], tuple[int, int]]:
    """{(protocol grade, arm code): (events, participants with such an event)} (one query)."""
    return _counted(reported_events(participants, cutoff=cutoff), "grade")


def adverse_events_by_relationship(
    participants: QuerySet[Participant], *, cutoff: datetime.datetime
) -> dict[tuple[str, str], tuple[int, int]]:
    """{(relationship, arm code): (events, participants with such an event)} (one query)."""
    return _counted(reported_events(participants, cutoff=cutoff), "relationship")


def participants_with_events(
    participants: QuerySet[Participant], *, cutoff: datetime.datetime
) -> dict[str, tuple[int, int, int]]:
    """{arm code: (events, participants with any event, participants with a serious event)} (one query)."""
    rows = (
        reported_events(participants, cutoff=cutoff)
        .values("participant__arm__code")
        .annotate(
            events=Count("pk"),
            any=Count("participant", distinct=True),
            serious=Count("participant", distinct=True, filter=Q(serious=True)),
        )
        .order_by()
    )
    return {row["participant__arm__code"]: (row["events"], row["any"], row["serious"]) for row in rows}


def _counted(events: QuerySet[AdverseEvent], field: str) -> dict[tuple, tuple[int, int]]:
    rows = (
        events.values(field, "participant__arm__code")
        .annotate(events=Count("pk"), people=Count("participant", distinct=True))
        .order_by()
    )
    return {(row[field], row["participant__arm__code"]): (row["events"], row["people"]) for row in rows}


@dataclass(frozen=True)
class SaeRow:
    subject_id: str
    site_number: int
    arm_code: str
    number: int
    term: str
    onset_date: datetime.date
    grade: int
    relationship: str
    outcome: str
    serious_criteria: list[str]

    @property
    def label(self) -> str:
        return f"AE-{self.number:03d}"


def serious_events(participants: QuerySet[Participant], *, cutoff: datetime.datetime) -> list[SaeRow]:
    """The serious adverse events reported by the cut-off, by site, subject and event number (one query)."""
    rows = (
        reported_events(participants, cutoff=cutoff)
        .filter(serious=True)
        .order_by("participant__site__number", "participant__subject_id", "number")
        .values_list(
            "participant__subject_id",
            "participant__site__number",
            "participant__arm__code",
            "number",
            "term",
            "onset_date",
            "grade",
            "relationship",
            "outcome",
            "serious_criteria",
        )
    )
    return [SaeRow(*row) for row in rows]


def lab_gradings(
    participants: QuerySet[Participant], *, cutoff: datetime.datetime
) -> dict[str, dict[tuple[int, str], tuple[int, int]]]:
    """{CTCAE term: {(grade, arm code): (graded values, participants)}} of the values graded 1 or worse by the
    cut-off (one query). A participant is counted once per grade and term, however many visits reached it."""
    rows = (
        LabGrading.objects.filter(participant__in=enrolled(participants, cutoff), graded_at__lte=cutoff, grade__gte=1)
        .values("term", "grade", arm=F("participant__arm__code"))
        .annotate(values=Count("pk"), people=Count("participant", distinct=True))
        .order_by()
    )
    table: dict[str, dict[tuple[int, str], tuple[int, int]]] = defaultdict(dict)
    for row in rows:
        table[row["term"]][(row["grade"], row["arm"])] = (row["values"], row["people"])
    return dict(table)


@dataclass(frozen=True)
class DeathRow:
    subject_id: str
    site_number: int
    arm_code: str
    death_date: datetime.date
    days_from_enrolment: int
    cause: str
    relationship: str
    autopsy: bool


def deaths(participants: QuerySet[Participant], *, cutoff: datetime.datetime) -> list[DeathRow]:
    """The deaths reported by the cut-off, by date (one query)."""
    rows = (
        DeathReport.objects.filter(
            participant__in=enrolled(participants, cutoff),
            reported_at__lte=cutoff,
            death_date__lte=cutoff_day(cutoff),
        )
        .order_by("death_date", "participant__subject_id")
        .values_list(
            "participant__subject_id",
            "participant__site__number",
            "participant__arm__code",
            "death_date",
            "participant__enrolment_date",
            "cause",
            "relationship",
            "autopsy",
        )
    )
    return [
        DeathRow(subject, site, arm, died, (died - start).days, cause, relationship, autopsy)
        for subject, site, arm, died, start, cause, relationship, autopsy in rows
    ]
