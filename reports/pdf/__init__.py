"""PDF reports of the trial (reportlab), one class per report; `REPORTS` maps a report's code to its class."""

from reports.pdf.base import Report
from reports.pdf.reports import SafetyReport, TrialSummaryReport

REPORTS: dict[str, type[Report]] = {"trial_summary": TrialSummaryReport, "safety": SafetyReport}

__all__ = ["REPORTS", "Report", "SafetyReport", "TrialSummaryReport"]
