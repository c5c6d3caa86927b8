"""The CIOMS I form of a serious adverse event ("Suspect adverse reaction report"), one per report version.

Printed from the version's snapshot (safety/sae/snapshot.py), so it shows what was sent; in the layout of the
CIOMS I form: I. reaction information (boxes 1-13), II. suspect drug(s) (14-21), III. concomitant drugs and
history (22-23), IV. manufacturer information (24-25), with the protocol's own additions (the seriousness criterion
"tumour", the hospital stay, the investigator's and the sponsor's causality) after the boxes they belong to.
"""

from __future__ import annotations

import datetime
import io

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, SimpleDocTemplate, Table, TableStyle

from reports.pdf import fonts
from reports.pdf.layout import GRID, HEADER_FILL, MISSING, gap, heading, note, paragraph
from safety.models import BodySystem, ChallengeResult, Outcome, Relationship, SeriousCriterion
from trial.models import Sex

PAGE = A4
MARGIN = 12 * mm
WIDTH = PAGE[0] - 2 * MARGIN
CHECKED, UNCHECKED = "[X]", "[ ]"
# CIOMS I boxes 8-12, in the form's order, then the criteria ICH E2A and the protocol add.
CIOMS_CRITERIA = (
    (SeriousCriterion.FATAL, gettext_lazy("Patient died")),
    (SeriousCriterion.HOSPITALISATION, gettext_lazy("Involved or prolonged inpatient hospitalisation")),
    (SeriousCriterion.DISABLING, gettext_lazy("Involved persistent or significant disability or incapacity")),
    (SeriousCriterion.LIFE_THREATENING, gettext_lazy("Life threatening")),
    (SeriousCriterion.CONGENITAL_ANOMALY, gettext_lazy("Congenital anomaly")),
    (SeriousCriterion.MEDICALLY_IMPORTANT, gettext_lazy("Other medically important condition")),
    (SeriousCriterion.TUMOUR, gettext_lazy("Tumour, particularly hepatocellular carcinoma (protocol)")),
)


def _label(choices: type, code: object) -> str:
    if code in (None, ""):
        return MISSING
    return str(choices(code).label) if code in choices.values else str(code)


def _text(value: object) -> str:
    return MISSING if value in (None, "", []) else str(value)


def _days(start: str, end: str) -> str:
    if not start or not end:
        return MISSING
    days = (datetime.date.fromisoformat(end) - datetime.date.fromisoformat(start)).days + 1
    return ngettext("%(days)d day", "%(days)d days", days) % {"days": days}


class CiomsReport:
    """One SAE report version as a CIOMS I form."""

    title = gettext_lazy("Suspect adverse reaction report (CIOMS I)")

    def __init__(self, *, snapshot: dict, report_label: str, report_kind: str, report_date: str, printed_by: str):
        self.data = snapshot
        self.report_label = report_label
        self.report_kind = report_kind
        self.report_date = report_date
        self.printed_by = printed_by

    def build(self) -> bytes:
        fonts.register()
        story = [
            *self._draw_title(),
            *self._draw_reaction(),
            *self._draw_suspect_drugs(),
            *self._draw_concomitant(),
            *self._draw_manufacturer(),
            *self._draw_causality(),
        ]
        buffer = io.BytesIO()
        document = SimpleDocTemplate(
            buffer,
            pagesize=PAGE,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN,
            title=str(self.title),
            author=self.printed_by,
            creator="edc-nct01573923",
        )
        document.build(story)
        return buffer.getvalue()

    # --- Steps ------------------------------------------------------------------------------------------------

    def _draw_title(self) -> list[Flowable]:
        protocol = self.data["protocol"]
        return [
            paragraph(self.title, "Title"),
            note(
                _("Clinical trial %(code)s (%(ids)s): %(title)s")
                % {"code": protocol["code"], "ids": ", ".join(protocol["other_ids"]), "title": protocol["title"]}
            ),
            gap(2 * mm),
        ]

    def _draw_reaction(self) -> list[Flowable]:
        participant, event, sae = self.data["participant"], self.data["event"], self.data["sae"]
        onset = event["onset_date"] or ""
        criteria = set(event["serious_criteria"])
        boxes = [f"{CHECKED if code in criteria else UNCHECKED} {label}" for code, label in CIOMS_CRITERIA]
        description = "\n".join(
            part
            for part in (
                f"{event['label']}: {event['term']} ({_label(BodySystem, event['body_system'])})",
                _("Grade (protocol scale 0-4): %(grade)s") % {"grade": _text(event["grade"])},
                _("Outcome: %(outcome)s; ended %(end)s")
                % {"outcome": _label(Outcome, event["outcome"]), "end": _text(event["end_date"])},
                event["description"],
                sae["narrative"],
            )
            if part
        )
        return [
            heading(_("I. Reaction information"), 2),
            self._boxes(
                [
                    (_("1. Patient initials"), participant["initials"]),
                    (_("1a. Country"), participant["country"]),
                    (_("2. Date of birth"), participant["date_of_birth"]),
                    (_("2a. Age"), _text(participant["age_at_onset"])),
                    (_("3. Sex"), _label(Sex, participant["sex"])),
                    (_("4-6. Reaction onset"), onset or MISSING),
                ]
            ),
            self._boxes([(_("8-12. Check all appropriate to adverse reaction"), "\n".join(boxes))]),
            self._boxes(
                [
                    (_("Hospital admission"), _text(sae["admission_date"])),
                    (_("Hospital discharge"), _text(sae["discharge_date"])),
                ]
            ),
            self._boxes([(_("7 + 13. Describe reaction(s) (including relevant tests/lab data)"), description)]),
            self._boxes([(_("13. Relevant tests/laboratory data"), _text(sae["relevant_tests"]))]),
        ]

    def _draw_suspect_drugs(self) -> list[Flowable]:
        sae = self.data["sae"]
        rows = []
        for drug in self.data["suspect"] or [{}]:
            start, end = drug.get("start_date", ""), drug.get("end_date", "")
            rows.append(
                [
                    _text(drug.get("name")),
                    _text(drug.get("dose")),
                    _text(drug.get("route")),
                    _text(drug.get("indication")),
                    f"{_text(start)} - {_text(end)}",
                    _days(start, end),
                ]
            )
        header = [
            _("14. Suspect drug(s)"),
            _("15. Daily dose(s)"),
            _("16. Route(s) of administration"),
            _("17. Indication(s) for use"),
            _("18. Therapy dates (from/to)"),
            _("19. Therapy duration"),
        ]
        widths = [0.26, 0.16, 0.15, 0.13, 0.18, 0.12]
        return [
            heading(_("II. Suspect drug(s) information"), 2),
            self._grid(header, rows, widths),
            self._boxes(
                [
                    (
                        _("20. Did reaction abate after stopping drug?"),
                        _label(ChallengeResult, sae["dechallenge"]),
                    ),
                    (
                        _("21. Did reaction reappear after reintroduction?"),
                        _label(ChallengeResult, sae["rechallenge"]),
                    ),
                ]
            ),
        ]

    def _draw_concomitant(self) -> list[Flowable]:
        drugs = self.data["concomitant"]
        lines = [
            f"{drug.get('name')} ({_text(drug.get('dose'))}, {_text(drug.get('route'))}): "
            f"{_text(drug.get('start_date'))} - {_text(drug.get('end_date'))}"
            for drug in drugs
        ]
        return [
            heading(_("III. Concomitant drug(s) and history"), 2),
            self._boxes([(_("22. Concomitant drug(s) and dates of administration"), "\n".join(lines) or MISSING)]),
            self._boxes([(_("23. Other relevant history"), _text(self.data["sae"]["relevant_history"]))]),
        ]

    def _draw_manufacturer(self) -> list[Flowable]:
        protocol, participant = self.data["protocol"], self.data["participant"]
        initial = self.report_kind == "initial"
        report_type = (
            f"{CHECKED if initial else UNCHECKED} {_('Initial')}   "
            f"{UNCHECKED if initial else CHECKED} {_('Follow-up')}: {self.report_label}"
        )
        return [
            heading(_("IV. Manufacturer information"), 2),
            self._boxes(
                [
                    (_("24a. Name and address of manufacturer (sponsor)"), protocol["sponsor"]),
                    (
                        _("24b. MFR control no."),
                        f"{protocol['code']}-{participant['subject_id']}-{self.data['event']['label']}",
                    ),
                ]
            ),
            self._boxes(
                [
                    (_("24c. Date received by manufacturer"), self.report_date),
                    (
                        _("24d. Report source"),
                        f"{CHECKED} {_('Study')}   {UNCHECKED} {_('Literature')}   "
                        f"{CHECKED} {_('Health professional')}",
                    ),
                ]
            ),
            self._boxes(
                [
                    (_("Date of this report"), self.report_date),
                    (_("25a. Report type"), report_type),
                ]
            ),
            self._boxes(
                [
                    (
                        _("Reporter (investigator, site)"),
                        f"{participant['investigator']}; {participant['site_number']:02d} {participant['site_name']}",
                    ),
                    (_("Participant"), f"{participant['subject_id']} ({participant['arm']})"),
                ]
            ),
        ]

    def _draw_causality(self) -> list[Flowable]:
        event, sae = self.data["event"], self.data["sae"]
        sponsor = _label(Relationship, sae["sponsor_relationship"])
        if sae["sponsor_assessor"]:
            sponsor = f"{sponsor} ({sae['sponsor_assessor']})"
        return [
            heading(_("Causality"), 2),
            self._boxes(
                [
                    (_("Investigator's causality"), _label(Relationship, event["relationship"])),
                    (_("Sponsor's causality"), sponsor),
                ]
            ),
            *([self._boxes([(_("Sponsor's comment"), sae["sponsor_comment"])])] if sae["sponsor_comment"] else []),
            note(_("Printed by %(who)s.") % {"who": self.printed_by}),
        ]

    # --- Boxes --------------------------------------------------------------------------------------------------

    def _boxes(self, boxes: list[tuple[str, str]]) -> Table:
        """A row of the form's boxes: each a small label above its value."""
        cells = [
            [paragraph(label, "cell_bold"), *(paragraph(line, "cell") for line in str(value).split("\n"))]
            for label, value in boxes
        ]
        width = WIDTH / len(boxes)
        table = Table([cells], colWidths=[width] * len(boxes), hAlign="LEFT")
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, GRID), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        return table

    def _grid(self, header: list[str], rows: list[list[str]], widths: list[float]) -> Table:
        head = [paragraph(text, "cell_bold") for text in header]
        body = [[paragraph(value, "cell") for value in row] for row in rows]
        table = Table([head, *body], colWidths=[WIDTH * share for share in widths], hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.5, GRID),
                    ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("TEXTCOLOR", (0, 0), (-1, -1), colors.black),
                ]
            )
        )
        return table
