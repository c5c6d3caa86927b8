"""The ODM data of the records kept outside the visit forms, current state and history.

- SCREENING event, for every screened candidate: SCREEN (the screening CRF), ELIG (screening and subject numbers,
  status, eligibility, Child-Pugh at screening, reasons for failure), IE (a repeating item group, one repeat per
  criterion keyed by its code: answer, met or not, why not) and ENROL (arm, date, sex, age).
- SAFETY event: AE (a repeating item group, one repeat per adverse event keyed by its number) and DEATH.
- History (with the audit trail): the screening, enrolment, status, adverse event and death report changes the
  trail records, as transactions with their AuditRecord, like the item values of the visit forms.

SubjectKey: the subject number once enrolled, the screening number before (S01-003). Both are unique; the
screening number is kept in ELIG.SCRNUM and the subject number in ELIG.SUBJID, so a candidate's records in an
export made before their enrolment link to their later ones.
"""

from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from itertools import groupby

from capture.models import format_number
from reports import selectors
from reports.exports import escape
from reports.exports.metadata import (
    CRITERIA_FORM,
    ELIG_FORM,
    ENROL_FORM,
    SCREEN_FORM,
    SCREENING_EVENT,
    SCREENING_FIELDS,
    FormMeta,
    ItemMeta,
    StudyMeta,
    criterion_values,
    subject_values,
)
from reports.exports.odm_metadata import location_oid, user_oid
from reports.exports.record_meta import (
    AE_FORM,
    AE_ITEMS,
    DEATH_FORM,
    DEATH_ITEMS,
    SAFETY_EVENT,
    text_of,
)
from reports.selectors import ExportScope, RecordAuditRow, SubjectRow
from safety.models import AdverseEvent, DeathReport

UPSERT = ' TransactionType="Upsert"'


def item_group(form: FormMeta, values: dict[str, str], kind: str, repeat_key: str = "") -> str:
    """One ItemGroupData of the form's items that have a value; '' when none has."""
    items = "".join(
        f'<ItemData ItemOID="{escape.attr(item.oid)}"{kind} Value="{escape.attr(values[item.code])}"/>'
        for item in form.items
        if values.get(item.code)
    )
    if not items:
        return ""
    key = f' ItemGroupRepeatKey="{escape.attr(repeat_key)}"' if repeat_key else ""
    return f'<ItemGroupData ItemGroupOID="{form.group_oid}"{key}{kind}>{items}</ItemGroupData>'


def _form_data(form: FormMeta, groups: Iterable[str], kind: str) -> str:
    inner = "".join(groups)
    return f'<FormData FormOID="{form.oid}"{kind}>{inner}</FormData>' if inner else ""


def _event_data(event_code: str, forms: Iterable[str], kind: str) -> str:
    inner = "".join(forms)
    return f'<StudyEventData StudyEventOID="SE.{event_code}"{kind}>{inner}</StudyEventData>' if inner else ""


class ScreeningWriter:
    """The SCREENING event of a candidate: SCREEN, ELIG, IE and ENROL, from the participant's row."""

    def __init__(self, meta: StudyMeta, transactional: bool) -> None:
        self.meta = meta
        self.forms = {form.code: form for form in meta.forms_at(SCREENING_EVENT)}
        self.kind = UPSERT if transactional else ""

    def event(self, subject: SubjectRow) -> str:
        values = subject_values(self.meta, subject)
        forms = []
        for code, form in self.forms.items():
            if code == CRITERIA_FORM:
                repeats = criterion_values(self.meta, subject)
                groups = [item_group(form, row, self.kind, row["IETESTCD"]) for row in repeats]
            else:
                groups = [item_group(form, values.get(code, {}), self.kind)]
            forms.append(_form_data(form, groups, self.kind))
        return _event_data(SCREENING_EVENT, forms, self.kind)


class _Follower:
    """Rows of a stream in participant order, taken participant by participant as the subjects go by."""

    def __init__(self, rows: Iterator[dict]) -> None:
        self.groups = groupby(rows, key=lambda row: row["participant_id"])
        self.current = next(self.groups, None)

    def take(self, participant_id: int) -> list[dict]:
        while self.current is not None and self.current[0] < participant_id:
            self.current = next(self.groups, None)
        if self.current is None or self.current[0] != participant_id:
            return []
        found = list(self.current[1])
        self.current = next(self.groups, None)
        return found


class SafetyWriter:
    """The SAFETY event of a subject: their adverse events (a repeat each) and death report. Two streams read
    alongside the subjects, so the export stays at a fixed number of queries."""

    def __init__(self, meta: StudyMeta, scope: ExportScope, transactional: bool) -> None:
        self.kind = UPSERT if transactional else ""
        forms = {form.code: form for form in meta.forms_at(SAFETY_EVENT)}
        self.ae_form, self.death_form = forms[AE_FORM], forms[DEATH_FORM]
        pk = meta.protocol.pk
        self.events = _Follower(selectors.records(AdverseEvent, scope, pk, [spec.field for spec in AE_ITEMS], "number"))
        self.deaths = _Follower(selectors.records(DeathReport, scope, pk, [spec.field for spec in DEATH_ITEMS], "pk"))

    def event(self, subject: SubjectRow) -> str:
        events = self.events.take(subject.participant_id)
        deaths = self.deaths.take(subject.participant_id)
        adverse = [item_group(self.ae_form, _values(AE_ITEMS, row), self.kind, str(row["number"])) for row in events]
        death = [item_group(self.death_form, _values(DEATH_ITEMS, row), self.kind) for row in deaths]
        forms = [_form_data(self.ae_form, adverse, self.kind), _form_data(self.death_form, death, self.kind)]
        return _event_data(SAFETY_EVENT, forms, self.kind)


def _values(specs: tuple, row: dict) -> dict[str, str]:
    return {spec.code: text_of(row[spec.field]) for spec in specs}


# --- History ------------------------------------------------------------------------------------------------

_SCREENING_ITEMS = {field: (SCREEN_FORM, code) for code, field in SCREENING_FIELDS.items()} | {
    "sex": (ENROL_FORM, "SEX")
}
_PARTICIPANT_ITEMS = {
    "subject_id": (ELIG_FORM, "SUBJID"),
    "status": (ELIG_FORM, "STATUS"),
    "arm": (ENROL_FORM, "ARM"),
    "enrolment_date": (ENROL_FORM, "ENRLDAT"),
}
_AE_ITEMS = {spec.field: (AE_FORM, spec.code) for spec in AE_ITEMS}
_DEATH_ITEMS = {spec.field: (DEATH_FORM, spec.code) for spec in DEATH_ITEMS}
_TRUE, _FALSE = {"true", "True", "yes"}, {"false", "False", "no"}

# (event, form, repeat key, item code, value) of one changed data point.
Change = tuple[str, str, str, str, str]


def _changes(row: RecordAuditRow) -> list[Change]:
    """The exported data points an audit record changed; none for fields the export does not hold (initials,
    date of birth) or records of no field (a lab grading's proposal names the lab item)."""
    field, value = row.item_code, row.new_value
    if row.object_type == "screening":
        if field.startswith("criterion:"):
            return [(SCREENING_EVENT, CRITERIA_FORM, field.partition(":")[2], "ANSWER", value)]
        if field == "child_pugh":  # written "B (8)"
            grade, _space, points = value.partition(" ")
            return [
                (SCREENING_EVENT, ELIG_FORM, "", "CPCLASS", grade),
                (SCREENING_EVENT, ELIG_FORM, "", "CPSCORE", points.strip("()")),
            ]
        if field == "status":
            return [(SCREENING_EVENT, ELIG_FORM, "", "STATUS", value)]
        target = _SCREENING_ITEMS.get(field)
        return [(SCREENING_EVENT, *_keyless(target), value)] if target else []
    if row.object_type == "participant":
        target = _PARTICIPANT_ITEMS.get(field)
        return [(SCREENING_EVENT, *_keyless(target), value)] if target else []
    if row.object_type == "adverse_event":
        target = _AE_ITEMS.get(field)
        if target is None or row.event_number is None:
            return []
        return [(SAFETY_EVENT, target[0], str(row.event_number), target[1], value)]
    target = _DEATH_ITEMS.get(field)
    return [(SAFETY_EVENT, *_keyless(target), value)] if target else []


def _keyless(target: tuple[str, str]) -> tuple[str, str, str]:
    return target[0], "", target[1]


def history(meta: StudyMeta, scope: ExportScope) -> Iterator[str]:
    """The recorded changes of the version's screening, enrolment, adverse event and death records, as
    transactions; the changes of one save of one record share their SubjectData ... ItemGroupData wrapping."""
    items = {(form.code, item.code): item for form in meta.forms for item in form.items}
    yield f'<ClinicalData StudyOID="{escape.attr(meta.protocol.code)}" MetaDataVersionOID="{meta.oid}">'
    changes = ((row, change) for row in selectors.record_history(scope, meta.protocol.pk) for change in _changes(row))
    seen: set[tuple] = set()  # a participant's data points changed so far: the first change inserts
    participant = None
    for (participant_id, event, form, key), group in groupby(changes, key=_save_key):
        if participant_id != participant:
            participant, seen = participant_id, set()
        group = list(group)
        first = group[0][0]
        repeat = f' ItemGroupRepeatKey="{escape.attr(key)}"' if key else ""
        parts = [
            f'<SubjectData SubjectKey="{escape.attr(first.subject_key)}"{UPSERT}>'
            f'<StudyEventData StudyEventOID="SE.{event}"{UPSERT}><FormData FormOID="F.{form}"{UPSERT}>'
            f'<ItemGroupData ItemGroupOID="IG.{form}"{repeat}{UPSERT}>'
        ]
        for row, (*_, code, value) in group:
            point = (form, key, code)
            parts.append(_item_change(row, items[(form, code)], value, scope, first_change=point not in seen))
            seen.add(point)
        parts.append("</ItemGroupData></FormData></StudyEventData></SubjectData>")
        yield "".join(parts)
    yield "</ClinicalData>"


def _save_key(pair: tuple[RecordAuditRow, Change]) -> tuple:
    row, (event, form, key, _code, _value) = pair
    return row.participant_id, event, form, key


def _item_change(row: RecordAuditRow, item: ItemMeta, value: str, scope: ExportScope, *, first_change: bool) -> str:
    record = _audit_record(row, scope)
    oid = escape.attr(item.oid)
    value = _as_exported(item, value)
    if value == "":
        return f'<ItemData ItemOID="{oid}" TransactionType="Remove">{record}</ItemData>'
    # The trail records an adverse event's fields as "update"s of the new event: its first value is an insert.
    operation = "Insert" if first_change else "Update"
    return f'<ItemData ItemOID="{oid}" TransactionType="{operation}" Value="{escape.attr(value)}">{record}</ItemData>'


def _as_exported(item: ItemMeta, value: str) -> str:
    """A value as the trail wrote it, spelt as the current state is: booleans true/false, numbers without
    trailing zeros, lists ';'-separated."""
    if item.odm_type == "boolean":
        return "true" if value in _TRUE else "false" if value in _FALSE else value
    if item.odm_type == "float" and value:
        try:
            return format_number(Decimal(value))
        except InvalidOperation:
            return value
    if item.code == "SERCRIT":
        return value.replace(",", ";")
    return value


def _audit_record(row: RecordAuditRow, scope: ExportScope) -> str:
    reason = f"<ReasonForChange>{escape.text(row.reason)}</ReasonForChange>" if row.reason else ""
    location = location_oid(scope.site_number(row.site_id))
    return (
        f'<AuditRecord><UserRef UserOID="{user_oid(row.user_id)}"/><LocationRef LocationOID="{location}"/>'
        f"<DateTimeStamp>{row.at.isoformat()}</DateTimeStamp>{reason}</AuditRecord>"
    )
