"""Participants with data, in bulk, for the tests that compare a page at two sizes (and for a quick look at query
plans): enrolled participants with their visits, completed forms of the visits due, item values (some verified,
some changed since), queries in every state with their threads, adverse events of every kind and SAE notices.

Written past the services, as a dataset builder does, then `capture.summaries.rebuild()` brings the counters in
step. `full=True` gives every due visit every form and item value (a real trial's volume); otherwise the first
due visit carries one form's values, enough rows for every page to show and few enough for a quick test.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from capture import summaries
from capture.definitions import protocol_forms
from capture.models import FormInstance, FormState, ItemValue, Query, QueryEvent, QueryEventKind, QueryOrigin
from safety.models import AdverseEvent, AdverseEventSource, AdverseEventStatus, SaeNotification
from trial.bulk_sql import insert_rows
from trial.models import Participant, ParticipantStatus, Screening, Site, Visit, VisitProgress

VALUE_COLUMNS = (
    "visit_id",
    "item_id",
    "number",
    "text",
    "date",
    "missing_reason",
    "flags",
    "updated_at",
    "verified_at",
    "verified_by_id",
    "changed_since_verification",
)
VALUE_TYPES = (
    "bigint",
    "bigint",
    "numeric",
    "text",
    "date",
    "text",
    "jsonb",
    "timestamptz",
    "timestamptz",
    "integer",
    "boolean",
)
QUERY_STATES = ("open", "answered", "closed")


def grow(target: int, *, protocol: object, sites: list[Site], user: object, full: bool = False) -> None:
    """Add participants with data until there are `target`, then rebuild the summaries."""
    have = Participant.objects.count()
    for start in range(have, target, 500):
        _batch(range(start, min(start + 500, target)), protocol, sites, user, full)
    summaries.rebuild()


def _batch(numbers: range, protocol: object, sites: list[Site], user: object, full: bool) -> None:
    participants = _participants(numbers, protocol, sites, user)
    definitions = list(protocol.visit_definitions.all())
    # The schedule of trial.services.schedule, with the definitions read once rather than once per participant.
    visits = Visit.objects.bulk_create([v for p in participants for v in _schedule(p, definitions)], batch_size=5000)
    if connection.vendor != "postgresql":
        visits = list(Visit.objects.filter(participant__in=participants).select_related("definition"))
    today = timezone.localdate()
    due = [v for v in visits if v.target_date <= today]
    if not full:
        first = {}
        for visit in due:
            first.setdefault(visit.participant_id, visit)
        due = list(first.values())
    Visit.objects.filter(pk__in=[v.pk for v in due]).update(progress=VisitProgress.COMPLETE)
    arms = {p.pk: p.arm.code for p in participants}
    forms = _forms(due, protocol, arms, user, full)
    _values(forms, user)
    _queries(participants, due, forms, user)
    first = {}
    for visit in due:
        first.setdefault(visit.participant_id, visit)
    _adverse_events(participants, first, user)


def _schedule(participant: Participant, definitions: list) -> list[Visit]:
    return [
        Visit(
            participant=participant,
            definition=definition,
            target_date=participant.enrolment_date + datetime.timedelta(days=definition.day),
            window_start=participant.enrolment_date
            + datetime.timedelta(days=definition.day - definition.window_before),
            window_end=participant.enrolment_date + datetime.timedelta(days=definition.day + definition.window_after),
        )
        for definition in definitions
    ]


def _participants(numbers: range, protocol: object, sites: list[Site], user: object) -> list[Participant]:
    today = timezone.localdate()
    arms = list(protocol.arms.order_by("code"))
    batch = []
    for n in numbers:
        site = sites[n % len(sites)]
        batch.append(
            Participant(
                site=site,
                protocol=protocol,
                screening_number=f"S{site.number:02d}-{n:06d}",
                subject_id=f"{site.number:02d}-{n:06d}",
                initials="ZW",
                sex="M",
                date_of_birth=datetime.date(1975, 1, 1),
                status=ParticipantStatus.ENROLLED,
                arm=arms[n % len(arms)],
                enrolment_date=today - datetime.timedelta(days=n * 7919 % 1100),
                enrolled_at=timezone.now(),
                enrolled_by=user,
                created_by=user,
            )
        )
    created = Participant.objects.bulk_create(batch)
    if connection.vendor != "postgresql":  # SQLite returns no keys from bulk_create on every version
        created = list(Participant.objects.filter(screening_number__in=[p.screening_number for p in batch]))
    for participant in created:
        participant.arm = arms[[a.pk for a in arms].index(participant.arm_id)]
    Screening.objects.bulk_create(
        Screening(
            participant=p,
            screening_date=p.enrolment_date,
            consent_date=p.enrolment_date,
            diagnosis="decompensated",
            total_bilirubin=40,
            albumin=30,
            inr=1.5,
            ascites="mild",
            encephalopathy="none",
            answers={},
            child_pugh_points=8,
            child_pugh_class="B",
            eligible=True,
            screened_by=user,
        )
        for p in created
    )
    return created


def _forms(due: list[Visit], protocol: object, arms: dict[int, str], user: object, full: bool) -> list[FormInstance]:
    specs = list(protocol_forms(protocol).values())
    now = timezone.now()
    instances = []
    for visit in due:
        applicable = [
            s
            for s in specs
            if not s.definition.repeating
            and s.definition.applies_to(visit_code=visit.definition.code, arm_code=arms[visit.participant_id])
        ]
        for spec in applicable if full else applicable[:1]:
            instances.append(
                FormInstance(
                    visit=visit,
                    definition=spec.definition,
                    state=FormState.COMPLETE,
                    version=1,
                    first_completed_at=now,
                    updated_at=now,
                    updated_by=user,
                )
            )
    FormInstance.objects.bulk_create(instances, batch_size=5000)
    return instances


def _values(forms: list[FormInstance], user: object) -> None:
    """Every entered item of every form: about 60 % verified, 5 % of those changed since (unverified again)."""
    items = {spec.definition.pk: spec.entered for spec in protocol_forms(forms[0].definition.protocol).values()}
    now = timezone.now()
    at = connection.ops.adapt_datetimefield_value(now)
    rows = []
    for n, form in enumerate(forms):
        for k, item in enumerate(items.get(form.definition_id, ())):
            verified = (n + k) % 5 < 3
            changed = not verified and (n + k) % 20 == 3
            number = connection.ops.adapt_decimalfield_value(Decimal(10 + (n * 7 + k) % 90), 20, 6)
            rows.append(
                (form.visit_id, item.pk, number, "", None, "", json.dumps([]), at)
                + ((at, user.pk, False) if verified else (None, None, changed))
            )
        if len(rows) > 20_000:
            insert_rows(table=ItemValue._meta.db_table, columns=VALUE_COLUMNS, pg_types=VALUE_TYPES, rows=rows)
            rows = []
    insert_rows(table=ItemValue._meta.db_table, columns=VALUE_COLUMNS, pg_types=VALUE_TYPES, rows=rows)


def _queries(participants: list[Participant], due: list[Visit], forms: list[FormInstance], user: object) -> None:
    """Two queries per participant with a due visit, in every state and age, with their threads."""
    now = timezone.now()
    by_participant = {}
    for visit in due:
        by_participant.setdefault(visit.participant_id, visit)
    queries = []
    for n, (participant_id, visit) in enumerate(by_participant.items()):
        for k in range(2):
            state = QUERY_STATES[(n + k) % 3]
            created = now - datetime.timedelta(days=(n * 3 + k) % 120, hours=k)
            queries.append(
                Query(
                    participant_id=participant_id,
                    visit=visit,
                    origin=QueryOrigin.MANUAL,
                    state=state,
                    message=f"Question {n}-{k}",
                    created_at=created,
                    created_by=user,
                    closed_at=created + datetime.timedelta(days=1) if state == "closed" else None,
                    closed_by=user if state == "closed" else None,
                )
            )
    created = Query.objects.bulk_create(queries)
    if connection.vendor != "postgresql":
        created = list(Query.objects.filter(participant_id__in=list(by_participant)))
    events = []
    for query in created:
        events.append(
            QueryEvent(
                query=query,
                kind=QueryEventKind.RAISED,
                author=user,
                at=query.created_at,
                text=query.message,
                state_after="open",
            )
        )
        if query.state != "open":
            events.append(
                QueryEvent(
                    query=query,
                    kind=QueryEventKind.ANSWERED,
                    author=user,
                    at=query.created_at + datetime.timedelta(hours=2),
                    text=f"Answer to {query.message}",
                    state_after="answered",
                )
            )
        if query.state == "closed":
            events.append(
                QueryEvent(
                    query=query, kind=QueryEventKind.CLOSED, author=user, at=query.closed_at, state_after="closed"
                )
            )
    QueryEvent.objects.bulk_create(events, batch_size=5000)


def _adverse_events(participants: list[Participant], first: dict[int, Visit], user: object) -> None:
    """One event for two participants in three: open, ended, serious with notices (some unsent), proposed."""
    now = timezone.now()
    events = []
    for n, participant in enumerate(participants):
        if n % 3 == 2:
            continue
        kind = n % 4
        lab_visit = first.get(participant.pk) if kind == 3 else None
        reported = lab_visit is None
        serious = kind == 2
        events.append(
            AdverseEvent(
                participant=participant,
                subject_id=participant.subject_id,
                number=1,
                status=AdverseEventStatus.REPORTED if reported else AdverseEventStatus.PROPOSED,
                source=AdverseEventSource.SITE if reported else AdverseEventSource.LAB,
                term="Fatigue",
                body_system="blood",
                onset_date=participant.enrolment_date,
                end_date=participant.enrolment_date + datetime.timedelta(days=5) if kind == 1 else None,
                grade=3 if serious else 1,
                relationship="unlikely" if reported else "",
                outcome="recovered" if kind == 1 else ("not_recovered" if reported else ""),
                serious=serious,
                serious_criteria=["hospitalisation"] if serious else [],
                expedited_at=now - datetime.timedelta(hours=n % 72) if serious else None,
                lab_visit=lab_visit,
                lab_item_code="ALT" if lab_visit else "",
                lab_value=Decimal("200") if lab_visit else None,
                ctcae_term="Alanine aminotransferase increased" if lab_visit else "",
                ctcae_grade=2 if lab_visit else None,
                created_at=now - datetime.timedelta(minutes=n),
                created_by=user,
                updated_at=now,
                updated_by=user,
            )
        )
    created = AdverseEvent.objects.bulk_create(events)
    if connection.vendor != "postgresql":
        created = list(AdverseEvent.objects.filter(participant__in=participants))
    SaeNotification.objects.bulk_create(
        SaeNotification(
            adverse_event=event,
            recipient=f"user:{user.pk}",
            user=user,
            role="investigator",
            created_at=event.expedited_at,
            sent_at=None if event.pk % 2 else event.expedited_at,
        )
        for event in created
        if event.serious
    )
