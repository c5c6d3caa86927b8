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

from safety.models import AdverseEvent, Notification, SaeNotification, SeriousCriterion
from trial.audit import AuditEntry, audit_write
from trial.background import enqueue_after_commit
from trial.locking import atomic_with_retry, lock_participant_of, lock_records
from trial.models import Participant, Role, SiteMembership

log = logging.getLogger(__name__)

OVERDUE_AFTER = datetime.timedelta(hours=24)
SAFETY_CONTACT_ROLE = "sponsor_safety"


def expedite_if_due(event: AdverseEvent, now: datetime.datetime) -> list[AuditEntry]:
    """Start the clock and queue the notices the first time an event is serious, grade 4 or fatal.

    Called inside the transaction that made the change; returns the audit entries of what it queued.
    """
    if not event.expedited or event.expedited_at is not None:
        return []
    event.expedited_at = now
    if event.pk:
        AdverseEvent.objects.filter(pk=event.pk).update(expedited_at=now)
    created = [
        SaeNotification.objects.create(
            adverse_event_id=event.pk, recipient=key, user=user, email=email, role=role, created_at=now
        )
        for key, user, email, role in recipients(event)
    ]
    for notification in created:
        send_after_commit(notification.pk)
    return [
        AuditEntry("adverse_event", str(event.pk), "expedite", "AE", "expedited_at", "", now.isoformat()),
        *(
            AuditEntry("sae_notification", str(n.pk), "queue", "AE", n.role, "", n.email or f"user {n.user_id}")
            for n in created
        ),
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
        .select_related("adverse_event__participant__site", "user")
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
        Notification.objects.create(user=notification.user, adverse_event=event, text=_summary(event), created_at=now)
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


def _summary(event: AdverseEvent) -> str:
    participant = event.participant
    return (
        f"SAE {participant.subject_id} {event.label} (site {participant.site.number}): {event.term}, "
        f"grade {event.grade}, onset {event.onset_date.isoformat()}"
    )[:300]


def _email(notification: SaeNotification, event: AdverseEvent) -> None:
    # In English whatever the worker's language: a regulatory notice, read by the sponsor's safety desk too.
    with translation.override("en"):
        _send_email(notification, event)


def _send_email(notification: SaeNotification, event: AdverseEvent) -> None:
    url = settings.SITE_URL.rstrip("/") + reverse("safety:adverse_event", args=[event.pk])
    criteria = ", ".join(str(SeriousCriterion(code).label) for code in event.serious_criteria) or "-"
    body = "\n".join(
        [
            "A serious adverse event was reported in NCT01573923 (UC-MSC for liver cirrhosis).",
            "",
            f"Participant: {event.participant.subject_id} at site {event.participant.site.number}",
            f"Event: {event.label} {event.term}",
            f"Onset: {event.onset_date.isoformat()}; grade {event.grade} (protocol scale 0-4)",
            f"Serious: {'yes' if event.serious else 'no'}; criteria: {criteria}",
            f"Outcome: {event.get_outcome_display()}",
            f"Relationship to study treatment: {event.get_relationship_display()}",
            f"Reported to the EDC: {event.expedited_at:%Y-%m-%d %H:%M} UTC",
            "",
            f"Review it: {url}",
            "",
            "Expedited reporting: acknowledge within 24 hours.",
        ]
    )
    message = EmailMessage(
        subject=f"[SAE] NCT01573923 {event.participant.subject_id} {event.label}",
        body=body,
        to=[notification.email],
        headers={"X-EDC-Notification": str(notification.pk)},
    )
    message.send(fail_silently=False)


def notifications_unsent(older_than: datetime.timedelta) -> list[int]:
    """Notices still unsent some time after they were queued: a task was lost, or the broker was down."""
    cutoff = timezone.now() - older_than
    return list(
        SaeNotification.objects.filter(sent_at=None, created_at__lte=cutoff).order_by("pk").values_list("pk", flat=True)
    )
