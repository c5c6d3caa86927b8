"""Safety: adverse events by protocol grade and by relationship, the serious ones listed, CTCAE lab gradings,
and the deaths."""

from django.utils.translation import gettext as _
from reportlab.lib.units import mm
from reportlab.platypus import Flowable

from reports import statistics as stats
from reports.pdf.context import ReportContext
from reports.pdf.layout import heading, note, percent, table
from safety.models import Outcome, Relationship, SeriousCriterion
from safety.terms import term_in_language

GRADES = (0, 1, 2, 3, 4)


def section(context: ReportContext) -> list[Flowable]:
    scope = {"cutoff": context.cutoff}
    enrolled = stats.enrolment_summary(context.participants, cutoff=context.cutoff, criterion_codes=[])
    return [
        _overview(context, stats.participants_with_events(context.participants, **scope), enrolled),
        heading(_("Adverse events by protocol grade"), 2),
        _by(context, stats.adverse_events_by_grade(context.participants, **scope), _grades(context)),
        heading(_("Adverse events by relationship to the study treatment"), 2),
        _by(context, stats.adverse_events_by_relationship(context.participants, **scope), _relationships()),
        note(_("Events: reported adverse events; participants: those with at least one such event.")),
        heading(_("Serious adverse events"), 2),
        _serious(context, stats.serious_events(context.participants, **scope)),
        heading(_("Lab values graded by CTCAE v5.0"), 2),
        _gradings(context, stats.lab_gradings(context.participants, **scope)),
        note(_("Values graded 1 or worse by the cut-off; a participant counts once per term and grade.")),
    ]


def deaths_section(context: ReportContext) -> list[Flowable]:
    rows = [
        [
            row.subject_id,
            f"{row.site_number:02d}",
            context.arm_label(row.arm_code),
            row.death_date.isoformat(),
            row.days_from_enrolment,
            row.cause,
            Relationship(row.relationship).label if row.relationship in Relationship.values else row.relationship,
            _("Yes") if row.autopsy else _("No"),
        ]
        for row in stats.deaths(context.participants, cutoff=context.cutoff)
    ]
    header = [
        _("Subject"),
        _("Site"),
        _("Arm"),
        _("Date of death"),
        _("Days from enrolment"),
        _("Cause"),
        _("Relationship"),
        _("Autopsy"),
    ]
    widths = [18 * mm, 12 * mm, 45 * mm, 22 * mm, 20 * mm, 80 * mm, 24 * mm, 16 * mm]
    return [table(header, rows, widths=widths, align_from=4, wrap=True)]


def _overview(context: ReportContext, counts: dict, enrolled: stats.EnrolmentSummary) -> Flowable:
    header = [_("Arm"), _("Enrolled"), _("Adverse events"), _("Participants with an event"), _("With a serious one")]
    rows = []
    for code in context.arm_codes:
        events, people, serious = counts.get(code, (0, 0, 0))
        total = enrolled.enrolled_in_arm(code)
        rows.append([context.arm_label(code), total, events, percent(people, total), percent(serious, total)])
    return table(header, rows, widths=[55 * mm, 20 * mm, 25 * mm, 35 * mm, 35 * mm])


def _grades(context: ReportContext) -> list[tuple[object, str]]:
    scale = {entry["grade"]: entry for entry in context.definition.get("severity_scale", [])}
    return [(grade, f"{grade} - {context.text_of(scale[grade])}" if grade in scale else str(grade)) for grade in GRADES]


def _relationships() -> list[tuple[object, str]]:
    return [(choice.value, str(choice.label)) for choice in Relationship]


def _by(context: ReportContext, counts: dict, keys: list[tuple[object, str]]) -> Flowable:
    arms = context.arm_codes
    first = [""] + [label for code in arms for label in (context.arm_label(code), "")]
    second = [""] + [_("Events"), _("Participants")] * len(arms)
    rows = [[label] + [n for code in arms for n in counts.get((key, code), (0, 0))] for key, label in keys]
    spans = [((1 + 2 * i, 0), (2 + 2 * i, 0)) for i in range(len(arms))]
    widths = [70 * mm] + [22 * mm] * (2 * len(arms))
    return table([first, second], rows, widths=widths, header_rows=2, spans=spans)


def _serious(context: ReportContext, rows: list[stats.SaeRow]) -> Flowable:
    header = [
        _("Subject"),
        _("Site"),
        _("Arm"),
        _("Event"),
        _("Term"),
        _("Onset"),
        _("Grade"),
        _("Relationship"),
        _("Outcome"),
        _("Serious because"),
    ]
    body = [
        [
            row.subject_id,
            f"{row.site_number:02d}",
            row.arm_code,
            row.label,
            term_in_language(row.term),
            row.onset_date.isoformat(),
            row.grade,
            _label(Relationship, row.relationship),
            _label(Outcome, row.outcome),
            "; ".join(_label(SeriousCriterion, code) for code in row.serious_criteria),
        ]
        for row in rows
    ]
    widths = [18 * mm, 12 * mm, 14 * mm, 16 * mm, 55 * mm, 20 * mm, 13 * mm, 22 * mm, 28 * mm, 60 * mm]
    return table(header, body, widths=widths, align_from=6, wrap=True)


def _label(choices: type, value: str) -> str:
    return str(choices(value).label) if value in choices.values else value


def _gradings(context: ReportContext, table_: dict) -> Flowable:
    arms = context.arm_codes
    first = [_("CTCAE term"), _("Grade")] + [label for code in arms for label in (context.arm_label(code), "")]
    second = ["", ""] + [_("Values"), _("Participants")] * len(arms)
    rows = [
        [term_in_language(term), grade] + [n for code in arms for n in by_grade.get((grade, code), (0, 0))]
        for term, by_grade in sorted(table_.items())
        for grade in sorted({grade for grade, _arm in by_grade})
    ]
    spans = [((2 + 2 * i, 0), (3 + 2 * i, 0)) for i in range(len(arms))]
    widths = [62 * mm, 14 * mm] + [22 * mm] * (2 * len(arms))
    return table([first, second], rows, widths=widths, header_rows=2, spans=spans, align_from=1)
