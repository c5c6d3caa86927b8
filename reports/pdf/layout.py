"""Paragraph styles, tables and number formats shared by every section."""

import functools
from decimal import Decimal

from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle, StyleSheet1, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from reports.pdf import fonts
from reports.statistics.labs import round_half_up

GRID = colors.HexColor("#9aa5b1")
HEADER_FILL = colors.HexColor("#e4e9ee")
GROUP_FILL = colors.HexColor("#f4f6f8")
MISSING = "–"


@functools.cache
def styles() -> StyleSheet1:
    sheet = getSampleStyleSheet()
    for name in ("Normal", "BodyText"):
        sheet[name].fontName = fonts.LATIN
    for name in ("Title", "Heading1", "Heading2", "Heading3"):
        sheet[name].fontName = fonts.LATIN_BOLD
        sheet[name].keepWithNext = True  # a heading never ends a page
    sheet.add(ParagraphStyle("cell", parent=sheet["Normal"], fontSize=7.5, leading=9))
    sheet.add(ParagraphStyle("cell_bold", parent=sheet["cell"], fontName=fonts.LATIN_BOLD))
    sheet.add(ParagraphStyle("note", parent=sheet["Normal"], fontSize=7.5, leading=9.5, textColor=colors.dimgrey))
    sheet.add(ParagraphStyle("cover_title", parent=sheet["Title"], fontSize=22, leading=28, spaceAfter=8 * mm))
    return sheet


def paragraph(text: object, style: str = "Normal") -> Paragraph:
    return Paragraph(fonts.markup(text), styles()[style])


def heading(text: object, level: int = 1) -> Paragraph:
    return paragraph(text, f"Heading{level}")


def note(text: object) -> Paragraph:
    return paragraph(text, "note")


def gap(height: float = 4 * mm) -> Spacer:
    return Spacer(1, height)


def cell(value: object, *, wrap: bool = False) -> object:
    """A table cell: plain text stays a string (cheap); text that needs the CJK font, or may wrap, a Paragraph."""
    if isinstance(value, Flowable):
        return value
    text = MISSING if value is None else str(value)
    return paragraph(text, "cell") if wrap or fonts.needs_cjk(text) or len(text) > 40 else text


def table(
    header: list[object] | None,
    rows: list[list[object]],
    *,
    widths: list[float] | None = None,
    header_rows: int = 1,
    align_from: int = 1,
    spans: list[tuple[tuple[int, int], tuple[int, int]]] = (),
    group_rows: list[int] = (),
    wrap: bool = False,
) -> Table:
    """A data table: header row(s) shaded and repeated on each page, numbers (from column `align_from`) right.

    `wrap`: every text cell may wrap in its column (listings of free text).
    """
    header_rows = header_rows if header else 0
    lines = _lines(header, header_rows) if header else []
    head = [[paragraph(text, "cell_bold") if text else "" for text in line] for line in lines]
    columns = len(head[0]) if head else max((len(row) for row in rows), default=1)
    body = [[cell(value, wrap=wrap and isinstance(value, str)) for value in row] for row in rows]
    body = body or [[_("None")] + [""] * (columns - 1)]
    commands = [
        ("FONT", (0, 0), (-1, -1), fonts.LATIN, 7.5),
        ("GRID", (0, 0), (-1, -1), 0.25, GRID),
        *([("BACKGROUND", (0, 0), (-1, header_rows - 1), HEADER_FILL)] if header_rows else []),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (align_from, header_rows), (-1, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        *(("SPAN", start, end) for start, end in spans),
        *(("BACKGROUND", (0, row), (-1, row), GROUP_FILL) for row in group_rows),
    ]
    return Table(head + body, colWidths=widths, repeatRows=header_rows, style=TableStyle(commands), hAlign="LEFT")


def _lines(header: list[object], count: int) -> list[list[object]]:
    return header if count > 1 else [header]


def number(value: float | Decimal | None, decimals: int) -> str:
    """A statistic as printed; a Decimal is rounded half up from its exact value, never through a float."""
    if value is None:
        return MISSING
    if isinstance(value, Decimal):
        return f"{round_half_up(value, decimals):f}"
    return f"{value:.{decimals}f}"


def percent(part: int, whole: int) -> str:
    # Exact: 1 of 8 is 12.5%, printed 13% (half up), where a float's format rounds half to even.
    return MISSING if not whole else f"{part} ({round_half_up(Decimal(100 * part) / whole, 0):f}%)"
