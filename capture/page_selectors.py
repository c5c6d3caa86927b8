"""Reads of the data-entry and review pages. Every one starts from a trial/access.py queryset and runs a fixed
number of queries, whatever the number of items, forms, queries or events.
"""

import datetime
from dataclasses import dataclass

from django.db.models import CharField, Count, Q, QuerySet
from django.db.models.functions import Cast
from django.http import Http404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from capture import records, review
from capture.checks import ParseError, parse, reference_flag, window_flag
from capture.definitions import FormSpec, visit_forms
from capture.models import FormInstance, ItemValue, Lock, Query, QueryEvent, QueryState, Signature
from capture.selectors import CurrentValue, FormSummary
from capture.services import typed_of
from trial import access
from trial.access import Action
from trial.models import AuditRecord, ItemDefinition, Participant, Visit


def item_or_404(spec: FormSpec, item_code: str) -> ItemDefinition:
    item = spec.by_code.get(item_code)
    if item is None:
        raise Http404(_("%(item)s is not an item of this form.") % {"item": item_code})
    return item


def entered_item_or_404(spec: FormSpec, item_code: str) -> ItemDefinition:
    """An item a person types; a derived item is computed, so has nothing to check as typed."""
    item = item_or_404(spec, item_code)
    if item.derived:
        raise Http404(_("%(item)s is computed, not entered.") % {"item": item_code})
    return item


@dataclass(frozen=True)
class ItemCheck:
    """What the page tells of one value as it is typed: why it would be refused, or its flags."""

    error: str = ""
    flags: tuple[str, ...] = ()


def item_check(visit: Visit, item: ItemDefinition, raw: str) -> ItemCheck:
    """The checks of one entered value that need no other item: type, hard range, reference range, window.

    Writes nothing. Cross-item rules need the whole form and are applied when it is saved.
    """
    try:
        value = parse(item, raw)
    except ParseError as error:
        return ItemCheck(error=str(error))
    flags = (reference_flag(item, value.number), window_flag(item, value.date, visit))
    return ItemCheck(flags=tuple(flag for flag in flags if flag))


def form_audit(visit: Visit, form_code: str, item_code: str = "") -> QuerySet[AuditRecord]:
    """The audit trail of one form of this visit (or of one of its items), newest first (1 query).

    The rows are those written by saves of this visit's forms: a derived item of this form changes when another
    form of the same visit is saved, so rows are matched on every form instance of the visit, not only this one.
    """
    instance_ids = FormInstance.objects.filter(visit=visit).annotate(key=Cast("pk", CharField())).values("key")
    rows = AuditRecord.objects.filter(
        participant_id=visit.participant_id, form_code=form_code, object_type="form", object_id__in=instance_ids
    )
    if item_code:
        rows = rows.filter(item_code=item_code)
    return rows.order_by("-id").only(
        "at", "username", "action", "form_code", "item_code", "old_value", "new_value", "reason"
    )


@dataclass(frozen=True)
class AuditLine:
    record: AuditRecord
    item: ItemDefinition | None  # None for a change of the form itself (its state)


def audit_lines(visit: Visit, spec: FormSpec, item_code: str = "") -> list[AuditLine]:
    """The form's audit trail at this visit, newest first, each row with its item's definition (1 query)."""
    return [
        AuditLine(record=record, item=spec.by_code.get(record.item_code))
        for record in form_audit(visit, spec.code, item_code)
    ]


# --- Data review ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewPermissions:
    """What the user's role at the site allows on the review pages. Only what to offer: the services check again."""

    answer: bool
    raise_query: bool
    verify: bool
    sign: bool
    lock: bool


def review_permissions(user: object, site_id: int) -> ReviewPermissions:
    """No query: the memberships are read once per request."""
    return ReviewPermissions(
        answer=access.can(user, Action.ENTER_DATA, site_id),
        raise_query=access.can(user, Action.RAISE_QUERY, site_id),
        verify=access.can(user, Action.VERIFY, site_id),
        sign=access.can(user, Action.SIGN, site_id),
        lock=access.can(user, Action.LOCK, site_id),
    )


def user_name(user: object | None) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def query_threads(queries: QuerySet[Query]) -> list[Query]:
    """The queries, open and answered ones first, each with its events in order as `thread` (2 queries).

    The events are read by a query of their own, not prefetched: a prefetch is skipped when there is no query,
    and the page would then run one query fewer than with one.
    """
    found = list(queries.order_by("created_at", "pk"))
    _attach_threads(found, QueryEvent.objects.filter(query__in=queries))
    return sorted(found, key=lambda query: query.state == QueryState.CLOSED)


def _attach_threads(queries: list[Query], events: QuerySet[QueryEvent]) -> None:
    by_query: dict[int, list[QueryEvent]] = {}
    for event in events.select_related("author").order_by("at", "pk"):
        by_query.setdefault(event.query_id, []).append(event)
    for query in queries:
        query.thread = by_query.get(query.pk, [])


def query_or_404(user: object, query_id: int) -> Query:
    """A query the user may see, with its participant, visit, form, item and thread (2 queries), or with its
    record's label and link (capture.records.describe)."""
    queries = review.queries_visible(user).select_related(
        "participant__site", "visit__definition", "form", "item__form"
    )
    query = access.get_or_404(queries, pk=query_id)
    _attach_threads([query], QueryEvent.objects.filter(query_id=query.pk))
    records.describe([query])
    return query


def queries_of_record(user: object, record_type: str, record_id: int) -> list[Query]:
    """The queries the user may see on one record (an adverse event), for the record's own page: open and answered
    ones first, each with its thread in order as `thread` (2 queries). Another site's record has none."""
    queries = review.queries_visible(user).filter(record_type=record_type, record_id=record_id)
    return query_threads(queries.select_related("participant__site", "created_by", "closed_by"))


def query_steps(query: Query, may: ReviewPermissions) -> list[str]:
    """The steps of the thread the user's role may take from the query's state (the service enforces them)."""
    steps = []
    if may.answer and query.state != QueryState.CLOSED:
        steps.append("answer")
    if may.raise_query and query.state != QueryState.CLOSED:
        steps.append("close")
    if may.raise_query and query.state != QueryState.OPEN:
        steps.append("reopen")
    return steps


def _active_locks(participant_id: int) -> QuerySet[Lock]:
    return Lock.objects.filter(participant_id=participant_id, released_at__isnull=True).select_related(
        "locked_by", "visit__definition", "form"
    )


def _covering_visit(visit: Visit) -> Q:
    return Q(visit__isnull=True) | Q(visit=visit)


# --- The form page -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewedValue(CurrentValue):
    """A current value with its source data verification: whether a monitor checked it against the source."""

    verified_at: datetime.datetime | None = None
    verified_by: str = ""
    changed_since_verification: bool = False

    @property
    def verifiable(self) -> bool:
        """Entered, with a value or the reason it is missing: something a monitor can check against the source."""
        return not self.item.derived and not self.value.is_empty


@dataclass(frozen=True)
class FormReview:
    """What the form page shows of one form of a visit: its data, their verification, queries and locks."""

    instance: FormInstance | None
    current: dict[str, ReviewedValue]
    queries: dict[str, list[Query]]  # by item code; the queries on the whole form under ""
    locks: list[Lock]

    @property
    def locked(self) -> bool:
        return bool(self.locks)

    @property
    def form_queries(self) -> list[Query]:
        return self.queries.get("", [])

    @property
    def to_verify(self) -> bool:
        return any(value.verifiable and value.verified_at is None for value in self.current.values())


def form_review(visit: Visit, spec: FormSpec) -> FormReview:
    """The form's instance, every item's value with its verification, the query threads of the form and its
    items, and the active locks that cover the form (6 queries)."""
    instance = FormInstance.objects.filter(visit=visit, definition=spec.definition).first()
    values = ItemValue.objects.filter(visit=visit, item__form=spec.definition).select_related("verified_by")
    stored = {value.item_id: value for value in values}
    codes = {item.pk: item.code for item in spec.items}
    queries: dict[str, list[Query]] = {}
    on_form = Query.objects.filter(visit=visit).filter(Q(form=spec.definition) | Q(item_id__in=list(codes)))
    for query in query_threads(on_form):
        queries.setdefault(codes.get(query.item_id, ""), []).append(query)
    locks = _active_locks(visit.participant_id).filter(
        _covering_visit(visit), Q(form__isnull=True) | Q(form=spec.definition)
    )
    return FormReview(
        instance=instance,
        current={item.code: _reviewed(item, stored.get(item.pk)) for item in spec.items},
        queries=queries,
        locks=list(locks.order_by("locked_at")),
    )


def _reviewed(item: ItemDefinition, value: ItemValue | None) -> ReviewedValue:
    if value is None:
        return ReviewedValue(item=item, value=typed_of(None), flags=())
    return ReviewedValue(
        item=item,
        value=typed_of(value),
        flags=tuple(value.flags),
        verified_at=value.verified_at,
        verified_by=user_name(value.verified_by),
        changed_since_verification=value.changed_since_verification,
    )


# --- The visit and participant pages -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewedForm(FormSummary):
    """A form of the visit page with its source data verification (of the items entered) and lock."""

    entered: int = 0
    verified: int = 0
    changed: int = 0
    locked: bool = False


_VOID_REASONS = {"Signed data changed": gettext_lazy("signed data changed")}


@dataclass(frozen=True)
class SignatureLine:
    signature: Signature

    @property
    def scope(self) -> str:
        visit = self.signature.visit
        return visit.definition.code if visit else str(_("Whole casebook"))

    @property
    def void_reason(self) -> str:
        reason = self.signature.void_reason
        return str(_VOID_REASONS.get(reason, reason))


@dataclass(frozen=True)
class VisitReview:
    forms: list[ReviewedForm]
    queries: list[Query]  # on the whole visit
    signatures: list[SignatureLine]
    locks: list[Lock]

    @property
    def locked(self) -> bool:
        """A lock covers the whole visit (one of the participant or of the visit), not only one of its forms."""
        return any(lock.form_id is None for lock in self.locks)


def visit_review(visit: Visit, summaries: list[FormSummary]) -> VisitReview:
    """The visit page's review: verification counts per form, queries on the visit, the signatures covering it
    (its own and the casebook's, voided ones too) and the active locks covering it (5 queries)."""
    counts = _verification_counts(visit)
    locks = list(_active_locks(visit.participant_id).filter(_covering_visit(visit)).order_by("locked_at"))
    signatures = Signature.objects.filter(participant_id=visit.participant_id).filter(_covering_visit(visit))
    return VisitReview(
        forms=[_reviewed_form(summary, counts.get(summary.spec.definition.pk, {}), locks) for summary in summaries],
        queries=query_threads(Query.objects.filter(visit=visit, form__isnull=True, item__isnull=True)),
        signatures=[
            SignatureLine(signature)
            for signature in signatures.select_related("signed_by", "visit__definition").order_by("signed_at", "pk")
        ],
        locks=locks,
    )


def _verification_counts(visit: Visit) -> dict[int, dict[str, int]]:
    """{form id: entered, verified, changed} of the entered items that hold a value or a missing reason."""
    rows = (
        ItemValue.objects.filter(visit=visit, item__derived="")
        .exclude(number__isnull=True, text="", date__isnull=True, missing_reason="")
        .values("item__form_id")
        .annotate(
            entered=Count("pk"),
            verified=Count("pk", filter=Q(verified_at__isnull=False)),
            changed=Count("pk", filter=Q(changed_since_verification=True)),
        )
    )
    return {row.pop("item__form_id"): row for row in rows}


def _reviewed_form(summary: FormSummary, counts: dict[str, int], locks: list[Lock]) -> ReviewedForm:
    locked = any(lock.form_id in (None, summary.spec.definition.pk) for lock in locks)
    return ReviewedForm(
        spec=summary.spec, instance=summary.instance, open_queries=summary.open_queries, locked=locked, **counts
    )


@dataclass(frozen=True)
class ParticipantReview:
    signatures: list[SignatureLine]  # of the visits and of the casebook, voided ones too
    locks: list[Lock]  # active ones first, then those released

    @property
    def locked(self) -> bool:
        """A lock of the whole participant is active."""
        return any(lock.visit_id is None and lock.released_at is None for lock in self.locks)


def participant_review(participant: Participant) -> ParticipantReview:
    """Every signature and lock of the participant, with who and which visit (2 queries)."""
    signatures = participant.signatures.select_related("signed_by", "visit__definition").order_by("signed_at", "pk")
    locks = participant.locks.select_related("locked_by", "released_by", "visit__definition", "form")
    return ParticipantReview(
        signatures=[SignatureLine(signature) for signature in signatures],
        locks=sorted(locks.order_by("-locked_at", "-pk"), key=lambda lock: lock.released_at is not None),
    )


def lock_or_404(user: object, lock_id: int) -> Lock:
    """A lock of a participant the user may see, with its participant, visit and form (1 query)."""
    locks = Lock.objects.filter(participant__in=access.participants(user)).select_related(
        "participant__site", "visit__definition", "form", "locked_by", "released_by"
    )
    return access.get_or_404(locks, pk=lock_id)


@dataclass(frozen=True)
class QueryTarget:
    """What a query about to be raised is on, as the page names it; codes not of this visit are kept as typed."""

    form_code: str
    item_code: str
    spec: FormSpec | None
    item: ItemDefinition | None


def query_target(visit: Visit, form_code: str, item_code: str) -> QueryTarget:
    spec = next((spec for spec in visit_forms(visit) if spec.code == form_code), None)
    item = spec.by_code.get(item_code) if spec else None
    return QueryTarget(form_code=form_code, item_code=item_code, spec=spec, item=item)


@dataclass(frozen=True)
class RecordTarget:
    """A record that is not an item of a visit (an adverse event), as the page raising a query on it names it."""

    record_type: str
    record_id: int
    participant: Participant
    label: str
    url: str
    field_code: str
    field_label: str


def record_target_or_404(
    user: object, record_type: str, record_id: int, field_code: str = "", action: Action = Action.VIEW
) -> RecordTarget:
    """The record if its kind is registered and the user may see it (else 404) and do `action` at its site (else
    403); a field not of the record is kept as typed, for the service to refuse."""
    kind = records.find(record_type)
    if kind is None:
        raise Http404(_("%(type)s is not a kind of record.") % {"type": record_type})
    participant = kind.participant_for(user, record_id, action)
    return RecordTarget(
        record_type=record_type,
        record_id=record_id,
        participant=participant,
        label=kind.label(record_id),
        url=kind.url(record_id),
        field_code=field_code,
        field_label=kind.field_label(field_code),
    )
