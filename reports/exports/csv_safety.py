"""The safety datasets of the CSV export: the adverse event log and the derived survival, a row per event and per
participant. Both read through the export's scope (the sites the user may export), in a fixed number of queries."""

import itertools
from collections.abc import Iterator

from reports.selectors import ExportScope
from safety.models import AdverseEvent
from safety.survival import survival_stream
from trial.models import Participant

AE_DATASET = "AE"
SURVIVAL_DATASET = "SURVIVAL"
AE_COLUMNS = (
    "subject",
    "site",
    "arm",
    "ae_number",
    "status",
    "source",
    "term",
    "body_system",
    "onset_date",
    "end_date",
    "grade",
    "relationship",
    "action_taken",
    "outcome",
    "serious",
    "serious_criteria",
    "expedited_at",
    "ctcae_term",
    "ctcae_grade",
    "lab_visit",
    "lab_item",
    "lab_value",
)
SURVIVAL_COLUMNS = ("subject", "site", "arm", "start", "end", "days", "months", "died", "censored", "vital_status")
# (dataset, column, label, label_zh, type), for the data dictionary.
SAFETY_COLUMNS = (
    (AE_DATASET, "ae_number", "Event number within the participant (AE-001 is 1)", "不良事件序号", "integer"),
    (AE_DATASET, "status", "proposed (lab grading, undecided), reported, dismissed", "状态", "text"),
    (AE_DATASET, "source", "site (reported by the site) or lab (proposed by CTCAE grading)", "来源", "text"),
    (AE_DATASET, "term", "Adverse event term as reported", "不良事件名称", "text"),
    (AE_DATASET, "body_system", "MedDRA system organ class (code)", "系统器官分类", "text"),
    (AE_DATASET, "onset_date", "Onset date", "发生日期", "date"),
    (AE_DATASET, "end_date", "End date; empty while ongoing", "结束日期", "date"),
    (AE_DATASET, "grade", "Grade on the protocol's scale 0-4", "分级（0-4级）", "integer"),
    (AE_DATASET, "relationship", "Relationship to the study treatment", "与研究治疗的相关性", "text"),
    (AE_DATASET, "action_taken", "Action taken", "采取的措施", "text"),
    (AE_DATASET, "outcome", "Outcome", "转归", "text"),
    (AE_DATASET, "serious", "Serious (true/false)", "严重", "boolean"),
    (AE_DATASET, "serious_criteria", "Seriousness criteria; ';'-separated", "严重性标准", "text"),
    (AE_DATASET, "expedited_at", "When it met the expedited criteria (UTC)", "快速报告时间（UTC）", "datetime"),
    (AE_DATASET, "ctcae_term", "CTCAE v5.0 term of the lab grading", "CTCAE 术语", "text"),
    (AE_DATASET, "ctcae_grade", "CTCAE v5.0 grade of the lab value (0: flagged only)", "CTCAE 分级", "integer"),
    (AE_DATASET, "lab_visit", "Visit of the graded lab value", "化验访视", "text"),
    (AE_DATASET, "lab_item", "Item code of the graded lab value", "化验项目", "text"),
    (AE_DATASET, "lab_value", "The graded lab value", "化验结果", "decimal"),
    (SURVIVAL_DATASET, "start", "Day 0: the enrolment date", "起始日期（入组）", "date"),
    (SURVIVAL_DATASET, "end", "Date of death, or of censoring (last known alive)", "结束日期", "date"),
    (SURVIVAL_DATASET, "days", "Survival time in days", "生存时间（天）", "integer"),
    (SURVIVAL_DATASET, "months", "Survival time in months (days / 30.4375)", "生存时间（月）", "decimal"),
    (SURVIVAL_DATASET, "died", "The event: died (true/false)", "死亡", "boolean"),
    (SURVIVAL_DATASET, "censored", "Censored at `end` (true/false)", "删失", "boolean"),
    (SURVIVAL_DATASET, "vital_status", "alive, dead or lost (to follow-up), as last known", "生存状态", "text"),
)


def _yes(value: bool) -> str:
    return "true" if value else "false"


def _text(value: object) -> str:
    if value is None:
        return ""
    return f"{value.normalize():f}" if hasattr(value, "normalize") else str(value)


def ae_rows(scope: ExportScope) -> Iterator[list[list[str]]]:
    """The adverse event log of the scope's participants, a batch of rows at a time (one query)."""
    yield [list(AE_COLUMNS)]
    events = (
        AdverseEvent.objects.filter(participant__site_id__in=scope.site_ids, participant__subject_id__isnull=False)
        .select_related("participant__site", "participant__arm", "lab_visit__definition")
        .order_by("participant__site__number", "participant__subject_id", "number")
    )
    batch = []
    for event in events.iterator(chunk_size=2000):
        participant = event.participant
        batch.append(
            [
                participant.subject_id,
                f"{participant.site.number:02d}",
                participant.arm.code if participant.arm else "",
                str(event.number),
                event.status,
                event.source,
                event.term,
                event.body_system,
                _text(event.onset_date),
                _text(event.end_date),
                _text(event.grade),
                event.relationship,
                event.action_taken,
                event.outcome,
                _yes(event.serious),
                ";".join(event.serious_criteria),
                event.expedited_at.isoformat() if event.expedited_at else "",
                event.ctcae_term,
                _text(event.ctcae_grade),
                event.lab_visit.definition.code if event.lab_visit else "",
                event.lab_item_code,
                _text(event.lab_value),
            ]
        )
        if len(batch) >= 2000:
            yield batch
            batch = []
    yield batch


SURVIVAL_CHUNK = 500


def survival_rows(scope: ExportScope) -> Iterator[list[list[str]]]:
    """Each participant's derived survival time and censoring, by site and subject number: three queries streamed
    side by side, so memory stays flat and the number of queries constant whatever the size of the trial."""
    participants = Participant.objects.filter(site_id__in=scope.site_ids, subject_id__isnull=False)
    yield [list(SURVIVAL_COLUMNS)]
    rows = survival_stream(participants, chunk=SURVIVAL_CHUNK)
    while batch := [_survival_row(row) for row in itertools.islice(rows, SURVIVAL_CHUNK)]:
        yield batch


def _survival_row(row: object) -> list[str]:
    return [
        row.subject_id,
        f"{row.site_number:02d}",
        row.arm_code,
        row.start.isoformat(),
        row.end.isoformat(),
        str(row.days),
        str(row.months),
        _yes(row.died),
        _yes(row.censored),
        row.vital_status,
    ]
