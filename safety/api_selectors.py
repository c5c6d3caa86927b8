"""Reads of the safety API: adverse events with what their list and detail show, and survival rows, each in a
fixed number of queries however many rows there are. Every queryset starts from `trial.access`."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from safety.models import AdverseEvent, SaeNotification
from safety.notify import OVERDUE_AFTER
from safety.selectors import notice_state
from safety.services import adverse_events_visible
from safety.survival import SURVIVAL_ORDER, Survival, followed, survival_of
from trial import access
from trial.models import Participant


def adverse_events_listed(user: object) -> QuerySet[AdverseEvent]:
    """The user's adverse events with their participant, site and lab visit, and whether notices are queued and
    unsent."""
    notices = SaeNotification.objects.filter(adverse_event=OuterRef("pk"))
    return (
        adverse_events_visible(user)
        .select_related("participant__site", "lab_visit__definition")
        .annotate(notices_queued=Exists(notices), notices_unsent=Exists(notices.filter(sent_at=None)))
        # By site and subject: a subject ID starts with its site's number (trial.services), so the events' index of
        # their participant's subject ID walks them in that order and a page reads a page's worth of events.
        .order_by("subject_id", "number")
    )


def adverse_events_detailed(user: object) -> QuerySet[AdverseEvent]:
    """As listed, with who did what and the expedited notices."""
    notices = SaeNotification.objects.select_related("user").order_by("id")
    return (
        adverse_events_listed(user)
        .select_related("created_by", "updated_by", "decided_by", "verified_by", "signed_by")
        .prefetch_related(Prefetch("notifications", queryset=notices))
    )


def overdue_filter(now: datetime.datetime) -> Q:
    """Expedited more than 24 hours ago with a notice still unsent (needs `adverse_events_listed`)."""
    return Q(expedited_at__lte=now - OVERDUE_AFTER, notices_unsent=True)


def event_notice_state(event: AdverseEvent, now: datetime.datetime) -> str:
    """As the safety pages show it: "" (not expedited), sent, pending, overdue, or none (no recipient)."""
    return notice_state(event.expedited_at, int(event.notices_queued), int(event.notices_unsent), now)


def notification_overdue(notification: SaeNotification, now: datetime.datetime) -> bool:
    return notification.sent_at is None and notification.created_at <= now - OVERDUE_AFTER


@dataclass(frozen=True)
class SurvivalRow:
    """A participant's survival with the site's number, as the API lists it."""

    survival: Survival
    site_number: int


def survival_followed(
    user: object, *, site_number: int | None = None, arm_code: str | None = None
) -> QuerySet[Participant]:
    """The enrolled participants at the user's sites whose survival the API lists, optionally of one site or arm, by
    site and subject: the API paginates these (a count and a page of indexed rows), then derives the page's survival.
    """
    participants = followed(access.participants(user))
    if site_number is not None:
        participants = participants.filter(site__number=site_number)
    if arm_code is not None:
        participants = participants.filter(arm__code=arm_code)
    return participants.order_by(*SURVIVAL_ORDER)


def survival_rows(participants: list[Participant]) -> list[SurvivalRow]:
    """The survival of a page of `survival_followed`, in its order, with the site's number."""
    rows = survival_of(Participant.objects.filter(pk__in=[p.pk for p in participants]))
    return [SurvivalRow(row, row.site_number) for row in rows]
