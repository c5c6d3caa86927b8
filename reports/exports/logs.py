"""Log forms in the exports (concomitant medications, medical history, protocol deviations): rows that repeat
per participant rather than per visit.

- ODM: each subject's rows sit in the LOGS event (StudyEventDef Type="Unscheduled"), one FormData per log form
  and one ItemGroupData per row, numbered by the row's ItemGroupRepeatKey (the item group is Repeating="Yes");
- CSV: a dataset per log form (`CM.csv`, `MH.csv`, `DV.csv`), a row per log row, with the same `missing` column
  as the wide datasets.

Rows removed as entered in error are left out of both. The values are read as one stream in participant order,
merged with the subjects as capture's visit values are (reports.selectors.casebooks), so memory holds one
participant's rows.
"""

import datetime
from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

from django.db.models import BigIntegerField, F, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.functions import Cast

from capture.logs.services import RECORD_TYPE
from capture.models import LogRow, LogValue
from reports import selectors
from reports.exports import escape
from reports.exports.metadata import LOG_EVENT, MISSING_CODELIST, FormMeta, StudyMeta
from reports.selectors import ExportScope, SubjectKey
from trial.models import AuditRecord

# (participant id, form code, repeat key, item id, value text, missing reason, flags JSON)
LogValueRow = tuple
# (dataset, column, label, label_zh, type) of the columns the log datasets add, for the data dictionary.
REPEAT_KEY_LABEL = ("Row number in the participant's log (ODM ItemGroupRepeatKey)", "记录序号")


def log_value_queryset(
    scope: ExportScope, *, protocol_id: int | None = None, form_code: str = ""
) -> QuerySet[LogValue]:
    """The values of the log rows of the scope's subjects, by participant, log form, row and item."""
    values = LogValue.objects.filter(
        row__participant__site_id__in=scope.site_ids,
        row__participant__subject_id__isnull=False,
        row__removed_at__isnull=True,
    )
    if form_code:
        values = values.filter(row__definition__code=form_code)
    if protocol_id is not None:
        values = values.filter(row__participant__protocol_id=protocol_id, item__form__protocol_id=protocol_id)
    return (
        values.annotate(value_text=selectors.ValueText(), flags_text=Cast(F("flags"), TextField()))
        .order_by("row__participant_id", "row__definition__order", "row__repeat_key", "item__order")
        .values_list(
            "row__participant_id",
            "row__definition__code",
            "row__repeat_key",
            "item_id",
            "value_text",
            "missing_reason",
            "flags_text",
        )
    )


def log_row_count(scope: ExportScope, form_code: str) -> int:
    """How many rows of a log form the export holds (tests compare each dataset with it)."""
    return LogRow.objects.filter(
        participant__site_id__in=scope.site_ids,
        participant__subject_id__isnull=False,
        removed_at__isnull=True,
        definition__code=form_code,
    ).count()


def _by_participant(rows: Iterable[LogValueRow]) -> Iterator[tuple[int, list[LogValueRow]]]:
    for participant_id, values in groupby(rows, key=itemgetter(0)):
        yield participant_id, list(values)


class _Merge:
    """The log values of each subject in turn, from one stream in participant order."""

    def __init__(self, rows: Iterable[LogValueRow]) -> None:
        self.stream = _by_participant(rows)
        self.current = next(self.stream, None)

    def of(self, participant_id: int) -> list[LogValueRow]:
        while self.current is not None and self.current[0] < participant_id:
            self.current = next(self.stream, None)
        if self.current is not None and self.current[0] == participant_id:
            values, self.current = self.current[1], next(self.stream, None)
            return values
        return []


# --- ODM ---------------------------------------------------------------------------------------------------


class LogEventWriter:
    """The LOGS StudyEventData of each subject of one protocol version, called in participant order."""

    def __init__(self, meta: StudyMeta, scope: ExportScope, *, transactional: bool) -> None:
        self.items = {item_id: item for item_id, (_form, _order, item) in meta.items_by_id.items()}
        self.kind = ' TransactionType="Upsert"' if transactional else ""
        rows = log_value_queryset(scope, protocol_id=meta.protocol.pk).iterator(chunk_size=selectors.CHUNK)
        self.merge = _Merge(rows)
        self.present = any(form.is_log for form in meta.forms)

    def event(self, participant_id: int) -> str:
        values = self.merge.of(participant_id) if self.present else []
        if not values:
            return ""
        parts = [f'<StudyEventData StudyEventOID="SE.{LOG_EVENT}">']
        for form_code, form_values in groupby(values, key=itemgetter(1)):
            parts.append(f'<FormData FormOID="F.{escape.attr(form_code)}">')
            for repeat_key, row_values in groupby(form_values, key=itemgetter(2)):
                parts.append(
                    f'<ItemGroupData ItemGroupOID="IG.{escape.attr(form_code)}" ItemGroupRepeatKey="{repeat_key}">'
                )
                parts.extend(self._item(row) for row in row_values)
                parts.append("</ItemGroupData>")
            parts.append("</FormData>")
        parts.append("</StudyEventData>")
        return "".join(parts)

    def _item(self, row: LogValueRow) -> str:
        _participant, _form, _key, item_id, value, missing_reason, _flags = row
        oid = escape.attr(self.items[item_id].oid)
        if missing_reason:
            return f'<ItemData ItemOID="{oid}"{self.kind} IsNull="Yes">{_missing_flag(missing_reason)}</ItemData>'
        return f'<ItemData ItemOID="{oid}"{self.kind} Value="{escape.attr(value)}"/>' if value else ""


def _missing_flag(reason: str) -> str:
    """The reason a value is missing, as the visit values write it: a Flag from CL.MISSING_REASON."""
    return (
        f'<Annotation SeqNum="1"><Flag><FlagValue CodeListOID="{MISSING_CODELIST}">{escape.text(reason)}'
        "</FlagValue></Flag></Annotation>"
    )


class LogAuditRow(NamedTuple):
    """One change of a log row from the audit trail: a value entered or changed, or the row removed."""

    participant_id: int
    subject_id: str
    site_id: int | None
    user_id: int | None
    at: datetime.datetime
    repeat_key: int | None
    form_code: str
    item_code: str
    action: str
    new_value: str
    reason: str


def log_value_history(scope: ExportScope, protocol_id: int) -> Iterator[LogAuditRow]:
    """Every recorded change of the log rows of the version's subjects, by participant, then as made: value
    changes (an item named) and removals; a row's own creation and verifications change no value."""
    repeat_key = LogRow.objects.filter(pk=Cast(OuterRef("object_id"), BigIntegerField())).values("repeat_key")[:1]
    records = (
        AuditRecord.objects.filter(
            object_type=RECORD_TYPE,
            participant__site_id__in=scope.site_ids,
            participant__subject_id__isnull=False,
            participant__protocol_id=protocol_id,
        )
        .filter((Q(action__in=("create", "update")) & ~Q(item_code="")) | Q(action="remove"))
        .annotate(repeat_key=Subquery(repeat_key))
        .order_by("participant_id", "pk")
        .values_list(
            "participant_id",
            "participant__subject_id",
            "participant__site_id",
            "user_id",
            "at",
            "repeat_key",
            "form_code",
            "item_code",
            "action",
            "new_value",
            "reason",
        )
        .iterator(chunk_size=selectors.CHUNK)
    )
    return (LogAuditRow._make(row) for row in records)


# --- CSV ---------------------------------------------------------------------------------------------------

KEY_COLUMNS = ("subject", "site", "arm", "repeat_key")


def log_forms(versions: list[StudyMeta]) -> list[FormMeta]:
    """The log forms of every version, the latest version's first; one dataset per form code."""
    seen: dict[str, FormMeta] = {}
    for meta in versions[::-1]:
        for form in meta.forms:
            if form.is_log:
                seen.setdefault(form.code, form)
    return list(seen.values())


def log_dataset(scope: ExportScope, versions: list[StudyMeta], form: FormMeta) -> Iterator[list[list[str]]]:
    """One log form's dataset: a row per log row of the scope's subjects, in batches of one participant's rows."""
    codes = [item.code for meta in versions[::-1] for f in meta.forms if f.code == form.code for item in f.items]
    codes = list(dict.fromkeys(codes))
    column = {code: index for index, code in enumerate(codes)}
    items = {
        pk: item.code for meta in versions for pk, (_f, _o, item) in meta.items_by_id.items() if item.form == form.code
    }
    arms = {arm_id: code for meta in versions for arm_id, code in meta.arm_by_id.items()}
    yield [[*KEY_COLUMNS, *codes, "missing"]]
    merge = _Merge(log_value_queryset(scope, form_code=form.code).iterator(chunk_size=selectors.CHUNK))
    for subject in selectors.subject_keys(scope):
        values = merge.of(subject.participant_id)
        if values:
            yield [
                _row(scope, subject, arms, key, list(rows), items, column)
                for key, rows in groupby(values, itemgetter(2))
            ]


def _row(
    scope: ExportScope,
    subject: SubjectKey,
    arms: dict[int, str],
    repeat_key: int,
    rows: list[LogValueRow],
    items: dict[int, str],
    column: dict[str, int],
) -> list[str]:
    cells, missing = [""] * len(column), []
    for _participant, _form, _key, item_id, value, missing_reason, _flags in rows:
        code = items[item_id]
        if missing_reason:
            missing.append(f"{code}={missing_reason}")
        else:
            cells[column[code]] = value
    site = f"{scope.site_number(subject.site_id):02d}"
    return [subject.subject_id, site, arms.get(subject.arm_id, ""), str(repeat_key), *cells, " ".join(missing)]


def dictionary_columns(versions: list[StudyMeta]) -> list[tuple[str, str, str, str, str]]:
    """The data dictionary's rows of the columns each log dataset adds."""
    return [(form.code, "repeat_key", *REPEAT_KEY_LABEL, "integer") for form in log_forms(versions)]
