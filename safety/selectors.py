"""Reads of the safety pages: a participant's adverse event log, one event's page, the site safety dashboard, the
sponsor's listing across sites and the user's in-app notifications.

Every read starts from trial/access.py (or safety.services.adverse_events_visible, built on it) and runs a fixed
number of SQL queries, whatever the number of events, notices, participants or sites.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, TextChoices
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from safety.display import history_reason, history_value
from safety.models import (
    AdverseEvent,
    AdverseEventStatus,
    BodySystem,
    DeathReport,
    Notification,
    Outcome,
    Relationship,
    SaeNotification,
)
from safety.notify import OVERDUE_AFTER, SAFETY_CONTACT_ROLE
from safety.services import OBJECT_TYPE
from safety.services import adverse_event_or_404 as services_or_404
from safety.survival import Survival, survival_of
from safety.tallies import ADVERSE_EVENTS
from trial import access
from trial.access import Action
from trial.models import AuditRecord, Participant, Role, Site
from trial.tallies import Tally

NOTIFICATION_OBJECT_TYPE = "sae_notification"
SAE_OBJECT_TYPE = "serious_adverse_event"  # safety/sae/services.py, keyed by the event
SAE_REPORT_OBJECT_TYPE = "sae_report"
NOTIFICATIONS_SHOWN = 100


# --- Expedited notification state -------------------------------------------------------------------------------


class NoticeState(TextChoices):
    """Where the expedited notices of a serious event stand, as the dashboard and the listing show it."""

    SENT = "sent", _("All sent")
    PENDING = "pending", _("Pending")
    OVERDUE = "overdue", _("OVERDUE")
    NONE = "none", _("No recipient")


def notice_state(expedited_at: datetime.datetime | None, notices: int, unsent: int, now: datetime.datetime) -> str:
    """Overdue once a notice is still unsent 24 hours after the event met the expedited criteria."""
    if expedited_at is None:
        return ""
    if not unsent:
        return NoticeState.SENT if notices else NoticeState.NONE
    if expedited_at <= now - OVERDUE_AFTER:
        return NoticeState.OVERDUE
    return NoticeState.PENDING


def _with_notice_counts(events: QuerySet[AdverseEvent]) -> QuerySet[AdverseEvent]:
    """Each event's notices, unsent ones and last sending, as subqueries: run for the rows read only, so a page
    of a long list costs what a short list does (a grouped join would count every event's notices first)."""
    notices = SaeNotification.objects.filter(adverse_event=OuterRef("pk")).order_by().values("adverse_event")
    return events.annotate(
        notices=_count_of(notices),
        unsent=_count_of(notices.filter(sent_at__isnull=True)),
        last_sent=Subquery(notices.annotate(last=Max("sent_at")).values("last")),
    )


def _count_of(rows: QuerySet) -> Coalesce:
    return Coalesce(Subquery(rows.annotate(count=Count("pk")).values("count"), output_field=IntegerField()), 0)


# --- One event ----------------------------------------------------------------------------------------------------


PAGE_RELATED = (
    "participant__protocol",
    "lab_visit__definition",
    "created_by",
    "updated_by",
    "decided_by",
    "verified_by",
    "signed_by",
)


def adverse_event_or_404(user: object, pk: int, action: Action = Action.VIEW) -> AdverseEvent:
    """The event with everything its page shows (1 query); 404 out of the user's sites, 403 without `action`."""
    return services_or_404(user, pk, action, related=PAGE_RELATED)


# Audit actions of an event and its notices, as the history table names them.
HISTORY_ACTIONS = {
    "create": _("Reported"),
    "update": _("Changed"),
    "void": _("Signature voided"),
    "expedite": _("Expedited reporting started"),
    "queue": _("Notice queued"),
    "sent": _("Notice sent"),
    "propose": _("Proposed by lab grading"),
    "regrade": _("Re-graded"),
    "withdraw": _("Proposal withdrawn"),
    "confirm": _("Confirmed by the investigator"),
    "dismiss": _("Dismissed by the investigator"),
    "verify": _("Source data verified"),
    "sign": _("Signed"),
    "submit": _("SAE report sent"),
    "sponsor_causality": _("Sponsor's causality recorded"),
}


# The event's fields as the form names them; a notice's rows name the recipient's role instead.
HISTORY_FIELDS = {
    "term": _("Adverse event"),
    "body_system": _("Body system"),
    "onset_date": _("Onset date"),
    "end_date": _("End date"),
    "grade": _("Grade"),
    "relationship": _("Relationship"),
    "action_taken": _("Action taken"),
    "outcome": _("Outcome"),
    "serious": _("Serious"),
    "serious_criteria": _("Serious criteria"),
    "description": _("Description"),
    "status": _("Status"),
    "signature": _("Signature"),
    "expedited_at": _("Expedited reporting"),
    "report": _("SAE report version"),
    "admission_date": _("Hospital admission"),
    "discharge_date": _("Hospital discharge"),
    "narrative": _("Narrative"),
    "relevant_tests": _("Relevant tests and laboratory data"),
    "relevant_history": _("Relevant history"),
    "suspect_medications": _("Suspect medications"),
    "concomitant_medications": _("Concomitant medications"),
    "dechallenge": _("Abated after stopping"),
    "rechallenge": _("Reappeared after reintroduction"),
    "sponsor_relationship": _("Sponsor's causality"),
    "sponsor_assessor": _("Sponsor's assessor"),
    "sponsor_comment": _("Sponsor's comment"),
    SAFETY_CONTACT_ROLE: _("Sponsor's safety contact"),
    **dict(Role.choices),
}


@dataclass(frozen=True)
class HistoryLine:
    record: AuditRecord

    @property
    def action(self) -> str:
        return str(HISTORY_ACTIONS.get(self.record.action, self.record.action))

    @property
    def field(self) -> str:
        return str(HISTORY_FIELDS.get(self.record.item_code, self.record.item_code))

    @property
    def old_value(self) -> str:
        return history_value(self.record.old_value, field=self.record.item_code, action=self.record.action)

    @property
    def new_value(self) -> str:
        return history_value(self.record.new_value, field=self.record.item_code, action=self.record.action)

    @property
    def reason(self) -> str:
        return history_reason(self.record.reason)


@dataclass(frozen=True)
class NoticeLine:
    notice: SaeNotification

    @property
    def role(self) -> str:
        if self.notice.role == SAFETY_CONTACT_ROLE:
            return str(_("Sponsor's safety contact"))
        return str(Role(self.notice.role).label) if self.notice.role in Role.values else self.notice.role


@dataclass(frozen=True)
class AdverseEventDetail:
    event: AdverseEvent
    notices: list[NoticeLine]
    notice_state: str
    history: list[HistoryLine]


def adverse_event_detail(event: AdverseEvent, *, now: datetime.datetime) -> AdverseEventDetail:
    """The event's expedited notices, one per recipient, and its audit trail with theirs, newest first (2 queries)."""
    notices = list(SaeNotification.objects.filter(adverse_event=event).select_related("user", "report").order_by("id"))
    unsent = sum(1 for notice in notices if notice.sent_at is None)
    reports = {str(notice.report_id) for notice in notices if notice.report_id}
    records = AuditRecord.objects.filter(participant_id=event.participant_id).filter(
        Q(object_type__in=[OBJECT_TYPE, SAE_OBJECT_TYPE], object_id=str(event.pk))
        | Q(object_type=NOTIFICATION_OBJECT_TYPE, object_id__in=[str(notice.pk) for notice in notices])
        | Q(object_type=SAE_REPORT_OBJECT_TYPE, object_id__in=sorted(reports))
    )
    return AdverseEventDetail(
        event=event,
        notices=[NoticeLine(notice) for notice in notices],
        notice_state=notice_state(event.expedited_at, len(notices), unsent, now),
        history=[HistoryLine(record) for record in records.order_by("-id")],
    )


# --- A participant's log ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdverseEventLog:
    participant: Participant
    events: list[AdverseEvent]
    death: DeathReport | None
    survival: Survival | None


def adverse_event_log(user: object, participant_id: int) -> AdverseEventLog:
    """Every adverse event of the participant, their death report and derived survival (6 queries)."""
    participant = access.participant_or_404(user, participant_id)
    events = (
        AdverseEvent.objects.filter(participant=participant).select_related("lab_visit__definition").order_by("number")
    )
    survival = survival_of(access.participants(user).filter(pk=participant.pk))
    return AdverseEventLog(
        participant=participant,
        events=list(events),
        death=death_report_of(participant),
        survival=survival[0] if survival else None,
    )


def death_report_of(participant: Participant) -> DeathReport | None:
    return DeathReport.objects.filter(participant=participant).select_related("reported_by", "adverse_event").first()


# --- The site safety dashboard ------------------------------------------------------------------------------------


def dashboard_sites(user: object) -> list[Site]:
    """The sites whose safety data the user may see (every role sees its own sites' dashboard)."""
    return list(access.sites(user).order_by("number"))


@dataclass(frozen=True)
class SeriousRow:
    event: AdverseEvent
    notice_state: str


# Each part of the dashboard shows its first rows; one more is read to know whether there are more (then the card
# shows "25+"), so the page reads the same whatever the number of events. The listing pages through them all.
DASHBOARD_ROWS = 25


@dataclass(frozen=True)
class SafetyDashboard:
    open_events: list[AdverseEvent]
    serious: list[SeriousRow]
    proposals: list[AdverseEvent]
    deaths: list[DeathReport]
    overdue: int  # every overdue event, not only those shown
    more: frozenset[str] = frozenset()  # the parts with more rows than shown: "open", "serious", "proposals"...


def _site_ids(user: object, site_id: int | None, action: Action = Action.VIEW) -> list[int]:
    ids = access.site_ids(user, action)
    return ids if site_id is None else [pk for pk in ids if pk == site_id]


def safety_dashboard(user: object, *, site_id: int | None = None, now: datetime.datetime) -> SafetyDashboard:
    """The first open events (by subject), serious events with their notices' state (newest first), proposals
    awaiting the investigator (oldest first) and deaths (newest first), at the user's sites or one of them, and
    the number of overdue notices (at most 6 queries: the sites' tallies, then each part they count any of, reading
    a page's worth of rows in the order of an index)."""
    ids = _site_ids(user, site_id)
    events = AdverseEvent.objects.filter(participant__site_id__in=ids).select_related("participant__site")
    # The site's number leads the subject id (01-0001), so this is site order too.
    open_events = events.filter(status=AdverseEventStatus.REPORTED, end_date__isnull=True).order_by(
        "subject_id", "number"
    )
    reported = events.filter(status=AdverseEventStatus.REPORTED, expedited_at__isnull=False)
    serious = _with_notice_counts(reported).order_by("-expedited_at", "-pk")
    proposals = (
        events.filter(status=AdverseEventStatus.PROPOSED)
        .select_related("lab_visit__definition", "participant__protocol")
        .defer("participant__protocol__definition")  # the value's unit needs the version, not its file
        .order_by("created_at", "pk")
    )
    deaths = (
        DeathReport.objects.filter(participant__site_id__in=ids)
        .select_related("participant__site", "adverse_event")
        .order_by("-death_date", "-pk")
    )
    parts = {"open": open_events, "serious": serious, "proposals": proposals, "deaths": deaths}
    # A part the sites' tallies count none of is not read: its index, ordered by subject or by age and not by
    # site, would be walked to its end to find so.
    tally = Tally(ids)
    counted = {  # the kinds of safety/tallies.py: status, open or ended, expedited or routine
        "open": tally.matching(ADVERSE_EVENTS.name, AdverseEventStatus.REPORTED, "open"),
        "serious": tally.matching(ADVERSE_EVENTS.name, AdverseEventStatus.REPORTED, None, "expedited"),
        "proposals": tally.matching(ADVERSE_EVENTS.name, AdverseEventStatus.PROPOSED),
    }
    first = {
        name: list(queryset[: DASHBOARD_ROWS + 1]) if counted.get(name, 1) else [] for name, queryset in parts.items()
    }
    return SafetyDashboard(
        open_events=first["open"][:DASHBOARD_ROWS],
        serious=[
            SeriousRow(e, notice_state(e.expedited_at, e.notices, e.unsent, now))
            for e in first["serious"][:DASHBOARD_ROWS]
        ],
        proposals=first["proposals"][:DASHBOARD_ROWS],
        deaths=first["deaths"][:DASHBOARD_ROWS],
        overdue=_overdue(reported, now),
        more=frozenset(name for name, rows in first.items() if len(rows) > DASHBOARD_ROWS),
    )


def _overdue(reported: QuerySet[AdverseEvent], now: datetime.datetime) -> int:
    """Serious events with a notice still unsent OVERDUE_AFTER after they met the expedited criteria (one count,
    driven by the few unsent notices)."""
    unsent = SaeNotification.objects.filter(adverse_event=OuterRef("pk"), sent_at__isnull=True)
    return reported.filter(Exists(unsent), expedited_at__lte=now - OVERDUE_AFTER).count()


# --- The sponsor's listing across sites ----------------------------------------------------------------------------


def listing_site_ids(user: object, action: Action = Action.VIEW) -> list[int]:
    """The sites whose events the user reviews across participants: where they report on the trial (sponsor,
    data manager) or verify against the source (monitor); narrowed to those where they may also do `action`."""
    reviewed = set(access.site_ids(user, Action.REPORT)) | set(access.site_ids(user, Action.VERIFY))
    return sorted(reviewed & set(access.site_ids(user, action)))


def listing_sites(user: object, action: Action = Action.VIEW) -> list[Site]:
    return list(access.sites(user).filter(pk__in=listing_site_ids(user, action)).order_by("number"))


# Only coded fields and dates: free text (the verbatim term, the description, a cause of death) and the initials
# may identify a participant, so the listing never reads them.
LISTING_FIELDS = (
    "pk",
    "number",
    "participant__subject_id",
    "participant__site__number",
    "participant__arm__code",
    "source",
    "body_system",
    "ctcae_term",
    "grade",
    "serious",
    "serious_criteria",
    "relationship",
    "outcome",
    "onset_date",
    "end_date",
    "expedited_at",
    "notices",
    "unsent",
)


@dataclass(frozen=True)
class ListingRow:
    """One reported adverse event as the sponsor sees it: codes, grades and dates, no free text."""

    event_id: int
    label: str
    subject_id: str
    site_number: int
    arm_code: str
    body_system: str
    ctcae_term: str
    grade: int | None
    serious: bool
    serious_criteria: tuple[str, ...]
    relationship: str
    outcome: str
    onset_date: datetime.date
    end_date: datetime.date | None
    expedited_at: datetime.datetime | None
    notice_state: str

    @property
    def body_system_label(self) -> str:
        return _label(BodySystem, self.body_system)

    @property
    def relationship_label(self) -> str:
        return _label(Relationship, self.relationship)

    @property
    def outcome_label(self) -> str:
        return _label(Outcome, self.outcome)

    @property
    def notice_label(self) -> str:
        return _label(NoticeState, self.notice_state)


def _label(choices: type[TextChoices], value: str) -> str:
    return str(choices(value).label) if value in choices.values else value


def listing_events(site_ids: list[int], *, site_id: int | None = None) -> QuerySet:
    """Every reported event at the given sites (from listing_site_ids), or at one of them, as rows of
    LISTING_FIELDS in subject order (the site's number leads the subject id, so site order too); a page of
    them is one query whatever the number of events."""
    if site_id is not None:
        site_ids = [pk for pk in site_ids if pk == site_id]
    events = _with_notice_counts(
        AdverseEvent.objects.filter(participant__site_id__in=site_ids, status=AdverseEventStatus.REPORTED)
    ).order_by("subject_id", "number")
    return events.values(*LISTING_FIELDS)


def listing_total(site_ids: list[int], *, site_id: int | None = None) -> int:
    """How many events `listing_events` lists: the reported events of the sites' tallies (trial/tallies.py)."""
    if site_id is not None:
        site_ids = [pk for pk in site_ids if pk == site_id]
    return Tally(site_ids).total(ADVERSE_EVENTS.name, detail=AdverseEventStatus.REPORTED)


def listing_rows(rows: Iterable[dict], *, now: datetime.datetime) -> list[ListingRow]:
    return [_listing_row(row, now) for row in rows]


def safety_listing(site_ids: list[int], *, site_id: int | None = None, now: datetime.datetime) -> list[ListingRow]:
    """Every reported event at the given sites, or at one of them (1 query): the CSV listing."""
    return listing_rows(listing_events(site_ids, site_id=site_id), now=now)


def _listing_row(row: dict, now: datetime.datetime) -> ListingRow:
    lab = row["source"] == "lab"
    return ListingRow(
        event_id=row["pk"],
        label=f"AE-{row['number']:03d}",
        subject_id=row["participant__subject_id"] or "",
        site_number=row["participant__site__number"],
        arm_code=row["participant__arm__code"] or "",
        body_system=row["body_system"],
        ctcae_term=row["ctcae_term"] if lab else "",
        grade=row["grade"],
        serious=row["serious"],
        serious_criteria=tuple(row["serious_criteria"] or ()),
        relationship=row["relationship"],
        outcome=row["outcome"],
        onset_date=row["onset_date"],
        end_date=row["end_date"],
        expedited_at=row["expedited_at"],
        notice_state=notice_state(row["expedited_at"], row["notices"], row["unsent"], now),
    )


# --- In-app notifications -----------------------------------------------------------------------------------------


def notifications_of(user: object) -> list[Notification]:
    """The user's latest notifications, newest first (1 query)."""
    return list(Notification.objects.filter(user=user).order_by("-created_at", "-id")[:NOTIFICATIONS_SHOWN])


def unread_count(user: object, *, alerts: QuerySet | None = None) -> int:
    """How many of the user's notifications (and of `alerts`, the user's unread in-app alerts' ids) are unread:
    the navigation bar's badge (1 query)."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True).order_by().values("id")
    if alerts is not None:
        unread = unread.union(alerts, all=True)
    return unread.count()
