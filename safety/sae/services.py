"""Every write of an SAE report: its details, its versions (follow-up, final) and the sponsor's causality.

Each is one transaction with audit records. A report version keeps the data as submitted and queues one notice per
recipient through the expedited outbox (safety/notify.py), sent by a task after commit, once.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from capture.errors import StaleVersionError
from capture.models import LogRow
from safety import notify
from safety.models import (
    AdverseEvent,
    AdverseEventStatus,
    Outcome,
    Relationship,
    SaeReport,
    SaeReportKind,
    SeriousAdverseEvent,
    SeriousCriterion,
)
from safety.rules import ENDED_OUTCOMES
from safety.sae.rules import MAX_LONG, MAX_SHORT, SaeDetailsInput, check_details
from safety.services import _guard_unlocked, _require_reason, adverse_event_or_404, display
from trial.access import Action
from trial.audit import AuditEntry, audit_write
from trial.errors import InvalidInput
from trial.locking import atomic_with_retry, lock_records

# Keyed by the adverse event's id: an event has one SAE report, and its page reads the history without a lookup.
OBJECT_TYPE = "serious_adverse_event"
FORM_CODE = "SAE"
MEDICATION_LOG_FORM = "CM"
FINAL_OUTCOMES = {*ENDED_OUTCOMES, Outcome.UNKNOWN}


def medication_log_rows(participant_id: int) -> set[int]:
    """The ids of the participant's concomitant medication log rows (form CM, not removed) an SAE may name."""
    rows = LogRow.objects.filter(
        definition__code=MEDICATION_LOG_FORM, participant_id=participant_id, removed_at__isnull=True
    )
    return set(rows.values_list("pk", flat=True))


def _sae_event(user: object, event_id: int, action: Action) -> AdverseEvent:
    event = adverse_event_or_404(user, event_id, action, lock=True)
    if event.status != AdverseEventStatus.REPORTED or not (event.serious or event.expedited_at):
        raise InvalidInput(_("Only a reported serious (or expedited) adverse event has an SAE report."))
    return event


def _sae_row(event: AdverseEvent, version: int) -> SeriousAdverseEvent | None:
    row = lock_records(SeriousAdverseEvent.objects.filter(adverse_event=event)).first()
    current = row.version if row else 0
    if current != version:
        raise StaleVersionError(
            _(
                "Someone changed this SAE report after you opened it (version %(current)s, yours %(yours)s). "
                "Nothing was saved: review it and enter your changes again."
            )
            % {"current": current, "yours": version},
            current_version=current,
        )
    return row


def details_of(row: SeriousAdverseEvent | None) -> SaeDetailsInput:
    if row is None:
        return SaeDetailsInput()
    return SaeDetailsInput(**{name: getattr(row, name) for name in SaeDetailsInput.field_names()})


@atomic_with_retry
def sae_details_save(
    *, user: object, event_id: int, version: int, data: SaeDetailsInput, reason: str = ""
) -> SeriousAdverseEvent:
    """The site completes the SAE report: hospital admission and discharge, the narrative, relevant tests and
    history, suspect and concomitant medications, dechallenge and rechallenge. A change of details already
    saved needs a reason. `version` is the details' version the user saw (0 before the first save)."""
    event = _sae_event(user, event_id, Action.ENTER_DATA)
    _guard_unlocked(event.participant_id)
    row = _sae_row(event, version)
    cleaned = check_details(data, valid_log_rows=medication_log_rows(event.participant_id))
    before = details_of(row)
    if row is not None and before == cleaned:
        return row
    if row is not None:
        reason = _require_reason(reason)
    now = timezone.now()
    row = row or SeriousAdverseEvent(adverse_event=event, version=0)
    for name, value in cleaned.as_dict().items():
        setattr(row, name, value)
    row.version += 1
    row.updated_at, row.updated_by = now, user
    row.save()
    entries = [
        AuditEntry(OBJECT_TYPE, str(event.pk), "update", FORM_CODE, name, display(old), display(new), reason)
        for name in SaeDetailsInput.field_names()
        if (old := _audit_value(getattr(before, name))) != (new := _audit_value(getattr(cleaned, name)))
    ]
    audit_write(user=user, participant=event.participant, entries=entries)
    return row


def _audit_value(value: object) -> object:
    if isinstance(value, list):
        return "; ".join(entry.get("name", "") for entry in value)
    return value


@atomic_with_retry
def sae_report_submit(*, user: object, event_id: int, sequence: int, final: bool = False) -> SaeReport:
    """The investigator sends a follow-up of an SAE (or its final report): the report as it stands now becomes
    version `sequence` and each recipient is notified of it once. `sequence` is the number the user saw as next,
    so a form sent twice submits once."""
    event = _sae_event(user, event_id, Action.ASSESS_SAFETY)
    if not event.expedited_at:
        raise InvalidInput(_("This event needs no expedited report."))
    reports = list(SaeReport.objects.filter(adverse_event=event).order_by("sequence"))
    expected = len(reports)
    if any(report.kind == SaeReportKind.FINAL for report in reports):
        raise InvalidInput(_("The final report of this event was sent: no further report is sent."))
    if sequence != expected:
        raise InvalidInput(
            errors={"sequence": [_("Report %(number)s was already sent: reload the page.") % {"number": sequence}]}
        )
    kind = SaeReportKind.INITIAL if expected == 0 else (SaeReportKind.FINAL if final else SaeReportKind.FOLLOW_UP)
    if kind != SaeReportKind.INITIAL:
        _check_complete(event, final=final)
    now = timezone.now()
    report = notify.report_write(event, kind=kind, sequence=sequence, user=user, now=now)
    entries = [*notify.report_entries(report), *notify.report_notices_queue(event, report, now)]
    audit_write(user=user, participant=event.participant, entries=entries)
    return report


def _check_complete(event: AdverseEvent, *, final: bool) -> None:
    row = SeriousAdverseEvent.objects.filter(adverse_event=event).first()
    errors: dict[str, list[str]] = {}
    if row is None or not row.narrative:
        errors["narrative"] = [_("Write the narrative before sending a follow-up report.")]
    if SeriousCriterion.HOSPITALISATION in event.serious_criteria and (row is None or not row.admission_date):
        errors["admission_date"] = [_("The event required hospitalisation: give the admission date.")]
    if final and event.outcome not in FINAL_OUTCOMES:
        errors["outcome"] = [_("A final report needs the event's outcome: recovered, with sequelae, fatal or unknown.")]
    if errors:
        raise InvalidInput(errors=errors)


@atomic_with_retry
def sae_sponsor_causality_record(
    *, user: object, event_id: int, version: int, relationship: str, assessor: str, comment: str = "", reason: str = ""
) -> SeriousAdverseEvent:
    """The data manager records the sponsor's safety physician's causality assessment of an SAE (the sponsor's
    accounts are read-only). The investigator's own assessment stays on the event; a change needs a reason."""
    event = _sae_event(user, event_id, Action.SPONSOR_CAUSALITY)
    _guard_unlocked(event.participant_id)
    row = _sae_row(event, version)
    errors: dict[str, list[str]] = {}
    if relationship not in Relationship.values:
        errors["relationship"] = [_("Choose the relationship to the study treatment.")]
    assessor, comment = (assessor or "").strip(), (comment or "").strip()
    if not assessor:
        errors["assessor"] = [_("Name the sponsor's safety physician who assessed it.")]
    elif len(assessor) > MAX_SHORT:
        errors["assessor"] = [_("At most %(max)d characters.") % {"max": MAX_SHORT}]
    if len(comment) > MAX_LONG:
        errors["comment"] = [_("At most %(max)d characters.") % {"max": MAX_LONG}]
    if errors:
        raise InvalidInput(errors=errors)
    before = (row.sponsor_relationship, row.sponsor_assessor, row.sponsor_comment) if row else ("", "", "")
    after = (relationship, assessor, comment)
    if row is not None and before == after:
        return row
    if row is not None and row.sponsor_relationship:
        reason = _require_reason(reason)
    now = timezone.now()
    row = row or SeriousAdverseEvent(adverse_event=event, version=0)
    row.sponsor_relationship, row.sponsor_assessor, row.sponsor_comment = after
    row.sponsor_assessed_at, row.sponsor_recorded_by = now, user
    row.version += 1
    row.updated_at, row.updated_by = now, user
    row.save()
    names = ("sponsor_relationship", "sponsor_assessor", "sponsor_comment")
    entries = [
        AuditEntry(OBJECT_TYPE, str(event.pk), "sponsor_causality", FORM_CODE, name, old, new, reason)
        for name, old, new in zip(names, before, after, strict=True)
        if old != new
    ]
    audit_write(user=user, participant=event.participant, entries=entries)
    return row
