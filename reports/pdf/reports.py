"""The reports: each names its sections, in order."""

from django.utils.translation import gettext_lazy

from reports.pdf.base import Report


class TrialSummaryReport(Report):
    """The sponsor's summary of the whole trial."""

    title = gettext_lazy("Trial summary report")
    sections = (
        "enrolment",
        "visit_completion",
        "lab_outcomes",
        "cytokines",
        "hepatitis",
        "symptoms",
        "safety",
        "survival",
        "medications",
        "protocol_deviations",
        "data_quality",
    )


class SafetyReport(Report):
    """The monthly safety report: adverse events, survival and deaths."""

    title = gettext_lazy("Safety report")
    sections = ("safety", "survival", "deaths")
