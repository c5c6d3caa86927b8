"""Every write of captured data. The page, the API and the bulk import all call these."""

import datetime
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.translation import gettext as _

from capture import derive, review, summaries
from capture.checks import (
    EMPTY,
    ParseError,
    Typed,
    check_item,
    parse,
    parse_missing,
    reference_flag,
    rule_failures,
    window_check_code,
    window_flag,
)
from capture.definitions import FormSpec, item_by_id, protocol_definition, protocol_forms, visit_forms
from capture.errors import LockedError, StaleVersionError
from capture.models import Flag, FormInstance, FormState, ItemValue, Query, QueryOrigin
from capture.signals import form_saved
from capture.visits import form_or_invalid, visit_or_404
from trial.access import Action
from trial.audit import AuditEntry, audit_write
from trial.bulk_sql import insert_rows
from trial.errors import InvalidInput
from trial.locking import atomic_with_retry
from trial.models import ItemDefinition, Visit, VisitProgress
from trial.plain_rows import Columns

# Flags a person must look at: each raises an automatic query on its item.
QUERY_FLAGS = (Flag.RULE, Flag.WINDOW)
StoredValues = dict[tuple[str, str], "Stored"]


@dataclass(frozen=True)
class ItemResult:
    item: ItemDefinition
    value: Typed
    flags: tuple[str, ...]


@dataclass(frozen=True)
class FormSaveResult:
    form: FormInstance
    items: dict[str, ItemResult]
    changed: tuple[str, ...]
    queries_opened: int
    queries_closed: int


@dataclass
class _Pending:
    """What the save will write, gathered before any write so that a refusal writes nothing."""

    visit: Visit
    spec: FormSpec
    values: dict[tuple[str, str], Typed]  # the visit's values after the save, for every touched item
    flags: dict[tuple[str, str], tuple[str, ...]]
    queries: dict[tuple[str, str], list[tuple[str, str]]]  # item -> [(check code, message)] that fire


def visit_for_entry(*, user: object, visit_id: int) -> Visit:
    """The visit, locked for the rest of the transaction, if the user may enter its data (else 404/403)."""
    return visit_or_404(user, visit_id, Action.ENTER_DATA, lock=True)


@atomic_with_retry
def form_save(
    *,
    user: object,
    visit_id: int,
    form_code: str,
    version: int,
    values: Mapping[str, object] | None = None,
    missing: Mapping[str, str] | None = None,
    reason: str = "",
    complete: bool = False,
    partial: bool = False,
    visit: Visit | None = None,
) -> FormSaveResult:
    """Save one CRF of a visit, all its items at once, as the coordinator typed them from the source.

    `values` are the entries as typed, keyed by item code; `missing` gives the reason an item has no value.
    Without `partial`, an item given in neither is emptied. Once the form was first completed, every change
    needs a `reason`. A save built on a `version` other than the current one is refused (StaleVersionError);
    an entry that breaks a hard range or a type is refused (InvalidInput keyed by item code): nothing is
    written then. Values outside their reference range are saved and flagged; a broken cross-item check or
    a date outside the visit window is saved, flagged and raises an automatic query, which closes itself when
    a correction clears it.

    A caller that already holds the visit from `visit_for_entry` in the current transaction passes it as
    `visit`, sparing the second read.
    """
    if visit is None or visit.pk != visit_id:
        visit = visit_for_entry(user=user, visit_id=visit_id)
    spec = form_or_invalid(visit, form_code)
    instances = {form.definition_id: form for form in _locked_forms(visit)}
    instance = instances.get(spec.definition.pk) or FormInstance(visit=visit, definition=spec.definition)
    review.form_guard(instance, visit, spec.definition)  # locked data: refused whatever was entered
    _guard_alive(visit)
    entered = _parse_entries(spec, values or {}, missing or {})
    if instance.version != version:
        raise StaleVersionError(
            _(
                "Someone saved this form after you opened it (version %(current)s, yours %(yours)s). "
                "Nothing was saved: review the current values and enter your changes again."
            )
            % {"current": instance.version, "yours": version},
            current_version=instance.version,
        )
    stored = _stored_values(visit)
    pending = _pending(visit, spec, entered, stored, partial)
    changed = _changed(pending, stored)
    state = _next_state(instance, pending, complete, changed, reason)
    if instance.pk is not None and not changed and state == instance.state:
        # Nothing to record: no write, no audit row, and the version stays, so nobody else's open page goes stale.
        return _unchanged_result(instance, spec, pending, stored)
    now = timezone.now()
    voided = _void_signatures(instance, visit, pending, stored, changed, now)
    _write_values(pending, stored, changed, now)
    old_state = instance.state
    _write_instance(instance, user, state, now)
    opened, closed = _sync_queries(pending, stored, now)
    summaries.participant_changed(visit.participant, visit_id=visit.pk)
    audit_write(
        user=user,
        participant=visit.participant,
        entries=[
            *_value_entries(instance, pending, stored, changed, reason),
            *_state_entries(instance, old_state, reason),
            *_visit_updates(visit, pending, instances, instance),
            *voided,
        ],
    )
    form_saved.send(sender=FormInstance, form=instance, form_code=spec.code, visit=visit)
    return FormSaveResult(
        form=instance,
        items=_results(spec, pending, stored),
        changed=tuple(code for form, code in changed if form == spec.code),
        queries_opened=opened,
        queries_closed=closed,
    )


def form_save_locked(*, user: object, visit: Visit, form_code: str, version: int, **entries: object) -> FormSaveResult:
    """`form_save` inside the caller's transaction, which holds `visit` from `visit_for_entry` (the page's POST, the
    API's PUT): without a savepoint of its own, two statements fewer.

    A refusal (or any error) marks the caller's transaction for rollback, so nothing it wrote can commit: the
    caller lets the exception leave its atomic block, which rolls back whole, and answers after the rollback.
    """
    if not transaction.get_connection().in_atomic_block:
        raise TransactionManagementError("form_save_locked runs in the transaction that locked the visit.")
    with transaction.atomic(savepoint=False):
        return form_save.__wrapped__(
            user=user, visit_id=visit.pk, form_code=form_code, version=version, visit=visit, **entries
        )


def _unchanged_result(
    instance: FormInstance, spec: FormSpec, pending: _Pending, stored: StoredValues
) -> FormSaveResult:
    return FormSaveResult(
        form=instance, items=_results(spec, pending, stored), changed=(), queries_opened=0, queries_closed=0
    )


def _guard_alive(visit: Visit) -> None:
    """After a death report, visits that open after the death take no data; earlier ones can still be corrected."""
    death_date = visit.participant.death_date
    if death_date is not None and visit.window_start > death_date:
        raise LockedError(
            _("The participant died on %(date)s: this visit's schedule has ended and it takes no data.")
            % {"date": death_date.isoformat()}
        )


def _void_signatures(
    instance: FormInstance,
    visit: Visit,
    pending: "_Pending",
    stored: StoredValues,
    changed: list,
    now: datetime.datetime,
) -> list[AuditEntry]:
    """A change of signed data voids the signatures that cover it; the investigator must sign again."""
    signed = review.is_signed(instance, visit)
    instance.signed = signed
    if not signed or not any(typed_of(stored.get(key)) != pending.values[key] for key in changed):
        return []
    instance.signed = False
    return review.signatures_void(visit=visit, reason="Signed data changed", now=now)


def _parse_entries(spec: FormSpec, values: Mapping[str, object], missing: Mapping[str, str]) -> dict[str, Typed]:
    errors: dict[str, list[str]] = {}
    entered: dict[str, Typed] = {}
    for code in sorted(set(values) | set(missing)):
        item = spec.by_code.get(code)
        if item is None or item.derived:
            errors[code] = [_("%(code)s is not an item entered on this form.") % {"code": code}]
            continue
        try:
            entered[code] = _parse_entry(item, values.get(code), missing.get(code))
        except ParseError as error:
            errors[code] = [str(error)]
    if errors:
        raise InvalidInput(errors=errors)
    return entered


def _parse_entry(item: ItemDefinition, raw: object, missing_reason: str | None) -> Typed:
    value = parse(item, raw)
    if missing_reason:
        if value.has_value:
            raise ParseError(
                _("%(item)s: give a value or the reason it is missing, not both.") % {"item": item.shown_label}
            )
        return parse_missing(item, missing_reason)
    return value


class Stored(NamedTuple):
    """A stored item value, read as a plain row (a save reads every value of the visit)."""

    item_id: int
    number: Decimal | None
    text: str
    date: datetime.date | None
    missing_reason: str
    flags: tuple[str, ...]
    verified_at: datetime.datetime | None
    verified_by_id: int | None
    changed_since_verification: bool


# Every save reads these two; plain SQL (trial/plain_rows.py), since the ORM took longer to build each statement than
# the database took to run it.
_FORM_COLUMNS = Columns(FormInstance, "f")
_STORED_COLUMNS = Columns(ItemValue, "iv", only=[name for name in Stored._fields if name != "flags"])


def _locked_forms(visit: Visit) -> list[FormInstance]:
    """Step 3 of trial/locking.py: the visit's form instances, locked when read (FOR NO KEY UPDATE)."""
    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_FORM_COLUMNS.sql()} FROM {FormInstance._meta.db_table} f WHERE f.visit_id = %s{lock}",
            [visit.pk],
        )
        return [_FORM_COLUMNS.build(row) for row in cursor.fetchall()]


def _stored_values(visit: Visit) -> StoredValues:
    protocol_items = item_by_id(visit.participant.protocol)
    stored = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_STORED_COLUMNS.sql()}, iv.flags FROM {ItemValue._meta.db_table} iv WHERE iv.visit_id = %s",
            [visit.pk],
        )
        rows = cursor.fetchall()
    for row in rows:
        item_id, number, text, date, missing_reason, verified_at, verified_by_id, changed = _STORED_COLUMNS.values(row)
        value = Stored(
            item_id, number, text, date, missing_reason, _flags(row[-1]), verified_at, verified_by_id, changed
        )
        spec, item = protocol_items[value.item_id]
        stored[(spec.code, item.code)] = value
    return stored


@functools.lru_cache(maxsize=256)
def _flags(stored: str) -> tuple[str, ...]:
    """A value's flags column, '["high", "rule"]', as a tuple: few combinations exist, so each is parsed once."""
    return tuple(json.loads(stored))


def typed_of(value: "ItemValue | Stored | None") -> Typed:
    if value is None:
        return EMPTY
    return Typed(number=value.number, text=value.text, date=value.date, missing_reason=value.missing_reason)


def _pending(visit: Visit, spec: FormSpec, entered: dict[str, Typed], stored: StoredValues, partial: bool) -> _Pending:
    values: dict[tuple[str, str], Typed] = {}
    for item in spec.entered:
        key = (spec.code, item.code)
        if item.code in entered:
            values[key] = entered[item.code]
        else:
            values[key] = typed_of(stored.get(key)) if partial else EMPTY
    values.update(_derived(visit, spec, values, stored))
    pending = _Pending(visit=visit, spec=spec, values=values, flags={}, queries={})
    _apply_checks(pending)
    return pending


def _derived(visit: Visit, spec: FormSpec, values: dict, stored: StoredValues) -> dict[tuple[str, str], Typed]:
    """Every derived item of the visit whose inputs include an item of the saved form, recomputed."""
    table = protocol_definition(visit.participant.protocol)["eligibility"]["child_pugh"]
    known: derive.Values = {key: _plain(typed_of(value)) for key, value in stored.items()}
    known.update({key: _plain(value) for key, value in values.items()})
    derived = {}
    for other in visit_forms(visit):
        for item in other.derived:
            if any(form == spec.code for form, _code in derive.inputs(item, other.code)):
                result = derive.compute(item, other.code, known, table)
                derived[(other.code, item.code)] = _typed_result(result)
    return derived


def _plain(value: Typed) -> object:
    return value.number if value.number is not None else (value.text or None)


def _typed_result(result: Decimal | str | None) -> Typed:
    if result is None:
        return EMPTY
    return Typed(number=result) if isinstance(result, Decimal) else Typed(text=result)


def _apply_checks(pending: _Pending) -> None:
    specs = protocol_forms(pending.visit.participant.protocol)
    numbers: dict[str, dict[str, Decimal | None]] = {}
    texts: dict[str, dict[str, str]] = {}
    for (form_code, item_code), value in pending.values.items():
        item = specs[form_code].by_code[item_code]
        flags = [reference_flag(item, value.number), window_flag(item, value.date, pending.visit)]
        pending.flags[(form_code, item_code)] = tuple(flag for flag in flags if flag)
        numbers.setdefault(form_code, {})[item_code] = value.number
        texts.setdefault(form_code, {})[item_code] = value.text
    for form_code, form_numbers in numbers.items():
        for check in rule_failures(specs[form_code].definition.checks, form_numbers, texts[form_code]):
            key = (form_code, check_item(check))
            pending.flags[key] = (*pending.flags[key], Flag.RULE)
            pending.queries.setdefault(key, []).append((check["code"], check["message"]))


def _changed(pending: _Pending, stored: StoredValues) -> list[tuple[str, str]]:
    """Items whose value or flags differ from what is stored."""
    changed = []
    for key, value in pending.values.items():
        before = stored.get(key)
        if typed_of(before) != value or (before is not None and tuple(before.flags) != pending.flags[key]):
            changed.append(key)
        elif before is None and pending.flags[key]:
            changed.append(key)
    return changed


def _value_changes(pending: _Pending, changed: list) -> list[tuple[str, str]]:
    """Changed items of the saved form that a person entered (not derived, not only re-flagged)."""
    spec = pending.spec
    return [key for key in changed if key[0] == spec.code and not spec.by_code[key[1]].derived]


def _next_state(instance: FormInstance, pending: _Pending, complete: bool, changed: list, reason: str) -> str:
    errors: dict[str, list[str]] = {}
    if instance.first_completed_at and _value_changes(pending, changed) and not reason.strip():
        errors["reason"] = [_("This form was completed before: give the reason for the change.")]
    incomplete = _required_without_value(pending)
    if complete and incomplete:
        for item in incomplete:
            errors[item.code] = [
                _("%(item)s is required: enter a value or the reason it is missing.") % {"item": item.shown_label}
            ]
    if errors:
        raise InvalidInput(errors=errors)
    if complete or (instance.state == FormState.COMPLETE and not incomplete):
        return FormState.COMPLETE
    return FormState.IN_PROGRESS


def _required_without_value(pending: _Pending) -> list[ItemDefinition]:
    spec = pending.spec
    return [item for item in spec.entered if item.required and pending.values[(spec.code, item.code)].is_empty]


_VALUE_COLUMNS = (
    "visit_id",
    "item_id",
    "number",
    "text",
    "date",
    "missing_reason",
    "flags",
    "updated_at",
    "verified_at",
    "verified_by_id",
    "changed_since_verification",
)
_PG_VALUE_TYPES = (
    "bigint",
    "bigint",
    "numeric",
    "text",
    "date",
    "text",
    "jsonb",
    "timestamptz",
    "timestamptz",
    "integer",
    "boolean",
)


def _write_values(pending: _Pending, stored: StoredValues, changed: list, now: datetime.datetime) -> None:
    """One upsert statement for every changed item, whatever their number.

    Plain SQL (INSERT ... ON CONFLICT DO UPDATE, on PostgreSQL and SQLite alike): the ORM's bulk_create builds a
    model instance per row, which costs a 45-item save more than the database does.
    """
    if not changed:
        return
    specs = protocol_forms(pending.visit.participant.protocol)
    at = connection.ops.adapt_datetimefield_value(now)
    rows = []
    for key in changed:
        value = pending.values[key]
        item = specs[key[0]].by_code[key[1]]
        number = None if value.number is None else connection.ops.adapt_decimalfield_value(value.number, 20, 6)
        rows.append(
            (
                pending.visit.pk,
                item.pk,
                number,
                value.text,
                value.date,
                value.missing_reason,
                json.dumps(list(pending.flags[key])),
                at,
                *_verification_after(stored.get(key), value),
            )
        )
    insert_rows(
        table=ItemValue._meta.db_table,
        columns=_VALUE_COLUMNS,
        pg_types=_PG_VALUE_TYPES,
        rows=rows,
        conflict_columns=("visit_id", "item_id"),
    )


def _verification_after(before: "Stored | None", value: Typed) -> tuple:
    """A changed value loses its source data verification, and shows it changed since; a re-flag keeps it."""
    if before is None:
        return (None, None, False)
    if typed_of(before) == value:
        verified_at = before.verified_at
        return (
            verified_at and connection.ops.adapt_datetimefield_value(verified_at),
            before.verified_by_id,
            before.changed_since_verification,
        )
    return (None, None, before.verified_at is not None or before.changed_since_verification)


def _write_instance(instance: FormInstance, user: object, state: str, now: datetime.datetime) -> None:
    instance.version += 1
    instance.state = state
    instance.updated_at = now
    instance.updated_by = user
    if state == FormState.COMPLETE and instance.first_completed_at is None:
        instance.first_completed_at = now
    if instance.pk is None:
        instance.save()
        return
    # The participant, the visit and the form are locked, so nobody changed the version since it was read. Plain
    # SQL: the model's save built its UPDATE in more time than the database took to run it.
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _INSTANCE_UPDATE,
            [
                instance.version,
                instance.state,
                adapt(instance.updated_at),
                instance.updated_by_id,
                adapt(instance.first_completed_at),
                instance.pk,
            ],
        )


_INSTANCE_UPDATE = (
    f"UPDATE {FormInstance._meta.db_table} SET version = %s, state = %s, updated_at = %s, updated_by_id = %s, "
    f"first_completed_at = %s WHERE id = %s"
)


def _sync_queries(pending: _Pending, stored: StoredValues, now: datetime.datetime) -> tuple[int, int]:
    """Raise a query for each check that newly fires; close the automatic queries of checks now cleared.

    A date outside the visit window is a fault of the visit, not of each form that records it: it raises one
    query on the whole visit when the first such date appears and closes it when the last one is corrected.
    """
    specs = protocol_forms(pending.visit.participant.protocol)
    new = []
    window_query = _window_query(pending, stored, now)
    if window_query is not None:
        new.append(window_query)
    for key, fired in pending.queries.items():
        before = set(stored[key].flags) if key in stored else set()
        for check_code, message in fired:
            if not any(flag in before for flag in _flags_of_check(check_code)):
                new.append(
                    Query(
                        participant_id=pending.visit.participant_id,
                        visit=pending.visit,
                        item=specs[key[0]].by_code[key[1]],
                        form=specs[key[0]].definition,
                        origin=QueryOrigin.AUTOMATIC,
                        check_code=check_code,
                        message=message,
                        created_at=now,
                        created_by=None,
                    )
                )
    if new:
        Query.objects.bulk_create(new, ignore_conflicts=True)
    cleared = [
        specs[key[0]].by_code[key[1]].pk
        for key in pending.values
        if key in stored
        and any(flag in stored[key].flags for flag in QUERY_FLAGS)
        and not any(flag in pending.flags[key] for flag in QUERY_FLAGS)
    ]
    window_cleared = bool(_outside_window(_stored_flags(stored)) and not _outside_window(_flags_after(pending, stored)))
    closed = 0
    if cleared or window_cleared:
        check_code = window_check_code(pending.visit) if window_cleared else None
        closed = review.close_automatic(visit=pending.visit, item_ids=cleared, visit_check_code=check_code, now=now)
    return len(new), closed


Flagged = Iterable[tuple[tuple[str, str], Iterable[str]]]


def _stored_flags(stored: StoredValues) -> Flagged:
    return ((key, value.flags) for key, value in stored.items())


def _flags_after(pending: _Pending, stored: StoredValues) -> Flagged:
    """The flags of every item of the visit once the save is written: the saved ones and the others as stored."""
    flags = {key: value.flags for key, value in stored.items()}
    flags.update(pending.flags)
    return flags.items()


def _outside_window(flagged: Flagged) -> list[tuple[str, str]]:
    """The items (form code, item code) whose flags say their date is outside the visit window."""
    return [key for key, flags in flagged if Flag.WINDOW in flags]


def _window_query(pending: _Pending, stored: StoredValues, now: datetime.datetime) -> Query | None:
    """The visit's window query, if this save brings the visit's first date outside its window."""
    if _outside_window(_stored_flags(stored)):
        return None  # the visit already had one (its query raised then), whatever the form that holds it
    outside = _outside_window(pending.flags.items())
    if not outside:
        return None
    visit = pending.visit
    form_code, item_code = outside[0]
    item = protocol_forms(visit.participant.protocol)[form_code].by_code[item_code]
    message = _("%(item)s %(date)s is outside the visit window %(start)s to %(end)s.") % {
        "item": item.shown_label,
        "date": pending.values[(form_code, item_code)].date,
        "start": visit.window_start,
        "end": visit.window_end,
    }
    return Query(
        participant_id=visit.participant_id,
        visit=visit,
        origin=QueryOrigin.AUTOMATIC,
        check_code=window_check_code(visit),
        message=message,
        created_at=now,
        created_by=None,
    )


def _flags_of_check(check_code: str) -> tuple[str, ...]:
    return (Flag.WINDOW,) if check_code.startswith("WINDOW_") else (Flag.RULE,)


# Reasons the system writes into the audit trail stay in English whatever the user's language: the trail is
# read years later, by people of any site.
def _value_entries(
    instance: FormInstance, pending: _Pending, stored: StoredValues, changed: list, reason: str
) -> list[AuditEntry]:
    entries = []
    for key in changed:
        before, after = typed_of(stored.get(key)), pending.values[key]
        if before == after:
            continue  # only the flags changed: they follow from the data, which the trail already holds
        derived = key[0] != pending.spec.code or pending.spec.by_code[key[1]].derived
        entries.append(
            AuditEntry(
                object_type="form",
                object_id=str(instance.pk),
                action="create" if before.is_empty else "update",
                form_code=key[0],
                item_code=key[1],
                old_value=display(before),
                new_value=display(after),
                reason="derived" if derived else reason,
            )
        )
    return entries


def display(value: Typed) -> str:
    if value.missing_reason:
        return f"<{value.missing_reason}>"
    if value.number is not None:
        return f"{value.number.normalize():f}"
    if value.date is not None:
        return value.date.isoformat()
    return value.text


def _state_entries(instance: FormInstance, old_state: str, reason: str) -> list[AuditEntry]:
    if old_state == instance.state:
        return []
    return [
        AuditEntry("form", str(instance.pk), "state", instance.definition.code, "", old_state, instance.state, reason)
    ]


def _visit_updates(
    visit: Visit, pending: _Pending, instances: dict[int, FormInstance], instance: FormInstance
) -> list[AuditEntry]:
    """Move the visit along: in progress once data exist, complete once every form is; keep its date."""
    instances[instance.definition_id] = instance
    forms = visit_forms(visit)
    all_complete = all(
        instances.get(spec.definition.pk) and instances[spec.definition.pk].state == FormState.COMPLETE
        for spec in forms
    )
    progress = VisitProgress.COMPLETE if all_complete else VisitProgress.IN_PROGRESS
    visit_date = _visit_date(pending) or visit.visit_date
    if (progress, visit_date) == (visit.progress, visit.visit_date):
        return []
    entries = [
        AuditEntry("visit", str(visit.pk), "update", "", field, str(old or ""), str(new or ""))
        for field, old, new in (("progress", visit.progress, progress), ("visit_date", visit.visit_date, visit_date))
        if old != new
    ]
    Visit.objects.filter(pk=visit.pk).update(progress=progress, visit_date=visit_date)
    visit.progress, visit.visit_date = progress, visit_date
    return entries


def _visit_date(pending: _Pending) -> datetime.date | None:
    protocol = pending.visit.participant.protocol
    form_code, _dot, item_code = protocol_definition(protocol)["visit_date_item"].partition(".")
    value = pending.values.get((form_code, item_code))
    return value.date if value is not None else None


def _results(spec: FormSpec, pending: _Pending, stored: StoredValues) -> dict[str, ItemResult]:
    results = {}
    for item in spec.items:
        key = (spec.code, item.code)
        if key in pending.values:
            results[item.code] = ItemResult(item=item, value=pending.values[key], flags=pending.flags[key])
        else:
            before = stored.get(key)
            results[item.code] = ItemResult(
                item=item, value=typed_of(before), flags=tuple(before.flags) if before else ()
            )
    return results
