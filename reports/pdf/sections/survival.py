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
        gap(),
        heading(_("Median survival"), 2),
        _medians(context, curves, arms),
        note(_log_rank_text(context, curves, arms)),
        note(
            _(
                "S(t) with its 95% confidence interval (Greenwood variance, log-log transform). Median survival "
                "with its 95% confidence interval (Brookmeyer-Crowley, log-log transform); NR: not reached."
            )
        ),
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
    return table(header, rows, widths=[55 * mm] + [18 * mm] * 3 + [34 * mm] * len(ESTIMATE_MONTHS))


def _estimate(curve: stats.KaplanMeierCurve, months: int) -> str:
    # Past the last follow-up time the estimate is not defined.
    followed = curve.last_day is not None and curve.last_day >= months * DAYS_PER_MONTH
    if not followed:
        return MISSING
    low, high = curve.confidence_at(months)
    return f"{number(curve.survival_at(months), 3)} ({number(low, 3)}-{number(high, 3)})"


def _medians(context: ReportContext, curves: dict, arms: list[str]) -> Flowable:
    header = [_("Arm"), _("Median (months)"), _("95% CI (months)")]
    rows = []
    for code in arms:
        curve = curves[code]
        low, high = curve.median_confidence()
        rows.append([context.arm_label(code), _months(curve.median()), f"{_months(low)} - {_months(high)}"])
    return table(header, rows, widths=[55 * mm, 40 * mm, 50 * mm])


def _months(days: int | None) -> str:
    return _("NR") if days is None else number(days / DAYS_PER_MONTH, 1)


def _log_rank_text(context: ReportContext, curves: dict, arms: list[str]) -> str:
    test = stats.log_rank(curves[arms[0]], curves[arms[1]]) if len(arms) == 2 else None
    if test is None:
        return _("Log-rank test: not computable (two arms with at least one death are needed).")
    return _("Log-rank test, %(first)s vs %(second)s: chi-square %(chi)s on 1 df, p = %(p)s.") % {
        "first": context.arm_label(arms[0]),
        "second": context.arm_label(arms[1]),
        "chi": number(test.chi_square, 3),
        "p": number(test.p_value, 4),
    }
