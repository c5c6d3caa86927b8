"""The export forms of the records kept outside the visit forms: each screened candidate's eligibility (ELIG: numbers,
status, Child-Pugh, eligibility and the reasons for failure; IE: one repeat per criterion with its answer and
result), and the safety records of the SAFETY event (AE: one repeat per adverse event; DEATH: the death report).

Each item is a row of a table naming the model field it reads; its ODM data type and code list follow from the
model field (choices, boolean, date, number), so a new field of AdverseEvent or DeathReport is exported by adding
one row to AE_ITEMS or DEATH_ITEMS. The same tables turn an audit record of a field into the item it changed.
"""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db import models

from capture.models import format_number
from reports.exports.metadata import (
    CRITERIA_FORM,
    ELIG_FORM,
    SCREENING_EVENT,
    Choice,
    CodeList,
    EventMeta,
    FormMeta,
    ItemMeta,
    translated_choices,
)
from safety.models import AdverseEvent, DeathReport
from trial.models import CriterionKind, DataType, EligibilityCriterion, Participant, ParticipantStatus

SAFETY_EVENT = "SAFETY"
AE_FORM = "AE"
DEATH_FORM = "DEATH"
DATETIME = "datetime"  # an ODM data type without a DataType of the protocol file


@dataclass(frozen=True)
class RecordItem:
    """An exported item read from a field of a record (a path through relations for related fields)."""

    code: str
    field: str
    label: str
    label_zh: str


# To export a new field of AdverseEvent, add a row: its type and code list come from the model field.
AE_ITEMS = (
    RecordItem("AENUM", "number", "Event number within the participant (AE-001 is 1)", "不良事件序号"),
    RecordItem("STATUS", "status", "Status", "状态"),
    RecordItem("SOURCE", "source", "Source", "来源"),
    RecordItem("TERM", "term", "Adverse event term as reported", "不良事件名称"),
    RecordItem("BODSYS", "body_system", "Body system (MedDRA SOC)", "系统器官分类"),
    RecordItem("ONSETDAT", "onset_date", "Onset date", "发生日期"),
    RecordItem("ENDDAT", "end_date", "End date; empty while ongoing", "结束日期"),
    RecordItem("GRADE", "grade", "Grade (protocol scale 0-4)", "分级（0-4级）"),
    RecordItem("REL", "relationship", "Relationship to the study treatment", "与研究治疗的相关性"),
    RecordItem("ACTION", "action_taken", "Action taken", "采取的措施"),
    RecordItem("OUTCOME", "outcome", "Outcome", "转归"),
    RecordItem("SERIOUS", "serious", "Serious adverse event", "严重不良事件"),
    RecordItem("SERCRIT", "serious_criteria", "Seriousness criteria; ';'-separated", "严重性标准"),
    RecordItem("DESCR", "description", "Description", "描述"),
    RecordItem("EXPEDAT", "expedited_at", "When it met the expedited criteria (UTC)", "快速报告时间（UTC）"),
    RecordItem("CTCTERM", "ctcae_term", "CTCAE v5.0 term of the lab grading", "CTCAE 术语"),
    RecordItem("CTCGRADE", "ctcae_grade", "CTCAE v5.0 grade of the lab value (0: flagged only)", "CTCAE 分级"),
    RecordItem("LABITEM", "lab_item_code", "Item code of the graded lab value", "化验项目"),
    RecordItem("LABVAL", "lab_value", "The graded lab value", "化验结果"),
    RecordItem("DISMRSN", "dismiss_reason", "Reason for dismissing a proposal", "驳回原因"),
)
DEATH_ITEMS = (
    RecordItem("DTHDAT", "death_date", "Date of death", "死亡日期"),
    RecordItem("CAUSE", "cause", "Cause of death", "死亡原因"),
    RecordItem("REL", "relationship", "Relationship to the study treatment", "与研究治疗的相关性"),
    RecordItem("AUTOPSY", "autopsy", "Autopsy performed", "是否尸检"),
    RecordItem("AENUM", "adverse_event__number", "The fatal adverse event (its number)", "致死不良事件序号"),
)
ELIG_ITEMS = (
    RecordItem("SCRNUM", "screening_number", "Screening number", "筛选号"),
    RecordItem("SUBJID", "subject_id", "Subject number (empty if not enrolled)", "受试者编号"),
    RecordItem("STATUS", "status", "Participant status (screen failure, eligible, enrolled, ...)", "受试者状态"),
    RecordItem("ELIGFL", "screening__eligible", "Eligible at screening", "筛选合格"),
    RecordItem("CPSCORE", "screening__child_pugh_points", "Child-Pugh score at screening", "筛选时Child-Pugh评分"),
    RecordItem("CPCLASS", "screening__child_pugh_class", "Child-Pugh class at screening", "筛选时Child-Pugh分级"),
    RecordItem("FAILRSN", "screen_failure_reasons", "Reasons for screen failure; ';'-separated", "筛选失败原因"),
)
_BY_CLASS = (
    (models.BooleanField, DataType.BOOLEAN),
    (models.DateTimeField, DATETIME),
    (models.DateField, DataType.DATE),
    (models.DecimalField, DataType.DECIMAL),
    (models.IntegerField, DataType.INTEGER),  # the positive and small integer fields too
)
# The same choices on two forms: one code list.
_SHARED_CODELISTS = {"relationship": "CL.RELATIONSHIP"}


def model_field(model: type[models.Model], path: str) -> models.Field:
    *relations, name = path.split("__")
    for relation in relations:
        model = model._meta.get_field(relation).related_model
    return model._meta.get_field(name)


def _item(form: str, model: type[models.Model], spec: RecordItem, *, repeat_key: bool = False) -> ItemMeta:
    field = model_field(model, spec.field)
    codelist = None
    if field.choices:
        oid = _SHARED_CODELISTS.get(spec.field, f"CL.{form}.{spec.code}")
        codelist = CodeList(oid, spec.field, translated_choices(list(field.choices)))
    data_type = next((kind for cls, kind in _BY_CLASS if isinstance(field, cls)), DataType.TEXT)
    if codelist is not None:
        data_type = DataType.CHOICE
    return ItemMeta(form, spec.code, spec.label, spec.label_zh, "", data_type, codelist=codelist, required=repeat_key)


def _status_item() -> ItemMeta:
    statuses = CodeList("CL.PARTICIPANT_STATUS", "participant_status", translated_choices(ParticipantStatus.choices))
    return ItemMeta(
        ELIG_FORM,
        "STATUS",
        ELIG_ITEMS[2].label,
        ELIG_ITEMS[2].label_zh,
        "",
        DataType.CHOICE,
        codelist=statuses,
        required=True,
    )


def screening_forms(criteria: list[EligibilityCriterion]) -> tuple[FormMeta, FormMeta]:
    """ELIG and IE, of the SCREENING event, for every screened candidate."""
    items = tuple(
        _status_item() if spec.code == "STATUS" else _item(ELIG_FORM, Participant, spec) for spec in ELIG_ITEMS
    )
    elig = FormMeta(ELIG_FORM, "Eligibility and status", "合格性与状态", (SCREENING_EVENT,), (), items)
    codes = CodeList("CL.CRITERION", "criterion", tuple(_criterion_choice(criterion) for criterion in criteria))
    kinds = CodeList("CL.CRITERION_KIND", "criterion_kind", translated_choices(CriterionKind.choices))
    criterion_items = (
        ItemMeta(CRITERIA_FORM, "IETESTCD", "Criterion", "标准", "", DataType.CHOICE, codelist=codes, required=True),
        ItemMeta(CRITERIA_FORM, "IECAT", "Inclusion or exclusion", "入选或排除", "", DataType.CHOICE, codelist=kinds),
        ItemMeta(
            CRITERIA_FORM,
            "ANSWER",
            "Answer as asked (empty: computed by the EDC)",
            "回答（空：系统计算）",
            "",
            DataType.BOOLEAN,
        ),
        ItemMeta(CRITERIA_FORM, "MET", "Criterion met (exclusion: not present)", "符合标准", "", DataType.BOOLEAN),
        ItemMeta(CRITERIA_FORM, "REASON", "Why the criterion is not met", "不符合原因", "", DataType.TEXT),
    )
    criteria_form = FormMeta(
        CRITERIA_FORM, "Eligibility criteria", "入选/排除标准", (SCREENING_EVENT,), (), criterion_items, repeating=True
    )
    return elig, criteria_form


def _criterion_choice(criterion: EligibilityCriterion) -> Choice:
    return Choice(criterion.code, criterion.text, criterion.text_zh)


SAFETY_EVENT_META = EventMeta(
    SAFETY_EVENT, "Safety: adverse events and death", "安全性：不良事件与死亡", "common", None
)


def safety_forms() -> tuple[FormMeta, FormMeta]:
    """AE (a repeat per adverse event, keyed by its number) and DEATH, of the SAFETY event."""
    ae = FormMeta(
        AE_FORM,
        "Adverse events",
        "不良事件",
        (SAFETY_EVENT,),
        (),
        tuple(_item(AE_FORM, AdverseEvent, spec, repeat_key=spec.code == "AENUM") for spec in AE_ITEMS),
        repeating=True,
    )
    death = FormMeta(
        DEATH_FORM,
        "Death report",
        "死亡报告",
        (SAFETY_EVENT,),
        (),
        tuple(_item(DEATH_FORM, DeathReport, spec) for spec in DEATH_ITEMS),
    )
    return ae, death


def text_of(value: object) -> str:
    """A record's field as the exports write it: booleans true/false, lists ';'-separated, dates ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(map(str, value))
    if isinstance(value, Decimal):
        return format_number(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)
