"""The safety worklists of the investigator: adverse events to sign, lab proposals to assess and serious events
whose 24-hour notification clock is running (see trial/worklists.py for what a worklist is)."""

import datetime

from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, OuterRef, QuerySet, Value
from django.utils.translation import gettext_lazy as _

from safety.models import AdverseEvent, AdverseEventStatus, SaeNotification
from safety.notify import OVERDUE_AFTER
from trial.access import Action
from trial.worklists import WorkList


def _events(site_ids: list[int]) -> QuerySet[AdverseEvent]:
    return AdverseEvent.objects.filter(participant__site_id__in=site_ids).select_related("participant__site")


def events_to_sign(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[AdverseEvent]:
    """Reported events no valid investigator signature covers (never signed, or changed since), oldest first."""
    return _events(site_ids).filter(status=AdverseEventStatus.REPORTED, signed_at__isnull=True).order_by("pk")


def proposals_to_assess(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[AdverseEvent]:
    """Events the lab grading proposed, awaiting the investigator's confirmation or dismissal, oldest first."""
    return (
        _events(site_ids)
        .filter(status=AdverseEventStatus.PROPOSED)
        .select_related("lab_visit__definition")
        .order_by("created_at", "pk")
    )


def serious_on_the_clock(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[AdverseEvent]:
    """Serious (expedited) events with a notice still unsent: the 24 hours run from when the event met the
    expedited criteria; the one whose deadline comes first is on top."""
    unsent = SaeNotification.objects.filter(adverse_event_id=OuterRef("pk"), sent_at__isnull=True)
    return (
        _events(site_ids)
        .filter(status=AdverseEventStatus.REPORTED, expedited_at__isnull=False)
        .filter(Exists(unsent))
        .annotate(notices_due=ExpressionWrapper(F("expedited_at") + Value(OVERDUE_AFTER), output_field=DateTimeField()))
        .order_by("expedited_at", "pk")
    )


EVENTS_TO_SIGN = WorkList(
    key="events_to_sign",
    title=_("Adverse events awaiting your signature"),
    action=Action.SIGN,
    select=events_to_sign,
    template="safety/worklists/_events.html",
    url_name="safety:work_events_to_sign",
)
PROPOSALS = WorkList(
    key="proposals",
    title=_("Lab-proposed adverse events awaiting your assessment"),
    action=Action.ASSESS_SAFETY,
    select=proposals_to_assess,
    template="safety/worklists/_events.html",
    url_name="safety:work_proposals",
)
SERIOUS_ON_THE_CLOCK = WorkList(
    key="serious",
    title=_("Serious adverse events: 24-hour notification clock"),
    action=Action.ASSESS_SAFETY,
    select=serious_on_the_clock,
    template="safety/worklists/_serious.html",
    url_name="safety:work_serious",
)


def serious_events(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[AdverseEvent]:
    """Every reported event that met the expedited criteria (serious, grade 4 or fatal), the latest first."""
    return (
        AdverseEvent.objects.filter(
            participant__site_id__in=site_ids, status=AdverseEventStatus.REPORTED, expedited_at__isnull=False
        )
        .select_related("participant__site", "participant__arm")
        .order_by("-expedited_at", "-pk")
    )


# The sponsor's view: coded fields and dates only, as in the sponsor's listing (no free text).
SERIOUS_EVENTS = WorkList(
    key="serious_events",
    title=_("Serious adverse events"),
    action=Action.REPORT,
    select=serious_events,
    template="safety/worklists/_serious_coded.html",
    url_name="safety:work_serious_events",
)
