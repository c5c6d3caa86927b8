"""Visit completion by site and visit, each visit in the state `Visit.state_on` gives it on the cut-off day."""

import datetime
from collections import defaultdict

from django.db.models import Case, CharField, Count, F, Q, QuerySet, Value, When

from reports.statistics.scope import cutoff_day, enrolled
from trial.models import Participant, Visit, VisitProgress, VisitState


def visit_state_on(day: datetime.date) -> Case:
    """`Visit.state_on(day)` as an SQL expression, so visits are counted by state in the database."""
    return Case(
        When(~Q(progress=VisitProgress.NOT_STARTED), then=F("progress")),
        When(window_start__gt=day, then=Value(VisitState.NOT_DUE)),
        When(window_end__gte=day, then=Value(VisitState.DUE)),
        default=Value(VisitState.OVERDUE),
        output_field=CharField(),
    )


def visit_states(scope: QuerySet[Participant], cutoff: datetime.datetime) -> QuerySet[Visit]:
    """The visits of the participants in `scope`, annotated with `state` on the cut-off day."""
    return Visit.objects.filter(participant__in=scope).annotate(state=visit_state_on(cutoff_day(cutoff))).order_by()


def visit_completion(
    participants: QuerySet[Participant], *, cutoff: datetime.datetime
) -> dict[tuple[int, str], dict[str, int]]:
    """{(site id, visit code): {state: visits}} for the enrolled participants in scope (one query)."""
    rows = visit_states(enrolled(participants, cutoff), cutoff).values(
        "participant__site_id", "definition__code", "state"
    )
    table: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for row in rows.annotate(n=Count("pk")):
        table[(row["participant__site_id"], row["definition__code"])][row["state"]] = row["n"]
    return dict(table)
