"""Enrolment: screening and screen failures, the sites with their enrolment by arm, and the CONSORT-style flow."""

from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from reportlab.graphics.shapes import Drawing, Line, Polygon, Rect, String
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable

from reports import statistics as stats
from reports.pdf import fonts
from reports.pdf.context import ReportContext
from reports.pdf.layout import gap, heading, note, table


def section(context: ReportContext) -> list[Flowable]:
    codes = [criterion["code"] for criterion in context.criteria()]
    summary = stats.enrolment_summary(context.participants, cutoff=context.cutoff, criterion_codes=codes)
    flow = stats.consort_flow(
        context.participants, cutoff=context.cutoff, visit_codes=[v.code for v in context.clinic_visits]
    )
    return [
        _screening(summary),
        gap(),
        heading(_("Screen failures by criterion not met"), 2),
        _failures(context, summary),
        note(_("A candidate may fail several criteria, so the reasons can outnumber the screen failures.")),
        heading(_("Enrolled by site and arm"), 2),
        _sites(context, summary),
        heading(_("Flow of participants through the visits"), 2),
        _flow_drawing(context, flow),
        note(
            _(
                "Pending: in progress, due, overdue or not yet due at the cut-off. Off schedule: the visit was "
                "removed because the participant died before its window opened."
            )
        ),
    ]


def _screening(summary: stats.EnrolmentSummary) -> Flowable:
    rows = [
        [_("Screened"), summary.screened],
        [_("Screen failures"), summary.screen_failures],
        [_("Eligible, not enrolled"), summary.eligible_not_enrolled],
        [_("Enrolled"), summary.enrolled],
    ]
    return table([_("Participants"), pgettext("count of participants", "Number")], rows, widths=[70 * mm, 25 * mm])


def _failures(context: ReportContext, summary: stats.EnrolmentSummary) -> Flowable:
    rows = [
        [criterion["code"], context.text_of(criterion), summary.failures_by_criterion[criterion["code"]]]
        for criterion in context.criteria()
        if criterion["code"] in summary.failures_by_criterion
    ]
    header = [_("Code"), _("Criterion"), _("Screen failures")]
    return table(header, rows, widths=[15 * mm, 140 * mm, 25 * mm], align_from=2, wrap=True)


def _sites(context: ReportContext, summary: stats.EnrolmentSummary) -> Flowable:
    header = [
        _("Site"),
        _("Name"),
        _("Chinese name"),
        *[context.arm_label(code) for code in context.arm_codes],
        _("Total"),
    ]
    rows = [
        [
            f"{site.number:02d}",
            site.name,
            site.name_zh,
            *[summary.enrolled_by_site_arm.get((site.pk, code), 0) for code in context.arm_codes],
            summary.enrolled_at_site(site.pk),
        ]
        for site in context.sites
    ]
    rows.append(
        ["", _("All sites"), "", *[summary.enrolled_in_arm(code) for code in context.arm_codes], summary.enrolled]
    )
    arm_width = 22 * mm
    widths = [11 * mm, 58 * mm, 45 * mm, *[arm_width] * len(context.arm_codes), 16 * mm]
    return table(header, rows, widths=widths, align_from=3)


BOX_W, BOX_H, ROW_H = 200, 34, 44


def _flow_drawing(context: ReportContext, flow: stats.ConsortFlow) -> Drawing:
    """One column of boxes per arm: enrolled, then each clinic visit, then how follow-up ended; arrows between."""
    arms = context.arm_codes
    rows = 2 + len(flow.visit_codes)
    drawing = Drawing(len(arms) * (BOX_W + 30), rows * ROW_H)
    visits = {visit.code: visit for visit in context.clinic_visits}
    for column, code in enumerate(arms):
        arm = flow.arms.get(code, stats.enrolment.ArmFlow())
        x = column * (BOX_W + 30)
        boxes = [[context.arm_label(code), _("Enrolled: %(n)d") % {"n": arm.enrolled}]]
        for visit_code in flow.visit_codes:
            cell = arm.visits[visit_code]
            boxes.append(
                [
                    context.visit_label(visits[visit_code]),
                    _("complete %(c)d · missed %(m)d · pending %(p)d · off schedule %(o)d")
                    % {"c": cell.complete, "m": cell.missed, "p": cell.pending, "o": cell.off_schedule},
                ]
            )
        boxes.append(
            [
                _("Follow-up"),
                _("died %(d)d · withdrawn %(w)d · completed %(c)d")
                % {"d": arm.died, "w": arm.withdrawn, "c": arm.completed},
            ]
        )
        for row, text in enumerate(boxes):
            top = drawing.height - row * ROW_H
            _box(drawing, x, top - BOX_H, text)
            if row:
                _arrow(drawing, x + BOX_W / 2, top + (ROW_H - BOX_H), top)
    return drawing


def _box(drawing: Drawing, x: float, y: float, lines: list[str]) -> None:
    drawing.add(Rect(x, y, BOX_W, BOX_H, fillColor=colors.HexColor("#f4f6f8"), strokeColor=colors.HexColor("#5b6b7a")))
    for index, text in enumerate(lines):
        size = 8 if index == 0 else 7
        drawing.add(
            String(
                x + BOX_W / 2,
                y + BOX_H - 12 - index * 11,
                text,
                fontName=fonts.font_for(text, bold=index == 0),
                fontSize=size,
                textAnchor="middle",
            )
        )


def _arrow(drawing: Drawing, x: float, y_from: float, y_to: float) -> None:
    drawing.add(Line(x, y_from, x, y_to + 3, strokeColor=colors.HexColor("#5b6b7a")))
    drawing.add(
        Polygon([x - 3, y_to + 4, x + 3, y_to + 4, x, y_to], fillColor=colors.HexColor("#5b6b7a"), strokeWidth=0)
    )
