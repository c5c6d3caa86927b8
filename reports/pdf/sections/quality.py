"""Data quality: open queries by site and age, source data verification progress, and signatures outstanding."""

from django.utils.translation import gettext as _
from reportlab.lib.units import mm
from reportlab.platypus import Flowable

from reports import statistics as stats
from reports.pdf.context import ReportContext
from reports.pdf.layout import MISSING, note, table


def section(context: ReportContext) -> list[Flowable]:
    scope = {"cutoff": context.cutoff}
    queries = stats.open_queries_by_site(context.participants, **scope)
    sdv = stats.sdv_by_site(context.participants, **scope)
    signatures = stats.signatures_outstanding(context.participants, **scope)
    buckets = [label for label, _low, _high in stats.AGE_BUCKETS]
    first = [_("Site"), _("Open queries by age (days)")] + [""] * len(buckets)
    first += [_("Source data verification"), "", "", _("Signatures")] + [""]
    second = ["", *buckets, _("Total"), _("Entered"), _("Verified"), "%", _("Complete visits"), _("Unsigned")]
    rows = []
    for site in context.sites:
        ages = queries.get(site.pk, stats.QueryAges({label: 0 for label in buckets}))
        progress = sdv.get(site.pk)
        signed = signatures.get(site.pk, stats.SignatureCounts(0, 0))
        rows.append(
            [
                f"{site.number:02d} {context.site_name(site)}",
                *[ages.by_bucket[label] for label in buckets],
                ages.total,
                progress.entered if progress else 0,
                progress.verified if progress else 0,
                f"{progress.percent}%" if progress and progress.percent is not None else MISSING,
                signed.complete,
                signed.unsigned,
            ]
        )
    n = len(buckets)
    spans = [((1, 0), (n + 1, 0)), ((n + 2, 0), (n + 4, 0)), ((n + 5, 0), (n + 6, 0))]
    widths = [62 * mm] + [13 * mm] * (n + 1) + [16 * mm, 16 * mm, 12 * mm, 20 * mm, 18 * mm]
    return [
        table([first, second], rows, widths=widths, header_rows=2, spans=spans),
        note(
            _(
                "Open: raised by the cut-off and not closed by then (answered ones included). Verified: values "
                "a monitor verified by the cut-off, of those a person entered (derived values are never verified). "
                "Unsigned: complete visits that no valid signature of the visit or of the casebook covers."
            )
        ),
    ]
