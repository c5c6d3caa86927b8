"""Screening and enrolment: screened, screen failures by failed criterion, enrolled by site and arm, and the
CONSORT-style flow of the enrolled through the clinic visits to death or withdrawal."""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet

from reports.statistics.scope import cutoff_day, enrolled
from reports.statistics.visits import visit_states
from trial.models import Participant, ParticipantStatus, VisitKind, VisitState


@dataclass(frozen=True)
class EnrolmentSummary:
    screened: int
    screen_failures: int
    eligible_not_enrolled: int
    failures_by_criterion: dict[str, int]  # criterion code: screen failures that failed it (one may fail several)
    enrolled_by_site_arm: dict[tuple[int, str], int]  # (site id, arm code): participants

    @property
    def enrolled(self) -> int:
        return sum(self.enrolled_by_site_arm.values())

    def enrolled_in_arm(self, arm_code: str) -> int:
        return sum(n for (_site, arm), n in self.enrolled_by_site_arm.items() if arm == arm_code)

    def enrolled_at_site(self, site_id: int) -> int:
        return sum(n for (site, _arm), n in self.enrolled_by_site_arm.items() if site == site_id)


def enrolment_summary(
    participants: QuerySet[Participant], *, cutoff: datetime.datetime, criterion_codes: list[str]
) -> EnrolmentSummary:
    """Two queries: the screening counts with one count per criterion, then enrolments by site and arm."""
    failed = Q(status=ParticipantStatus.SCREEN_FAILED)
    counts = participants.filter(created_at__lte=cutoff).aggregate(
        screened=Count("pk"),
        screen_failures=Count("pk", filter=failed),
        # Eligible at the cut-off: not yet enrolled then (an enrolment after it still shows as eligible).
        eligible=Count("pk", filter=Q(status=ParticipantStatus.ELIGIBLE) | Q(enrolled_at__gt=cutoff)),
        **{
            # The failed codes are a JSON list: its text holds the quoted code, and no code is another's prefix
            # once quoted, so a text match counts it on every backend.
            f"criterion_{code}": Count("pk", filter=failed & Q(screening__failed_criteria__icontains=f'"{code}"'))
            for code in criterion_codes
        },
    )
    by_site_arm = enrolled(participants, cutoff).values("site_id", "arm__code").annotate(n=Count("pk")).order_by()
    return EnrolmentSummary(
        screened=counts["screened"],
        screen_failures=counts["screen_failures"],
        eligible_not_enrolled=counts["eligible"],
        failures_by_criterion={
            code: counts[f"criterion_{code}"] for code in criterion_codes if counts[f"criterion_{code}"]
        },
        enrolled_by_site_arm={(row["site_id"], row["arm__code"]): row["n"] for row in by_site_arm},
    )


@dataclass
class VisitFlow:
    """Of one arm's enrolled participants, at one clinic visit: what became of the visit by the cut-off."""

    complete: int = 0
    missed: int = 0
    pending: int = 0  # in progress, due, overdue or not yet due
    off_schedule: int = 0  # no such visit any more: the schedule ended (death) before it


@dataclass
class ArmFlow:
    enrolled: int = 0
    visits: dict[str, VisitFlow] = field(default_factory=lambda: defaultdict(VisitFlow))
    died: int = 0
    withdrawn: int = 0
    completed: int = 0


@dataclass(frozen=True)
class ConsortFlow:
    visit_codes: list[str]
    arms: dict[str, ArmFlow]


def consort_flow(
    participants: QuerySet[Participant], *, cutoff: datetime.datetime, visit_codes: list[str]
) -> ConsortFlow:
    """Enrolled -> each clinic visit complete / missed / pending -> died, withdrawn or completed (two queries)."""
    scope = enrolled(participants, cutoff)
    arms: dict[str, ArmFlow] = defaultdict(ArmFlow)
    for row in _outcomes(scope, cutoff):
        flow = arms[row["arm__code"]]
        flow.enrolled, flow.died = row["enrolled"], row["died"]
        flow.withdrawn, flow.completed = row["withdrawn"], row["completed"]
    states = visit_states(scope, cutoff).filter(definition__kind=VisitKind.VISIT)
    for row in states.values("participant__arm__code", "definition__code", "state").annotate(n=Count("pk")):
        cell = arms[row["participant__arm__code"]].visits[row["definition__code"]]
        if row["state"] == VisitState.COMPLETE:
            cell.complete += row["n"]
        elif row["state"] == VisitState.MISSED:
            cell.missed += row["n"]
        else:
            cell.pending += row["n"]
    for flow in arms.values():
        for code in visit_codes:
            cell = flow.visits[code]
            cell.off_schedule = flow.enrolled - cell.complete - cell.missed - cell.pending
    return ConsortFlow(visit_codes=visit_codes, arms=dict(arms))


def _outcomes(scope: QuerySet[Participant], cutoff: datetime.datetime) -> QuerySet:
    # Death has a date; withdrawal and completion have only the current status.
    return (
        scope.values("arm__code")
        .annotate(
            enrolled=Count("pk"),
            died=Count("pk", filter=Q(death_date__lte=cutoff_day(cutoff))),
            withdrawn=Count("pk", filter=Q(status=ParticipantStatus.WITHDRAWN)),
            completed=Count("pk", filter=Q(status=ParticipantStatus.COMPLETED)),
        )
        .order_by()
    )
