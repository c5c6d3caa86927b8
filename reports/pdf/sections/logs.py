"""The log forms in the trial summary: the conventional therapy by arm and the protocol deviation listing."""

from django.utils.translation import gettext as _
from reportlab.lib.units import mm
from reportlab.platypus import Flowable

from reports.pdf.context import ReportContext
from reports.pdf.layout import heading, note, percent, table
from reports.statistics.logs import (
    DEVIATION_FORM,
    MEDICATION_FORM,
    enrolled_by_arm,
    medication_summary,
    protocol_deviations,
)


def medications_section(context: ReportContext) -> list[Flowable]:
    """Participants per medication class, and per medication within it, in each arm."""
    counts = medication_summary(context.participants, cutoff=context.cutoff)
    enrolled = enrolled_by_arm(context.participants, cutoff=context.cutoff)
    item = context.item(MEDICATION_FORM, "CMCLAS")
    header = [_("Medication class / medication")] + [
        f"{context.arm_label(code)} (n={enrolled.get(code, 0)})" for code in context.arm_codes
    ]
    rows, group_rows = [], []
    for klass in counts.classes():
        group_rows.append(len(rows) + 1)
        label = context.choice_label(item, klass) if item else klass
        rows.append([label, *_cells(context, counts.counts[(klass, "")], enrolled)])
        for name in counts.medications(klass):
            rows.append([f"    {name}", *_cells(context, counts.counts[(klass, name)], enrolled)])
    widths = [90 * mm] + [60 * mm] * len(context.arm_codes)
    return [
        table(header, rows, widths=widths, group_rows=group_rows),
        note(
            _(
                "Participants with at least one row of the concomitant medication log (conventional therapy "
                "included) in the class or for the medication; percentages of the participants enrolled in the arm."
            )
        ),
    ]


def _cells(context: ReportContext, by_arm: dict[str, int], enrolled: dict[str, int]) -> list[str]:
    return [percent(by_arm.get(code, 0), enrolled.get(code, 0)) for code in context.arm_codes]


def deviations_section(context: ReportContext) -> list[Flowable]:
    """Every protocol deviation, by date."""
    rows = [
        [
            row.values.get("DVDAT", ""),
            row.subject_id,
            f"{row.site_number:02d}",
            context.arm_label(row.arm_code),
            _choice(context, "DVCAT", row.values.get("DVCAT", "")),
            row.values.get("DVTERM", ""),
            _choice(context, "DVIDBY", row.values.get("DVIDBY", "")),
            _("Yes") if row.values.get("DVIMPT") == "true" else _("No"),
            _choice(context, "DVACT", row.values.get("DVACT", "")),
        ]
        for row in protocol_deviations(context.participants, cutoff=context.cutoff)
    ]
    header = [
        _("Date"),
        _("Subject"),
        _("Site"),
        _("Arm"),
        _("Category"),
        _("Description"),
        _("Identified by"),
        _("Important"),
        _("Action taken"),
    ]
    widths = [20 * mm, 16 * mm, 10 * mm, 38 * mm, 34 * mm, 70 * mm, 20 * mm, 17 * mm, 40 * mm]
    important = sum(1 for row in rows if row[7] == _("Yes"))
    return [
        heading(_("Protocol deviation listing"), 2),
        table(header, rows, widths=widths, align_from=len(header), wrap=True),
        note(_("Deviations: %(count)d; important: %(important)d.") % {"count": len(rows), "important": important}),
    ]


def _choice(context: ReportContext, item_code: str, code: str) -> str:
    item = context.item(DEVIATION_FORM, item_code)
    return context.choice_label(item, code) if item and code else code
