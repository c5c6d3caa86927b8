"""Clinical symptoms by arm through the 3-year follow-up: present at each time point, and changed from month 0."""

from django.utils.translation import gettext as _
from reportlab.lib.units import mm
from reportlab.platypus import Flowable

from reports.pdf.context import ReportContext
from reports.pdf.layout import heading, note, percent, table
from reports.statistics.symptoms import SYMPTOM_FORM, SymptomCounts, SymptomKey, symptom_change
from trial.models import ItemDefinition, VisitDefinition


def section(context: ReportContext) -> list[Flowable]:
    spec = context.forms.get(SYMPTOM_FORM)
    items = [item for item in spec.items if item.data_type == "choice"] if spec else []
    if not items:
        return [note(_("No values"))]
    ranks = {item.code: [choice[0] for choice in item.choices] for item in items}
    counts = symptom_change(context.participants, cutoff=context.cutoff, ranks=ranks)
    collected = set(spec.definition.visit_codes)
    visits = [visit for visit in context.visits if visit.code in collected]
    flowables: list[Flowable] = []
    for item in items:
        flowables += [heading(context.item_label(item), 2), _table(context, counts, item, visits)]
    flowables.append(
        note(
            _(
                "With the symptom: participants whose answer is other than %(absent)s, of those assessed. Compared "
                "with month 0: each participant's answer against their own month-0 answer (better, the same, "
                "worse), where both exist. Months 18 to 36 are the survival follow-up contacts."
            )
            % {"absent": " / ".join(context.choice_label(item, ranks[item.code][0]) for item in items[:2])}
        )
    )
    return flowables


def _table(
    context: ReportContext, counts: dict[SymptomKey, SymptomCounts], item: ItemDefinition, visits: list[VisitDefinition]
) -> object:
    arms = context.arm_codes
    first = [_("Time point")] + [label for code in arms for label in [context.arm_label(code), "", "", ""]]
    second = [""] + [_("With the symptom"), _("Better"), _("Same"), _("Worse")] * len(arms)
    rows = []
    for visit in visits:
        row = [context.visit_label(visit)]
        for arm in arms:
            found = counts.get(SymptomKey(item.code, arm, visit.code), SymptomCounts())
            row += [percent(found.present, found.assessed)]
            row += [percent(n, found.paired) if found.paired else "–" for n in (found.better, found.same, found.worse)]
        rows.append(row)
    spans = [((1 + 4 * index, 0), (4 + 4 * index, 0)) for index in range(len(arms))]
    widths = [52 * mm] + [26 * mm, 22 * mm, 22 * mm, 22 * mm] * len(arms)
    return table([first, second], rows, widths=widths, header_rows=2, spans=spans)
