"""Data review: queries and their threads, source data verification, investigator signatures and locks.

One function per action, each in one transaction, each audited. form_save calls `form_guard` and
`signatures_void`, so a locked form cannot change and a change of signed data voids the signature.
"""

import datetime

from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from capture import records, summaries
from capture.definitions import visit_forms
from capture.errors import LockedError, OpenQueriesError, QueryTransitionError
from capture.models import (
    FormInstance,
    FormState,
    ItemValue,
    Lock,
    Query,
    QueryEvent,
    QueryEventKind,
    QueryOrigin,
    QueryState,
    Signature,
)
from capture.visits import form_or_invalid, visit_or_404
from trial import access
from trial.access import Action
from trial.audit import AuditEntry, audit_write
from trial.errors import InvalidInput
from trial.locking import atomic_with_retry, lock_participant, lock_participant_of, lock_records
from trial.models import FormDefinition, Participant, Visit
from trial.signing import SignatureTarget, signature_password_check

SIGNATURE_MEANING = "I confirm that the data are accurate and complete."

# --- Locks and signatures as seen by form_save -------------------------------------------------------------


def form_guard(instance: FormInstance, visit: Visit, form: FormDefinition) -> None:
    """Refuse a save of locked data. A form not yet started may still fall under a visit or participant lock."""
    locked = instance.locked if instance.pk else _active_locks(visit.participant_id, visit.pk, form.pk).exists()
    if locked:
        raise LockedError(_("These data are locked by the data manager: they cannot be changed until unlocked."))


def _active_locks(participant_id: int, visit_id: int, form_id: int) -> "object":
    covering = Q(visit__isnull=True) | Q(visit_id=visit_id, form__isnull=True) | Q(visit_id=visit_id, form_id=form_id)
    return Lock.objects.filter(covering, participant_id=participant_id, released_at__isnull=True)


def is_signed(instance: FormInstance, visit: Visit) -> bool:
    if instance.pk:
        return instance.signed
    return Signature.objects.filter(participant_id=visit.participant_id, visit=None, voided_at=None).exists()


def signatures_void(*, visit: Visit, reason: str, now: datetime.datetime) -> list[AuditEntry]:
    """Void every valid signature that covers the visit (its own and the casebook's); returns audit entries."""
    covering = Signature.objects.filter(participant_id=visit.participant_id, voided_at=None).filter(
        Q(visit=None) | Q(visit=visit)
    )
    voided = list(covering.values_list("pk", flat=True))
    if not voided:
        return []
    Signature.objects.filter(pk__in=voided).update(voided_at=now, void_reason=reason)
    _refresh_signed(visit.participant_id)
    return [AuditEntry("signature", str(pk), "void", reason=reason) for pk in voided]


def casebook_signatures_void(*, participant_id: int, reason: str, now: datetime.datetime) -> list[AuditEntry]:
    """Void the participant's valid casebook signatures (a change of data outside any visit: a log row)."""
    voided = list(
        Signature.objects.filter(participant_id=participant_id, visit=None, voided_at=None).values_list("pk", flat=True)
    )
    if not voided:
        return []
    Signature.objects.filter(pk__in=voided).update(voided_at=now, void_reason=reason)
    _refresh_signed(participant_id)
    return [AuditEntry("signature", str(pk), "void", reason=reason) for pk in voided]


def _refresh_signed(participant_id: int) -> None:
    valid = Signature.objects.filter(participant_id=participant_id, voided_at=None).filter(
        Q(visit=None) | Q(visit=OuterRef("visit"))
    )
    FormInstance.objects.filter(visit__participant_id=participant_id).update(signed=Exists(valid))


def _refresh_locked(participant_id: int) -> None:
    active = Lock.objects.filter(participant_id=participant_id, released_at__isnull=True).filter(
        Q(visit=None) | Q(visit=OuterRef("visit"), form=None) | Q(visit=OuterRef("visit"), form=OuterRef("definition"))
    )
    FormInstance.objects.filter(visit__participant_id=participant_id).update(locked=Exists(active))


# --- Queries -----------------------------------------------------------------------------------------------

_ALLOWED = {
    QueryEventKind.ANSWERED: {QueryState.OPEN, QueryState.ANSWERED},
    QueryEventKind.CLOSED: {QueryState.OPEN, QueryState.ANSWERED},
    QueryEventKind.REOPENED: {QueryState.ANSWERED, QueryState.CLOSED},
}
_STATE_AFTER = {
    QueryEventKind.ANSWERED: QueryState.ANSWERED,
    QueryEventKind.CLOSED: QueryState.CLOSED,
    QueryEventKind.REOPENED: QueryState.OPEN,
}
_ACTION = {
    QueryEventKind.ANSWERED: Action.ENTER_DATA,
    QueryEventKind.CLOSED: Action.RAISE_QUERY,
    QueryEventKind.REOPENED: Action.RAISE_QUERY,
}


def queries_visible(user: object) -> "object":
    """Every query the user may see: those on the visits and records of the participants of their sites."""
    return Query.objects.filter(participant__site_id__in=access.site_ids(user))


@atomic_with_retry
def query_raise(*, user: object, visit_id: int, message: str, form_code: str = "", item_code: str = "") -> Query:
    """A monitor or data manager asks the site about an item value, a form or a whole visit."""
    visit = visit_or_404(user, visit_id, Action.RAISE_QUERY, lock=True)
    form, item = _target(visit, form_code, item_code)
    _require_text(message, "message")
    now = timezone.now()
    query = Query.objects.create(
        participant=visit.participant,
        visit=visit,
        form=form,
        item=item,
        origin=QueryOrigin.MANUAL,
        message=message.strip(),
        created_at=now,
        created_by=user,
    )
    return _raised(user, query, message)


@atomic_with_retry
def query_raise_on_record(
    *, user: object, record_type: str, record_id: int, message: str, field_code: str = ""
) -> Query:
    """A monitor or data manager asks the site about a record that is not an item of a visit (an adverse event),
    or about one of its fields. The record's app registered how to reach it (capture/records.py)."""
    kind = records.record_type_or_invalid(record_type)
    participant = kind.participant_for(user, record_id, Action.RAISE_QUERY)
    # Checked again here, so that no kind of record can widen who raises queries.
    access.require(user, Action.RAISE_QUERY, participant.site_id)
    lock_participant(participant.pk)
    records.field_or_invalid(kind, field_code)
    _require_text(message, "message")
    query = Query.objects.create(
        participant=participant,
        record_type=record_type,
        record_id=record_id,
        field_code=field_code,
        origin=QueryOrigin.MANUAL,
        message=message.strip(),
        created_at=timezone.now(),
        created_by=user,
    )
    return _raised(user, query, message)


def _raised(user: object, query: Query, message: str) -> Query:
    QueryEvent.objects.create(
        query=query,
        kind=QueryEventKind.RAISED,
        author=user,
        at=query.created_at,
        text=message.strip(),
        state_after=QueryState.OPEN,
    )
    summaries.participant_changed(query.participant)
    _audit_query(user, query, "raise", "", QueryState.OPEN, message)
    return query


@atomic_with_retry
def query_answer(*, user: object, query_id: int, message: str) -> Query:
    """The site replies (often after correcting the value); the monitor then closes or re-opens the query."""
    return _transition(user, query_id, QueryEventKind.ANSWERED, message, required=True)


@atomic_with_retry
def query_close(*, user: object, query_id: int, message: str = "") -> Query:
    """The monitor or data manager accepts the answer (or the data) and closes the query."""
    return _transition(user, query_id, QueryEventKind.CLOSED, message, required=False)


@atomic_with_retry
def query_reopen(*, user: object, query_id: int, message: str) -> Query:
    """The answer does not resolve the discrepancy: the query goes back to the site."""
    return _transition(user, query_id, QueryEventKind.REOPENED, message, required=True)


def _transition(user: object, query_id: int, kind: str, message: str, *, required: bool) -> Query:
    lock_participant_of(access.participants(user).filter(queries=query_id))  # then the query (trial/locking.py)
    query = access.get_or_404(lock_records(queries_visible(user)).select_related("participant"), pk=query_id)
    access.require(user, _ACTION[kind], query.participant.site_id)
    if query.state not in _ALLOWED[kind]:
        raise QueryTransitionError(
            _("A query that is %(state)s cannot be %(step)s.")
            % {"state": query.get_state_display().lower(), "step": QueryEventKind(kind).label.lower()}
        )
    if required:
        _require_text(message, "message")
    now = timezone.now()
    old = query.state
    query.state = _STATE_AFTER[kind]
    query.closed_at, query.closed_by = (now, user) if query.state == QueryState.CLOSED else (None, None)
    query.save(update_fields=["state", "closed_at", "closed_by"])
    QueryEvent.objects.create(
        query=query, kind=kind, author=user, at=now, text=message.strip(), state_after=query.state
    )
    summaries.participant_changed(query.participant)
    _audit_query(user, query, kind, old, query.state, message)
    return query


def close_automatic(
    *, visit: Visit, item_ids: list[int], now: datetime.datetime, visit_check_code: str | None = None
) -> int:
    """Close the automatic queries of items whose check a correction has cleared (called by form_save), and the
    one the check `visit_check_code` raised on the whole visit (its dates are all back in the window)."""
    target = Q(item_id__in=item_ids)
    if visit_check_code:
        target |= Q(item__isnull=True, form__isnull=True, check_code=visit_check_code)
    queries = Query.objects.filter(target, visit=visit, origin=QueryOrigin.AUTOMATIC).exclude(state=QueryState.CLOSED)
    ids = list(queries.values_list("pk", flat=True))
    if not ids:
        return 0
    Query.objects.filter(pk__in=ids).update(state=QueryState.CLOSED, closed_at=now)
    QueryEvent.objects.bulk_create(
        QueryEvent(
            query_id=pk,
            kind=QueryEventKind.AUTO_CLOSED,
            at=now,
            state_after=QueryState.CLOSED,
            text=_("The correction cleared the edit check."),
        )
        for pk in ids
    )
    return len(ids)


def _audit_query(user: object, query: Query, action: str, old: str, new: str, message: str) -> None:
    audit_write(
        user=user,
        participant=query.participant,
        entries=[AuditEntry("query", str(query.pk), action, *_audited_target(query), old, new, message.strip())],
    )


def _audited_target(query: Query) -> tuple[str, str]:
    """What the query is on, in the trail's form and item columns: a form and item, or a record type and field.

    The visit or the record id is the query's own, and never changes.
    """
    if query.on_record:
        return query.record_type, query.field_code
    return (query.form.code if query.form_id else "", query.item.code if query.item_id else "")


# --- Source data verification ------------------------------------------------------------------------------


@atomic_with_retry
def items_verify(*, user: object, visit_id: int, form_code: str, item_codes: list[str] | None = None) -> int:
    """A monitor marks item values (all of the form's by default) as checked against the source documents."""
    visit = visit_or_404(user, visit_id, Action.VERIFY, lock=True)
    spec = form_or_invalid(visit, form_code)
    codes = item_codes if item_codes is not None else [item.code for item in spec.entered]
    unknown = sorted(set(codes) - {item.code for item in spec.entered})
    if unknown:
        raise InvalidInput(
            errors={code: [_("%(code)s is not an item of this form.") % {"code": code}] for code in unknown}
        )
    now = timezone.now()
    values = ItemValue.objects.filter(visit=visit, item__in=[spec.by_code[code] for code in codes]).exclude(
        number__isnull=True, text="", date__isnull=True, missing_reason=""
    )
    verified = list(values.filter(verified_at__isnull=True).values_list("item__code", flat=True))
    values.filter(verified_at__isnull=True).update(verified_at=now, verified_by=user, changed_since_verification=False)
    summaries.participant_changed(visit.participant, visit_id=visit.pk)
    # Keyed like every other row of the form's history, so the form's audit page shows the verification too.
    form_id = FormInstance.objects.filter(visit=visit, definition=spec.definition).values_list("pk", flat=True).first()
    audit_write(
        user=user,
        participant=visit.participant,
        entries=[AuditEntry("form", str(form_id), "verify", form_code, code) for code in sorted(verified)],
    )
    return len(verified)


# --- Signatures --------------------------------------------------------------------------------------------


def visit_sign(*, user: object, visit_id: int, password: str, request: HttpRequest | None = None) -> Signature:
    """The investigator signs a visit's data after entering their password again (21 CFR 11.200). A wrong
    password counts towards the account's lockout, is audited and alerts the site's data managers."""
    visit = visit_or_404(user, visit_id, Action.SIGN)
    label = f"visit {visit.definition.code} of {visit.participant}"
    target = SignatureTarget("visit", str(visit.pk), label, visit.participant)
    signature_password_check(request=request, user=user, password=password, target=target)
    return _visit_sign(user=user, visit_id=visit.pk)


@atomic_with_retry
def _visit_sign(*, user: object, visit_id: int) -> Signature:
    visit = visit_or_404(user, visit_id, Action.SIGN, lock=True)
    incomplete = [spec.code for spec in visit_forms(visit) if not _complete(visit, spec.definition)]
    if incomplete:
        raise InvalidInput(
            _("Every form must be complete before signing; not yet: %(forms)s.") % {"forms": ", ".join(incomplete)}
        )
    return _sign(user, visit.participant, visit)


def casebook_sign(
    *, user: object, participant_id: int, password: str, request: HttpRequest | None = None
) -> Signature:
    """The investigator signs the participant's whole casebook as it stands (the password checked as for a
    visit)."""
    participant = access.participant_or_404(user, participant_id, Action.SIGN)
    target = SignatureTarget("participant", str(participant.pk), f"the casebook of {participant}", participant)
    signature_password_check(request=request, user=user, password=password, target=target)
    return _casebook_sign(user=user, participant_id=participant.pk)


@atomic_with_retry
def _casebook_sign(*, user: object, participant_id: int) -> Signature:
    participant = access.participant_or_404(user, participant_id, Action.SIGN)
    lock_participant(participant.pk)
    return _sign(user, participant, None)


def _sign(user: object, participant: Participant, visit: Visit | None) -> Signature:
    # The meaning is the statement the signer was shown (21 CFR 11.50), never text a client sends.
    meaning = SIGNATURE_MEANING
    signature = Signature.objects.create(
        participant=participant, visit=visit, signed_by=user, signed_at=timezone.now(), meaning=meaning
    )
    _refresh_signed(participant.pk)
    audit_write(
        user=user,
        participant=participant,
        entries=[
            AuditEntry(
                "signature",
                str(signature.pk),
                "sign",
                "",
                "",
                "",
                f"{visit.definition.code if visit else 'casebook'}",
                meaning,
            )
        ],
    )
    return signature


def _complete(visit: Visit, definition: FormDefinition) -> bool:
    return FormInstance.objects.filter(visit=visit, definition=definition, state=FormState.COMPLETE).exists()


# --- Locks -------------------------------------------------------------------------------------------------


@atomic_with_retry
def lock_set(
    *,
    user: object,
    participant_id: int,
    visit_id: int | None = None,
    form_code: str = "",
    reason: str = "",
    confirm_open_queries: bool = False,
) -> Lock:
    """A data manager freezes a participant's data, one visit's, or one form's."""
    participant = access.participant_or_404(user, participant_id, Action.LOCK)
    lock_participant(participant.pk)
    visit = visit_or_404(user, visit_id, Action.LOCK) if visit_id else None
    if visit is not None and visit.participant_id != participant.pk:
        raise InvalidInput(errors={"visit": [_("This visit is not the participant's.")]})
    if form_code and visit is None:
        raise InvalidInput(errors={"visit": [_("Name the visit of the form to lock.")]})
    form = form_or_invalid(visit, form_code).definition if form_code else None
    _limit(reason, "reason")
    open_queries = _open_queries(participant, visit, form)
    if open_queries and not confirm_open_queries:
        raise OpenQueriesError(
            ngettext(
                "%(count)d query is still open on these data: confirm to lock them anyway.",
                "%(count)d queries are still open on these data: confirm to lock them anyway.",
                open_queries,
            )
            % {"count": open_queries},
            open_queries=open_queries,
        )
    lock = Lock.objects.create(
        participant=participant, visit=visit, form=form, locked_by=user, locked_at=timezone.now(), reason=reason.strip()
    )
    _refresh_locked(participant.pk)
    audit_write(
        user=user,
        participant=participant,
        entries=[
            AuditEntry(
                "lock", str(lock.pk), "lock", form.code if form else "", "", "", _scope(visit, form), reason.strip()
            )
        ],
    )
    return lock


@atomic_with_retry
def lock_release(*, user: object, lock_id: int, reason: str) -> Lock:
    """Unlock, with the reason: the data become editable again (unless another lock still covers them)."""
    lock_participant_of(access.participants(user).filter(locks=lock_id))  # then the lock (trial/locking.py)
    lock = access.get_or_404(lock_records(Lock.objects.filter(participant__in=access.participants(user))), pk=lock_id)
    access.require(user, Action.LOCK, lock.participant.site_id)
    if lock.released_at is not None:
        raise QueryTransitionError(_("This lock was already released."))
    _require_text(reason, "reason")
    _limit(reason, "reason")
    lock.released_at, lock.released_by, lock.release_reason = timezone.now(), user, reason.strip()
    lock.save(update_fields=["released_at", "released_by", "release_reason"])
    _refresh_locked(lock.participant_id)
    audit_write(
        user=user,
        participant=lock.participant,
        entries=[AuditEntry("lock", str(lock.pk), "unlock", "", "", "locked", "unlocked", reason.strip())],
    )
    return lock


def _open_queries(participant: Participant, visit: Visit | None, form: FormDefinition | None) -> int:
    queries = Query.objects.filter(participant=participant).exclude(state=QueryState.CLOSED)
    if visit is not None:
        queries = queries.filter(visit=visit)
    if form is not None:
        queries = queries.filter(form=form)
    return queries.count()


def _scope(visit: Visit | None, form: FormDefinition | None) -> str:
    if visit is None:
        return "participant"
    return f"{visit.definition.code} {form.code}" if form else visit.definition.code


# --- Shared ------------------------------------------------------------------------------------------------


def _target(visit: Visit, form_code: str, item_code: str) -> tuple[FormDefinition | None, object]:
    if not form_code:
        if item_code:
            raise InvalidInput(errors={"form": [_("Name the form of the item.")]})
        return None, None
    spec = form_or_invalid(visit, form_code)
    if not item_code:
        return spec.definition, None
    item = spec.by_code.get(item_code)
    if item is None:
        raise InvalidInput(errors={"item": [_("%(code)s is not an item of this form.") % {"code": item_code}]})
    return spec.definition, item


def _require_text(text: str, field: str) -> None:
    if not text or not text.strip():
        raise InvalidInput(errors={field: [_("Write a message.") if field == "message" else _("Give the reason.")]})


def _limit(text: str, field: str, most: int = 300) -> None:
    if len(text.strip()) > most:
        raise InvalidInput(errors={field: [_("At most %(most)d characters.") % {"most": most}]})
