"""Bulk import of one laboratory's results from a CSV file: read it, convert to the protocol's units, preview, apply.

The file is stored as uploaded (LabImport). Its preview checks every row against the protocol and the site's
participants and writes nothing. Applying it checks the rows again and saves each visit's form through
`form_save`, so an imported value obeys the same rules and leaves the same audit trail as a typed one.
"""

import copy
import csv
import hashlib
import io
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from capture.checks import ParseError, Typed, parse, reference_flag
from capture.definitions import FormSpec, protocol_forms
from capture.models import Flag, FormInstance, ItemValue, LabImport, LabImportState
from capture.services import form_save
from trial import access
from trial.access import Action
from trial.errors import DomainError, InvalidInput
from trial.models import DataType, ItemDefinition, Participant, Protocol, Site, Visit
from trial.validators import text_problem

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
COLUMNS = ("participant", "visit", "item", "value", "unit")
# The CRFs a laboratory fills. An item code may be written alone when only one of them has it, else as FORM.ITEM.
LAB_FORMS = ("LIVER", "KIDNEY", "LIPGLU", "CYTO", "HEPAT")
# Excel saves "CSV UTF-8" with a BOM; Chinese Windows Excel saves plain "CSV" in GB18030 (a superset of GBK).
ENCODINGS = ("utf-8-sig", "gb18030")
DELIMITERS = (",", ";", "\t")
# Laboratory systems often put a title or the report's date above the header: look this far for it.
HEADER_SEARCH_ROWS = 20
WORKBOOK_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx (zip) and .xls (OLE2)
SHA_PREFIX = 12

# Alternatives to the protocol's SI units that laboratories report: (item code, unit) -> factor to the
# protocol unit. The protocol unit itself needs no entry.
CONVERSIONS: dict[tuple[str, str], Decimal] = {
    ("BILI", "mg/dL"): Decimal("17.1"),
    ("BILDIR", "mg/dL"): Decimal("17.1"),
    ("CREAT", "mg/dL"): Decimal("88.4"),
    ("ALB", "g/dL"): Decimal("10"),
    ("GLUC", "mg/dL"): Decimal(1) / Decimal("18.0"),
}
# Spellings of one unit, after normalise_unit (which already folds case, spaces and the micro sign).
UNIT_SYNONYMS = {"iu/l": "u/l"}
ONE = Decimal(1)

LabItems = dict[str, list[tuple[FormSpec, ItemDefinition]]]  # item code or FORM.ITEM -> the items it names


# --- Reading the file -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    line: int  # the file's line, as a text editor or spreadsheet numbers it
    participant: str
    visit: str
    item: str
    value: str
    unit: str


def file_error(message: str) -> InvalidInput:
    return InvalidInput(errors={"file": [message]})


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read with; InvalidInput if it is not text."""
    if not data.strip():
        raise file_error(_("The file is empty."))
    if data.startswith(WORKBOOK_SIGNATURES):
        raise file_error(_("This is an Excel workbook, not a CSV file: save it from Excel as “CSV UTF-8”."))
    if b"\x00" in data:
        raise file_error(_("This is not a CSV text file: it holds binary data. Save it from Excel as “CSV UTF-8”."))
    for encoding in ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if text_problem(text, multiline=True):
            raise file_error(_("This is not a CSV text file: it holds binary data. Save it from Excel as “CSV UTF-8”."))
        return text.lstrip("\ufeff"), encoding
    raise file_error(_("The file's text cannot be read (neither UTF-8 nor GB18030): save it as “CSV UTF-8”."))


def read_rows(text: str) -> list[Row]:
    """The data rows under the header; InvalidInput with one message if the file is not a usable CSV."""
    delimiter, header_index, columns = _find_header(text)
    rows = []
    for index, line, cells in _records(text, delimiter):
        if index <= header_index or _is_blank_or_comment(cells):
            continue
        rows.append(Row(line, *(_cell(cells, columns[name]) for name in COLUMNS)))
        if len(rows) > MAX_ROWS:
            raise file_error(
                _("The file has more than %(max)d rows of results: split it into smaller files.") % {"max": MAX_ROWS}
            )
    if not rows:
        raise file_error(_("The file has a header but no rows of results under it."))
    return rows


def _records(text: str, delimiter: str) -> Iterator[tuple[int, int, list[str]]]:
    """(record index, line number, normalised cells) of every CSV record."""
    # strict: a stray or unclosed quote is an error, not a value that silently swallows the rest of the line.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for index, cells in enumerate(reader):
            yield index, reader.line_num, [normalise(cell) for cell in cells]
    except csv.Error as error:
        raise file_error(
            _("The file is not valid CSV (line %(line)d): %(error)s.") % {"line": reader.line_num, "error": error}
        ) from None


def _find_header(text: str) -> tuple[str, int, dict[str, int]]:
    """The delimiter, the header's record index and {column name: position}."""
    for delimiter in DELIMITERS:
        for index, _line, cells in _first_records(text, delimiter):
            columns = {cell.casefold(): position for position, cell in reversed(list(enumerate(cells)))}
            if all(name in columns for name in COLUMNS):
                return delimiter, index, columns
    raise _missing_columns(text)


def _first_records(text: str, delimiter: str) -> list[tuple[int, int, list[str]]]:
    records = []
    for record in _records(text, delimiter):
        if not _is_blank_or_comment(record[2]):
            records.append(record)
        if len(records) == HEADER_SEARCH_ROWS:
            break
    return records


def _missing_columns(text: str) -> InvalidInput:
    firsts = [records[0][2] for records in (_first_records(text, delimiter) for delimiter in DELIMITERS) if records]
    if not firsts:
        return file_error(_("The file is empty."))
    found = {cell.casefold() for cell in max(firsts, key=len)}
    missing = [name for name in COLUMNS if name not in found]
    return file_error(
        _("The file has no column named %(missing)s. Its header must name the columns %(columns)s.")
        % {"missing": ", ".join(missing), "columns": ", ".join(COLUMNS)}
    )


def _is_blank_or_comment(cells: list[str]) -> bool:
    return not any(cells) or cells[0].startswith("#")


def _cell(cells: list[str], position: int) -> str:
    return cells[position] if position < len(cells) else ""


def normalise(text: str) -> str:
    """Full-width digits, letters and signs (Chinese input methods) as their ASCII forms; no outer spaces."""
    return unicodedata.normalize("NFKC", text).strip()


# --- Units ------------------------------------------------------------------------------------------------


def normalise_unit(unit: str) -> str:
    """A unit as compared: case, spaces and the micro sign (µ, μ or u) folded; synonyms made one."""
    text = "".join(normalise(unit).casefold().split()).replace("μ", "u")
    return UNIT_SYNONYMS.get(text, text)


_FACTORS = {(code, normalise_unit(unit)): factor for (code, unit), factor in CONVERSIONS.items()}


def accepted_units(item: ItemDefinition) -> list[str]:
    return [item.unit, *(unit for code, unit in CONVERSIONS if code == item.code)]


def conversion_table() -> list[tuple[str, str, str]]:
    """(item code, unit, "× 17.1" or "÷ 18") of every conversion, to show what the import does."""
    rows = []
    for (code, unit), factor in CONVERSIONS.items():
        operation = f"× {factor.normalize():f}" if factor >= ONE else f"÷ {(ONE / factor).quantize(ONE):f}"
        rows.append((code, unit, operation))
    return rows


def unit_factor(item: ItemDefinition, unit: str) -> Decimal:
    """The factor from `unit` to the item's protocol unit; ParseError if the unit is not accepted for it."""
    given = normalise_unit(unit)
    if not item.unit:
        if given:
            raise ParseError(_("%(item)s takes no unit, not %(unit)s.") % {"item": item.label, "unit": unit})
        return ONE
    if given == normalise_unit(item.unit):
        return ONE
    if (item.code, given) in _FACTORS:
        return _FACTORS[(item.code, given)]
    units = ", ".join(accepted_units(item))
    if not given:
        raise ParseError(_("%(item)s: give the unit (%(units)s).") % {"item": item.label, "units": units})
    raise ParseError(
        _("%(item)s: the unit %(unit)s is not accepted; give %(units)s.")
        % {"item": item.label, "unit": unit, "units": units}
    )


@dataclass(frozen=True)
class Converted:
    typed: Typed
    text: str  # as form_save receives it, in the protocol unit
    converted: bool


def convert(item: ItemDefinition, value: str, unit: str) -> Converted:
    """The value in the item's protocol unit, rounded to its decimals if converted; ParseError if unusable."""
    factor = unit_factor(item, unit)
    if item.data_type == DataType.CHOICE:
        value = _choice_code(item, value)
    if factor == ONE:
        return Converted(typed=_parse_given(item, value), text=value, converted=False)
    number = _parse_given(_without_hard_range(item), value).number
    places = item.decimals if item.decimals is not None else 6  # 6: the scale values are stored with
    result = (number * factor).quantize(ONE.scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{result:f}"
    try:
        return Converted(typed=parse(item, text), text=text, converted=True)
    except ParseError as error:
        raise ParseError(
            _("%(error)s (%(value)s %(unit)s in the file).")
            % {"error": str(error).rstrip("."), "value": value, "unit": unit}
        ) from None


def _parse_given(item: ItemDefinition, value: str) -> Typed:
    typed = parse(item, value)
    if typed.is_empty:
        raise ParseError(_("%(item)s: no value given.") % {"item": item.label})
    return typed


def _without_hard_range(item: ItemDefinition) -> ItemDefinition:
    # The hard range is in the protocol unit: it applies to the converted value, not to the file's.
    loose = copy.copy(item)
    loose.hard_min = loose.hard_max = None
    return loose


def _choice_code(item: ItemDefinition, value: str) -> str:
    """The choice code a laboratory wrote as the code or a label, in English or Chinese, in any case."""
    wanted = value.casefold()
    for code, *labels in item.choices:
        if wanted in {str(text).casefold() for text in (code, *labels)}:
            return code
    return value


# --- Preview ----------------------------------------------------------------------------------------------


@dataclass
class RowCheck:
    """What one row will write, or why it cannot."""

    row: Row
    problems: list[str] = field(default_factory=list)
    visit: Visit | None = None
    spec: FormSpec | None = None
    item: ItemDefinition | None = None
    value: str = ""
    converted: bool = False
    flag: str | None = None
    current: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def original(self) -> str:
        return f"{self.row.value} {self.row.unit}".strip()

    @property
    def flag_label(self) -> str:
        return Flag(self.flag).label if self.flag else ""

    @property
    def key(self) -> tuple[int, str, str] | None:
        """The value the row sets (visit, form, item), once those are known."""
        if self.visit is None or self.item is None:
            return None
        return (self.visit.pk, self.spec.code, self.item.code)


@dataclass(frozen=True)
class Group:
    """The rows of one form of one visit: one form_save."""

    visit: Visit
    spec: FormSpec
    checks: tuple[RowCheck, ...]

    def describe(self) -> dict[str, object]:
        """The group as the import's outcome keeps it (JSON)."""
        return {
            "participant": self.visit.participant.subject_id,
            "visit": self.visit.definition.code,
            "form": self.spec.code,
            "items": [check.item.code for check in self.checks],
        }


@dataclass(frozen=True)
class Preview:
    checks: list[RowCheck]
    earlier: LabImport | None = None  # the same file, applied before at this site

    @property
    def valid(self) -> list[RowCheck]:
        return [check for check in self.checks if check.ok]

    @property
    def with_problems(self) -> list[RowCheck]:
        return [check for check in self.checks if not check.ok]

    @property
    def groups(self) -> list[Group]:
        grouped: dict[tuple[int, str], list[RowCheck]] = {}
        for check in self.valid:
            grouped.setdefault((check.visit.pk, check.spec.code), []).append(check)
        return [Group(visit=rows[0].visit, spec=rows[0].spec, checks=tuple(rows)) for rows in grouped.values()]


@dataclass
class _Context:
    """Everything the rows refer to, read in a fixed number of queries whatever the number of rows."""

    participants: dict[str, Participant]
    visits: dict[tuple[int, str], Visit]
    current: dict[tuple[int, int], ItemValue]
    items: dict[int, LabItems] = field(default_factory=dict)

    def lab_items(self, protocol: Protocol) -> LabItems:
        if protocol.pk not in self.items:
            self.items[protocol.pk] = _lab_items(protocol)
        return self.items[protocol.pk]


def lab_import_preview(*, user: object, lab_import: LabImport) -> Preview:
    """Every row of the import with what it will write or its problems. Reads only, in 3 queries."""
    rows = read_rows(lab_import.content)
    context = _load(user, lab_import.site_id, rows)
    checks = [_check_row(row, context) for row in rows]
    _mark_duplicates(checks)
    return Preview(checks=checks, earlier=_applied_before(lab_import))


def _load(user: object, site_id: int, rows: list[Row]) -> _Context:
    subject_ids = {row.participant for row in rows}
    # Enrolment gives a participant a subject ID and their visits at once: a participant is known by a visit.
    visits = (
        access.visits(user, Action.ENTER_DATA)
        .filter(participant__site_id=site_id, participant__subject_id__in=subject_ids)
        .select_related("participant__protocol", "participant__arm", "definition")
    )
    by_code = {(visit.participant_id, visit.definition.code): visit for visit in visits}
    participants = {visit.participant.subject_id: visit.participant for visit in by_code.values()}
    current = ItemValue.objects.filter(visit_id__in=[visit.pk for visit in by_code.values()])
    return _Context(
        participants=participants,
        visits=by_code,
        current={(value.visit_id, value.item_id): value for value in current},
    )


def _lab_items(protocol: Protocol) -> LabItems:
    """{item code and FORM.ITEM: [(form, item)]} of the laboratory forms."""
    forms = protocol_forms(protocol)
    items: LabItems = {}
    for spec in (forms[code] for code in LAB_FORMS if code in forms):
        for item in spec.items:
            items.setdefault(item.code, []).append((spec, item))
            items[f"{spec.code}.{item.code}"] = [(spec, item)]
    return items


class _RowProblem(Exception):
    pass


def _check_row(row: Row, context: _Context) -> RowCheck:
    check = RowCheck(row=row)
    try:
        _resolve(check, context)
        result = convert(check.item, row.value, row.unit)
    except (_RowProblem, ParseError) as problem:
        check.problems.append(str(problem))
        return check
    check.value, check.converted = result.text, result.converted
    check.flag = reference_flag(check.item, result.typed.number)
    stored = context.current.get((check.visit.pk, check.item.pk))
    check.current = stored.display if stored else ""
    return check


def _resolve(check: RowCheck, context: _Context) -> None:
    """Find the row's visit, form and item, or raise _RowProblem saying which is wrong."""
    row = check.row
    participant = context.participants.get(row.participant)
    if participant is None:
        # The same words for another site's participant as for none: the file reveals nothing of other sites.
        raise _RowProblem(_("Unknown participant %(id)s.") % {"id": row.participant or "—"})
    check.visit = context.visits.get((participant.pk, row.visit.upper()))
    if check.visit is None:
        raise _RowProblem(_("Unknown visit %(visit)s.") % {"visit": row.visit or "—"})
    check.spec, check.item = _item_of(context.lab_items(participant.protocol), row.item.upper())
    _require_collected(check)


def _item_of(items: LabItems, code: str) -> tuple[FormSpec, ItemDefinition]:
    found = items.get(code, [])
    if not found:
        raise _RowProblem(_("Unknown item code %(code)s: not a laboratory item of the protocol.") % {"code": code})
    if len(found) > 1:
        raise _RowProblem(
            _("Item code %(code)s is on several forms: write it as one of %(choices)s.")
            % {"code": code, "choices": ", ".join(f"{spec.code}.{item.code}" for spec, item in found)}
        )
    spec, item = found[0]
    if item.derived:
        raise _RowProblem(_("%(item)s is computed from other items, never imported.") % {"item": item.label})
    return spec, item


def _require_collected(check: RowCheck) -> None:
    visit, definition = check.visit, check.spec.definition
    participant = visit.participant
    arm_code = participant.arm.code if participant.arm_id else None
    if definition.applies_to(visit_code=visit.definition.code, arm_code=arm_code):
        return
    if visit.definition.code not in definition.visit_codes:
        message = _("%(item)s is not collected at %(visit)s.")
    else:
        message = _("%(item)s is not collected in this participant's arm.")
    raise _RowProblem(message % {"item": check.item.label, "visit": visit.definition.code})


def _mark_duplicates(checks: list[RowCheck]) -> None:
    """Rows that set the same value contradict or repeat each other: none of them is imported."""
    lines: dict[tuple, list[int]] = {}
    for check in checks:
        if check.key is not None:
            lines.setdefault(check.key, []).append(check.row.line)
    for check in checks:
        if check.key is not None and len(lines[check.key]) > 1:
            check.problems.append(
                _("Duplicate: lines %(lines)s give the same participant, visit and item; none of them is imported.")
                % {"lines": ", ".join(str(line) for line in lines[check.key])}
            )


def _applied_before(lab_import: LabImport) -> LabImport | None:
    return (
        LabImport.objects.filter(site_id=lab_import.site_id, sha256=lab_import.sha256, state=LabImportState.APPLIED)
        .exclude(pk=lab_import.pk)
        .order_by("-applied_at")
        .first()
    )


# --- Actions ----------------------------------------------------------------------------------------------


def lab_imports(user: object) -> QuerySet[LabImport]:
    """The imports the user uploaded at a site where they may still enter data."""
    return LabImport.objects.filter(uploaded_by=user, site_id__in=access.site_ids(user, Action.ENTER_DATA))


@transaction.atomic
def lab_import_upload(*, user: object, site: Site, file_name: str, data: bytes) -> LabImport:
    """Keep a laboratory's CSV file for preview. A file that is not a usable CSV is refused whole (InvalidInput)."""
    access.require(user, Action.ENTER_DATA, site)
    if len(data) > MAX_BYTES:
        raise file_error(
            _("The file is larger than %(max)d MB: split it into smaller files.") % {"max": MAX_BYTES // 2**20}
        )
    name_problem = text_problem(file_name, multiline=False)
    if name_problem:
        raise file_error(_("The file's name: %(problem)s") % {"problem": name_problem})
    text, encoding = decode(data)
    read_rows(text)
    return LabImport.objects.create(
        site=site,
        uploaded_by=user,
        uploaded_at=timezone.now(),
        file_name=os.path.basename(file_name.replace("\\", "/"))[:255],
        content=text,
        encoding=encoding,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def import_reason(lab_import: LabImport) -> str:
    """The reason for change every value written by the import carries in the audit trail."""
    return f"Bulk lab import {lab_import.file_name} ({lab_import.sha256[:SHA_PREFIX]})"


def lab_import_apply(*, user: object, lab_import: LabImport) -> dict:
    """Write every row that is valid now, one form_save per form of a visit, each in its own transaction.

    Not one transaction for the whole file: a form refused at this moment must not undo the others.
    The rows are checked again first: data may have changed since the preview. A form whose save is refused
    (saved by someone else meanwhile, or a value now invalid) is reported and the others are still written;
    the outcome is kept on the import. An import is applied once.
    """
    access.require(user, Action.ENTER_DATA, lab_import.site_id)
    preview = lab_import_preview(user=user, lab_import=lab_import)
    _claim(lab_import, LabImportState.APPLIED, applied_at=timezone.now())
    reason = import_reason(lab_import)
    outcome = {
        "rows": len(preview.checks),
        "rows_with_problems": len(preview.with_problems),
        "written": [],
        "failed": [],
    }
    try:
        for group in preview.groups:
            result = _apply_group(user, group, reason)
            outcome["failed" if result["message"] else "written"].append(result)
    finally:
        # Kept even if an unexpected error stops the loop: the forms saved so far are saved.
        LabImport.objects.filter(pk=lab_import.pk).update(outcome=outcome)
        lab_import.outcome = outcome
    return outcome


def _apply_group(user: object, group: Group, reason: str) -> dict[str, object]:
    """Save the group's items on their form (form_save is its own transaction); what it changed, or why not."""
    version = (
        FormInstance.objects.filter(visit_id=group.visit.pk, definition_id=group.spec.definition.pk)
        .values_list("version", flat=True)
        .first()
    )
    try:
        result = form_save(
            user=user,
            visit_id=group.visit.pk,
            form_code=group.spec.code,
            version=version or 0,
            values={check.item.code: check.value for check in group.checks},
            reason=reason,
            partial=True,
        )
    except DomainError as error:
        message = "; ".join(message for messages in error.errors.values() for message in messages)
        return {**group.describe(), "changed": [], "message": message}
    except (PermissionDenied, Http404):
        return {**group.describe(), "changed": [], "message": _("You may no longer enter data of this visit.")}
    return {**group.describe(), "changed": list(result.changed), "message": ""}


def lab_import_discard(*, user: object, lab_import: LabImport) -> None:
    """Set a pending import aside without writing any of it."""
    access.require(user, Action.ENTER_DATA, lab_import.site_id)
    _claim(lab_import, LabImportState.DISCARDED, discarded_at=timezone.now())


def _claim(lab_import: LabImport, state: str, **times: object) -> None:
    """Move a pending import on, once: of two concurrent requests only one changes the row."""
    claimed = LabImport.objects.filter(pk=lab_import.pk, state=LabImportState.PENDING).update(state=state, **times)
    if claimed != 1:
        raise InvalidInput(_("This import was already applied or discarded."))
    lab_import.state = state
    for name, value in times.items():
        setattr(lab_import, name, value)
