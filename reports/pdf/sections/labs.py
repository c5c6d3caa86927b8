"""Lab outcomes, the cytokine profile and hepatitis B and C status, by arm and visit."""

from django.utils.translation import gettext as _
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Table

from reports import statistics as stats
from reports.pdf import charts
from reports.pdf.context import ReportContext
from reports.pdf.layout import MISSING, gap, heading, note, number, table
from safety.survival import DAYS_PER_MONTH
from trial.models import ItemDefinition, VisitDefinition

LAB_FORMS = ("LIVER", "KIDNEY", "LIPGLU")
CHILD_PUGH = ("CLIN", "CPSCORE")
CHARTED = (("LIVER", "ALB"), ("LIVER", "BILI"), ("LIVER", "ALT"), CHILD_PUGH)
CYTOKINES = "CYTO"
HEPATITIS = "HEPAT"
STATISTICS = 4  # n, mean, SD, median
MEAN_SIZE = (370, 200)  # points: two charts side by side on a landscape A4 page
CHANGE_SIZE = (245, 150)  # three side by side


def lab_section(context: ReportContext) -> list[Flowable]:
    summary = stats.numeric_summary(context.participants, cutoff=context.cutoff, forms=LAB_FORMS, items=[CHILD_PUGH])
    mean_charts = [_mean_chart(context, summary, *pair) for pair in CHARTED]
    flowables: list[Flowable] = [_chart_grid(mean_charts, width=MEAN_SIZE[0], height=MEAN_SIZE[1]), gap()]
    items = [(code, item) for code in LAB_FORMS for item in context.numeric_items(code)]
    child_pugh = context.item(*CHILD_PUGH)
    if child_pugh is not None:
        items.append((CHILD_PUGH[0], child_pugh))
    flowables += [summary_table(context, summary, items), note(_summary_note())]
    return flowables


def cytokine_section(context: ReportContext) -> list[Flowable]:
    summary = stats.numeric_summary(context.participants, cutoff=context.cutoff, forms=[CYTOKINES])
    change = stats.change_from_baseline(context.participants, cutoff=context.cutoff, forms=[CYTOKINES])
    items = [(CYTOKINES, item) for item in context.numeric_items(CYTOKINES)]
    changed = {key.item for key in change}
    charts_ = [_change_chart(context, change, item) for _form, item in items if item.code in changed]
    return [
        summary_table(context, summary, items),
        note(_summary_note()),
        heading(_("Mean change from baseline (month 0)"), 2),
        _chart_grid(charts_, columns=3, width=CHANGE_SIZE[0], height=CHANGE_SIZE[1])
        if charts_
        else note(_("No values")),
        gap(),
        summary_table(context, change, items, after_baseline=True),
        note(_("Change: each participant's value minus their own month-0 value, where both exist.")),
    ]


def hepatitis_section(context: ReportContext) -> list[Flowable]:
    counts = stats.hepatitis_status(context.participants, cutoff=context.cutoff, form=HEPATITIS)
    spec = context.forms.get(HEPATITIS)
    markers = [item for item in spec.items if item.data_type == "choice"] if spec else []
    loads = [(HEPATITIS, item) for item in context.numeric_items(HEPATITIS)]
    summary = stats.numeric_summary(context.participants, cutoff=context.cutoff, forms=[HEPATITIS])
    return [
        _serology_table(context, counts, markers),
        note(_("Participants by result of each marker at each visit.")),
        heading(_("Viral load"), 2),
        summary_table(context, summary, loads),
    ]


def months(visit: VisitDefinition) -> int:
    return round(visit.day / DAYS_PER_MONTH)


def _visits_of(context: ReportContext, form_code: str, *, after_baseline: bool = False) -> list[VisitDefinition]:
    collected = set(context.forms[form_code].definition.visit_codes) if form_code in context.forms else set()
    return [
        visit
        for visit in context.clinic_visits
        if visit.code in collected and not (after_baseline and visit.day == stats.BASELINE_DAY)
    ]


def summary_table(
    context: ReportContext,
    summary: dict[stats.LabKey, stats.Summary],
    items: list[tuple[str, ItemDefinition]],
    *,
    after_baseline: bool = False,
) -> Table:
    """Rows: each item (a shaded line) then its visits; columns: n, mean, SD and median of each arm."""
    arms = context.arm_codes
    first = [_("Visit")] + [label for code in arms for label in [context.arm_label(code)] + [""] * (STATISTICS - 1)]
    second = [""] + [_("n"), _("Mean"), _("SD"), _("Median")] * len(arms)
    rows, groups = [], []
    for form_code, item in items:
        groups.append(len(rows) + 2)
        rows.append([context.item_label(item)] + [""] * (STATISTICS * len(arms)))
        for visit in _visits_of(context, form_code, after_baseline=after_baseline):
            line = [context.visit_label(visit)]
            for arm in arms:
                line += _statistics(summary.get(stats.LabKey(form_code, item.code, arm, visit.code)), item)
            rows.append(line)
    spans = [((1 + STATISTICS * i, 0), (STATISTICS * (i + 1), 0)) for i in range(len(arms))]
    spans += [((0, row), (-1, row)) for row in groups]
    widths = [40 * mm] + [10 * mm, 17 * mm, 17 * mm, 17 * mm] * len(arms)
    return table([first, second], rows, widths=widths, header_rows=2, spans=spans, group_rows=groups)


def _statistics(found: stats.Summary | None, item: ItemDefinition) -> list[str]:
    if found is None:
        return ["0", MISSING, MISSING, MISSING]
    places = (item.decimals or 0) + 1
    return [
        str(found.n),
        number(found.mean, places),
        number(found.sd, places + 1),
        number(found.median, places),
    ]


def _summary_note() -> str:
    return _(
        "n: values saved by the cut-off (a value not done is not counted); SD: sample standard deviation; "
        "means and medians one decimal place beyond the value as entered."
    )


def _mean_chart(
    context: ReportContext, summary: dict[stats.LabKey, stats.Summary], form_code: str, item_code: str
) -> object:
    item = context.item(form_code, item_code)
    series = {
        context.arm_label(arm): [
            (months(visit), float(found.mean))
            for visit in _visits_of(context, form_code)
            for found in [summary.get(stats.LabKey(form_code, item_code, arm, visit.code))]
            if found is not None and found.mean is not None
        ]
        for arm in context.arm_codes
    }
    title = context.item_label(item) if item else item_code
    return charts.line_chart(
        _("%(item)s: mean by arm") % {"item": title},
        series,
        width=MEAN_SIZE[0],
        height=MEAN_SIZE[1],
        x_title=_("Months"),
        no_data=_("No values"),
    )


def _change_chart(context: ReportContext, change: dict[stats.LabKey, stats.Summary], item: ItemDefinition) -> object:
    series = {}
    for arm in context.arm_codes:
        points = [
            (months(visit), float(found.mean))
            for visit in _visits_of(context, CYTOKINES, after_baseline=True)
            for found in [change.get(stats.LabKey(CYTOKINES, item.code, arm, visit.code))]
            if found is not None and found.mean is not None
        ]
        series[context.arm_label(arm)] = [(0, 0.0)] + points if points else []
    label = item.label_zh if context.chinese and item.label_zh else item.label
    return charts.line_chart(label, series, width=170, height=125, x_title=_("Months"), no_data=_("No values"))


def _chart_grid(drawings: list, *, columns: int = 2, width: float = 250, height: float = 170) -> Table:
    rows = [drawings[i : i + columns] for i in range(0, len(drawings), columns)]
    if rows and len(rows[-1]) < columns:
        rows[-1] += [""] * (columns - len(rows[-1]))
    return Table(rows or [[""]], colWidths=[width + 6] * columns, rowHeights=[height + 4] * max(len(rows), 1))


def _serology_table(context: ReportContext, counts: dict, markers: list[ItemDefinition]) -> Table:
    arms = context.arm_codes
    results = [choice[0] for choice in markers[0].choices] if markers else []
    labels = [context.choice_label(markers[0], code) for code in results] if markers else []
    first = [_("Visit")] + [label for code in arms for label in [context.arm_label(code)] + [""] * (len(results) - 1)]
    second = [""] + labels * len(arms)
    rows, groups = [], []
    for item in markers:
        groups.append(len(rows) + 2)
        rows.append([context.item_label(item)] + [""] * (len(results) * len(arms)))
        for visit in _visits_of(context, HEPATITIS):
            line = [context.visit_label(visit)]
            for arm in arms:
                found = counts.get(stats.LabKey(HEPATITIS, item.code, arm, visit.code), {})
                line += [found.get(code, 0) for code in results]
            rows.append(line)
    width = len(results) or 1
    spans = [((1 + width * i, 0), (width * (i + 1), 0)) for i in range(len(arms))]
    spans += [((0, row), (-1, row)) for row in groups]
    widths = [40 * mm] + [20 * mm] * (width * len(arms))
    return table([first, second], rows, widths=widths, header_rows=2, spans=spans, group_rows=groups)
