"""The CDISC ODM 1.3.2 export: the protocol's metadata and the trial's clinical data in one XML file, streamed.

The file is written as text, in protocol order, one participant at a time: no tree is built, so memory holds
one participant's values and one read chunk whatever the size of the trial. It validates against the CDISC
ODM 1.3.2 XML Schema and uses no vendor extension:

- one MetaDataVersion per protocol version; each participant's data sit in the ClinicalData of their version;
- every screened candidate is a subject (keyed by subject number once enrolled, by screening number before);
  the SCREENING event holds the screening CRF (SCREEN), eligibility and status (ELIG), each criterion's answer
  and result (IE, a repeat per criterion) and the enrolment (ENROL: arm, date, sex, age); the visits M0 ... FU36
  are the protocol's (the survival contacts are the SURV form of FU18 ... FU36); the SAFETY event holds the
  adverse events (AE, a repeat per event keyed by its number) and the death report (DEATH): reports/exports/
  odm_records.py;
- the LOGS event holds the log forms' rows as repeating item groups (reports/exports/logs.py);
- a missing value is `IsNull="Yes"`, its reason a Flag whose value comes from the code list CL.MISSING_REASON;
  an item never entered is left out;
- the sites are Locations in AdminData, each SubjectData names its site with SiteRef.

With the audit trail the file is Transactional: first the history of the screening, enrolment, adverse event
and death records, then of every item value, one transaction per recorded change with its AuditRecord (who,
where, when, why), then the current state (Upsert), so a reader applying the transactions in order ends with
the data as they are.
"""

import contextlib
import datetime
import importlib.metadata
import uuid
from collections.abc import Generator, Iterable, Iterator
from itertools import groupby
from typing import NamedTuple

from django.utils import timezone

from capture.models import MissingReason
from reports import selectors
from reports.exports import escape, odm_metadata, odm_records
from reports.exports.logs import LogAuditRow, LogEventWriter, log_value_history
from reports.exports.metadata import LOG_EVENT, MISSING_CODELIST, StudyMeta, study_meta
from reports.exports.odm_metadata import location_oid, user_oid
from reports.selectors import AuditRow, ExportScope

NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"
# Text handed to the web server at a time: large enough that the per-chunk cost vanishes, small enough to stream.
CHUNK_CHARACTERS = 64 * 1024
_MISSING_FLAGS = {
    reason: f'<Annotation SeqNum="1"><Flag><FlagValue CodeListOID="{MISSING_CODELIST}">{reason}</FlagValue>'
    "</Flag></Annotation>"
    for reason in MissingReason.values
}


def odm_export(*, scope: ExportScope, audit: bool = False, exported_by: str = "") -> Iterator[bytes]:
    """The ODM file of the participants of `scope`, as UTF-8 chunks; with `audit`, their audit trail too."""
    return _chunks(_document(scope, audit, exported_by, timezone.now()))


def _chunks(parts: Generator[str, None, None]) -> Iterator[bytes]:
    with contextlib.closing(parts):  # an abandoned download ends the reads' transaction at once
        buffer: list[str] = []
        size = 0
        for part in parts:
            buffer.append(part)
            size += len(part)
            if size >= CHUNK_CHARACTERS:
                yield "".join(buffer).encode()
                buffer, size = [], 0
        if buffer:
            yield "".join(buffer).encode()


def _document(scope: ExportScope, audit: bool, exported_by: str, now: datetime.datetime) -> Iterator[str]:
    with selectors.consistent_reads():
        studies = [list(group) for _code, group in groupby(map(study_meta, selectors.protocols()), _study_code)]
        users = selectors.audit_users(scope) if audit else []
        yield _header(scope, audit, exported_by, now, studies)
        for versions in studies:
            yield from odm_metadata.study(versions)
        for versions in studies:
            yield odm_metadata.admin_data(_study_code(versions[0]), versions, scope.sites, users)
        for versions in studies:
            for meta in versions:
                if audit:
                    yield from odm_records.history(meta, scope)
                    yield from _history(meta, scope)
                    yield from _log_history(meta, scope)
                yield from _clinical_data(meta, scope, transactional=audit)
        yield "</ODM>\n"


def _study_code(meta: StudyMeta) -> str:
    return meta.protocol.code


def _header(
    scope: ExportScope, audit: bool, exported_by: str, now: datetime.datetime, studies: list[list[StudyMeta]]
) -> str:
    stamp = now.isoformat()
    study = studies[-1][-1].protocol.code if studies else "EDC"
    sites = ", ".join(f"{site.number:02d}" for site in scope.sites)
    description = f"Exported by {exported_by or 'the EDC'} for site(s) {sites}" + (
        " with the audit trail" if audit else ""
    )
    granularity = ' Granularity="SingleSite"' if scope.single_site else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ODM xmlns="{NAMESPACE}" ODMVersion="1.3.2" FileType="{"Transactional" if audit else "Snapshot"}"'
        f'{granularity} FileOID="{escape.attr(study)}.{now:%Y%m%dT%H%M%S}.{uuid.uuid4().hex[:12]}" '
        f'CreationDateTime="{stamp}" AsOfDateTime="{stamp}" Description="{escape.attr(description)}" '
        f'Originator="{escape.attr(study)} EDC" SourceSystem="edc-nct01573923" SourceSystemVersion="{_version()}">\n'
    )


def _version() -> str:
    try:
        return importlib.metadata.version("edc-nct01573923")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --- Current state --------------------------------------------------------------------------------------------


# An item's place among a visit's values: its form's order times this, plus its own order within the form.
_FORM_STRIDE = 10_000
_FORM_CLOSE = "</ItemGroupData></FormData>"


class _ItemWriter(NamedTuple):
    """What writing one item's ItemData needs, worked out once per export rather than once per value."""

    order: int  # form order * _FORM_STRIDE + item order
    value_open: str  # '<ItemData ItemOID="..." Value="'
    null_open: str  # '<ItemData ItemOID="..." IsNull="Yes">'
    escaped: bool


def _writers(meta: StudyMeta, transactional: bool) -> dict[int, _ItemWriter]:
    # In a Transactional file an element without children must say what it does to the data point.
    kind = ' TransactionType="Upsert"' if transactional else ""
    return {
        item_id: _ItemWriter(
            form_order * _FORM_STRIDE + item_order,
            f'<ItemData ItemOID="{escape.attr(item.oid)}"{kind} Value="',
            f'<ItemData ItemOID="{escape.attr(item.oid)}"{kind} IsNull="Yes">',
            item.escaped,
        )
        for item_id, (form_order, item_order, item) in meta.items_by_id.items()
    }


def _form_heads(meta: StudyMeta) -> dict[int, str]:
    """{form order: the FormData and ItemGroupData opening tags} of the forms collected at visits."""
    heads = {}
    for form_order, _item_order, item in meta.items_by_id.values():
        form = escape.attr(item.form)
        heads[form_order] = f'<FormData FormOID="F.{form}"><ItemGroupData ItemGroupOID="IG.{form}">'
    return heads


def _clinical_data(meta: StudyMeta, scope: ExportScope, *, transactional: bool) -> Iterator[str]:
    writers, heads = _writers(meta, transactional), _form_heads(meta)
    screening_writer = odm_records.ScreeningWriter(meta, transactional)
    logs = LogEventWriter(meta, scope, transactional=transactional)
    yield f'<ClinicalData StudyOID="{escape.attr(meta.protocol.code)}" MetaDataVersionOID="{meta.oid}">'
    subjects = selectors.subjects(scope, meta.protocol.pk)
    # A row per visit, the next chunk fetched while this one is written (selectors.visit_values).
    visit_rows = selectors.visit_values(scope, protocol_id=meta.protocol.pk)
    safety_writer = odm_records.SafetyWriter(meta, scope, transactional)
    with contextlib.closing(visit_rows):  # its thread stopped before the transaction ends
        for subject, visits in selectors.visit_casebooks(subjects, visit_rows):
            parts = [
                f'<SubjectData SubjectKey="{escape.attr(subject.key)}">'
                f'<SiteRef LocationOID="{location_oid(scope.site_number(subject.site_id))}"/>',
                screening_writer.event(subject),
            ]
            for _participant, definition_id, item_ids, texts, missing in visits:
                event = meta.event_by_visit_definition[definition_id]
                parts.append(_event(event.oid, zip(item_ids, texts, missing, strict=True), writers, heads))
            parts.append(logs.event(subject.participant_id))
            parts.append(safety_writer.event(subject))
            parts.append("</SubjectData>")
            yield "".join(parts)
    yield "</ClinicalData>"


def _event(event_oid: str, values: Iterable[tuple[int, str, str]], writers: dict[int, _ItemWriter], heads: dict) -> str:
    """One visit's StudyEventData from its (item id, value text, missing reason): its forms in protocol order, each
    form's items in protocol order.

    The loop runs once per value of the trial, so it stays plain: no call but the escaping of free text.
    """
    entries = []
    for item_id, value, missing_reason in values:
        order, value_open, null_open, escaped = writers[item_id]
        if missing_reason:
            flag = _MISSING_FLAGS.get(missing_reason) or _MISSING_FLAGS[MissingReason.UNKNOWN]
            entries.append((order, f"{null_open}{flag}</ItemData>"))
        elif value:  # else emptied since it was entered: no value now
            entries.append((order, f'{value_open}{escape.attr(value) if escaped else value}"/>'))
    if not entries:
        return ""
    entries.sort()  # the database gives a visit's values in no order (selectors.visit_values)
    parts = [f'<StudyEventData StudyEventOID="{event_oid}">']
    form = None
    for order, text in entries:
        if order // _FORM_STRIDE != form:
            if form is not None:
                parts.append(_FORM_CLOSE)
            form = order // _FORM_STRIDE
            parts.append(heads[form])
        parts.append(text)
    parts.append(f"{_FORM_CLOSE}</StudyEventData>")
    return "".join(parts)


# --- History --------------------------------------------------------------------------------------------------

_OPERATIONS = {"create": "Insert", "update": "Update"}


def _history(meta: StudyMeta, scope: ExportScope) -> Iterator[str]:
    """Every recorded change of the version's item values, as transactions. The changes of one save (consecutive
    records of one form of one visit) share their SubjectData ... ItemGroupData wrapping."""
    yield f'<ClinicalData StudyOID="{escape.attr(meta.protocol.code)}" MetaDataVersionOID="{meta.oid}">'
    rows = selectors.value_history(scope, meta.protocol.pk)
    for (_participant, visit_code, form_code), changes in groupby(rows, _save_key):
        if visit_code is None:
            continue  # a record whose form instance is gone cannot be placed in a visit
        changes = list(changes)
        first = changes[0]
        upsert = ' TransactionType="Upsert"'
        parts = [
            f'<SubjectData SubjectKey="{escape.attr(first.subject_id)}"{upsert}>'
            f'<StudyEventData StudyEventOID="SE.{escape.attr(visit_code)}"{upsert}>'
            f'<FormData FormOID="F.{escape.attr(form_code)}"{upsert}>'
            f'<ItemGroupData ItemGroupOID="IG.{escape.attr(form_code)}"{upsert}>'
        ]
        parts.extend(_change(row, scope) for row in changes)
        parts.append("</ItemGroupData></FormData></StudyEventData></SubjectData>")
        yield "".join(parts)
    yield "</ClinicalData>"


def _log_history(meta: StudyMeta, scope: ExportScope) -> Iterator[str]:
    """The recorded changes of the log rows, as transactions on their repeating item groups; a row removed as
    entered in error ends with its item group removed, as the current state (which leaves it out) has it."""
    if not any(form.is_log for form in meta.forms):
        return
    yield f'<ClinicalData StudyOID="{escape.attr(meta.protocol.code)}" MetaDataVersionOID="{meta.oid}">'
    for (_participant, form_code, repeat_key, action), changes in groupby(
        log_value_history(scope, meta.protocol.pk), _log_save_key
    ):
        if repeat_key is None:
            continue
        changes = list(changes)
        upsert = ' TransactionType="Upsert"'
        group = "Remove" if action == "remove" else "Upsert"
        parts = [
            f'<SubjectData SubjectKey="{escape.attr(changes[0].subject_id)}"{upsert}>'
            f'<StudyEventData StudyEventOID="SE.{LOG_EVENT}"{upsert}>'
            f'<FormData FormOID="F.{escape.attr(form_code)}"{upsert}>'
            f'<ItemGroupData ItemGroupOID="IG.{escape.attr(form_code)}" ItemGroupRepeatKey="{repeat_key}" '
            f'TransactionType="{group}">'
        ]
        if action == "remove":
            parts.append(_audit_record(changes[-1], scope))
        else:
            parts.extend(_change(row, scope) for row in changes)
        parts.append("</ItemGroupData></FormData></StudyEventData></SubjectData>")
        yield "".join(parts)
    yield "</ClinicalData>"


def _log_save_key(row: LogAuditRow) -> tuple:
    return row.participant_id, row.form_code, row.repeat_key, row.action == "remove" and "remove"


def _save_key(row: AuditRow) -> tuple:
    return row.participant_id, row.visit_code, row.form_code


def _change(row: AuditRow, scope: ExportScope) -> str:
    oid = escape.attr(f"IT.{row.form_code}.{row.item_code}")
    record = _audit_record(row, scope)
    value = row.new_value
    if value == "":
        return f'<ItemData ItemOID="{oid}" TransactionType="Remove">{record}</ItemData>'
    operation = _OPERATIONS.get(row.action, "Update")
    missing = value[1:-1] if value.startswith("<") and value.endswith(">") else ""
    opening = f'<ItemData ItemOID="{oid}" TransactionType="{operation}"'
    if missing in _MISSING_FLAGS:  # the trail writes a missing value as <reason>
        return f'{opening} IsNull="Yes">{record}{_MISSING_FLAGS[missing]}</ItemData>'
    return f'{opening} Value="{escape.attr(value)}">{record}</ItemData>'


def _audit_record(row: AuditRow, scope: ExportScope) -> str:
    reason = f"<ReasonForChange>{escape.text(row.reason)}</ReasonForChange>" if row.reason else ""
    return (
        f'<AuditRecord><UserRef UserOID="{user_oid(row.user_id)}"/>'
        f'<LocationRef LocationOID="{location_oid(scope.site_number(row.site_id))}"/>'
        f"<DateTimeStamp>{row.at.isoformat()}</DateTimeStamp>{reason}</AuditRecord>"
    )
