"""Every write of the trial app: one function per action, each in one transaction, each audited."""

import datetime
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from trial import access, consent, locking, protocol_file
from trial.access import Action
from trial.audit import AuditEntry, audit_write
from trial.errors import EligibilityError, InvalidInput
from trial.locking import atomic_with_retry
from trial.models import (
    Arm,
    CriterionKind,
    ItemDefinition,
    Participant,
    ParticipantStatus,
    Protocol,
    Screening,
    Site,
    Visit,
    VisitProgress,
    age_on,
)
from trial.scoring import ChildPugh, child_pugh
from trial.validators import date_errors, date_problem


@transaction.atomic
def protocol_load(*, path: Path = protocol_file.DEFAULT_PATH) -> tuple[Protocol, bool]:
    """Load the protocol file. The same file again changes nothing; a changed file is a new version."""
    definition, sha256 = protocol_file.read(path)
    existing = Protocol.objects.filter(code=definition["code"], sha256=sha256).first()
    if existing:
        _sites_upsert(definition["sites"])
        return existing, False
    latest = Protocol.objects.filter(code=definition["code"]).aggregate(v=Max("version"))["v"] or 0
    protocol = Protocol.objects.create(
        code=definition["code"], version=latest + 1, title=definition["title"], sha256=sha256, definition=definition
    )
    protocol_file.create_rows(protocol)
    _sites_upsert(definition["sites"])
    audit_write(
        user=None,
        entries=[AuditEntry("protocol", str(protocol.pk), "load", new_value=f"v{protocol.version} {sha256}")],
    )
    return protocol, True


def _sites_upsert(sites: list[dict]) -> None:
    for site in sites:
        Site.objects.update_or_create(number=site["number"], defaults={k: v for k, v in site.items() if k != "number"})


def protocol_current(code: str = "NCT01573923") -> Protocol:
    protocol = Protocol.objects.filter(code=code).order_by("-version").first()
    if protocol is None:
        raise InvalidInput("No protocol is loaded: run `python manage.py load_protocol`.")
    return protocol


@dataclass(frozen=True)
class ScreeningInput:
    """What the screening CRF asks. Bilirubin in umol/L, albumin in g/L."""

    initials: str
    sex: str
    date_of_birth: datetime.date
    screening_date: datetime.date
    consent_date: datetime.date | None
    diagnosis: str
    total_bilirubin: Decimal
    albumin: Decimal
    inr: Decimal
    ascites: str
    encephalopathy: str
    answers: dict[str, bool]
    icf_version: str = ""  # the consent form version signed; empty: the one in force on the consent date


@atomic_with_retry
def participant_screen(*, user: object, site: Site, data: ScreeningInput) -> Participant:
    """Record a candidate's screening. An ineligible candidate is kept as a screen failure with the reasons."""
    access.require(user, Action.SCREEN, site)
    protocol = protocol_current()
    _validate_screening(protocol, data)
    icf = consent.icf_check(protocol, data.icf_version, data.consent_date)
    score = _child_pugh(protocol, data)
    failures = eligibility_failures(protocol, data, score)
    participant = Participant.objects.create(
        site=site,
        protocol=protocol,
        screening_number=_next_number(site, "screening_number", f"S{site.number:02d}-"),
        initials=data.initials.upper(),
        sex=data.sex,
        date_of_birth=data.date_of_birth,
        status=ParticipantStatus.SCREEN_FAILED if failures else ParticipantStatus.ELIGIBLE,
        screen_failure_reasons=[f"{code}: {reason}" for code, reason in failures],
        created_by=user,
    )
    screening = Screening.objects.create(
        participant=participant,
        screening_date=data.screening_date,
        consent_date=data.consent_date,
        icf_version=icf.version if icf else "",
        diagnosis=data.diagnosis,
        total_bilirubin=data.total_bilirubin,
        albumin=data.albumin,
        inr=data.inr,
        ascites=data.ascites,
        encephalopathy=data.encephalopathy,
        answers=data.answers,
        child_pugh_points=score.points,
        child_pugh_class=score.grade,
        eligible=not failures,
        failed_criteria=[code for code, _ in failures],
        screened_by=user,
    )
    entries = _screening_audit(participant, screening)
    entries += consent.consent_record_initial(user=user, participant=participant, version=icf, day=data.consent_date)
    audit_write(user=user, site=site, participant=participant, entries=entries)
    return participant


def _screening_audit(participant: Participant, screening: Screening) -> list[AuditEntry]:
    values = {
        "initials": participant.initials,
        "sex": participant.sex,
        "date_of_birth": participant.date_of_birth,
        "screening_date": screening.screening_date,
        "consent_date": screening.consent_date,
        "diagnosis": screening.diagnosis,
        "total_bilirubin": screening.total_bilirubin,
        "albumin": screening.albumin,
        "inr": screening.inr,
        "ascites": screening.ascites,
        "encephalopathy": screening.encephalopathy,
        **{f"criterion:{code}": answer for code, answer in sorted(screening.answers.items())},
        "child_pugh": f"{screening.child_pugh_class} ({screening.child_pugh_points})",
        "status": participant.status,
    }
    return [
        AuditEntry("screening", str(screening.pk), "create", "SCREEN", field, "", "" if value is None else str(value))
        for field, value in values.items()
    ]


def _next_number(site: Site, field: str, prefix: str) -> str:
    # Locking the site row serialises numbering at one site; other sites go on in parallel.
    locking.lock_site(site.pk)
    taken = Participant.objects.filter(site=site, **{f"{field}__startswith": prefix}).count()
    return f"{prefix}{taken + 1:03d}"


def _validate_screening(protocol: Protocol, data: ScreeningInput) -> None:
    errors: dict[str, list[str]] = {}
    items = {item.code: item for item in ItemDefinition.objects.filter(form__protocol=protocol, form__code="SCREEN")}
    for field, code in (("total_bilirubin", "BILI"), ("albumin", "ALB"), ("inr", "INR")):
        message = hard_range_error(items[code], getattr(data, field))
        if message:
            errors[field] = [message]
    errors.update(date_errors({"consent_date": data.consent_date}))
    if data.screening_date > timezone.localdate():
        errors["screening_date"] = [_("The screening date cannot be in the future.")]
    elif date_problem(data.screening_date, happened=False):
        errors["screening_date"] = [date_problem(data.screening_date, happened=False)]
    birth = date_problem(data.date_of_birth, happened=False)
    if birth:
        errors["date_of_birth"] = [birth]
    elif data.date_of_birth >= data.screening_date:
        errors["date_of_birth"] = [_("The date of birth must be before the screening date.")]
    if "consent_date" not in errors and data.consent_date and data.consent_date > data.screening_date:
        errors["consent_date"] = [_("Consent must be given on or before the screening date.")]
    if not data.initials.isalpha() or not 2 <= len(data.initials) <= 4:
        errors["initials"] = [_("Initials are 2 to 4 letters.")]
    asked = set(protocol.criteria.filter(computed="").values_list("code", flat=True))
    unanswered = sorted(asked - set(data.answers))
    unknown = sorted(set(data.answers) - asked)
    if unanswered:
        errors["answers"] = [_("Answer every criterion; missing: %(codes)s.") % {"codes": ", ".join(unanswered)}]
    elif unknown:
        errors["answers"] = [_("Not criteria to answer in this protocol: %(codes)s.") % {"codes": ", ".join(unknown)}]
    if errors:
        raise InvalidInput(errors=errors)


def hard_range_error(item: ItemDefinition, value: Decimal) -> str:
    """The message for a value outside the item's hard range, or '' if it is inside."""
    too_low = item.hard_min is not None and value < item.hard_min
    too_high = item.hard_max is not None and value > item.hard_max
    if not (too_low or too_high):
        return ""
    unit = f" {item.unit}" if item.unit else ""
    label = item.label_zh if get_language() == "zh-hans" and item.label_zh else item.label
    return _("%(item)s: %(value)s%(unit)s is outside the allowed range %(low)s-%(high)s%(unit)s.") % {
        "item": label,
        "value": value,
        "unit": unit,
        "low": f"{item.hard_min.normalize():f}",
        "high": f"{item.hard_max.normalize():f}",
    }


def _child_pugh(protocol: Protocol, data: ScreeningInput) -> ChildPugh:
    return child_pugh(
        table=protocol.child_pugh_table,
        bilirubin=data.total_bilirubin,
        albumin=data.albumin,
        inr=data.inr,
        ascites=data.ascites,
        encephalopathy=data.encephalopathy,
    )


def eligibility_failures(protocol: Protocol, data: ScreeningInput, score: ChildPugh) -> list[tuple[str, str]]:
    """(criterion code, reason) for every criterion the candidate fails; empty when eligible."""
    low_age, high_age = protocol.age_range
    age = age_on(data.date_of_birth, data.screening_date)
    cp_range = protocol.definition["eligibility"]["enrolment_child_pugh"]
    computed = {
        "consent": (data.consent_date is not None, "no written informed consent recorded"),
        "age": (low_age <= age <= high_age, f"aged {age}, outside {low_age}-{high_age}"),
        "diagnosis": (data.diagnosis in {"compensated", "decompensated"}, "no clinical diagnosis of cirrhosis"),
        "child_pugh": (
            cp_range["min"] <= score.points <= cp_range["max"],
            f"Child-Pugh {score}, outside {cp_range['min']}-{cp_range['max']} points",
        ),
    }
    failures = []
    for criterion in protocol.criteria.all():
        if criterion.computed:
            met, reason = computed[criterion.computed]
        else:
            answer = data.answers[criterion.code]
            met = answer if criterion.kind == CriterionKind.INCLUSION else not answer
            reason = criterion.text if criterion.kind == CriterionKind.EXCLUSION else f"not met: {criterion.text}"
        if not met:
            failures.append((criterion.code, reason))
    return failures


@atomic_with_retry
def participant_enrol(
    *, user: object, participant: Participant, arm_code: str, enrolment_date: datetime.date
) -> Participant:
    """Enrol an eligible candidate in the arm the investigator chose, and lay out their visit schedule."""
    # The lock order (trial/locking.py): the site to number, then the participant, whose unique subject id changes.
    locking.lock_site(Participant.objects.values_list("site_id", flat=True).get(pk=participant.pk))
    participant = locking.lock_participant(participant.pk, key_change=True)
    access.require(user, Action.ENROL, participant.site_id)
    if participant.status != ParticipantStatus.ELIGIBLE:
        raise EligibilityError(
            _("Only an eligible candidate can be enrolled; %(participant)s is %(status)s.")
            % {"participant": participant, "status": participant.get_status_display()}
        )
    arm = Arm.objects.filter(protocol_id=participant.protocol_id, code=arm_code).first()
    if arm is None:
        raise InvalidInput(errors={"arm": [_("%(arm)s is not an arm of this protocol.") % {"arm": repr(arm_code)}]})
    _validate_enrolment_date(participant, enrolment_date)
    participant.subject_id = _next_number(participant.site, "subject_id", f"{participant.site.number:02d}-")
    participant.status = ParticipantStatus.ENROLLED
    participant.arm = arm
    participant.enrolment_date = enrolment_date
    participant.enrolled_at = timezone.now()
    participant.enrolled_by = user
    participant.save()
    Visit.objects.bulk_create(schedule(participant))
    audit_write(
        user=user,
        site=participant.site,
        participant=participant,
        entries=[
            AuditEntry("participant", str(participant.pk), "enrol", "", "subject_id", "", participant.subject_id),
            AuditEntry("participant", str(participant.pk), "enrol", "", "arm", "", arm.code),
            AuditEntry("participant", str(participant.pk), "enrol", "", "enrolment_date", "", str(enrolment_date)),
            AuditEntry(
                "participant",
                str(participant.pk),
                "enrol",
                "",
                "status",
                ParticipantStatus.ELIGIBLE,
                ParticipantStatus.ENROLLED,
            ),
        ],
    )
    return participant


def _validate_enrolment_date(participant: Participant, enrolment_date: datetime.date) -> None:
    problem = date_problem(enrolment_date, happened=False)
    if problem:
        raise InvalidInput(errors={"enrolment_date": [problem]})
    screening_date = participant.screening.screening_date
    if enrolment_date < screening_date:
        raise InvalidInput(errors={"enrolment_date": [_("Enrolment cannot precede screening.")]})
    if enrolment_date > timezone.localdate():
        raise InvalidInput(errors={"enrolment_date": [_("The enrolment date cannot be in the future.")]})


def schedule(participant: Participant) -> list[Visit]:
    """The participant's visits: target dates counted from enrolment (day 0), each with its window."""
    visits = []
    for definition in participant.protocol.visit_definitions.all():
        target = participant.enrolment_date + datetime.timedelta(days=definition.day)
        visits.append(
            Visit(
                participant=participant,
                definition=definition,
                target_date=target,
                window_start=target - datetime.timedelta(days=definition.window_before),
                window_end=target + datetime.timedelta(days=definition.window_after),
            )
        )
    return visits


@atomic_with_retry
def visit_missed(*, user: object, visit: Visit, reason: str) -> Visit:
    """Record that a visit did not take place within its window, and why."""
    visit = locking.lock_visit(Visit.objects.all()).get(pk=visit.pk)
    access.require(user, Action.ENTER_DATA, visit.participant.site_id)
    errors = {}
    if not reason.strip():
        errors["reason"] = [_("Say why the visit was missed.")]
    if visit.visit_date is not None or visit.progress != VisitProgress.NOT_STARTED:
        errors["__all__"] = [_("A visit that took place cannot be missed.")]
    elif timezone.localdate() <= visit.window_end:
        errors["__all__"] = [_("A visit can be declared missed only once its window has closed.")]
    if errors:
        raise InvalidInput(errors=errors)
    return _visit_progress_set(user, visit, VisitProgress.MISSED, reason=reason.strip())


def _visit_progress_set(user: object, visit: Visit, progress: str, *, reason: str) -> Visit:
    old = visit.progress
    visit.progress = progress
    visit.save(update_fields=["progress"])
    audit_write(
        user=user,
        participant=visit.participant,
        entries=[AuditEntry("visit", str(visit.pk), "update", "", "progress", old, progress, reason)],
    )
    return visit
