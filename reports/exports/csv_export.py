"""The CSV export: a zip of datasets for statistical software and spreadsheets, streamed.

- `data_dictionary.csv`: every column of every dataset (reports/exports/csv_dictionary.py);
- `SITES.csv`: the sites the export covers, with their names in English and Chinese;
- `SCREEN.csv`, `ELIG.csv` and `ENROL.csv`: the screening CRF, the eligibility and status (screening and subject
  numbers, status, Child-Pugh, reasons for screen failure) and the enrolment, a row per screened candidate
  (`subject` is the subject number once enrolled, the screening number before); `IE.csv`: a row per candidate and
  eligibility criterion, with the answer, whether it is met and why not;
- `LAB_LONG.csv`: every value of the laboratory panels (the forms with a sample date), a row each, with its
  unit, reference range and flags;
- `AE.csv` (the adverse event log, a row per event) and `SURVIVAL.csv` (derived survival time and censoring);
- booleans are written `true` or `false` in every dataset (the data dictionary says so);
- a dataset per log form (`CM.csv`, `MH.csv`, `DV.csv`): a row per log row (reports/exports/logs.py);
- a wide dataset per form collected at visits (`CLIN.csv`, `LIVER.csv`, ...): a row per participant and visit
  with data on the form; columns subject, site, arm, visit, visit_date, the form's item codes, then `missing`,
  which lists the items without a value and why ("PREALB=not_done"), so that item columns hold values only.

A text cell that a spreadsheet would run as a formula (it begins with =, +, -, @, a tab or a carriage return) is
written with a leading apostrophe, OWASP's rule against CSV injection; numbers, negative ones too, are untouched.
The data dictionary says so.

Every item value is read once, in the order the ODM export reads them (participant, visit, item: the database
gives a visit's values together, and the export puts these few in item order), and written as it comes; on
PostgreSQL a thread fetches the next chunk of values while this one is written (selectors.read_ahead).
A zip holds one member after another, so while LAB_LONG streams, the wide datasets are written to temporary files
(on disk: about a fifth of the CSV text) and follow it; likewise ELIG, IE and ENROL while SCREEN streams, from one
read of the subjects. Memory holds a few chunks of rows and one participant's, whatever the size of the trial.
"""

import contextlib
import csv
import functools
import io
import json
import operator
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

from django.db.models import QuerySet

from reports import selectors
from reports.exports import zipstream
from reports.exports.csv_dictionary import LAB_DATASET, SITE_COLUMNS, SITES_DATASET, dictionary
from reports.exports.csv_safety import AE_DATASET, SURVIVAL_DATASET, ae_rows, survival_rows
from reports.exports.logs import log_dataset, log_forms
from reports.exports.metadata import (
    CRITERIA_FORM,
    ELIG_FORM,
    ENROL_FORM,
    LAB_DATE_ITEM,
    SCREEN_FORM,
    SCREENING_EVENT,
    StudyMeta,
    criterion_values,
    plain,
    study_meta,
    subject_values,
)
from reports.exports.record_meta import SAFETY_EVENT
from reports.selectors import ExportScope, SubjectKey, SubjectRow
from trial.models import Site

# Excel, which the sites' data managers open CSV files with, reads a file without a byte order mark in the
# Windows code page (GBK on Chinese systems) and garbles every Chinese character; with the mark it reads UTF-8.
# Python (encoding="utf-8-sig"), R and SAS read the mark as what it is.
BOM = "\ufeff"
FLUSH_CHARACTERS = 64 * 1024
# Ten datasets are spooled at once, so each keeps less in memory than the one that streams.
SPOOL_CHARACTERS = 4 * 1024
KEY_COLUMNS = ("subject", "site", "arm", "visit", "visit_date")
# The datasets of the participant (the screening and enrolment), in the archive's order.
PARTICIPANT_FORMS = (SCREEN_FORM, ELIG_FORM, CRITERIA_FORM, ENROL_FORM)
LAB_COLUMNS = (
    *KEY_COLUMNS,
    "sample_date",
    "form",
    "item",
    "unit",
    "reference_low",
    "reference_high",
    "value",
    "flag",
    "missing_reason",
)


def csv_export(*, scope: ExportScope) -> Iterator[bytes]:
    """The zip of the datasets of the participants of `scope`, as chunks of bytes."""
    return zipstream.zip_stream(_members(scope))


def csv_value_query(scope: ExportScope) -> QuerySet:
    """The query of item values the CSV export reads (bench/reports.py compares it with PostgreSQL's COPY)."""
    return _Datasets(scope, [study_meta(protocol) for protocol in selectors.protocols()]).value_query()


def _members(scope: ExportScope) -> Iterator[tuple[str, Iterable[bytes]]]:
    with selectors.consistent_reads():
        versions = [study_meta(protocol) for protocol in selectors.protocols()]
        datasets = _Datasets(scope, versions)
        yield "data_dictionary.csv", _encoded([list(dictionary(versions))])
        yield f"{SITES_DATASET}.csv", _encoded([[list(SITE_COLUMNS)], [_site_row(site) for site in scope.sites]])
        yield from datasets.participant_forms()
        yield from datasets.visit_forms()
        yield f"{AE_DATASET}.csv", _encoded(ae_rows(scope))
        yield f"{SURVIVAL_DATASET}.csv", _encoded(survival_rows(scope))
        for form in log_forms(versions):
            yield f"{form.code}.csv", _encoded(log_dataset(scope, versions, form))


def _site_row(site: Site) -> list[str]:
    return [f"{site.number:02d}", site.name, site.name_zh, site.city, site.province, site.principal_investigator]


def _encoded(batches: Iterable[list[list[str]] | str]) -> Iterator[bytes]:
    """UTF-8 CSV with the byte order mark, in chunks. Rows come in batches (a participant's, a visit's), so the C
    writer is called once per batch rather than per row; a batch already written as CSV lines goes as it is."""
    lines = io.StringIO()
    lines.write(BOM)
    writer = csv.writer(lines)
    for batch in batches:
        if isinstance(batch, str):
            lines.write(batch)
        else:
            writer.writerows(map(spreadsheet_row, batch))
        if lines.tell() >= FLUSH_CHARACTERS:
            yield _take(lines)
    yield _take(lines)


def _take(lines: io.StringIO) -> bytes:
    data = lines.getvalue().encode()
    lines.seek(0)
    lines.truncate()
    return data


def _spooled(spool: IO[bytes]) -> Iterator[bytes]:
    with spool:
        spool.seek(0)
        yield from iter(lambda: spool.read(FLUSH_CHARACTERS), b"")


class _Datasets:
    """The datasets of every protocol version at once: a dataset's columns are item codes, the same in every
    version that has them, so a protocol amendment adds columns rather than a second dataset."""

    def __init__(self, scope: ExportScope, versions: list[StudyMeta]) -> None:
        self.scope = scope
        self.metas = {meta.protocol.pk: meta for meta in versions}
        self.arms = {arm_id: code for meta in versions for arm_id, code in meta.arm_by_id.items()}
        self.events = {pk: event.code for meta in versions for pk, event in meta.event_by_visit_definition.items()}
        self.event_fields = {pk: _field(code) for pk, code in self.events.items()}
        self.items = {pk: item for meta in versions for pk, (_form, _order, item) in meta.items_by_id.items()}
        latest_first = versions[::-1]
        self.codes: dict[str, list[str]] = {}  # form code: item codes, the latest version's order first
        for meta in latest_first:
            for form in meta.forms:
                codes = self.codes.setdefault(form.code, [])
                codes += [item.code for item in form.items if item.code not in codes]
        visit_forms = [
            form.code
            for meta in latest_first
            for form in meta.forms
            if SCREENING_EVENT not in form.event_codes and SAFETY_EVENT not in form.event_codes and not form.is_log
        ]
        visit_forms = list(dict.fromkeys(visit_forms))
        self.lab_forms = [code for code in visit_forms if LAB_DATE_ITEM in self.codes[code]]
        self.other_forms = [code for code in visit_forms if code not in self.lab_forms]

    def _key(self, subject: SubjectRow | SubjectKey) -> list[str]:
        return [subject.key, f"{self.scope.site_number(subject.site_id):02d}", self.arms.get(subject.arm_id, "")]

    def participant_forms(self) -> Iterator[tuple[str, Iterable[bytes]]]:
        """SCREEN, ELIG, IE and ENROL from one read of the subjects: SCREEN streams while the others are written to
        temporary files, and follow it."""
        spooled = {code: _SpoolWriter([*KEY_COLUMNS, *self.codes[code]]) for code in PARTICIPANT_FORMS[1:]}
        yield f"{SCREEN_FORM}.csv", _encoded(self._participant_rows(spooled))
        for form_code, writer in spooled.items():
            yield f"{form_code}.csv", _spooled(writer.finish())

    def _participant_rows(self, spooled: dict[str, "_SpoolWriter"]) -> Iterator[list[list[str]]]:
        """A row per screened candidate of SCREEN, ELIG and ENROL, dated by the screening or the enrolment; and of
        IE, a row per candidate and criterion, with the answer, the result and why it is not met."""
        yield [[*KEY_COLUMNS, *self.codes[SCREEN_FORM]]]
        codes = {code: self.codes[code] for code in (SCREEN_FORM, ELIG_FORM, ENROL_FORM, CRITERIA_FORM)}
        for subject in selectors.subjects(self.scope):
            meta = self.metas[subject.protocol_id]
            key = self._key(subject)
            values = subject_values(meta, subject)
            screened = values[SCREEN_FORM]["SCRDAT"]
            for form_code in (ELIG_FORM, ENROL_FORM):
                day = values[ENROL_FORM]["ENRLDAT"] if form_code == ENROL_FORM else screened
                row = [*key, SCREENING_EVENT, day, *(values[form_code].get(c, "") for c in codes[form_code])]
                spooled[form_code].write(row)
            criteria_key = [*key, SCREENING_EVENT, plain(subject.screening_date)]
            for row in criterion_values(meta, subject):
                spooled[CRITERIA_FORM].write([*criteria_key, *(row.get(c, "") for c in codes[CRITERIA_FORM])])
            yield [[*key, SCREENING_EVENT, screened, *(values[SCREEN_FORM].get(c, "") for c in codes[SCREEN_FORM])]]

    def visit_forms(self) -> Iterator[tuple[str, Iterable[bytes]]]:
        """LAB_LONG, then the wide dataset of each form collected at visits, all from one read of the values."""
        wide = {code: _SpoolWriter([*KEY_COLUMNS, *self.codes[code], "missing"]) for code in self.visit_forms_order}
        yield f"{LAB_DATASET}.csv", _encoded(self._one_read(wide))
        for form_code, writer in wide.items():
            yield f"{form_code}.csv", _spooled(writer.finish())

    def value_query(self) -> QuerySet:
        """The one read of item values: by participant and visit, as the ODM export reads them; `_one_read` puts
        each visit's values in item order."""
        return selectors.value_queryset(self.scope, flags=True, by_item=False)

    def _one_read(self, wide: dict[str, "_SpoolWriter"]) -> Iterator[list[list[str]] | str]:
        """LAB_LONG's rows, a batch per visit; meanwhile every visit's wide rows go to their datasets' files.

        One loop over the values does both, as csv.writer would write them (a row per form and visit, and one per
        laboratory value): what a row says of its visit and item is written once per visit or item, numbers and
        dates never need quoting or the apostrophe, and only free text and codes are checked.
        """
        yield [list(LAB_COLUMNS)]
        widths = {code: len(self.codes[code]) for code in wide}
        # {item id: (form, column, code, whether its values may need quoting, its part of a LAB_LONG row)}: the
        # part is None outside the laboratory panels and "" for the sample date, which is a column of the row.
        item_of = {}
        for pk, item in self.items.items():
            if item.form not in wide:
                continue
            lab = None
            if item.form in self.lab_forms:
                lab = (
                    ""
                    if item.code == LAB_DATE_ITEM
                    else _line([item.form, item.code, item.unit, *map(plain, item.ref_range)])
                )
            item_of[pk] = (item.form, self.codes[item.form].index(item.code), item.code, item.escaped, lab)
        value_rows = selectors.read_ahead(self.value_query())
        with contextlib.closing(value_rows):  # its thread stopped before the transaction ends
            for subject, visits in selectors.casebooks(selectors.subjects_with_visit_dates(self.scope), value_rows):
                key_text = _line(self._key(subject.subject))
                for rows in visits:
                    rows.sort(key=_ITEM_ID)
                    visit = rows[0][1]
                    visit_text = f"{key_text},{self.event_fields[visit]},{subject.visit_dates.get(visit, '')}"
                    # {form: (its cells, its items without a value, its LAB_LONG rows without their head, sample date)}
                    filled: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {}
                    for _participant, _visit, item_id, value, missing_reason, flags in rows:
                        form_code, column, code, escaped, lab = item_of[item_id]
                        entry = filled.get(form_code)
                        if entry is None:
                            entry = filled[form_code] = ([""] * widths[form_code], [], [], [])
                        cell = value
                        if escaped:  # free text or a code: the apostrophe and the quotes if it needs them
                            if value[:1] in _FORMULA_STARTS:
                                cell = spreadsheet_cell(value)
                            if _NEEDS_QUOTES.search(cell):
                                cell = '"' + cell.replace('"', '""') + '"'
                        if missing_reason:
                            entry[1].append(f"{code}={missing_reason}")
                        else:
                            entry[0][column] = cell
                        if lab:
                            flag = _flag_text(flags) if flags else ""
                            entry[2].append(f"{lab},{cell},{flag},{missing_reason}\r\n")
                        elif lab is not None and not entry[3]:
                            entry[3].append(value)
                    for form_code, (cells, missing, lab_rows, sample_date) in filled.items():
                        wide[form_code].write_line(
                            f"{visit_text},{','.join(cells)},{_field(spreadsheet_cell(' '.join(missing)))}\r\n"
                        )
                        if lab_rows:
                            head = f"{visit_text},{sample_date[0] if sample_date else ''},"
                            yield head + head.join(lab_rows)

    @property
    def visit_forms_order(self) -> list[str]:
        return [*self.other_forms, *self.lab_forms]


_ITEM_ID = operator.itemgetter(2)


@functools.lru_cache(maxsize=64)
def _flag_text(flags: str) -> str:
    """'["high", "rule"]' as "high;rule". Few combinations of flags exist, so each is parsed once."""
    return ";".join(json.loads(flags))


_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def _field(text: str) -> str:
    """A CSV field as csv.writer writes it (QUOTE_MINIMAL): quoted, quotes doubled, only when it must be."""
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES.search(text) else text


def _line(fields: Iterable[str]) -> str:
    return ",".join(_field(spreadsheet_cell(field)) for field in fields)


# What makes a spreadsheet read a cell as a formula (OWASP, CSV injection); "" is not among them.
_FORMULA_STARTS = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def spreadsheet_cell(text: str) -> str:
    """The cell as written: a text that begins like a formula gets a leading apostrophe; a number stays as it is."""
    if text[:1] in _FORMULA_STARTS and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def spreadsheet_row(row: list[str]) -> list[str]:
    # spreadsheet_cell only where the first character may begin a formula: it is called for every cell written
    return [spreadsheet_cell(cell) if isinstance(cell, str) and cell[:1] in _FORMULA_STARTS else cell for cell in row]


class _SpoolWriter:
    """A dataset written to a temporary file while another one streams; a few KiB of it in memory at a time."""

    def __init__(self, header: list[str]) -> None:
        self.spool = tempfile.TemporaryFile()
        self.lines = io.StringIO()
        self.lines.write(BOM)
        self.writer = csv.writer(self.lines)
        self.write(header)

    def write(self, row: list[str]) -> None:
        self.writer.writerow(spreadsheet_row(row))
        if self.lines.tell() >= SPOOL_CHARACTERS:
            self.spool.write(_take(self.lines))

    def write_line(self, line: str) -> None:
        """A row already written as CSV text."""
        self.lines.write(line)
        if self.lines.tell() >= SPOOL_CHARACTERS:
            self.spool.write(_take(self.lines))

    def finish(self) -> IO[bytes]:
        self.spool.write(_take(self.lines))
        return self.spool
