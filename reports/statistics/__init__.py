"""The numbers of the trial reports: selectors that aggregate in the database, one module per report section.

Every selector takes the participants the viewer may see (a trial/access.py queryset) and the data cut-off, and
runs a fixed number of SQL queries whatever the number of participants. Only data entered or changed at or
before the cut-off count (see `scope` for what that means for each kind of record).
"""

from reports.statistics.enrolment import ConsortFlow, EnrolmentSummary, consort_flow, enrolment_summary
from reports.statistics.labs import (
    BASELINE_DAY,
    LabKey,
    Summary,
    change_from_baseline,
    hepatitis_status,
    numeric_summary,
)
from reports.statistics.quality import (
    AGE_BUCKETS,
    QueryAges,
    SignatureCounts,
    open_queries_by_site,
    sdv_by_site,
    signatures_outstanding,
)
from reports.statistics.safety import (
    DeathRow,
    SaeRow,
    adverse_events_by_grade,
    adverse_events_by_relationship,
    deaths,
    lab_gradings,
    participants_with_events,
    serious_events,
)
from reports.statistics.scope import cutoff_day, enrolled, sites_of
from reports.statistics.survival import AT_RISK_MONTHS, KaplanMeierCurve, LogRank, kaplan_meier, log_rank
from reports.statistics.visits import visit_completion

__all__ = [
    "AGE_BUCKETS",
    "AT_RISK_MONTHS",
    "BASELINE_DAY",
    "ConsortFlow",
    "DeathRow",
    "EnrolmentSummary",
    "KaplanMeierCurve",
    "LabKey",
    "LogRank",
    "QueryAges",
    "SaeRow",
    "SignatureCounts",
    "Summary",
    "adverse_events_by_grade",
    "adverse_events_by_relationship",
    "change_from_baseline",
    "consort_flow",
    "cutoff_day",
    "deaths",
    "enrolled",
    "enrolment_summary",
    "hepatitis_status",
    "kaplan_meier",
    "lab_gradings",
    "log_rank",
    "numeric_summary",
    "open_queries_by_site",
    "participants_with_events",
    "sdv_by_site",
    "serious_events",
    "signatures_outstanding",
    "sites_of",
    "visit_completion",
]
