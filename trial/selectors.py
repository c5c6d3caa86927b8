"""Reads of the trial app that are more than one queryset. Every one starts from a trial/access.py queryset.

Each page's reads run a fixed number of queries, whatever the number of sites, participants or visits.
"""

import datetime
from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q, QuerySet

from trial import access
from trial.access import Action
from trial.models import (
    Arm,
    EligibilityCriterion,
    Participant,
    ParticipantStatus,
    Protocol,
    Site,
    Visit,
    VisitDefinition,
    VisitProgress,
)
from trial.tallies import Tally

PROTOCOL_CODE = "NCT01573923"

# Statuses a participant reaches only through enrolment: they have a visit schedule.
ON_SCHEDULE = (
    ParticipantStatus.ENROLLED,
    ParticipantStatus.WITHDRAWN,
    ParticipantStatus.COMPLETED,
    ParticipantStatus.DIED,
)


def _current_protocol_subquery() -> QuerySet[Protocol]:
    return Protocol.objects.filter(code=PROTOCOL_CODE).order_by("-version").values("pk")[:1]


def asked_criteria() -> list[EligibilityCriterion]:
    """The criteria the screening form asks (those no rule computes), in protocol order."""
    return list(EligibilityCriterion.objects.filter(protocol=_current_protocol_subquery(), computed=""))


def criteria_by_code(protocol: Protocol) -> dict[str, EligibilityCriterion]:
    return {criterion.code: criterion for criterion in protocol.criteria.all()}


def current_arms() -> list[Arm]:
    return list(Arm.objects.filter(protocol=_current_protocol_subquery()))


def visit_columns() -> list[VisitDefinition]:
    """The current protocol's visits, M0 to FU36: the columns of the subject matrix."""
    return list(VisitDefinition.objects.filter(protocol=_current_protocol_subquery()))


# --- Site dashboard ---------------------------------------------------------------------------------------


@dataclass
class SiteSummary:
    site: Site
    screened: int
    screen_failures: int
    eligible: int
    enrolled_by_arm: dict[str, int] = field(default_factory=dict)
    arm_counts: list[int] = field(default_factory=list)  # in the order of the protocol's arms
    visits_due: int = 0
    visits_overdue: int = 0

    @property
    def enrolled(self) -> int:
        return sum(self.enrolled_by_arm.values())

    def enrolled_in(self, arms: list[Arm]) -> list[int]:
        return [self.enrolled_by_arm.get(arm.code, 0) for arm in arms]


def dashboard(user: object, *, today: datetime.date) -> tuple[list[SiteSummary], list[Arm]]:
    """One row per site the user can see: screening and enrolment counts, and visits due or overdue today.

    Four queries whatever the number of sites and participants: sites, arms, the sites' tallies of participants by
    status and arm (trial/tallies.py), visits due and overdue by site.
    """
    arms = current_arms()
    sites = list(access.sites(user).order_by("number"))
    tally = Tally([site.pk for site in sites])
    rows = {site.pk: _summary(site, tally.participants_by(site.pk)) for site in sites}
    for visit_counts in _visit_counts_by_site(user, today):
        row = rows[visit_counts["participant__site_id"]]
        row.visits_due, row.visits_overdue = visit_counts["due"], visit_counts["overdue"]
    for row in rows.values():
        row.arm_counts = row.enrolled_in(arms)
    return list(rows.values()), arms


def _summary(site: Site, participants: dict[tuple[str, str], int]) -> SiteSummary:
    row = SiteSummary(
        site=site,
        screened=sum(participants.values()),
        screen_failures=sum(n for (status, _), n in participants.items() if status == ParticipantStatus.SCREEN_FAILED),
        eligible=sum(n for (status, _), n in participants.items() if status == ParticipantStatus.ELIGIBLE),
    )
    # A withdrawn, completed or deceased participant was enrolled too, and keeps the arm.
    for (_, arm_code), n in participants.items():
        if arm_code and n:
            row.enrolled_by_arm[arm_code] = row.enrolled_by_arm.get(arm_code, 0) + n
    return row


def _visit_counts_by_site(user: object, today: datetime.date) -> QuerySet:
    not_started = Q(progress=VisitProgress.NOT_STARTED)
    return (
        access.visits(user)
        # Both counts are of visits not started whose window has opened: read through the open visits' index
        # (visit_open_window_end), not every visit of the trial.
        .filter(not_started, window_start__lte=today, participant__status=ParticipantStatus.ENROLLED)
        .order_by()
        .values("participant__site_id")
        .annotate(
            due=Count("pk", filter=not_started & Q(window_start__lte=today, window_end__gte=today)),
            overdue=Count("pk", filter=not_started & Q(window_end__lt=today)),
        )
    )


# --- Participant list and subject matrix ------------------------------------------------------------------


def participant_list(
    user: object, *, site_id: int | None = None, status: str = "", search: str = ""
) -> QuerySet[Participant]:
    """The participants the user can see, with their site and arm joined in, optionally filtered."""
    queryset = access.participants(user).select_related("site", "arm")
    if site_id:
        queryset = queryset.filter(site_id=site_id)
    if status:
        queryset = queryset.filter(status=status)
    return participant_search(queryset, search)


def participant_total(
    user: object, *, site_id: int | None = None, statuses: tuple[str, ...] | None = None, search: str = ""
) -> int | None:
    """How many participants `participant_list` (narrowed to `statuses`) lists, from the site tallies
    (trial/tallies.py); None when a search narrows it (the list is then counted)."""
    if search.strip():
        return None
    return Tally(access.site_ids(user)).participants(site_id=site_id or None, statuses=statuses)


def participant_search(queryset: QuerySet[Participant], search: str) -> QuerySet[Participant]:
    """Participants whose subject id or screening number contains `search`, or whose initials are `search` (on
    PostgreSQL through the trigram and upper-case indexes of migration trial 0014, whatever the number of
    participants)."""
    search = search.strip()
    if not search:
        return queryset
    return queryset.filter(
        Q(subject_id__icontains=search) | Q(screening_number__icontains=search) | Q(initials__iexact=search)
    )


# The one query state that waits for nobody; open and answered queries still need the site or the monitor.
# Named here, not imported: queries are capture's, and trial depends on nothing above it.
QUERY_CLOSED = "closed"


def matrix_participants(user: object, *, site_id: int | None = None, search: str = "") -> QuerySet[Participant]:
    """Participants with a visit schedule; each carries `matrix_visits`, fetched for a whole page in one query.

    Each visit carries `open_queries`, its open and answered queries, counted in that same query.
    """
    visits = (
        Visit.objects.select_related("definition")
        .annotate(open_queries=Count("queries", filter=~Q(queries__state=QUERY_CLOSED)))
        .order_by("definition__order")
    )
    return (
        participant_list(user, site_id=site_id, search=search)
        .filter(status__in=ON_SCHEDULE)
        .prefetch_related(Prefetch("visits", queryset=visits, to_attr="matrix_visits"))
    )


@dataclass(frozen=True)
class MatrixCell:
    visit: Visit | None
    state: str


def matrix_rows(
    participants: list[Participant], columns: list[VisitDefinition], *, today: datetime.date
) -> list[tuple[Participant, list[MatrixCell]]]:
    """Each participant with one cell per column, in column order; a visit the schedule lacks is an empty cell."""
    rows = []
    for participant in participants:
        by_code = {visit.definition.code: visit for visit in participant.matrix_visits}
        cells = []
        for column in columns:
            visit = by_code.get(column.code)
            cells.append(MatrixCell(visit=visit, state=visit.state_on(today) if visit else ""))
        rows.append((participant, cells))
    return rows


# --- Participant page -------------------------------------------------------------------------------------


def participant_detail(user: object, pk: int) -> Participant:
    """The participant with the screening and who enrolled them; 404 when out of the user's sites."""
    queryset = access.participants(user, Action.VIEW).select_related(
        "site", "arm", "protocol", "screening", "enrolled_by"
    )
    return access.get_or_404(queryset, pk=pk)


def participant_visits(participant: Participant) -> list[Visit]:
    return list(participant.visits.select_related("definition").order_by("definition__order"))


@dataclass(frozen=True)
class ScreenFailure:
    code: str
    criterion: EligibilityCriterion | None
    detail: str


def screen_failures(participant: Participant) -> list[ScreenFailure]:
    """Every criterion the candidate failed at screening, with the rule's own detail (e.g. the age found)."""
    criteria = criteria_by_code(participant.protocol)
    failures = []
    for reason in participant.screen_failure_reasons:
        code, _, detail = reason.partition(": ")
        failures.append(ScreenFailure(code=code, criterion=criteria.get(code), detail=detail))
    return failures
