"""Fonts of the reports: Helvetica for Latin text, and reportlab's built-in STSong-Light CID font for Chinese.

A string is cut into runs: characters Helvetica can encode (cp1252) stay in Helvetica; any other (Chinese site
names, free-text terms, the Chinese translation) goes to STSong-Light, which covers GB 18030's Chinese, Greek and
symbols. STSong-Light is one of the Adobe Asian fonts: the PDF names it without embedding it, so it needs no file
on the server; readers (Acrobat, browsers, Foxit, Preview) draw it with their own Song/Ming font, and the text is
extractable (copy, search, screen readers).
"""

import functools
from collections.abc import Iterator
from xml.sax.saxutils import escape

from reportlab.lib.colors import Color
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

LATIN = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"
CJK = "STSong-Light"


@functools.cache
def register() -> None:
    pdfmetrics.registerFont(UnicodeCIDFont(CJK))


@functools.lru_cache(maxsize=4096)
def _latin(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def runs(text: str) -> Iterator[tuple[bool, str]]:
    """(is Latin, text) runs of a string, in order."""
    start = 0
    for index in range(1, len(text) + 1):
        if index == len(text) or _latin(text[index]) != _latin(text[start]):
            yield _latin(text[start]), text[start:index]
            start = index


def needs_cjk(text: str) -> bool:
    return not all(_latin(char) for char in text)


def markup(text: object) -> str:
    """Paragraph markup of plain text: escaped, each non-Latin run in the CJK font."""
    return "".join(
        escape(run) if latin else f'<font face="{CJK}">{escape(run)}</font>' for latin, run in runs(str(text))
    )


def font_for(text: str, *, bold: bool = False) -> str:
    """The one font a whole short string (a chart label) is drawn in."""
    if needs_cjk(text):
        return CJK
    return LATIN_BOLD if bold else LATIN


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    latin = LATIN_BOLD if bold else LATIN
    return sum(pdfmetrics.stringWidth(run, latin if is_latin else CJK, size) for is_latin, run in runs(text))


def draw(
    canvas: Canvas,
    x: float,
    y: float,
    text: str,
    size: float,
    *,
    align: str = "left",
    bold: bool = False,
    color: Color | None = None,
) -> None:
    """Draw a string on the canvas run by run; `align` is left, right or centre of x."""
    width = text_width(text, size, bold=bold)
    x -= {"left": 0, "right": width, "centre": width / 2}[align]
    canvas.saveState()
    if color is not None:
        canvas.setFillColor(color)
    for is_latin, run in runs(text):
        font = (LATIN_BOLD if bold else LATIN) if is_latin else CJK
        canvas.setFont(font, size)
        canvas.drawString(x, y, run)
        x += pdfmetrics.stringWidth(run, font, size)
    canvas.restoreState()
