"""Reads of an SAE report for its pages: its details, its versions with their notices (2 queries)."""

from __future__ import annotations

from dataclasses import dataclass, field

from safety.models import AdverseEvent, SaeReport, SaeReportKind, SeriousAdverseEvent
from safety.sae.forms import medications_text


@dataclass
class SaePanel:
    event: AdverseEvent
    row: SeriousAdverseEvent | None
    reports: list[SaeReport] = field(default_factory=list)

    @property
    def version(self) -> int:
        return self.row.version if self.row else 0

    @property
    def next_sequence(self) -> int:
        return len(self.reports)

    @property
    def closed(self) -> bool:
        """The final report was sent."""
        return any(report.kind == SaeReportKind.FINAL for report in self.reports)

    @property
    def suspect_text(self) -> str:
        return medications_text(self.row.suspect_medications) if self.row else ""

    @property
    def concomitant_text(self) -> str:
        return medications_text(self.row.concomitant_medications) if self.row else ""


def sae_panel(event: AdverseEvent) -> SaePanel | None:
    """The SAE report of a serious or expedited event; None for any other event (no query then)."""
    if not (event.serious or event.expedited_at):
        return None
    row = SeriousAdverseEvent.objects.filter(adverse_event=event).select_related("sponsor_recorded_by").first()
    reports = list(SaeReport.objects.filter(adverse_event=event).select_related("submitted_by").order_by("sequence"))
    return SaePanel(event=event, row=row, reports=reports)
