"""What the exports say about the data: each protocol version's events, forms, items, units and code lists.

Built from the protocol definitions (capture.definitions and the visit and arm tables), once per process and
protocol version: a version never changes once loaded. The ODM writer and the CSV data dictionary both read it,
so the two exports describe the same items the same way.

Forms are added to what the protocol file lists, because their data live on the participant or on records
rather than on a visit. In the SCREENING event, before M0, for every screened candidate: SCREEN (the protocol's
screening CRF, stored in trial.Screening), ELIG and IE (eligibility, status and each criterion: record_meta.py)
and ENROL (arm, enrolment date, sex and age at enrolment). In the SAFETY event: AE and DEATH (record_meta.py).
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import translation

from capture.checks import MAX_TEXT
from capture.definitions import protocol_definition, protocol_forms
from capture.models import MissingReason, format_number
from reports.selectors import SubjectRow
from trial.models import (
    Arm,
    DataType,
    EligibilityCriterion,
    ItemDefinition,
    Protocol,
    Sex,
    VisitDefinition,
    age_on,
)

SCREENING_EVENT = "SCREENING"
# Log forms (rows repeat per participant, not per visit) sit in one unscheduled event of their own.
LOG_EVENT = "LOGS"
SCREEN_FORM = "SCREEN"
ENROL_FORM = "ENROL"
ELIG_FORM = "ELIG"  # status, numbers and eligibility of every screened candidate
CRITERIA_FORM = "IE"  # a repeat per criterion: answer and result
# The screening CRF's items and the trial.Screening fields that hold them (as trial.services validates them).
SCREENING_FIELDS = {
    "SCRDAT": "screening_date",
    "CONSDAT": "consent_date",
    "DIAG": "diagnosis",
    "BILI": "total_bilirubin",
    "ALB": "albumin",
    "INR": "inr",
    "ASCITES": "ascites",
    "HEPENC": "encephalopathy",
}
# A laboratory panel is a form with a sample date (SDTM's LBDTC); the long lab dataset holds those forms.
LAB_DATE_ITEM = "LBDAT"
MISSING_CODELIST = "CL.MISSING_REASON"

# ODM 1.3.2 data types. A choice is text with a code list; yes/no is ODM's boolean ("true"/"false").
ODM_TYPES = {
    DataType.DECIMAL: "float",
    DataType.INTEGER: "integer",
    DataType.TEXT: "text",
    DataType.DATE: "date",
    DataType.CHOICE: "text",
    DataType.BOOLEAN: "boolean",
    "datetime": "datetime",  # times of records (an AE's expedited_at), never of a protocol item
}
# numeric(20, 6) columns: 20 digits at most.
NUMBER_LENGTH = 20
DATE_LENGTH = 10


@dataclass(frozen=True)
class Choice:
    code: str
    label: str
    label_zh: str


@dataclass(frozen=True)
class CodeList:
    oid: str
    name: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True)
class ItemMeta:
    """An item as the exports describe it; `oid` is unique in a protocol version (codes repeat across forms)."""

    form: str
    code: str
    label: str
    label_zh: str
    group: str
    data_type: str
    unit: str = ""
    decimals: int | None = None
    hard_min: Decimal | None = None
    hard_max: Decimal | None = None
    reference_low: Decimal | None = None
    reference_high: Decimal | None = None
    required: bool = False
    formula: str = ""
    codelist: CodeList | None = None

    @property
    def oid(self) -> str:
        return f"IT.{self.form}.{self.code}"

    @property
    def odm_type(self) -> str:
        return ODM_TYPES[self.data_type]

    @property
    def length(self) -> int:
        if self.codelist is not None:
            return max(len(choice.code) for choice in self.codelist.choices)
        return {
            "float": NUMBER_LENGTH,
            "integer": NUMBER_LENGTH,
            "date": DATE_LENGTH,
            "datetime": 32,
            "boolean": 5,
        }.get(self.odm_type, MAX_TEXT)

    @property
    def ref_range(self) -> tuple[Decimal | None, Decimal | None]:
        return self.reference_low, self.reference_high

    @property
    def escaped(self) -> bool:
        """Whether values may hold characters XML must escape: free text and codes, never numbers or dates."""
        return self.odm_type in ("text", "boolean")


@dataclass(frozen=True)
class FormMeta:
    code: str
    name: str
    name_zh: str
    event_codes: tuple[str, ...]
    arm_codes: tuple[str, ...]
    items: tuple[ItemMeta, ...]
    repeating: bool = False  # its item group repeats (a repeat per criterion, adverse event or log row)

    @property
    def oid(self) -> str:
        return f"F.{self.code}"

    @property
    def group_oid(self) -> str:
        return f"IG.{self.code}"

    @property
    def is_log(self) -> bool:
        """A log form of the protocol: rows that repeat per participant, in the LOGS event."""
        return LOG_EVENT in self.event_codes

    @property
    def is_lab(self) -> bool:
        return any(item.code == LAB_DATE_ITEM for item in self.items)


@dataclass(frozen=True)
class EventMeta:
    code: str
    name: str
    name_zh: str
    kind: str
    day: int | None

    @property
    def oid(self) -> str:
        return f"SE.{self.code}"


@dataclass(frozen=True)
class StudyMeta:
    """One protocol version as the exports describe it."""

    protocol: Protocol
    events: tuple[EventMeta, ...]
    forms: tuple[FormMeta, ...]
    codelists: tuple[CodeList, ...]
    # Value rows carry ids; the exports need what they stand for.
    items_by_id: dict[int, tuple[int, int, ItemMeta]] = field(repr=False)  # id: (form order, item order, item)
    event_by_visit_definition: dict[int, EventMeta] = field(repr=False)
    arm_by_id: dict[int, str] = field(repr=False)  # id: arm code
    form_ids: dict[str, int] = field(repr=False)  # code: FormDefinition id
    criteria: tuple[tuple[str, str, bool], ...] = ()  # (code, inclusion or exclusion, asked) in protocol order

    @property
    def oid(self) -> str:
        return f"MDV.{self.protocol.code}.v{self.protocol.version}"

    @property
    def units(self) -> list[str]:
        return sorted({item.unit for form in self.forms for item in form.items if item.unit})

    def forms_at(self, event_code: str) -> list[FormMeta]:
        return [form for form in self.forms if event_code in form.event_codes]


_cache: dict[tuple[int, str], StudyMeta] = {}


def study_meta(protocol: Protocol) -> StudyMeta:
    """The export metadata of a protocol version, built once per process (at most 5 queries, the first time)."""
    key = (protocol.pk, protocol.sha256)
    if key not in _cache:
        _cache[key] = _build(protocol)
    return _cache[key]


def unit_oid(unit: str) -> str:
    """A readable OID for a unit: "U/L" -> "MU.U_L", "10^7 cells" -> "MU.10_7_cells"."""
    return "MU." + re.sub(r"[^A-Za-z0-9]+", "_", unit).strip("_")


def _build(protocol: Protocol) -> StudyMeta:
    named = _named_codelists(protocol)
    arms = list(Arm.objects.filter(protocol_id=protocol.pk).order_by("order"))
    visits = list(VisitDefinition.objects.filter(protocol_id=protocol.pk).order_by("order"))
    forms, items_by_id = [], {}
    for form_order, spec in enumerate(protocol_forms(protocol).values()):
        definition = spec.definition
        events = _form_events(definition)
        items = tuple(_item(definition.code, item, named) for item in spec.items)
        forms.append(
            FormMeta(
                definition.code,
                definition.name,
                definition.name_zh,
                events,
                tuple(definition.arm_codes),
                items,
                definition.repeating,
            )
        )
        items_by_id.update(
            {item.pk: (form_order, item.order, meta) for item, meta in zip(spec.items, items, strict=True)}
        )
    # Local: record_meta builds on this module's types.
    from reports.exports.record_meta import SAFETY_EVENT_META, safety_forms, screening_forms

    # SCREEN, ELIG, IE, ENROL, the visit forms, then AE and DEATH: the order of the CRFs a participant goes through.
    criteria = list(EligibilityCriterion.objects.filter(protocol_id=protocol.pk).order_by("order"))
    at = 1 if forms and forms[0].code == SCREEN_FORM else 0
    forms[at:at] = [*screening_forms(criteria), _enrol_form(arms)]
    forms += safety_forms()
    by_visit = {v.pk: EventMeta(v.code, v.name, v.name_zh, v.kind, v.day) for v in visits}
    screening = EventMeta(SCREENING_EVENT, "Screening and enrolment", "筛选与入组", "screening", None)
    return StudyMeta(
        protocol=protocol,
        events=(screening, *by_visit.values(), *_log_events(forms), SAFETY_EVENT_META),
        forms=tuple(forms),
        codelists=_codelists(forms),
        items_by_id=items_by_id,
        event_by_visit_definition=by_visit,
        arm_by_id={arm.pk: arm.code for arm in arms},
        form_ids={spec.code: spec.definition.pk for spec in protocol_forms(protocol).values()},
        criteria=tuple((c.code, c.kind, not c.computed) for c in criteria),
    )


def _form_events(definition: object) -> tuple[str, ...]:
    if definition.code == SCREEN_FORM:
        return (SCREENING_EVENT,)
    if definition.repeating:
        return (LOG_EVENT,)
    return tuple(definition.visit_codes)


def _log_events(forms: list[FormMeta]) -> tuple[EventMeta, ...]:
    """The LOGS event, when the protocol version declares log forms."""
    if not any(form.is_log for form in forms):
        return ()
    return (EventMeta(LOG_EVENT, "Participant logs", "受试者记录表", "log", None),)


def _item(form_code: str, item: ItemDefinition, named: dict[tuple, CodeList]) -> ItemMeta:
    choices = tuple(Choice(*(list(choice) + ["", ""])[:3]) for choice in item.choices)
    codelist = named.get(choices) or (CodeList(f"CL.{form_code}.{item.code}", item.code, choices) if choices else None)
    return ItemMeta(
        form=form_code,
        code=item.code,
        label=item.label,
        label_zh=item.label_zh,
        group=item.group,
        data_type=item.data_type,
        unit=item.unit,
        decimals=item.decimals,
        hard_min=item.hard_min,
        hard_max=item.hard_max,
        reference_low=item.reference_low,
        reference_high=item.reference_high,
        required=item.required,
        formula=item.derived,
        codelist=codelist,
    )


def _named_codelists(protocol: Protocol) -> dict[tuple, CodeList]:
    """The protocol file's named code lists, keyed by their choices: items copied them, so match them back."""
    named = {}
    definition = protocol_definition(protocol)
    lists = {**(definition.get("codelists") or {}), **(definition.get("log_codelists") or {})}
    for name, choices in lists.items():
        key = tuple(Choice(*(list(choice) + ["", ""])[:3]) for choice in choices)
        named[key] = CodeList(f"CL.{name}", name, key)
    return named


def _enrol_form(arms: list[Arm]) -> FormMeta:
    arm_list = CodeList("CL.ARM", "arm", tuple(Choice(arm.code, arm.name, arm.name_zh) for arm in arms))
    sexes = CodeList("CL.SEX", "sex", translated_choices(Sex.choices))
    items = (
        ItemMeta(ENROL_FORM, "ARM", "Arm", "治疗组", "", DataType.CHOICE, codelist=arm_list, required=True),
        ItemMeta(
            ENROL_FORM, "ENRLDAT", "Date of enrolment (day 0)", "入组日期（第0天）", "", DataType.DATE, required=True
        ),
        ItemMeta(ENROL_FORM, "SEX", "Sex", "性别", "", DataType.CHOICE, codelist=sexes, required=True),
        ItemMeta(
            ENROL_FORM, "AGE", "Age at enrolment", "入组时年龄", "", DataType.INTEGER, unit="years", required=True
        ),
    )
    return FormMeta(ENROL_FORM, "Enrolment", "入组", (SCREENING_EVENT,), (), items)


def translated_choices(choices: list[tuple[str, object]]) -> tuple[Choice, ...]:
    """Choices of a model's TextChoices with their English and Simplified Chinese labels from the catalog."""
    result = []
    for code, label in choices:
        with translation.override("en"):
            english = str(label)
        with translation.override("zh-hans"):
            chinese = str(label)
        result.append(Choice(code, english, chinese))
    return tuple(result)


def missing_codelist() -> CodeList:
    return CodeList(MISSING_CODELIST, "missing_reason", translated_choices(MissingReason.choices))


def _codelists(forms: list[FormMeta]) -> tuple[CodeList, ...]:
    seen: dict[str, CodeList] = {}
    for form in forms:
        for item in form.items:
            if item.codelist is not None:
                seen.setdefault(item.codelist.oid, item.codelist)
    return (*seen.values(), missing_codelist())


def plain(value: object) -> str:
    """A range bound or screening value as the exports write it: numbers without trailing zeros, dates ISO."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format_number(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def subject_values(meta: StudyMeta, subject: SubjectRow) -> dict[str, dict[str, str]]:
    """{form code: {item code: value}} of the forms kept on the participant: SCREEN, ELIG and ENROL."""
    screen = {code: plain(getattr(subject, field)) for code, field in SCREENING_FIELDS.items()}
    eligibility = {
        "SCRNUM": subject.screening_number,
        "SUBJID": subject.subject_id or "",
        "STATUS": subject.status,
        "ELIGFL": _flag(subject.eligible),
        "CPSCORE": plain(subject.child_pugh_points),
        "CPCLASS": subject.child_pugh_class or "",
        "FAILRSN": ";".join(subject.screen_failure_reasons or ()),
    }
    enrol = {
        "ARM": meta.arm_by_id.get(subject.arm_id, ""),
        "ENRLDAT": plain(subject.enrolment_date),
        "SEX": subject.sex,
        "AGE": str(age_on(subject.date_of_birth, subject.enrolment_date)) if subject.enrolment_date else "",
    }
    return {SCREEN_FORM: screen, ELIG_FORM: eligibility, ENROL_FORM: enrol}


def criterion_values(meta: StudyMeta, subject: SubjectRow) -> list[dict[str, str]]:
    """A candidate's answer and result of each criterion of their protocol version, in protocol order."""
    if subject.answers is None:  # no screening record
        return []
    failed = set(subject.failed_criteria or ())
    reasons = dict(reason.partition(": ")[::2] for reason in subject.screen_failure_reasons or ())
    return [
        {
            "IETESTCD": code,
            "IECAT": kind,
            "ANSWER": _flag(subject.answers.get(code)) if asked else "",
            "MET": _flag(code not in failed),
            "REASON": reasons.get(code, "") if code in failed else "",
        }
        for code, kind, asked in meta.criteria
    ]
