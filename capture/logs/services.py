"""Every write of a log form's rows: add, correct, remove (entered in error) and verify. Each in one transaction,
each audited; the same parsing and edit checks as a visit form (capture/checks.py)."""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from capture import review, summaries
from capture.checks import EMPTY, ParseError, Typed, parse, parse_missing, reference_flag
from capture.definitions import FormSpec
from capture.errors import LockedError, StaleVersionError
from capture.logs.selectors import log_form, log_row_or_404, row_values, rows_with_values, typed
from capture.models import (
    Flag,
    FormState,
    Lock,
    LogRow,
    LogValue,
    Query,
    QueryEvent,
    QueryEventKind,
    QueryOrigin,
    QueryState,
)
from capture.services import display
from trial import access
from trial.access import Action
from trial.audit import AuditEntry, audit_write
from trial.errors import InvalidInput
from trial.locking import atomic_with_retry, lock_participant
from trial.models import Participant, Screening
from trial.protocol_file import CONSENT_OPERAND
from trial.scoring import COMPARISONS

RECORD_TYPE = "log_row"
_MAX_REASON = 300


@dataclass(frozen=True)
class LogRowSaveResult:
    row: LogRow
    values: dict[str, Typed]
    flags: dict[str, tuple[str, ...]]
    changed: tuple[str, ...]
    queries_opened: int
    queries_closed: int


@dataclass
class _Save:
    """What a save will write, gathered before any write so that a refusal writes nothing."""

    row: LogRow
    spec: FormSpec
    before: dict[str, LogValue]
    values: dict[str, Typed]
    flags: dict[str, tuple[str, ...]]
    fired: dict[str, tuple[str, str]]  # check code -> (item code, message)


@atomic_with_retry
def log_row_create(
    *,
    user: object,
    participant_id: int,
    form_code: str,
    values: Mapping[str, object],
    missing: Mapping[str, str] | None = None,
) -> LogRowSaveResult:
    """Add a row to a participant's log (a medication taken, a condition of the history, a protocol deviation),
    as the coordinator reads it from the source. Every required item needs a value or the reason it is missing.
    A broken edit check saves the row flagged and raises an automatic query on it."""
    participant = _participant_for_entry(user, participant_id)
    spec = _spec_or_invalid(participant, form_code)
    _guard_locked(participant.pk)
    next_key = (
        LogRow.objects.filter(participant=participant, definition=spec.definition).aggregate(k=Max("repeat_key"))["k"]
        or 0
    ) + 1
    row = LogRow(participant=participant, definition=spec.definition, repeat_key=next_key, created_at=timezone.now())
    return _save(user, row, spec, {}, values, missing or {}, reason="", partial=False)


@atomic_with_retry
def log_row_update(
    *,
    user: object,
    row_id: int,
    version: int,
    values: Mapping[str, object],
    missing: Mapping[str, str] | None = None,
    reason: str = "",
    partial: bool = False,
) -> LogRowSaveResult:
    """Correct a row. Once saved, every change needs a `reason` (kept in the audit trail). A correction built on
    a `version` other than the current one is refused (StaleVersionError). Without `partial`, an item given in
    neither `values` nor `missing` is emptied."""
    row = log_row_or_404(user, row_id, Action.ENTER_DATA, lock=True)
    spec = _spec_or_invalid(row.participant, row.definition.code)
    _guard_row(row, version)
    before = row_values(rows_with_values(LogRow.objects.filter(pk=row.pk)).get())
    return _save(user, row, spec, before, values, missing or {}, reason=reason, partial=partial)


@atomic_with_retry
def log_row_remove(*, user: object, row_id: int, version: int, reason: str) -> LogRow:
    """Remove a row entered in error. Nothing is deleted: the row stays, marked removed with the reason, and
    leaves the listings, exports and counts; its open automatic queries close."""
    row = log_row_or_404(user, row_id, Action.ENTER_DATA, lock=True)
    _guard_row(row, version)
    reason = _reason_or_invalid(reason)
    now = timezone.now()
    row.removed_at, row.removed_reason = now, reason
    row.version += 1
    row.updated_at, row.updated_by = now, user
    row.save(update_fields=["removed_at", "removed_reason", "version", "updated_at", "updated_by"])
    _close_automatic(row, set(_open_automatic(row)), now)
    audit_write(
        user=user,
        participant=row.participant,
        entries=[AuditEntry(RECORD_TYPE, str(row.pk), "remove", row.definition.code, "", "", "removed", reason)],
    )
    return row


@atomic_with_retry
def log_values_verify(*, user: object, row_id: int, item_codes: list[str] | None = None) -> int:
    """A monitor marks a row's values (all of them by default) as checked against the source documents."""
    row = log_row_or_404(user, row_id, Action.VERIFY, lock=True)
    spec = _spec_or_invalid(row.participant, row.definition.code)
    codes = item_codes if item_codes is not None else [item.code for item in spec.entered]
    unknown = sorted(set(codes) - set(spec.by_code))
    if unknown:
        raise InvalidInput(
            errors={code: [_("%(code)s is not an item of this form.") % {"code": code}] for code in unknown}
        )
    pending = LogValue.objects.filter(row=row, item__in=[spec.by_code[code] for code in codes], verified_at=None)
    verified = sorted(pending.values_list("item__code", flat=True))
    pending.update(verified_at=timezone.now(), verified_by=user, changed_since_verification=False)
    audit_write(
        user=user,
        participant=row.participant,
        entries=[AuditEntry(RECORD_TYPE, str(row.pk), "verify", row.definition.code, code) for code in verified],
    )
    return len(verified)


# --- Reaching and guarding ---------------------------------------------------------------------------------


def _participant_for_entry(user: object, participant_id: int) -> Participant:
    participant = access.participant_or_404(user, participant_id, Action.ENTER_DATA)
    # Every write of a participant's data takes the participant's row first (trial/locking.py).
    lock_participant(participant.pk)
    if not participant.subject_id:
        raise InvalidInput(errors={"participant": [_("Logs are kept for enrolled participants only.")]})
    return participant


def _spec_or_invalid(participant: Participant, form_code: str) -> FormSpec:
    spec = log_form(participant, form_code)
    if spec is None:
        raise InvalidInput(errors={"form": [_("%(form)s is not a log form of this protocol.") % {"form": form_code}]})
    return spec


def _guard_locked(participant_id: int) -> None:
    """A participant's logs are covered by a lock of the whole participant (a log belongs to no visit)."""
    if Lock.objects.filter(participant_id=participant_id, visit=None, released_at=None).exists():
        raise LockedError(_("These data are locked by the data manager: they cannot be changed until unlocked."))


def _guard_row(row: LogRow, version: int) -> None:
    if row.removed:
        raise InvalidInput(errors={"row": [_("This row was removed as entered in error: it takes no changes.")]})
    _guard_locked(row.participant_id)
    if row.version != version:
        raise StaleVersionError(
            _(
                "Someone saved this form after you opened it (version %(current)s, yours %(yours)s). "
                "Nothing was saved: review the current values and enter your changes again."
            )
            % {"current": row.version, "yours": version},
            current_version=row.version,
        )


def _reason_or_invalid(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(errors={"reason": [_("Give the reason for the change.")]})
    if len(reason) > _MAX_REASON:
        raise InvalidInput(errors={"reason": [_("At most %(max)d characters.") % {"max": _MAX_REASON}]})
    return reason


# --- The save ----------------------------------------------------------------------------------------------


def _save(
    user: object,
    row: LogRow,
    spec: FormSpec,
    before: dict[str, LogValue],
    values: Mapping[str, object],
    missing: Mapping[str, str],
    *,
    reason: str,
    partial: bool,
) -> LogRowSaveResult:
    entered, errors = _parse_entries(spec, values, missing)
    after = {
        item.code: entered.get(item.code, typed(before.get(item.code)) if partial else EMPTY) for item in spec.entered
    }
    _require_complete(spec, after, errors)
    save = _Save(row=row, spec=spec, before=before, values=after, flags={}, fired={})
    _apply_checks(save)
    changed = [code for code, value in after.items() if typed(before.get(code)) != value]
    reflagged = [code for code in after if code not in changed and _flags_of(before.get(code)) != save.flags[code]]
    if row.pk and changed:
        reason = _reason_or_invalid(reason)
    now = timezone.now()
    is_new = row.pk is None
    _write_row(row, user, now, bool(changed) or is_new)
    voided = _void_casebook_signatures(row, now) if changed and not is_new else []
    _write_values(save, changed + reflagged, now)
    opened, closed = _sync_queries(save, now)
    if opened or closed:
        summaries.participant_changed(row.participant)
    audit_write(
        user=user,
        participant=row.participant,
        entries=[*_audit_entries(save, changed, reason, is_new), *voided],
    )
    return LogRowSaveResult(row, after, save.flags, tuple(changed), opened, closed)


def _parse_entries(
    spec: FormSpec, values: Mapping[str, object], missing: Mapping[str, str]
) -> tuple[dict[str, Typed], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    entered: dict[str, Typed] = {}
    for code in sorted(set(values) | set(missing)):
        item = spec.by_code.get(code)
        if item is None or item.derived:
            errors[code] = [_("%(code)s is not an item entered on this form.") % {"code": code}]
            continue
        try:
            value = parse(item, values.get(code))
            if missing.get(code):
                if value.has_value:
                    raise ParseError(
                        _("%(item)s: give a value or the reason it is missing, not both.") % {"item": item.shown_label}
                    )
                value = parse_missing(item, missing[code])
            entered[code] = value
        except ParseError as error:
            errors[code] = [str(error)]
    return entered, errors


def _require_complete(spec: FormSpec, after: dict[str, Typed], errors: dict[str, list[str]]) -> None:
    """Refuse the save, keyed by item code, if an entry could not be read or a required item is empty."""
    for item in spec.entered:
        if item.required and after[item.code].is_empty and item.code not in errors:
            message = _("%(item)s is required: enter a value or the reason it is missing.") % {"item": item.shown_label}
            errors[item.code] = [message]
    if errors:
        raise InvalidInput(errors=errors)


def _apply_checks(save: _Save) -> None:
    for item in save.spec.entered:
        flag = reference_flag(item, save.values[item.code].number)
        save.flags[item.code] = (flag,) if flag else ()
    for check in save.spec.definition.checks:
        if _fails(check, save):
            left = check["left"]
            save.flags[left] = (*save.flags[left], Flag.RULE) if Flag.RULE not in save.flags[left] else save.flags[left]
            save.fired[check["code"]] = (left, check["message"])


def _fails(check: dict, save: _Save) -> bool:
    left = _comparable(save.values[check["left"]])
    if check["right"] == CONSENT_OPERAND:
        right = _consent_date(save.row.participant)
    else:
        right = _comparable(save.values[check["right"]])
    if check["op"] == "not_both":
        return bool(left) and bool(right)
    return left is not None and right is not None and not COMPARISONS[check["op"]](left, right)


def _comparable(value: Typed) -> Decimal | datetime.date | bool | str | None:
    if value.number is not None:
        return value.number
    if value.date is not None:
        return value.date
    if value.text in ("true", "false"):
        return value.text == "true"
    return value.text or None


def _consent_date(participant: Participant) -> datetime.date | None:
    dates = Screening.objects.filter(participant=participant).values_list("consent_date", "screening_date").first()
    return (dates[0] or dates[1]) if dates else None


def _flags_of(value: LogValue | None) -> tuple[str, ...]:
    return tuple(value.flags) if value is not None else ()


def _write_row(row: LogRow, user: object, now: datetime.datetime, touched: bool) -> None:
    if not touched:
        return
    row.version += 1
    row.state = FormState.COMPLETE
    row.updated_at, row.updated_by = now, user
    row.first_completed_at = row.first_completed_at or now
    if row.pk is None:
        row.save()
    else:
        row.save(update_fields=["version", "state", "updated_at", "updated_by", "first_completed_at"])


def _write_values(save: _Save, codes: list[str], now: datetime.datetime) -> None:
    """One statement to insert the new values, one per changed existing value (a row has about ten items)."""
    new = []
    for code in codes:
        value, old = save.values[code], save.before.get(code)
        fields = {
            "number": value.number,
            "text": value.text,
            "date": value.date,
            "missing_reason": value.missing_reason,
            "flags": list(save.flags[code]),
            "updated_at": now,
        }
        if old is None:
            new.append(LogValue(row=save.row, item=save.spec.by_code[code], **fields))
        elif typed(old) == value:
            LogValue.objects.filter(pk=old.pk).update(flags=fields["flags"])
        else:
            lost = old.verified_at is not None or old.changed_since_verification
            LogValue.objects.filter(pk=old.pk).update(
                **fields, verified_at=None, verified_by=None, changed_since_verification=lost
            )
    LogValue.objects.bulk_create(new)


def _void_casebook_signatures(row: LogRow, now: datetime.datetime) -> list[AuditEntry]:
    """A change of a log row voids the casebook signatures of its participant (a log belongs to no visit)."""
    return review.casebook_signatures_void(participant_id=row.participant_id, reason="Signed data changed", now=now)


def _open_automatic(row: LogRow) -> dict[str, int]:
    """{check code: query id} of the row's automatic queries not yet closed."""
    queries = Query.objects.filter(record_type=RECORD_TYPE, record_id=row.pk, origin=QueryOrigin.AUTOMATIC)
    return dict(queries.exclude(state=QueryState.CLOSED).values_list("check_code", "pk"))


def _sync_queries(save: _Save, now: datetime.datetime) -> tuple[int, int]:
    """Raise an automatic query for each check that fires and has none open; close those of checks cleared."""
    open_now = _open_automatic(save.row) if save.before else {}
    new = [
        Query(
            participant_id=save.row.participant_id,
            record_type=RECORD_TYPE,
            record_id=save.row.pk,
            field_code=item_code,
            origin=QueryOrigin.AUTOMATIC,
            check_code=check_code,
            message=message,
            created_at=now,
        )
        for check_code, (item_code, message) in save.fired.items()
        if check_code not in open_now
    ]
    Query.objects.bulk_create(new)
    cleared = {pk for check_code, pk in open_now.items() if check_code not in save.fired}
    return len(new), _close_automatic(save.row, cleared, now)


def _close_automatic(row: LogRow, ids: set[int], now: datetime.datetime) -> int:
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
        for pk in sorted(ids)
    )
    return len(ids)


def _audit_entries(save: _Save, changed: list[str], reason: str, is_new: bool) -> list[AuditEntry]:
    """One entry per changed item, keyed by the row; the trail's form code is the log's."""
    row, form_code = save.row, save.spec.code
    created = AuditEntry(RECORD_TYPE, str(row.pk), "create", form_code, "", "", f"#{row.repeat_key}")
    entries = [created] if is_new else []
    for code in changed:
        before = typed(save.before.get(code))
        entries.append(
            AuditEntry(
                object_type=RECORD_TYPE,
                object_id=str(row.pk),
                action="create" if before.is_empty else "update",
                form_code=form_code,
                item_code=code,
                old_value=display(before),
                new_value=display(save.values[code]),
                reason=reason,
            )
        )
    return entries
