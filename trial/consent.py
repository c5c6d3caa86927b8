"""Informed consent: the consent form (ICF) versions the protocol file declares, the version each participant
signed, and re-consent when an amendment brings a new version.

The protocol file lists the versions oldest first, each with the date it took effect; the last is in force. A
participant on an earlier one (screened or enrolled, still on study) is listed for the coordinator until they
re-consent; each signature is a ConsentRecord and an audit record.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from trial import access
from trial.access import Action
from trial.audit import AuditEntry, audit_write
from trial.errors import InvalidInput
from trial.locking import atomic_with_retry, lock_participant
from trial.models import ConsentKind, ConsentRecord, Participant, ParticipantStatus, Protocol

ON_STUDY = (ParticipantStatus.ELIGIBLE, ParticipantStatus.ENROLLED)


@dataclass(frozen=True)
class IcfVersion:
    version: str
    date: datetime.date
    note: str = ""


def icf_versions(protocol: Protocol) -> list[IcfVersion]:
    """The ICF versions of a protocol version, oldest first; none if the file declares none."""
    declared = (protocol.definition.get("informed_consent") or {}).get("versions") or []
    return [
        IcfVersion(str(entry["version"]), datetime.date.fromisoformat(str(entry["date"])), entry.get("note", ""))
        for entry in declared
    ]


def icf_current(protocol: Protocol) -> IcfVersion | None:
    versions = icf_versions(protocol)
    return versions[-1] if versions else None


def icf_in_force_on(protocol: Protocol, day: datetime.date) -> IcfVersion | None:
    """The version a candidate signing on `day` signed: the latest that had taken effect by then."""
    in_force = [version for version in icf_versions(protocol) if version.date <= day]
    return in_force[-1] if in_force else None


def icf_check(protocol: Protocol, version: str, consent_date: datetime.date | None) -> IcfVersion | None:
    """The ICF version signed at screening on `consent_date` ('' means the one in force then); InvalidInput names
    an unknown version or a signature before the version existed."""
    if consent_date is None:
        if version:
            raise InvalidInput(errors={"consent_date": [_("Give the date the consent form was signed.")]})
        return None
    known = {entry.version: entry for entry in icf_versions(protocol)}
    if not known:
        return None
    chosen = known.get(version) if version else icf_in_force_on(protocol, consent_date)
    if chosen is None:
        raise InvalidInput(errors={"icf_version": [_("Not a consent form version of this protocol.")]})
    if consent_date < chosen.date:
        raise InvalidInput(
            errors={
                "consent_date": [
                    _("Consent form version %(version)s took effect on %(date)s: it cannot be signed earlier.")
                    % {"version": chosen.version, "date": chosen.date.isoformat()}
                ]
            }
        )
    return chosen


def consent_record_initial(
    *, user: object, participant: Participant, version: IcfVersion | None, day: datetime.date | None
) -> list[AuditEntry]:
    """At screening: the participant's first signature (the caller audits the entries it returns)."""
    if version is None or day is None:
        return []
    participant.icf_version, participant.icf_date = version.version, day
    participant.save(update_fields=["icf_version", "icf_date"])
    record = ConsentRecord.objects.create(
        participant=participant,
        kind=ConsentKind.INITIAL,
        icf_version=version.version,
        consent_date=day,
        recorded_at=timezone.now(),
        recorded_by=user,
    )
    return [AuditEntry("consent", str(record.pk), "create", "SCREEN", "icf_version", "", version.version)]


@atomic_with_retry
def participant_reconsent(
    *, user: object, participant_id: int, icf_version: str, consent_date: datetime.date | None
) -> ConsentRecord:
    """The participant signs the consent form version a protocol amendment brought: recorded with its date."""
    participant = access.participant_or_404(user, participant_id, Action.ENTER_DATA)
    lock_participant(participant.pk)  # the lock order of trial/locking.py
    participant = Participant.objects.select_related("protocol").get(pk=participant.pk)
    if participant.status not in ON_STUDY:
        raise InvalidInput(_("Only a participant still on study is asked to re-consent."))
    known = {entry.version: entry for entry in icf_versions(participant_protocol_current())}
    errors: dict[str, list[str]] = {}
    chosen = known.get((icf_version or "").strip())
    order = list(known)
    if chosen is None:
        errors["icf_version"] = [_("Not a consent form version of this protocol.")]
    elif participant.icf_version in order and order.index(chosen.version) <= order.index(participant.icf_version):
        errors["icf_version"] = [
            _("The participant signed version %(version)s already: re-consent is to a newer version.")
            % {"version": participant.icf_version}
        ]
    errors.update(_date_errors(participant, chosen, consent_date))
    if errors:
        raise InvalidInput(errors=errors)
    old = participant.icf_version
    participant.icf_version, participant.icf_date = chosen.version, consent_date
    participant.save(update_fields=["icf_version", "icf_date"])
    record = ConsentRecord.objects.create(
        participant=participant,
        kind=ConsentKind.RECONSENT,
        icf_version=chosen.version,
        consent_date=consent_date,
        recorded_at=timezone.now(),
        recorded_by=user,
    )
    audit_write(
        user=user,
        participant=participant,
        entries=[
            AuditEntry("consent", str(record.pk), "reconsent", "CONSENT", "icf_version", old, chosen.version),
            AuditEntry("consent", str(record.pk), "reconsent", "CONSENT", "icf_date", "", consent_date.isoformat()),
        ],
    )
    return record


def _date_errors(
    participant: Participant, chosen: IcfVersion | None, consent_date: datetime.date | None
) -> dict[str, list[str]]:
    if consent_date is None:
        return {"consent_date": [_("This field is required.")]}
    if consent_date > timezone.localdate():
        return {"consent_date": [_("The consent date cannot be in the future.")]}
    if chosen is not None and consent_date < chosen.date:
        return {
            "consent_date": [
                _("Consent form version %(version)s took effect on %(date)s: it cannot be signed earlier.")
                % {"version": chosen.version, "date": chosen.date.isoformat()}
            ]
        }
    if participant.icf_date and consent_date < participant.icf_date:
        return {"consent_date": [_("Re-consent cannot precede the consent on record.")]}
    return {}


def participant_protocol_current() -> Protocol:
    from trial.services import protocol_current  # trial.services imports this module for screening

    return protocol_current()


def participants_to_reconsent(
    user: object, *, site_ids: list[int] | None = None
) -> tuple[IcfVersion | None, QuerySet[Participant]]:
    """The version in force, and the participants on study the user may see who signed an earlier one (or none), of
    the given sites only if any are given."""
    current = icf_current(participant_protocol_current())
    if current is None:
        return None, Participant.objects.none()
    outdated = (
        access.participants(user)
        .filter(status__in=ON_STUDY)
        .exclude(icf_version=current.version)
        .select_related("site")
        .order_by("screening_number", "pk")  # by site: its index walks them, no sort of every participant
    )
    if site_ids is not None:
        outdated = outdated.filter(site_id__in=site_ids)
    return current, outdated
