"""The reads of the exports: who may export which sites, and the trial's data as ordered streams of rows.

Each stream is one query read through a server-side cursor in chunks (`.iterator`), so an export holds one chunk
and one participant's rows at a time, whatever the size of the trial; the number of queries depends on the
protocol (its versions and forms), never on the number of participants.
"""

import datetime
import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from itertools import chain, groupby
from operator import itemgetter
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import DatabaseError, connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    When,
)
from django.db.models.functions import Cast, Coalesce
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.constants import MULTI
from django.utils.translation import gettext as _

from capture.models import FormInstance, ItemValue
from safety.models import AdverseEvent
from trial import access
from trial.access import Action
from trial.errors import AccessDenied, InvalidInput
from trial.models import AuditRecord, Participant, Protocol, Site, Visit

CHUNK = 4000
VISIT_CHUNK = 100  # rows of visit_values: a visit holds a few dozen values, so about as many values as CHUNK
SUBJECT_CHUNK = 200


@dataclass(frozen=True)
class ExportScope:
    """The sites an export covers: those where the user holds EXPORT, or the one of them asked for."""

    sites: tuple[Site, ...]
    single_site: bool

    @property
    def site_ids(self) -> list[int]:
        return [site.pk for site in self.sites]

    @cached_property
    def _numbers(self) -> dict[int, int]:
        return {site.pk: site.number for site in self.sites}

    def site_number(self, site_id: int) -> int:
        return self._numbers[site_id]


def export_scope(user: object, site_number: int | None = None) -> ExportScope:
    """Raises AccessDenied if the user may export nowhere, InvalidInput (on `site`) for a site not among theirs.

    A site the user cannot export answers like one that does not exist, so the refusal tells nothing about it.
    """
    sites = tuple(access.sites(user, Action.EXPORT).order_by("number"))
    if not sites:
        raise AccessDenied(_("Your role does not allow exporting trial data."))
    if site_number is None:
        return ExportScope(sites=sites, single_site=False)
    chosen = tuple(site for site in sites if site.number == site_number)
    if not chosen:
        raise InvalidInput(errors={"site": [_("You may export no site with number %(n)s.") % {"n": site_number}]})
    return ExportScope(sites=chosen, single_site=True)


@contextmanager
def consistent_reads() -> Iterator[None]:
    """Every query of an export sees the same moment of the database, so its metadata, subjects and values agree.

    PostgreSQL: one REPEATABLE READ, READ ONLY transaction. Inside a transaction the server-side cursors also
    stream for real; outside one, Django declares them WITH HOLD, and PostgreSQL then computes the whole result
    before the first row. SQLite: nothing, because a transaction there begins IMMEDIATE (settings) and would hold
    the write lock for the whole download.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def protocols() -> list[Protocol]:
    """Every protocol version, oldest first: data stay tied to the version they were captured under."""
    return list(Protocol.objects.defer("definition").order_by("code", "version"))


class ValueText(Func):
    """An item value as one text column, formatted by the database the way the exports write it: numbers
    without the column's trailing zeros, dates ISO, text as stored; '' when missing or empty.

    Formatting in SQL spares the export a Decimal and a date object per value, which cost more than the
    writing itself.
    """

    output_field = TextField()

    def __init__(self) -> None:
        super().__init__(F("number"), F("date"), F("text"))

    def as_sql(self, compiler: object, connection: object, **extra: object) -> tuple[str, list]:
        (number, number_params), (date, date_params), (text, text_params) = (
            compiler.compile(expression) for expression in self.get_source_expressions()
        )
        params = [*number_params, *date_params, *text_params]
        if connection.vendor == "postgresql":
            return f"COALESCE(trim_scale({number})::text, to_char({date}, 'YYYY-MM-DD'), {text})", params
        # SQLite keeps decimals as REAL: six places as the column has, then the trailing zeros and point dropped.
        as_text = f"rtrim(rtrim(printf('%%.6f', {number}), '0'), '.')"
        return f"COALESCE(CASE WHEN {number} IS NULL THEN NULL ELSE {as_text} END, {date}, {text})", params


class FlagsText(Func):
    """A value's flags as JSON text, or NULL when it has none: most values have none, and the cast of an empty
    JSON array to text would cost the database and the reader (a string each) once per value of the trial."""

    output_field = TextField()

    def __init__(self) -> None:
        super().__init__(F("flags"))

    def as_sql(self, compiler: object, connection: object, **extra: object) -> tuple[str, list]:
        flags, params = compiler.compile(self.get_source_expressions()[0])
        if connection.vendor == "postgresql":
            return f"CASE WHEN jsonb_array_length({flags}) > 0 THEN ({flags})::text END", [*params, *params]
        return f"CASE WHEN json_array_length({flags}) > 0 THEN {flags} END", [*params, *params]


class SubjectRow(NamedTuple):
    """A screened candidate (enrolled or not), with the screening values and eligibility the exports write."""

    participant_id: int
    protocol_id: int
    subject_id: str | None
    site_id: int
    arm_id: int | None
    enrolment_date: datetime.date | None
    sex: str
    date_of_birth: datetime.date
    screening_number: str
    status: str
    screen_failure_reasons: list[str]
    screening_date: datetime.date | None
    consent_date: datetime.date | None
    diagnosis: str | None
    total_bilirubin: Decimal | None
    albumin: Decimal | None
    inr: Decimal | None
    ascites: str | None
    encephalopathy: str | None
    answers: dict | None
    eligible: bool | None
    child_pugh_points: int | None
    child_pugh_class: str | None
    failed_criteria: list | None

    @property
    def key(self) -> str:
        """The SubjectKey and CSV `subject`: the subject number once enrolled, the screening number before."""
        return self.subject_id or self.screening_number


_PARTICIPANT_FIELDS = 11  # the fields of SubjectRow read from the participant; the rest from its screening
_SUBJECT_FIELDS = (
    "pk",
    *SubjectRow._fields[1:_PARTICIPANT_FIELDS],
    *(f"screening__{name}" for name in SubjectRow._fields[_PARTICIPANT_FIELDS:]),
)


def subjects(
    scope: ExportScope, protocol_id: int | None = None, *, enrolled_only: bool = False
) -> Iterator[SubjectRow]:
    """Every screened candidate (or only those who received a subject number), by participant id."""
    queryset = Participant.objects.filter(site_id__in=scope.site_ids)
    if enrolled_only:
        queryset = queryset.filter(subject_id__isnull=False)
    if protocol_id is not None:
        queryset = queryset.filter(protocol_id=protocol_id)
    # Small chunks: a subject row is wide, and one covers some 350 values.
    rows = queryset.order_by("pk").values_list(*_SUBJECT_FIELDS).iterator(chunk_size=SUBJECT_CHUNK)
    return (SubjectRow._make(row) for row in rows)


class SubjectKey(NamedTuple):
    """What a row of a dataset says of its subject, without the screening values: a light `SubjectRow` for the
    streams merged with the values, which read no JSON and build no wide tuple per candidate."""

    participant_id: int
    subject_id: str | None
    screening_number: str
    site_id: int
    arm_id: int | None

    @property
    def key(self) -> str:
        """As SubjectRow.key."""
        return self.subject_id or self.screening_number


def subject_keys(scope: ExportScope) -> Iterator[SubjectKey]:
    """Every screened candidate's key, by participant id, as `subjects` gives them."""
    queryset = Participant.objects.filter(site_id__in=scope.site_ids).order_by("pk")
    rows = queryset.values_list("pk", "subject_id", "screening_number", "site_id", "arm_id").iterator(chunk_size=CHUNK)
    return map(SubjectKey._make, rows)


class SubjectVisits(NamedTuple):
    """A subject and the dates their visits took place: {visit definition id: ISO date}."""

    subject: SubjectKey
    visit_dates: dict[int, str]

    @property
    def participant_id(self) -> int:
        return self.subject.participant_id


def subjects_with_visit_dates(scope: ExportScope) -> Iterator[SubjectVisits]:
    """The subjects, each with their visit dates: a second stream merged in, so that the values need not carry
    their visit's date (one date per visit rather than per value)."""
    dates = (
        Visit.objects.filter(participant__site_id__in=scope.site_ids, visit_date__isnull=False)
        .annotate(date_text=DateText(F("visit_date")))
        .order_by("participant_id")
        .values_list("participant_id", "definition_id", "date_text")
        .iterator(chunk_size=CHUNK)
    )
    by_participant = groupby(dates, key=itemgetter(0))
    current = next(by_participant, None)
    for subject in subject_keys(scope):
        while current is not None and current[0] < subject.participant_id:
            current = next(by_participant, None)
        visit_dates = {}
        if current is not None and current[0] == subject.participant_id:
            visit_dates = {definition: date for _participant, definition, date in current[1]}
            current = next(by_participant, None)
        yield SubjectVisits(subject, visit_dates)


# (participant id, visit definition id, item definition id, value text, missing reason[, flags or None]):
# plain tuples, read by position, because there is one per value of the trial.
ValueRow = tuple


class DateText(Func):
    """A date as ISO text, whatever the server's DateStyle."""

    output_field = TextField()

    def as_postgresql(self, compiler: object, connection: object, **extra: object) -> tuple[str, list]:
        return self.as_sql(compiler, connection, template="to_char(%(expressions)s, 'YYYY-MM-DD')", **extra)

    def as_sqlite(self, compiler: object, connection: object, **extra: object) -> tuple[str, list]:
        # Stored as ISO text; the cast keeps sqlite3 from making a date of a column it sees declared "date".
        return self.as_sql(compiler, connection, template="CAST(%(expressions)s AS TEXT)", **extra)


def _scoped_values(scope: ExportScope, protocol_id: int | None) -> QuerySet:
    """The item values of the scope's participants, of one protocol version when `protocol_id` is given."""
    queryset = ItemValue.objects.filter(visit__participant__site_id__in=scope.site_ids)
    return queryset if protocol_id is None else queryset.filter(visit__participant__protocol_id=protocol_id)


def value_queryset(
    scope: ExportScope, *, protocol_id: int | None = None, flags: bool = False, by_item: bool = True
) -> QuerySet:
    """Item values by participant id, then visit in schedule order, then item id (protocol order within a version):
    the query the exports read (bench/reports.py compares it with PostgreSQL's COPY of the same query).

    `flags` adds the value's flags (JSON text), which the CSV datasets show and ODM does not.

    `by_item=False` leaves the values of each visit together but in no particular order. Ordering them by item
    as well was a quarter of the database's work in this read (its CPU at 3,200 participants: 1.4 s against
    1.06 s), while the reader sorts a visit's few dozen values itself for less.
    """
    queryset = _scoped_values(scope, protocol_id)
    extra = {"flags_text": FlagsText()} if flags else {}
    fields = ["visit__participant_id", "visit__definition_id", "item_id", "value_text", "missing_reason", *extra]
    order = ["visit__participant_id", "visit__definition__order", "visit_id", *(["item_id"] if by_item else [])]
    return queryset.annotate(value_text=ValueText(), **extra).order_by(*order).values_list(*fields)


# (participant id, visit definition id, [item ids], [value texts], [missing reasons]): the arrays in one order, item
# by item, but not in item order.
VisitValues = tuple


def visit_values_queryset(scope: ExportScope, *, protocol_id: int | None = None) -> QuerySet:
    """A row per visit with values (PostgreSQL): `VisitValues`, by participant id and visit in schedule order. The
    database groups them: the reader takes one row per visit instead of one per value, and reading the trial's
    values costs it a third less (3,200 participants: 2.0 s against 3.0 s), the database about the same."""
    queryset = _scoped_values(scope, protocol_id)
    # No ORDER BY in the arrays: PostgreSQL advances every aggregate of the query with each input row in turn (and
    # combines parallel workers' partial arrays group by group, in one order), so a visit's arrays are in one order,
    # item by item. An ORDER BY in each would sort each array on its own (1.6x the database's work for four arrays);
    # the reader sorts a visit's few dozen values itself.
    arrays = {"item_ids": ArrayAgg("item_id"), "texts": ArrayAgg(ValueText()), "missing": ArrayAgg("missing_reason")}
    return (
        queryset.values("visit_id", "visit__participant_id", "visit__definition_id", "visit__definition__order")
        .annotate(**arrays)
        .order_by("visit__participant_id", "visit__definition__order", "visit_id")
        .values_list("visit__participant_id", "visit__definition_id", *arrays)
    )


def visit_values(scope: ExportScope, *, protocol_id: int | None = None) -> Iterator[VisitValues]:
    """`VisitValues` of the participants (of one protocol version), a row per visit with values; on PostgreSQL
    read ahead (`read_ahead`: close it), elsewhere grouped here from `value_queryset`'s rows."""
    if connection.vendor == "postgresql":
        return read_ahead(visit_values_queryset(scope, protocol_id=protocol_id), chunk_size=VISIT_CHUNK)
    rows = value_queryset(scope, protocol_id=protocol_id).iterator(chunk_size=CHUNK)
    return (
        (participant_id, definition_id, *map(list, zip(*(row[2:] for row in visit), strict=True)))
        for (participant_id, definition_id), visit in groupby(rows, key=itemgetter(0, 1))
    )


def read_ahead(queryset: QuerySet, chunk_size: int = CHUNK) -> Iterator[tuple]:
    """The rows of a values_list queryset, as `.iterator()` gives them, with the next chunk fetched while the
    caller works on this one.

    PostgreSQL computes a chunk of a server-side cursor when it is fetched. A thread fetches it, waiting on the
    socket without the GIL, while the caller formats the previous chunk: on two cores the server's work and ours
    overlap rather than add up. The query is declared from the caller's thread (and counted there); the thread
    only fetches. Only inside a transaction (consistent_reads), where the cursor streams, and for a query whose
    columns need no conversion; otherwise, and on SQLite, the plain iterator.
    """
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return queryset.iterator(chunk_size=chunk_size)
    compiler = queryset.query.get_compiler(queryset.db)
    compiler.setup_query()
    if compiler.get_converters([column[0] for column in compiler.select[: compiler.col_count]]):
        return queryset.iterator(chunk_size=chunk_size)
    return _Rows(_fetched_ahead(compiler, chunk_size))


class _Rows:
    """The rows of a stream of chunks, taken from their chunk in C (one per value: no Python frame per row), and
    `close()`, which stops the stream's thread."""

    def __init__(self, chunks: Generator[list[tuple], None, None]) -> None:
        self.chunks = chunks
        self.rows = chain.from_iterable(chunks)

    def __iter__(self) -> Iterator[tuple]:
        return self.rows

    def __next__(self) -> tuple:
        return next(self.rows)

    def close(self) -> None:
        self.chunks.close()


def _fetched_ahead(compiler: SQLCompiler, chunk_size: int) -> Iterator[list[tuple]]:
    """The chunks of rows of the compiled query, each fetched by a thread while the caller works on the last."""
    chunks = compiler.execute_sql(MULTI, chunked_fetch=True, chunk_size=chunk_size)
    ready: queue.Queue = queue.Queue(maxsize=1)  # a chunk ready while the caller works on one: 3 held at most
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        """Put a chunk (an error, or None at the end) in the queue, unless the caller has stopped reading."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for rows in chunks:
                if not hand_over(rows):
                    break
        except BaseException as error:  # handed to the caller, raised there
            hand_over(error)
        finally:
            try:
                chunks.close()  # closes the cursor
            except DatabaseError:
                pass  # the transaction ended first (a download given up) and took the cursor with it
            hand_over(None)

    fetcher = threading.Thread(target=fetch, name="export-read-ahead", daemon=True)
    fetcher.start()
    try:
        while (rows := ready.get()) is not None:
            if isinstance(rows, BaseException):
                raise rows
            yield rows
    finally:
        stop.set()
        while fetcher.is_alive():  # let a fetch waiting on a full queue see the stop
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
        fetcher.join()


def casebooks(
    subject_rows: Iterable[SubjectRow], value_rows: Iterable[ValueRow]
) -> Iterator[tuple[SubjectRow, list[list[ValueRow]]]]:
    """Each subject with the value rows of each of their visits: a merge of two streams in participant order.

    Value rows of a participant missing from the subjects (enrolled after that stream was read, where the reads
    share no snapshot) are passed over.
    """
    for subject, rows in _by_subject(subject_rows, value_rows):
        yield subject, [list(visit) for _visit, visit in groupby(rows, key=itemgetter(1))]


def visit_casebooks(
    subject_rows: Iterable[SubjectRow], visit_rows: Iterable[VisitValues]
) -> Iterator[tuple[SubjectRow, list[VisitValues]]]:
    """As `casebooks`, from `visit_values`' rows: each subject with the rows of their visits."""
    for subject, rows in _by_subject(subject_rows, visit_rows):
        yield subject, list(rows)


def _by_subject(subject_rows: Iterable[SubjectRow], rows: Iterable[tuple]) -> Iterator[tuple[SubjectRow, Iterable]]:
    """Each subject with their rows of a stream in participant order (the first column): a merge of two streams.
    Rows of a participant missing from the subjects (enrolled after that stream was read, where the reads share no
    snapshot) are passed over."""
    participants = groupby(rows, key=itemgetter(0))  # grouping in C: it runs once per row
    current = next(participants, None)
    for subject in subject_rows:
        participant_id = subject.participant_id
        while current is not None and current[0] < participant_id:
            current = next(participants, None)
        if current is not None and current[0] == participant_id:
            yield subject, current[1]
            current = next(participants, None)
        else:
            yield subject, ()


class AuditRow(NamedTuple):
    """One change of an item value, from the audit trail."""

    participant_id: int
    subject_id: str
    site_id: int | None
    user_id: int | None
    at: datetime.datetime
    visit_code: str | None
    form_code: str
    item_code: str
    action: str
    new_value: str
    reason: str


def _value_changes(scope: ExportScope) -> QuerySet[AuditRecord]:
    # Item values are created and updated by form saves; "verify" records of the same forms change no value.
    return AuditRecord.objects.filter(
        object_type="form",
        action__in=("create", "update"),
        participant__site_id__in=scope.site_ids,
        participant__subject_id__isnull=False,
    ).exclude(item_code="")


def value_history(scope: ExportScope, protocol_id: int) -> Iterator[AuditRow]:
    """Every recorded change of an item value of the protocol version's subjects, by participant, then in the
    order it was made."""
    # The record names the form instance that was saved; the visit (and so the event) is that instance's.
    visit_code = FormInstance.objects.filter(pk=Cast(OuterRef("object_id"), BigIntegerField())).values(
        "visit__definition__code"
    )[:1]
    rows = (
        _value_changes(scope)
        .filter(participant__protocol_id=protocol_id)
        .annotate(visit_code=Subquery(visit_code))
        .order_by("participant_id", "pk")
        .values_list(
            "participant_id",
            "participant__subject_id",
            "participant__site_id",
            "user_id",
            "at",
            "visit_code",
            "form_code",
            "item_code",
            "action",
            "new_value",
            "reason",
        )
        .iterator(chunk_size=CHUNK)
    )
    return (AuditRow._make(row) for row in rows)


# --- Records kept outside the visit forms: screening, enrolment, adverse events, death -----------------------

RECORD_TYPES = ("screening", "participant", "adverse_event", "death_report")


def records(model: type, scope: ExportScope, protocol_id: int, fields: list[str], order: str) -> Iterator[dict]:
    """The rows of a participant's records (adverse events, death reports) of the scope, by participant id."""
    rows = (
        model.objects.filter(participant__site_id__in=scope.site_ids, participant__protocol_id=protocol_id)
        .order_by("participant_id", order)
        .values("participant_id", *fields)
    )
    return rows.iterator(chunk_size=CHUNK)


def by_participant(subject_rows: Iterable[SubjectRow], rows: Iterable[dict]) -> Iterator[tuple[SubjectRow, list]]:
    """Each subject with their rows of another stream in participant order (a merge, as `casebooks`)."""
    grouped = groupby(rows, key=itemgetter("participant_id"))
    current = next(grouped, None)
    for subject in subject_rows:
        while current is not None and current[0] < subject.participant_id:
            current = next(grouped, None)
        found = []
        if current is not None and current[0] == subject.participant_id:
            found = list(current[1])
            current = next(grouped, None)
        yield subject, found


class RecordAuditRow(NamedTuple):
    """One change of a screening, enrolment, adverse event or death report field, from the audit trail."""

    participant_id: int
    subject_key: str
    site_id: int | None
    user_id: int | None
    at: datetime.datetime
    object_type: str
    action: str
    item_code: str
    new_value: str
    reason: str
    event_number: int | None  # the adverse event's number, for its rows


def _record_changes(scope: ExportScope) -> QuerySet[AuditRecord]:
    return AuditRecord.objects.filter(object_type__in=RECORD_TYPES, participant__site_id__in=scope.site_ids).exclude(
        item_code=""
    )


def record_history(scope: ExportScope, protocol_id: int) -> Iterator[RecordAuditRow]:
    """Every recorded change of the records of the protocol version's candidates, by participant, in order."""
    number = AdverseEvent.objects.filter(pk=Cast(OuterRef("object_id"), BigIntegerField())).values("number")[:1]
    rows = (
        _record_changes(scope)
        .filter(participant__protocol_id=protocol_id)
        .annotate(
            subject_key=Coalesce("participant__subject_id", "participant__screening_number"),
            event_number=Case(When(object_type="adverse_event", then=Subquery(number))),
        )
        .order_by("participant_id", "pk")
        .values_list(
            "participant_id",
            "subject_key",
            "participant__site_id",
            "user_id",
            "at",
            "object_type",
            "action",
            "item_code",
            "new_value",
            "reason",
            "event_number",
        )
        .iterator(chunk_size=CHUNK)
    )
    return (RecordAuditRow._make(row) for row in rows)


class AuditUser(NamedTuple):
    user_id: int | None
    username: str
    full_name: str


def audit_users(scope: ExportScope) -> list[AuditUser]:
    """The people whose changes the exported audit trail holds (a few dozen, not one per value), and the system,
    which writes the changes nobody made by hand."""
    people = (
        get_user_model()
        .objects.filter(
            Q(pk__in=_value_changes(scope).values("user_id")) | Q(pk__in=_record_changes(scope).values("user_id"))
        )
        .order_by("pk")
        .values_list("pk", "username", "first_name", "last_name")
    )
    users = [AuditUser(pk, username, f"{first} {last}".strip()) for pk, username, first, last in people]
    return [*users, AuditUser(None, "system", "EDC system")]
