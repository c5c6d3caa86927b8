"""Work for every role's home page, written directly in bulk (the services are too slow for 500 participants).

Each participant of `work_at` holds one item of every worklist: an overdue M0 done and complete with
  - a form complete, unsigned, not verified (awaits SDV; its visit awaits the investigator's signature),
  - a form complete, signed, verified, without query (ready to lock),
  - a form in progress (incomplete),
an M3 due today, queries open (3, 10 and 40 days old) and answered, an adverse event reported and unsigned, one
proposed by the lab grading, one serious with a notice unsent. Plus one eligible candidate per call.
"""

import datetime
import itertools
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from capture import summaries
from capture.models import FormInstance, FormState, ItemValue, Query, QueryOrigin, QueryState
from safety.models import AdverseEvent, AdverseEventSource, AdverseEventStatus, SaeNotification
from trial.models import FormDefinition, Participant, ParticipantStatus, Site, Visit, VisitProgress
from trial.services import protocol_current, schedule

_numbers = itertools.count(1)


@dataclass
class Work:
    participants: list[Participant] = field(default_factory=list)
    sdv_forms: list[FormInstance] = field(default_factory=list)
    lock_forms: list[FormInstance] = field(default_factory=list)
    incomplete_forms: list[FormInstance] = field(default_factory=list)
    queries: dict[str, list[Query]] = field(default_factory=dict)
    events: dict[str, list[AdverseEvent]] = field(default_factory=dict)
    candidates: list[Participant] = field(default_factory=list)


def _m0_forms(protocol: object) -> list[FormDefinition]:
    """Three M0 forms of every arm that have an entered (not computed) number item."""
    forms = FormDefinition.objects.filter(protocol=protocol, repeating=False, arm_codes=[]).order_by("order")
    chosen = [form for form in forms if "M0" in form.visit_codes and form.items.filter(derived="").exists()]
    return chosen[:3]


def work_at(site: Site, user: object, count: int, *, days_ago: int = 100) -> Work:
    protocol = protocol_current()
    arms = list(protocol.arms.all())
    now = timezone.now()
    day = timezone.localdate(now)
    work = Work()
    tag = next(_numbers)
    participants = Participant.objects.bulk_create(
        Participant(
            site=site,
            protocol=protocol,
            screening_number=f"W{tag:02d}{site.number:02d}-{n:04d}",
            subject_id=f"W{tag:02d}{site.number:02d}-{n:04d}",
            initials="WK",
            sex="F" if n % 2 else "M",
            date_of_birth=datetime.date(1970, 1, 1) + datetime.timedelta(days=n),
            status=ParticipantStatus.ENROLLED,
            arm=arms[n % len(arms)],
            enrolment_date=day - datetime.timedelta(days=days_ago),
            enrolled_at=now - datetime.timedelta(days=days_ago),
            enrolled_by=user,
            created_by=user,
        )
        for n in range(count)
    )
    for participant in participants:
        participant.protocol = protocol
    visits = Visit.objects.bulk_create([visit for participant in participants for visit in schedule(participant)])
    m0s = [visit for visit in visits if visit.definition.code == "M0"]
    Visit.objects.filter(pk__in=[visit.pk for visit in m0s]).update(
        progress=VisitProgress.COMPLETE, visit_date=day - datetime.timedelta(days=days_ago)
    )
    work.participants = participants
    sdv_form, lock_form, open_form = _m0_forms(protocol)
    completed = now - datetime.timedelta(days=days_ago - 1)
    for visit in m0s:
        work.sdv_forms.append(_form(visit, sdv_form, FormState.COMPLETE, completed, signed=False))
        work.lock_forms.append(_form(visit, lock_form, FormState.COMPLETE, completed, signed=True))
        work.incomplete_forms.append(_form(visit, open_form, FormState.IN_PROGRESS, None, signed=False))
    for kind in ("sdv_forms", "lock_forms", "incomplete_forms"):
        setattr(work, kind, FormInstance.objects.bulk_create(getattr(work, kind)))
    first_item = {form.pk: form.items.filter(derived="").order_by("order").first() for form in (sdv_form, lock_form)}
    ItemValue.objects.bulk_create(
        [_value(form, first_item[sdv_form.pk], verified=False, now=now) for form in work.sdv_forms]
        + [_value(form, first_item[lock_form.pk], verified=True, now=now) for form in work.lock_forms]
    )
    work.queries = _queries(m0s, open_form, user, now)
    work.events = _events(participants, m0s, user, now)
    work.candidates = [_candidate(site, protocol, user, tag)]
    summaries.rebuild()  # written past the services: the summary counters are counted once, set-based
    return work


def _form(visit: Visit, definition: FormDefinition, state: str, completed: object, *, signed: bool) -> FormInstance:
    return FormInstance(
        visit=visit,
        definition=definition,
        state=state,
        version=1,
        first_completed_at=completed,
        updated_at=completed or timezone.now(),
        signed=signed,
    )


def _value(form: FormInstance, item: object, *, verified: bool, now: datetime.datetime) -> ItemValue:
    return ItemValue(
        visit=form.visit,
        item=item,
        number=Decimal("1") if item.data_type in ("integer", "decimal") else None,
        text="" if item.data_type in ("integer", "decimal") else "x" if item.data_type == "text" else "",
        date=now.date() if item.data_type == "date" else None,
        missing_reason="" if item.data_type in ("integer", "decimal", "text", "date") else "not_done",
        updated_at=now,
        verified_at=now if verified else None,
    )


def _queries(m0s: list[Visit], form: FormDefinition, user: object, now: datetime.datetime) -> dict[str, list[Query]]:
    kinds = {"open_3": (QueryState.OPEN, 3), "open_10": (QueryState.OPEN, 10), "open_40": (QueryState.OPEN, 40)}
    kinds["answered"] = (QueryState.ANSWERED, 5)
    made = {}
    for kind, (state, age) in kinds.items():
        made[kind] = Query.objects.bulk_create(
            Query(
                participant_id=visit.participant_id,
                visit=visit,
                form=form,
                origin=QueryOrigin.MANUAL,
                state=state,
                message=f"Please check ({kind})",
                created_at=now - datetime.timedelta(days=age, hours=1),
                created_by=user,
            )
            for visit in m0s
        )
    return made


def _events(
    participants: list[Participant], m0s: list[Visit], user: object, now: datetime.datetime
) -> dict[str, list[AdverseEvent]]:
    def event(participant: Participant, number: int, **fields: object) -> AdverseEvent:
        base = {
            "participant": participant,
            "subject_id": participant.subject_id,
            "number": number,
            "status": AdverseEventStatus.REPORTED,
            "source": AdverseEventSource.SITE,
            "term": "Nausea",
            "body_system": "gastrointestinal",
            "onset_date": now.date() - datetime.timedelta(days=5),
            "grade": 2,
            "relationship": "possible",
            "outcome": "recovering",
            "created_at": now - datetime.timedelta(days=5),
            "updated_at": now - datetime.timedelta(days=5),
            "created_by": user,
        }
        return AdverseEvent(**{**base, **fields})

    m0_of = {visit.participant_id: visit for visit in m0s}
    made = {
        "unsigned": AdverseEvent.objects.bulk_create(event(p, 1) for p in participants),
        "proposed": AdverseEvent.objects.bulk_create(
            event(
                p,
                2,
                status=AdverseEventStatus.PROPOSED,
                source=AdverseEventSource.LAB,
                term="Hypoalbuminemia",
                body_system="investigations",
                grade=None,
                relationship="",
                outcome="",
                lab_visit=m0_of[p.pk],
                lab_item_code="ALB",
                ctcae_term="Hypoalbuminemia",
                ctcae_grade=2,
            )
            for p in participants
        ),
        "serious": AdverseEvent.objects.bulk_create(
            event(
                p,
                3,
                term="Variceal bleeding",
                serious=True,
                serious_criteria=["hospitalisation"],
                grade=3,
                expedited_at=now - datetime.timedelta(hours=2),
                signed_at=now,
            )
            for p in participants
        ),
    }
    SaeNotification.objects.bulk_create(
        SaeNotification(adverse_event=e, recipient=f"user:{user.pk}", user=user, role="sponsor", created_at=now)
        for e in made["serious"]
    )
    return made


def _candidate(site: Site, protocol: object, user: object, tag: int) -> Participant:
    return Participant.objects.create(
        site=site,
        protocol=protocol,
        screening_number=f"E{tag:02d}{site.number:02d}",
        initials="EC",
        sex="F",
        date_of_birth=datetime.date(1975, 5, 5),
        status=ParticipantStatus.ELIGIBLE,
        created_by=user,
    )
