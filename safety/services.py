"""Every write of the adverse event log: report, correct, confirm or dismiss a lab proposal, verify, sign.

Each is one transaction and leaves audit records, and an event that becomes serious (or grade 4, or fatal)
queues its expedited notifications in the same transaction, sent by a Celery task after commit.
"""

from __future__ import annotations

import datetime

from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from capture.errors import LockedError, StaleVersionError
from capture.models import Lock
from safety import notify
from safety.models import AdverseEvent, AdverseEventSource, AdverseEventStatus, DeathReport, Outcome, Relationship
from safety.rules import AdverseEventInput, check_input
from trial import access
from trial.access import Action
from trial.audit import AuditEntry, audit_write
from trial.errors import InvalidInput
from trial.locking import atomic_with_retry, lock_participant, lock_participant_of, lock_records
from trial.models import Participant, ParticipantStatus, Visit
from trial.signing import SignatureTarget, signature_password_check
from trial.validators import date_problem

OBJECT_TYPE = "adverse_event"
FORM_CODE = "AE"
AUDITED_FIELDS = AdverseEventInput.field_names()
FOLLOWED_UP = (
    ParticipantStatus.ENROLLED,
    ParticipantStatus.DIED,
    ParticipantStatus.COMPLETED,
    ParticipantStatus.WITHDRAWN,
)


# --- Reaching an event ----------------------------------------------------------------------------------------


def adverse_events_visible(user: object) -> object:
    """Every adverse event of the participants the user may see."""
    return AdverseEvent.objects.filter(participant__in=access.participants(user))


def adverse_event_or_404(
    user: object, pk: int, action: Action = Action.VIEW, *, lock: bool = False, related: tuple[str, ...] = ()
) -> AdverseEvent:
    """The event if the user may see it (else 404) and do `action` at its site (else 403), with `related` read in
    the same query."""
    events = adverse_events_visible(user).select_related("participant__site", "participant__arm", "lab_visit", *related)
    if lock:  # the participant first, then the event (trial/locking.py)
        lock_participant_of(access.participants(user).filter(adverse_events=pk))
        events = lock_records(events)
    event = access.get_or_404(events, pk=pk)
    access.require(user, action, event.participant.site_id)
    return event


def _participant_for_entry(user: object, participant_id: int) -> Participant:
    participant = access.participant_or_404(user, participant_id, Action.ENTER_DATA)
    # Events go on being followed up after a participant withdraws, completes or dies.
    if participant.status not in FOLLOWED_UP:
        raise InvalidInput(_("Adverse events are recorded for enrolled participants only."))
    return participant


def _guard_unlocked(participant_id: int) -> None:
    if Lock.objects.filter(participant_id=participant_id, visit=None, released_at=None).exists():
        raise LockedError(_("This participant's data are locked by the data manager: they cannot be changed."))


def _guard_version(event: AdverseEvent, version: int) -> None:
    if event.version != version:
        raise StaleVersionError(
            _(
                "Someone changed this adverse event after you opened it (version %(current)s, yours %(yours)s). "
                "Nothing was saved: review it and enter your changes again."
            )
            % {"current": event.version, "yours": version},
            current_version=event.version,
        )


def _require_reason(reason: str, field: str = "reason") -> str:
    if not (reason or "").strip():
        raise InvalidInput(errors={field: [_("Give the reason for this change.")]})
    if len(reason.strip()) > 300:
        raise InvalidInput(errors={field: [_("At most 300 characters.")]})
    return reason.strip()


def next_number(participant: Participant) -> int:
    # The participant row is locked by the caller, so two reports never take the same number.
    highest = AdverseEvent.objects.filter(participant=participant).aggregate(n=Max("number"))["n"]
    return (highest or 0) + 1


# --- Report and correct -----------------------------------------------------------------------------------------


@atomic_with_retry
def adverse_event_report(*, user: object, participant_id: int, data: AdverseEventInput) -> AdverseEvent:
    """The site reports an adverse event it learnt of (from the participant, a record, a visit)."""
    participant = _participant_for_entry(user, participant_id)
    lock_participant(participant.pk)
    _guard_unlocked(participant.pk)
    cleaned = check_input(data, enrolment_date=participant.enrolment_date, death_date=participant.death_date)
    now = timezone.now()
    event = AdverseEvent(
        participant=participant,
        subject_id=participant.subject_id,
        number=next_number(participant),
        status=AdverseEventStatus.REPORTED,
        source=AdverseEventSource.SITE,
        created_at=now,
        created_by=user,
        updated_at=now,
        updated_by=user,
        **cleaned.__dict__,
    )
    event.save()
    entries = [AuditEntry(OBJECT_TYPE, str(event.pk), "create", FORM_CODE, "", "", event.label)]
    entries += _field_entries(event, AdverseEventInput(), cleaned, "")
    entries += notify.expedite_if_due(event, now)
    audit_write(user=user, participant=participant, entries=entries)
    return event


@atomic_with_retry
def adverse_event_update(
    *, user: object, event_id: int, version: int, data: AdverseEventInput, reason: str
) -> AdverseEvent:
    """Correct or follow up a reported event (its end, outcome, seriousness...). Every change needs a reason;
    a change after source data verification is marked, and a change voids the investigator's signature."""
    event = adverse_event_or_404(user, event_id, Action.ENTER_DATA, lock=True)
    if event.status != AdverseEventStatus.REPORTED:
        raise InvalidInput(_("Only a reported adverse event can be changed; a proposal is confirmed or dismissed."))
    _guard_unlocked(event.participant_id)
    _guard_version(event, version)
    reason = _require_reason(reason)
    cleaned = check_input(
        data, enrolment_date=event.participant.enrolment_date, death_date=event.participant.death_date
    )
    before = _input_of(event)
    if before == cleaned:
        return event
    now = timezone.now()
    entries = _field_entries(event, before, cleaned, reason)
    for name, value in cleaned.__dict__.items():
        setattr(event, name, value)
    entries += _after_change(event, user, now)
    entries += notify.expedite_if_due(event, now)
    event.save()
    audit_write(user=user, participant=event.participant, entries=entries)
    return event


def _after_change(event: AdverseEvent, user: object, now: datetime.datetime) -> list[AuditEntry]:
    """What every change of an assessed event does besides the change: version, verification, signature."""
    event.version += 1
    event.updated_at = now
    event.updated_by = user
    if event.verified_at is not None:
        event.changed_since_verification = True
    if event.signed_at is None:
        return []
    event.signed_at = None
    event.signed_by = None
    return [AuditEntry(OBJECT_TYPE, str(event.pk), "void", FORM_CODE, "signature", "signed", "", "Signed data changed")]


def _input_of(event: AdverseEvent) -> AdverseEventInput:
    return AdverseEventInput(**{name: getattr(event, name) for name in AUDITED_FIELDS})


def display(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _field_entries(
    event: AdverseEvent, before: AdverseEventInput, after: AdverseEventInput, reason: str
) -> list[AuditEntry]:
    return [
        AuditEntry(OBJECT_TYPE, str(event.pk), "update", FORM_CODE, name, display(old), display(new), reason)
        for name in AUDITED_FIELDS
        if (old := getattr(before, name)) != (new := getattr(after, name))
    ]


# --- Lab proposals: the investigator's decision --------------------------------------------------------------


def _proposal_for_decision(user: object, event_id: int, version: int) -> AdverseEvent:
    event = adverse_event_or_404(user, event_id, Action.ASSESS_SAFETY, lock=True)
    if event.status != AdverseEventStatus.PROPOSED:
        raise InvalidInput(
            _("This proposal was already decided (%(status)s).") % {"status": event.get_status_display()}
        )
    _guard_unlocked(event.participant_id)
    _guard_version(event, version)
    return event


@atomic_with_retry
def adverse_event_confirm(*, user: object, event_id: int, version: int, data: AdverseEventInput) -> AdverseEvent:
    """The investigator confirms a lab-graded abnormality as an adverse event, assessing it on the protocol's
    scale (grade, relationship to the UC-MSC infusion, seriousness, outcome)."""
    event = _proposal_for_decision(user, event_id, version)
    cleaned = check_input(
        data, enrolment_date=event.participant.enrolment_date, death_date=event.participant.death_date
    )
    now = timezone.now()
    before = _input_of(event)
    entries = _field_entries(event, before, cleaned, "Lab proposal confirmed")
    for name, value in cleaned.__dict__.items():
        setattr(event, name, value)
    event.status = AdverseEventStatus.REPORTED
    event.decided_at, event.decided_by = now, user
    event.version += 1
    event.updated_at, event.updated_by = now, user
    entries.append(AuditEntry(OBJECT_TYPE, str(event.pk), "confirm", FORM_CODE, "status", "proposed", "reported"))
    entries += notify.expedite_if_due(event, now)
    event.save()
    audit_write(user=user, participant=event.participant, entries=entries)
    return event


@atomic_with_retry
def adverse_event_dismiss(*, user: object, event_id: int, version: int, reason: str) -> AdverseEvent:
    """The investigator judges a lab-graded abnormality not an adverse event (say, unchanged from the
    cirrhosis at baseline), with the reason on record."""
    event = _proposal_for_decision(user, event_id, version)
    reason = _require_reason(reason)
    now = timezone.now()
    event.status = AdverseEventStatus.DISMISSED
    event.dismiss_reason = reason
    event.decided_at, event.decided_by = now, user
    event.version += 1
    event.updated_at, event.updated_by = now, user
    event.save()
    audit_write(
        user=user,
        participant=event.participant,
        entries=[
            AuditEntry(OBJECT_TYPE, str(event.pk), "dismiss", FORM_CODE, "status", "proposed", "dismissed", reason)
        ],
    )
    return event


# --- Review: source data verification and signature -------------------------------------------------------------


@atomic_with_retry
def adverse_event_verify(*, user: object, event_id: int, version: int) -> AdverseEvent:
    """The monitor has checked the event against the source (the hospital record)."""
    event = adverse_event_or_404(user, event_id, Action.VERIFY, lock=True)
    if event.status != AdverseEventStatus.REPORTED:
        raise InvalidInput(_("Only a reported adverse event is verified."))
    _guard_version(event, version)
    event.verified_at, event.verified_by = timezone.now(), user
    event.changed_since_verification = False
    event.save(update_fields=["verified_at", "verified_by", "changed_since_verification"])
    audit_write(
        user=user,
        participant=event.participant,
        entries=[AuditEntry(OBJECT_TYPE, str(event.pk), "verify", FORM_CODE, "", "", "verified")],
    )
    return event


def adverse_event_sign(
    *, user: object, event_id: int, version: int, password: str, request: HttpRequest | None = None
) -> AdverseEvent:
    """The investigator signs the event's assessment, re-entering their password (21 CFR Part 11). A wrong
    password counts towards the account's lockout, is audited and alerts the site's data managers."""
    event = adverse_event_or_404(user, event_id, Action.SIGN)
    _guard_signable(event, version)
    target = SignatureTarget(OBJECT_TYPE, str(event.pk), f"adverse event {event.label}", event.participant, FORM_CODE)
    signature_password_check(request=request, user=user, password=password, target=target)
    return _adverse_event_sign(user=user, event_id=event.pk, version=version)


@atomic_with_retry
def _adverse_event_sign(*, user: object, event_id: int, version: int) -> AdverseEvent:
    event = adverse_event_or_404(user, event_id, Action.SIGN, lock=True)
    _guard_signable(event, version)
    event.signed_at, event.signed_by = timezone.now(), user
    event.save(update_fields=["signed_at", "signed_by"])
    audit_write(
        user=user,
        participant=event.participant,
        entries=[AuditEntry(OBJECT_TYPE, str(event.pk), "sign", FORM_CODE, "signature", "", "signed")],
    )
    return event


def _guard_signable(event: AdverseEvent, version: int) -> None:
    if event.status != AdverseEventStatus.REPORTED:
        raise InvalidInput(_("Only a reported adverse event is signed."))
    _guard_version(event, version)


# --- Death ------------------------------------------------------------------------------------------------------


@atomic_with_retry
def death_report(
    *,
    user: object,
    participant_id: int,
    death_date: datetime.date,
    cause: str,
    relationship: str,
    autopsy: bool = False,
) -> DeathReport:
    """Record a participant's death: their schedule ends and visits after the death take no more data."""
    participant = _participant_for_entry(user, participant_id)
    participant = lock_participant(participant.pk)
    _guard_unlocked(participant.pk)
    if DeathReport.objects.filter(participant=participant).exists():
        raise InvalidInput(_("This participant's death is already reported; correct that report instead."))
    _check_death(participant, death_date, cause, relationship)
    now = timezone.now()
    report = DeathReport.objects.create(
        participant=participant,
        death_date=death_date,
        cause=cause.strip(),
        relationship=relationship,
        autopsy=autopsy,
        adverse_event=_fatal_event(participant),
        reported_at=now,
        reported_by=user,
    )
    old_status = participant.status
    participant.status, participant.death_date = ParticipantStatus.DIED, death_date
    participant.save(update_fields=["status", "death_date"])
    entries = [
        AuditEntry("death_report", str(report.pk), "create", "DEATH", "death_date", "", death_date.isoformat()),
        AuditEntry("death_report", str(report.pk), "create", "DEATH", "cause", "", report.cause),
        AuditEntry("death_report", str(report.pk), "create", "DEATH", "relationship", "", relationship),
        AuditEntry("participant", str(participant.pk), "update", "", "status", old_status, participant.status),
        *_end_schedule(participant, death_date),
    ]
    audit_write(user=user, participant=participant, entries=entries)
    return report


def _check_death(participant: Participant, death_date: datetime.date | None, cause: str, relationship: str) -> None:
    errors: dict[str, list[str]] = {}
    if death_date is None:
        errors["death_date"] = [_("This field is required.")]
    elif date_problem(death_date, happened=False):
        errors["death_date"] = [date_problem(death_date, happened=False)]
    elif death_date > timezone.localdate():
        errors["death_date"] = [_("The date of death cannot be in the future.")]
    elif participant.enrolment_date and death_date < participant.enrolment_date:
        errors["death_date"] = [_("The date of death cannot precede enrolment.")]
    if not (cause or "").strip():
        errors["cause"] = [_("This field is required.")]
    later = AdverseEvent.objects.filter(
        participant=participant, status=AdverseEventStatus.REPORTED, onset_date__gt=death_date or datetime.date.max
    )
    if death_date is not None and later.exists():
        errors.setdefault("death_date", []).append(_("Adverse events of this participant start after this date."))
    if relationship not in Relationship.values:
        errors["relationship"] = [_("Choose the relationship to the study treatment.")]
    if errors:
        raise InvalidInput(errors=errors)


def _fatal_event(participant: Participant) -> AdverseEvent | None:
    return (
        AdverseEvent.objects.filter(participant=participant, status=AdverseEventStatus.REPORTED, outcome=Outcome.FATAL)
        .order_by("-onset_date")
        .first()
    )


def _end_schedule(participant: Participant, death_date: datetime.date) -> list[AuditEntry]:
    """Remove the visits that open after the death and hold nothing; a visit that holds data stays, closed."""
    after = Visit.objects.filter(participant=participant, window_start__gt=death_date)
    empty = after.filter(
        forms__isnull=True, item_values__isnull=True, queries__isnull=True, locks__isnull=True, signatures__isnull=True
    ).distinct()
    removed = list(empty.values_list("pk", "definition__code"))
    Visit.objects.filter(pk__in=[pk for pk, _code in removed]).delete()
    return [
        AuditEntry("visit", str(pk), "delete", "", "schedule", code, "", "Schedule ended by death report")
        for pk, code in removed
    ]


@atomic_with_retry
def death_report_update(
    *,
    user: object,
    participant_id: int,
    version: int,
    death_date: datetime.date,
    cause: str,
    relationship: str,
    autopsy: bool,
    reason: str,
) -> DeathReport:
    """Correct a death report (a date learnt from the death certificate, a cause after autopsy), with a reason.

    An earlier date ends the schedule earlier; visits removed for the first date are not brought back.
    """
    participant = lock_participant(_participant_for_entry(user, participant_id).pk)
    _guard_unlocked(participant.pk)
    report = DeathReport.objects.filter(participant=participant).first()
    if report is None:
        raise InvalidInput(_("No death is reported for this participant."))
    if report.version != version:
        raise StaleVersionError(
            _("Someone changed this death report after you opened it. Nothing was saved: review it and try again."),
            current_version=report.version,
        )
    reason = _require_reason(reason)
    _check_death(participant, death_date, cause, relationship)
    after = {"death_date": death_date, "cause": cause.strip(), "relationship": relationship, "autopsy": autopsy}
    entries = [
        AuditEntry("death_report", str(report.pk), "update", "DEATH", name, display(old), display(new), reason)
        for name, new in after.items()
        if (old := getattr(report, name)) != new
    ]
    if not entries:
        return report
    for name, value in after.items():
        setattr(report, name, value)
    report.version += 1
    report.save()
    participant.death_date = death_date
    participant.save(update_fields=["death_date"])
    entries += _end_schedule(participant, death_date)
    audit_write(user=user, participant=participant, entries=entries)
    return report
