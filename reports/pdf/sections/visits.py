"""Visit completion: for each site and visit, how many visits are complete, in progress, due, overdue, missed or
not yet due on the cut-off day."""

from django.utils.translation import gettext as _
from reportlab.lib.units import mm
from reportlab.platypus import Flowable

from reports import statistics as stats
from reports.pdf.context import ReportContext
from reports.pdf.layout import note, table
from trial.models import VisitState

STATES = (
    VisitState.COMPLETE,
    VisitState.IN_PROGRESS,
    VisitState.DUE,
    VisitState.OVERDUE,
    VisitState.MISSED,
    VisitState.NOT_DUE,
)


def section(context: ReportContext) -> list[Flowable]:
    counts = stats.visit_completion(context.participants, cutoff=context.cutoff)
    header = [_("Site"), _("Visit"), *[str(state.label) for state in STATES], _("Total")]
    rows, groups = [], []
    for site in context.sites:
        groups.append(len(rows) + 1)
        for visit in context.visits:
            cell = counts.get((site.pk, visit.code), {})
            rows.append(
                [
                    f"{site.number:02d}",
                    context.visit_label(visit),
                    *[cell.get(state, 0) for state in STATES],
                    sum(cell.values()),
                ]
            )
    widths = [12 * mm, 48 * mm, *[18 * mm] * len(STATES), 16 * mm]
    return [
        table(header, rows, widths=widths, align_from=2, group_rows=groups),
        note(
            _(
                "Each visit of the enrolled participants, in the state it had on the cut-off day: its recorded "
                "progress once data exist or it was declared missed, otherwise its window against that day."
            )
        ),
    ]
