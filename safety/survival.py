"""Survival time and censoring of each participant, derived from the death report, the survival follow-up
contacts (SURV) and the visits; never typed. Used by the participant page, the API and the reports.

Time starts at enrolment (day 0). A participant with a death report (or a SURV contact recording death) has an
event at the date of death; anyone else is censored at the last date they were known alive: the latest of a
SURV contact's last-known-alive date, the date of a contact that found them alive, and the date of any visit.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least

from capture.models import ItemValue
from safety.models import DeathReport
from trial.models import Participant, ParticipantStatus, Visit

DAYS_PER_MONTH = 30.4375
SURVIVAL_FORM = "SURV"
SURVIVAL_ORDER = ("site_id", "subject_id", "pk")  # by site and subject number


@dataclass(frozen=True)
class Survival:
    participant_id: int
    subject_id: str
    site_id: int
    site_number: int
    arm_code: str
    start: datetime.date
    end: datetime.date
    died: bool  # the event; False = censored at `end`
    vital_status: str  # alive, dead or lost (lost to follow-up), as last known
    death_report_missing: bool = False  # SURV says dead but nobody filed the death report

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def months(self) -> float:
        return round(self.days / DAYS_PER_MONTH, 2)

    @property
    def censored(self) -> bool:
        return not self.died


def survival_of(participants: QuerySet[Participant]) -> list[Survival]:
    """Survival of each enrolled participant of the queryset (scope it through trial/access.py), in 3 queries."""
    people = list(_people(participants).order_by(*SURVIVAL_ORDER))
    ids = [p.pk for p in people]
    deaths = dict(DeathReport.objects.filter(participant_id__in=ids).values_list("participant_id", "death_date"))
    contacts = _contacts(ids)
    return [_survival(p, deaths.get(p.pk), contacts.get(p.pk, [])) for p in people]


def survival_stream(participants: QuerySet[Participant], *, chunk: int = 2000) -> Iterator[Survival]:
    """The same as `survival_of`, by site and subject number, streamed: three queries read side by side in chunks
    whatever the number of participants (inside one transaction on PostgreSQL, so that they see one moment), and
    memory holds one chunk of each. For exports."""
    followed = _people(participants)
    order = SURVIVAL_ORDER
    people = followed.order_by(*order).iterator(chunk_size=chunk)
    ids = followed.values("pk")
    deaths = (
        DeathReport.objects.filter(participant__in=ids)
        .order_by(*(f"participant__{field}" for field in order))
        .values_list("participant_id", "death_date")
        .iterator(chunk_size=chunk)
    )
    contacts = (
        _contact_rows(ItemValue.objects.filter(visit__participant__in=ids))
        .order_by(*(f"visit__participant__{field}" for field in order), "visit_id")
        .iterator(chunk_size=chunk)
    )
    # The three streams hold the same participants in the same order (deaths and contacts only some of them).
    death, contact = next(deaths, None), next(contacts, None)
    for person in people:
        death_date = None
        if death is not None and death[0] == person.pk:
            death_date, death = death[1], next(deaths, None)
        rows = []
        while contact is not None and contact[0] == person.pk:
            rows.append(contact)
            contact = next(contacts, None)
        yield _survival(person, death_date, _contacts_of(rows).get(person.pk, []))


def followed(participants: QuerySet[Participant]) -> QuerySet[Participant]:
    """The participants of the queryset whose survival is followed: enrolled (also those who died, completed or
    withdrew since)."""
    return participants.filter(status__in=FOLLOWED_STATUSES, enrolment_date__isnull=False)


def _people(participants: QuerySet[Participant]) -> QuerySet[Participant]:
    return followed(participants).select_related("arm", "site").annotate(last_visit=Max("visits__visit_date"))


@dataclass
class _Contact:
    visit_id: int
    contact: datetime.date | None = None
    vital: str = ""
    last_alive: datetime.date | None = None
    death: datetime.date | None = None


def _contacts(participant_ids: Iterable[int]) -> dict[int, list[_Contact]]:
    return _contacts_of(_contact_rows(ItemValue.objects.filter(visit__participant_id__in=list(participant_ids))))


def _contact_rows(values: QuerySet[ItemValue]) -> QuerySet:
    return values.filter(item__form__code=SURVIVAL_FORM, missing_reason="").values_list(
        "visit__participant_id", "visit_id", "item__code", "date", "text"
    )


def _contacts_of(rows: Iterable[tuple]) -> dict[int, list[_Contact]]:
    by_visit: dict[tuple[int, int], _Contact] = {}
    for participant_id, visit_id, code, date, text in rows:
        contact = by_visit.setdefault((participant_id, visit_id), _Contact(visit_id))
        if code == "CONTDAT":
            contact.contact = date
        elif code == "VITAL":
            contact.vital = text
        elif code == "LKADAT":
            contact.last_alive = date
        elif code == "DTHDAT":
            contact.death = date
    found: dict[int, list[_Contact]] = defaultdict(list)
    for (participant_id, _visit), contact in by_visit.items():
        found[participant_id].append(contact)
    return found


def _survival(participant: Participant, death_date: datetime.date | None, contacts: list[_Contact]) -> Survival:
    recorded_death = next((c.death for c in contacts if c.vital == "dead" and c.death), None)
    died_on = death_date or recorded_death
    common = {
        "participant_id": participant.pk,
        "subject_id": participant.subject_id or "",
        "site_id": participant.site_id,
        "site_number": participant.site.number,
        "arm_code": participant.arm.code if participant.arm else "",
        "start": participant.enrolment_date,
    }
    if died_on is not None:
        return Survival(**common, end=died_on, died=True, vital_status="dead", death_report_missing=death_date is None)
    alive_dates = [participant.enrolment_date, participant.last_visit]
    alive_dates += [c.last_alive for c in contacts]
    alive_dates += [c.contact for c in contacts if c.vital == "alive"]
    end = max(d for d in alive_dates if d is not None)
    latest = max(contacts, key=lambda c: c.contact or datetime.date.min, default=None)
    status = "lost" if latest is not None and latest.vital == "lost" else "alive"
    return Survival(**common, end=end, died=False, vital_status=status)


def survival_counts(participants: QuerySet[Participant], day: datetime.date) -> Iterator[tuple[str, int, bool, int]]:
    """(arm code, days, died, participants) of the enrolled participants of the queryset, censored at `day`, in one
    query: each participant's time and event derived by the database as `survival_of` derives them (a death report,
    else a SURV contact recording death; else the last date known alive), then only the counts per arm, day and
    event come back. For statistics over many participants (Kaplan-Meier), whose memory must not grow with them.
    """
    died_on = Coalesce(
        Subquery(DeathReport.objects.filter(participant=OuterRef("pk")).values("death_date")[:1]),
        Subquery(_surv_dates("DTHDAT", vital="dead").order_by("date").values("date")[:1]),
        output_field=DateField(),
    )
    enrolment = F("enrolment_date")
    last_alive = Greatest(
        enrolment,
        Coalesce(_latest(Visit.objects.filter(participant=OuterRef("pk")), "visit_date"), enrolment),
        Coalesce(_latest(_surv_dates("LKADAT"), "date"), enrolment),
        Coalesce(_latest(_surv_dates("CONTDAT", vital="alive"), "date"), enrolment),
        output_field=DateField(),
    )
    rows = (
        participants.filter(status__in=FOLLOWED_STATUSES, enrolment_date__isnull=False, enrolment_date__lte=day)
        .annotate(died_on=died_on)
        .annotate(end=Coalesce(F("died_on"), last_alive, output_field=DateField()))
        .annotate(
            censored_end=Least(F("end"), Value(day), output_field=DateField()),
            died=Case(When(died_on__isnull=False, end__lte=day, then=True), default=False, output_field=BooleanField()),
        )
        .annotate(length=ExpressionWrapper(F("censored_end") - enrolment, output_field=DurationField()))
        .values_list("arm__code", "length", "died")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for arm_code, length, died, n in rows:
        yield arm_code or "", length.days, died, n


FOLLOWED_STATUSES = [
    # Withdrawn participants stay in (intention to treat), censored when last known alive.
    ParticipantStatus.ENROLLED,
    ParticipantStatus.DIED,
    ParticipantStatus.COMPLETED,
    ParticipantStatus.WITHDRAWN,
]


def _surv_dates(code: str, *, vital: str = "") -> QuerySet[ItemValue]:
    """The participant's (OuterRef) dates of one SURV item, of the contacts that record `vital` if given."""
    values = ItemValue.objects.filter(
        visit__participant=OuterRef("pk"),
        item__form__code=SURVIVAL_FORM,
        item__code=code,
        missing_reason="",
        date__isnull=False,
    )
    if vital:
        same_contact = ItemValue.objects.filter(
            visit=OuterRef("visit"), item__form__code=SURVIVAL_FORM, item__code="VITAL", missing_reason="", text=vital
        )
        values = values.filter(Exists(same_contact))
    return values


def _latest(rows: QuerySet, field: str) -> Subquery:
    return Subquery(rows.filter(**{f"{field}__isnull": False}).order_by(f"-{field}").values(field)[:1])
