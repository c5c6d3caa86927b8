"""Expedited reporting of serious adverse events: who is told, and telling each of them exactly once.

When an event first meets the expedited criteria, one SaeNotification row per recipient is written in the same
transaction (the outbox). A Celery task per row sends the email and the in-app message and records when; the
periodic sweep re-sends rows a lost task left unsent. The row lock plus `sent_at` make a redelivered task a no-op.
"""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from capture.definitions import protocol_definition
from safety.models import AdverseEvent, Notification, SaeNotification, SaeReport, SaeReportKind, SeriousCriterion
from safety.sae import snapshot
from safety.terms import term_in_language
from trial.audit import AuditEntry, audit_write
from trial.background import enqueue_after_commit
from trial.locking import atomic_with_retry, lock_participant_of, lock_records
from trial.models import Participant, Role, SiteMembership

log = logging.getLogger(__name__)

OVERDUE_AFTER = datetime.timedelta(hours=24)
SAFETY_CONTACT_ROLE = "sponsor_safety"


def expedite_if_due(event: AdverseEvent, now: datetime.datetime) -> list[AuditEntry]:
    """Start the clock, write the initial report and queue its notices the first time an event is serious, grade 4
    or fatal.

    Called inside the transaction that made the change; returns the audit entries of what it wrote.
    """
    if not event.expedited or event.expedited_at is not None:
        return []
    event.expedited_at = now
    if event.pk:
        AdverseEvent.objects.filter(pk=event.pk).update(expedited_at=now)
    report = report_write(event, kind=SaeReportKind.INITIAL, sequence=0, user=None, now=now)
    return [
        AuditEntry("adverse_event", str(event.pk), "expedite", "AE", "expedited_at", "", now.isoformat()),
        *report_entries(report),
        *report_notices_queue(event, report, now),
    ]


def report_write(
    event: AdverseEvent, *, kind: str, sequence: int, user: object | None, now: datetime.datetime
) -> SaeReport:
    """A version of the SAE report, its data kept as they stand now."""
    definition = protocol_definition(event.participant.protocol)
    return SaeReport.objects.create(
        adverse_event_id=event.pk,
        sequence=sequence,
        kind=kind,
        snapshot=snapshot.build(event, protocol_definition=definition),
        submitted_at=now,
        submitted_by=user,
    )


def report_entries(report: SaeReport) -> list[AuditEntry]:
    return [AuditEntry("sae_report", str(report.pk), "submit", "AE", "report", "", report.label)]


def report_notices_queue(event: AdverseEvent, report: SaeReport, now: datetime.datetime) -> list[AuditEntry]:
    """One notice per recipient of this report version, each sent by its own task after commit."""
    created = [
        SaeNotification.objects.create(
            adverse_event_id=event.pk, report=report, recipient=key, user=user, email=email, role=role, created_at=now
        )
        for key, user, email, role in recipients(event)
    ]
    for notification in created:
        send_after_commit(notification.pk)
    return [
        AuditEntry("sae_notification", str(n.pk), "queue", "AE", n.role, "", n.email or f"user {n.user_id}")
        for n in created
    ]


def recipients(event: AdverseEvent) -> list[tuple[str, object | None, str, str]]:
    """(key, user, email, role): the site's investigators and monitors, and the sponsor's safety contact."""
    memberships = (
        SiteMembership.objects.filter(
            site_id=event.participant.site_id, role__in=[Role.INVESTIGATOR, Role.MONITOR], user__is_active=True
        )
        .select_related("user")
        .order_by("role", "user_id")
    )
    found = [(f"user:{m.user_id}", m.user, m.user.email, m.role) for m in memberships]
    contact = settings.SAFETY_CONTACT_EMAIL
    if contact and all(email.lower() != contact.lower() for _key, _user, email, _role in found):
        user = get_user_model().objects.filter(email__iexact=contact, is_active=True).order_by("pk").first()
        found.append((f"email:{contact.lower()}", user, contact, SAFETY_CONTACT_ROLE))
    return found


def send_after_commit(notification_id: int) -> None:
    """Hand the notice to a worker once the SAE is committed; if the broker is down, the sweep sends it (the
    outbox row stays unsent)."""
    enqueue_after_commit("safety.tasks.sae_notify_task", notification_id)


@atomic_with_retry
def sae_notification_send(*, notification_id: int) -> bool:
    """Notify one recipient of an SAE, unless already done; True if this call notified them."""
    notices = SaeNotification.objects.filter(pk=notification_id)
    lock_participant_of(Participant.objects.filter(adverse_events__notifications__in=notices))
    notification = (
        lock_records(SaeNotification.objects)
        .select_related("adverse_event__participant__site", "user", "report")
        .filter(pk=notification_id)
        .first()
    )
    if notification is None or notification.sent_at is not None:
        return False
    event = notification.adverse_event
    now = timezone.now()
    if notification.email:
        _email(notification, event)
    if notification.user_id:
        text = _summary(event, notification.report)
        Notification.objects.create(user=notification.user, adverse_event=event, text=text, created_at=now)
    notification.sent_at = now
    notification.attempts += 1
    notification.save(update_fields=["sent_at", "attempts"])
    audit_write(
        user=None,
        participant=event.participant,
        entries=[
            AuditEntry("sae_notification", str(notification.pk), "sent", "AE", notification.role, "", now.isoformat())
        ],
    )
    return True


# Languages of a notice. No user of this EDC has a language preference stored, so a notice follows its
# recipient's place: the site staff (investigators and monitors of a Chinese hospital) read it in Simplified
# Chinese, followed by the English, which keeps it readable for the sponsor and the regulators it is forwarded to;
# the sponsor's safety desk (the safety contact) reads English. In-app notices are shown in the reader's language.
STAFF_LANGUAGES = ("zh-hans", "en")
CONTACT_LANGUAGES = ("en",)


def notice_languages(notification: SaeNotification) -> tuple[str, ...]:
    """The languages of one recipient's notice, first the one they read."""
    return STAFF_LANGUAGES if notification.role in (Role.INVESTIGATOR, Role.MONITOR) else CONTACT_LANGUAGES


def _report_name(report: SaeReport | None) -> str:
    """The report version in the active language, as the notices name it."""
    if report is None or report.kind == SaeReportKind.INITIAL:
        return str(_("initial report"))
    if report.kind == SaeReportKind.FINAL:
        return str(_("final report (follow-up %(sequence)s)") % {"sequence": report.sequence})
    return str(_("follow-up %(sequence)s") % {"sequence": report.sequence})


def _summary(event: AdverseEvent, report: SaeReport | None = None) -> str:
    """The one-line notice, stored in English (the in-app list renders it in the reader's language)."""
    participant = event.participant
    with translation.override("en"):
        return (
            f"SAE {participant.subject_id} {event.label} {_report_name(report)} (site {participant.site.number}): "
            f"{event.term}, "
            f"grade {event.grade}, onset {event.onset_date.isoformat()}"
        )[:300]


def _email(notification: SaeNotification, event: AdverseEvent) -> None:
    languages = notice_languages(notification)
    bodies, names = [], []
    for language in languages:
        with translation.override(language):
            bodies.append(_email_body(notification, event))
            names.append(_report_name(notification.report))
    subject_names = " / ".join(dict.fromkeys(reversed(names)))  # the English name first, as the desk files it
    message = EmailMessage(
        subject=f"[SAE] NCT01573923 {event.participant.subject_id} {event.label} {subject_names}",
        body="\n\n----------\n\n".join(bodies),
        to=[notification.email],
        headers={"X-EDC-Notification": str(notification.pk)},
    )
    message.send(fail_silently=False)


def _email_body(notification: SaeNotification, event: AdverseEvent) -> str:
    url = settings.SITE_URL.rstrip("/") + reverse("safety:adverse_event", args=[event.pk])
    criteria = ", ".join(str(SeriousCriterion(code).label) for code in event.serious_criteria) or "-"
    participant = event.participant
    values = {
        "report": _report_name(notification.report),
        "subject": participant.subject_id,
        "site": participant.site.number,
        "event": f"{event.label} {term_in_language(event.term)}",
        "onset": event.onset_date.isoformat(),
        "grade": event.grade,
        "serious": _("yes") if event.serious else _("no"),
        "criteria": criteria,
        "outcome": event.get_outcome_display(),
        "relationship": event.get_relationship_display(),
        "reported": f"{event.expedited_at:%Y-%m-%d %H:%M}",
        "url": url,
    }
    lines = [
        _("A serious adverse event was reported in NCT01573923 (UC-MSC for liver cirrhosis)."),
        _("This notice is the %(report)s of the event."),
        "",
        _("Participant: %(subject)s at site %(site)s"),
        _("Event: %(event)s"),
        _("Onset: %(onset)s; grade %(grade)s (protocol scale 0-4)"),
        _("Serious: %(serious)s; criteria: %(criteria)s"),
        _("Outcome: %(outcome)s"),
        _("Relationship to study treatment: %(relationship)s"),
        _("Reported to the EDC: %(reported)s UTC"),
        "",
        _("Review it: %(url)s"),
        "",
        _("Expedited reporting: acknowledge within 24 hours."),
    ]
    return "\n".join(str(line) % values if line else "" for line in lines)


def notifications_unsent(older_than: datetime.timedelta) -> list[int]:
    """Notices still unsent some time after they were queued: a task was lost, or the broker was down."""
    cutoff = timezone.now() - older_than
    return list(
        SaeNotification.objects.filter(sent_at=None, created_at__lte=cutoff).order_by("pk").values_list("pk", flat=True)
    )
