"""Survival: Kaplan-Meier curves by arm with the numbers at risk, from the derived survival times."""

from django.utils.translation import gettext as _
from reportlab.lib.units import mm
from reportlab.platypus import Flowable

from reports import statistics as stats
from reports.pdf import charts
from reports.pdf.context import ReportContext
from reports.pdf.layout import MISSING, gap, heading, note, number, table
from safety.survival import DAYS_PER_MONTH

ESTIMATE_MONTHS = (6, 12, 24, 36)


def section(context: ReportContext) -> list[Flowable]:
    curves = stats.kaplan_meier(context.participants, cutoff=context.cutoff)
    arms = [code for code in context.arm_codes if code in curves]
    series = {context.arm_label(code): curves[code].points() for code in arms}
    chart = charts.line_chart(
        _("Kaplan-Meier estimate of survival by arm"),
        series,
        width=520,
        height=250,
        x_max=36,
        x_step=6,
        x_title=_("Months from enrolment"),
        y_range=(0, 1.05),
        markers=False,
        no_data=_("No enrolled participants"),
    )
    return [
        chart,
        heading(_("Numbers at risk"), 2),
        _at_risk(context, curves, arms),
        gap(),
        heading(_("Survival estimates"), 2),
        _estimates(context, curves, arms),
        note(
            _(
                "Time from enrolment to death; anyone else (withdrawn participants included) is censored at the last "
                "day known alive (visits and survival contacts), or at the cut-off."
            )
        ),
    ]


def _at_risk(context: ReportContext, curves: dict, arms: list[str]) -> Flowable:
    header = [_("Arm")] + [_("%(m)d mo") % {"m": months} for months in stats.AT_RISK_MONTHS]
    rows = [[context.arm_label(code)] + [curves[code].at_risk(m) for m in stats.AT_RISK_MONTHS] for code in arms]
    return table(header, rows, widths=[55 * mm] + [16 * mm] * len(stats.AT_RISK_MONTHS))


def _estimates(context: ReportContext, curves: dict, arms: list[str]) -> Flowable:
    header = [_("Arm"), _("Participants"), _("Deaths"), _("Censored")]
    header += [_("S(%(m)d mo)") % {"m": months} for months in ESTIMATE_MONTHS]
    rows = []
    for code in arms:
        curve = curves[code]
        line = [context.arm_label(code), curve.n, curve.events, curve.n - curve.events]
        line += [_estimate(curve, months) for months in ESTIMATE_MONTHS]
        rows.append(line)
    return table(header, rows, widths=[55 * mm] + [22 * mm] * (3 + len(ESTIMATE_MONTHS)))


def _estimate(curve: stats.KaplanMeierCurve, months: int) -> str:
    # Past the last follow-up time the estimate is not defined.
    followed = curve.times and curve.times[-1][0] >= months * DAYS_PER_MONTH
    return number(curve.survival_at(months), 3) if followed else MISSING
