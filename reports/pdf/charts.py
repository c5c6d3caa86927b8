"""Charts of the reports: lines of a statistic by arm over the months (reportlab.graphics LinePlot)."""

from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.colors import Color

from reports.pdf import fonts

ARM_COLOURS = (colors.HexColor("#1f5f8b"), colors.HexColor("#d9822b"), colors.HexColor("#3c8d40"), colors.purple)

Series = dict[str, list[tuple[float, float]]]  # label: (x, y) points


def line_chart(
    title: str,
    series: Series,
    *,
    width: float = 250,
    height: float = 170,
    x_max: float = 12,
    x_step: float = 3,
    x_title: str = "",
    y_range: tuple[float, float] | None = None,
    markers: bool = True,
    no_data: str = "",
) -> Drawing:
    """One line per series; the x axis runs from 0 to `x_max`, the y axis fits the data unless given."""
    drawing = Drawing(width, height)
    drawing.add(_string(width / 2, height - 10, title, 8.5, anchor="middle", bold=True))
    # A series without points is left out, but every series keeps its colour (an arm's colour is the same on
    # every chart).
    colours = {label: ARM_COLOURS[i % len(ARM_COLOURS)] for i, label in enumerate(series)}
    plotted = {label: points for label, points in series.items() if points}
    if not plotted:
        drawing.add(_string(width / 2, height / 2, no_data, 8, anchor="middle"))
        return drawing
    plot = _plot(width, height, plotted, [colours[label] for label in plotted], x_max, x_step, y_range or _fit(plotted))
    if markers:
        for index in range(len(plotted)):
            plot.lines[index].symbol = makeMarker("FilledCircle", size=3)
    drawing.add(plot)
    if x_title:
        drawing.add(_string(plot.x + plot.width / 2, 4, x_title, 7, anchor="middle"))
    drawing.add(_legend(plotted, colours, plot.x, height - 20))
    return drawing


def _plot(
    width: float, height: float, series: Series, colours: list[Color], x_max: float, x_step: float, y_range: tuple
) -> LinePlot:
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 34, 26, width - 44, height - 58
    plot.data = list(series.values())
    for index, colour in enumerate(colours):
        plot.lines[index].strokeColor = colour
        plot.lines[index].strokeWidth = 1.4
    x_axis, y_axis = plot.xValueAxis, plot.yValueAxis
    x_axis.valueMin, x_axis.valueMax = 0, x_max
    x_axis.valueSteps = [step * x_step for step in range(int(x_max / x_step) + 1)]
    x_axis.labelTextFormat = "%d"
    y_axis.valueMin, y_axis.valueMax = y_range
    for axis in (x_axis, y_axis):
        axis.labels.fontName, axis.labels.fontSize = fonts.LATIN, 7
    return plot


def _fit(series: Series) -> tuple[float, float]:
    values = [y for points in series.values() for _x, y in points]
    low, high = min(values), max(values)
    pad = (high - low) * 0.15 or abs(high) * 0.1 or 1
    return low - pad, high + pad


def _legend(series: Series, colours: dict[str, Color], x: float, y: float) -> Legend:
    legend = Legend()
    legend.x, legend.y = x, y
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.variColumn = True  # each column as wide as its label
    legend.autoXPadding = 14
    legend.dx, legend.dy = 8, 6
    legend.fontSize = 7
    legend.fontName = fonts.CJK if any(fonts.needs_cjk(label) for label in series) else fonts.LATIN
    legend.colorNamePairs = [(colours[label], label) for label in series]
    legend.boxAnchor = "nw"
    return legend


def _string(x: float, y: float, text: str, size: float, *, anchor: str = "start", bold: bool = False) -> String:
    return String(x, y, text, fontName=fonts.font_for(text, bold=bold), fontSize=size, textAnchor=anchor)
