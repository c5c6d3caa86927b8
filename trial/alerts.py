"""In-app alerts: the one way any app tells a user something needs their attention now (a broken audit chain, a
wrong signature password). Users see them behind the bell in the navigation bar, with the safety notices."""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from trial.models import Alert, Role, SiteMembership

ALERTS_SHOWN = 100


@transaction.atomic
def alert_raise(*, users: Iterable[object], kind: str, text: str, link: str = "", once: bool = False) -> int:
    """Alert each of `users` (one row each, one INSERT); with `once`, not a user who still has this alert unread,
    so a check that keeps failing does not bury the other alerts. Returns how many were raised."""
    recipients = {user.pk: user for user in users}
    if once:
        unread = Alert.objects.filter(user__in=list(recipients), kind=kind, text=text[:500], read_at__isnull=True)
        for user_id in unread.values_list("user_id", flat=True):
            recipients.pop(user_id, None)
    now = timezone.now()
    Alert.objects.bulk_create(
        Alert(user=user, kind=kind, text=text[:500], link=link, created_at=now) for user in recipients.values()
    )
    return len(recipients)


def data_managers(*, site_id: int | None = None) -> QuerySet:
    """Active users who are data managers (of `site_id`, or of any site)."""
    memberships = SiteMembership.objects.filter(role=Role.DATA_MANAGER)
    if site_id is not None:
        memberships = memberships.filter(site_id=site_id)
    return get_user_model().objects.filter(is_active=True, pk__in=memberships.values("user_id")).order_by("pk")


def alerts_of(user: object) -> list[Alert]:
    """The user's latest alerts, newest first (1 query)."""
    return list(Alert.objects.filter(user=user).order_by("-created_at", "-id")[:ALERTS_SHOWN])


def alert_unread(user: object) -> QuerySet:
    """The user's unread alerts (ids), for a count combined with other unread notices into one query."""
    return Alert.objects.filter(user=user, read_at__isnull=True).order_by().values("id")


def alerts_mark_read(*, user: object, ids: list[int]) -> None:
    # Not trial data (no audit): a conditional UPDATE of the user's own rows, safe to run twice.
    if ids:
        Alert.objects.filter(user=user, pk__in=ids, read_at__isnull=True).update(read_at=timezone.now())
