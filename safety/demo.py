"""Demo safety data, made through the services as the sites would: lab proposals from the demo lab values (some
confirmed, one dismissed, the rest waiting for the investigator), site-reported events of every grade in both
arms, one serious adverse event with its notices sent, and one death."""

from __future__ import annotations

import datetime
from typing import NamedTuple

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from safety import lab, notify, services
from safety.models import AdverseEvent, AdverseEventStatus, SaeNotification
from safety.rules import AdverseEventInput
from trial.models import Participant, ParticipantStatus


class _Event(NamedTuple):
    term: str
    system: str
    grade: int
    relation: str
    action: str
    outcome: str
    start: int  # days after enrolment
    length: int | None  # days it lasted; None while ongoing
    arm: str = ""


REPORTED = tuple(
    _Event(*row)
    for row in (
        ("Fever after infusion", "general", 1, "probable", "medication", "recovered", 1, 2, "MSC"),
        ("Chills during infusion", "general", 1, "definite", "infusion_interrupted", "recovered", 0, 1, "MSC"),
        ("Abdominal distension", "gastrointestinal", 2, "unlikely", "medication", "recovering", 40, None, "CONV"),
        ("Pruritus", "skin", 1, "unrelated", "none", "not_recovered", 60, None, "CONV"),
        ("Fatigue", "general", 2, "possible", "none", "recovered", 95, 20, "MSC"),
        ("Hepatic encephalopathy", "nervous", 3, "unrelated", "hospitalisation", "recovered", 120, 9, "CONV"),
    )
)
SAE = _Event(
    "Upper gastrointestinal haemorrhage", "gastrointestinal", 3, "unlikely", "medication", "recovering", 130, None
)


def seed(*, users: dict[str, object]) -> dict[str, int]:
    """Add the safety demo; returns counts. Safe to call on a database that has it already (adds nothing)."""
    _sponsor_is_safety_contact(users)
    for form_id in lab.forms_due(older_than=datetime.timedelta(0), limit=100_000):
        lab.form_grade(form_id=form_id)
    if AdverseEvent.objects.filter(source="site").exists():
        return _counts()
    _decide_proposals(users)
    participants = _enrolled_by_arm()
    for index, event in enumerate(REPORTED):
        participant = participants[event.arm][index % len(participants[event.arm])]
        _report(users, participant, event)
    sae = _serious(users, _sae_participant(participants["MSC"]))
    _sae_follow_up(users, sae)
    _death(users, participants["CONV"])
    for notification_id in notify.notifications_unsent(older_than=datetime.timedelta(0)):
        notify.sae_notification_send(notification_id=notification_id)
    return _counts()


def _sponsor_is_safety_contact(users: dict[str, object]) -> None:
    sponsor = users.get("sponsor")
    if sponsor is not None and sponsor.email != settings.SAFETY_CONTACT_EMAIL:
        sponsor.email = settings.SAFETY_CONTACT_EMAIL
        sponsor.save(update_fields=["email"])


def _enrolled_by_arm() -> dict[str, list[Participant]]:
    enrolled = Participant.objects.filter(status=ParticipantStatus.ENROLLED, enrolment_date__isnull=False)
    by_arm: dict[str, list[Participant]] = {"MSC": [], "CONV": []}
    cutoff = timezone.localdate() - datetime.timedelta(days=150)
    # The long-term participants (trial.demo, followed up past 18 months) keep a plain history.
    recent = timezone.localdate() - datetime.timedelta(days=500)
    for participant in (
        enrolled.filter(enrolment_date__lte=cutoff, enrolment_date__gte=recent)
        .select_related("arm", "site")
        .order_by("pk")
    ):
        by_arm[participant.arm.code].append(participant)
    return by_arm


def _site_user(users: dict[str, object], participant: Participant, role: str = "coordinator") -> object:
    return users.get(f"{role}{participant.site.number}") or users[f"coordinator{participant.site.number}"]


def _report(users: dict[str, object], participant: Participant, event: _Event) -> AdverseEvent:
    onset = participant.enrolment_date + datetime.timedelta(days=event.start)
    end = onset + datetime.timedelta(days=event.length) if event.length is not None else None
    data = AdverseEventInput(
        term=event.term,
        body_system=event.system,
        onset_date=onset,
        end_date=end,
        grade=event.grade,
        relationship=event.relation,
        action_taken=event.action,
        outcome=event.outcome,
    )
    return services.adverse_event_report(user=_site_user(users, participant), participant_id=participant.pk, data=data)


def _decide_proposals(users: dict[str, object]) -> None:
    """At sites 1 and 2 the investigator confirmed the first two proposals and dismissed the third."""
    for number in (1, 2):
        investigator = users[f"investigator{number}"]
        proposals = AdverseEvent.objects.filter(
            participant__site__number=number, status=AdverseEventStatus.PROPOSED
        ).order_by("pk")[:3]
        for index, proposal in enumerate(list(proposals)):
            if index < 2:
                services.adverse_event_confirm(
                    user=investigator,
                    event_id=proposal.pk,
                    version=proposal.version,
                    data=AdverseEventInput(
                        term=proposal.ctcae_term,
                        body_system=proposal.body_system,
                        onset_date=proposal.onset_date,
                        grade=min(proposal.ctcae_grade or 1, 3),
                        relationship="unlikely",
                        action_taken="none",
                        outcome="not_recovered",
                    ),
                )
            else:
                services.adverse_event_dismiss(
                    user=investigator,
                    event_id=proposal.pk,
                    version=proposal.version,
                    reason="Unchanged from the cirrhosis at screening; not an adverse event",
                )


def _serious(users: dict[str, object], participant: Participant) -> AdverseEvent:
    event = _report(users, participant, SAE)
    end = event.onset_date + datetime.timedelta(days=6)
    return services.adverse_event_update(
        user=_site_user(users, participant),
        event_id=event.pk,
        version=event.version,
        data=AdverseEventInput(
            term=SAE.term,
            body_system=SAE.system,
            onset_date=event.onset_date,
            end_date=end,
            grade=SAE.grade,
            relationship=SAE.relation,
            action_taken="hospitalisation",
            outcome="recovered",
            serious=True,
            serious_criteria=["hospitalisation"],
            description="Variceal bleeding; endoscopic band ligation; discharged on day 6.",
        ),
        reason="Admitted to hospital: serious",
    )


def _sae_participant(candidates: list[Participant]) -> Participant:
    """An MSC participant of a site with an investigator, who sends the follow-up report."""
    return next((p for p in reversed(candidates) if p.site.number in (1, 2)), candidates[-1])


def _sae_follow_up(users: dict[str, object], event: AdverseEvent) -> None:
    """The site completes the SAE report, the sponsor's physician assesses it, the investigator sends follow-up 1."""
    from safety.sae import services as sae
    from safety.sae.rules import SaeDetailsInput

    participant = event.participant
    details = SaeDetailsInput(
        admission_date=event.onset_date,
        discharge_date=event.end_date,
        narrative=(
            "Haematemesis at home; admitted the same day. Gastroscopy: oesophageal varices with red signs, "
            "band ligation of three varices; two units of red cells transfused. No further bleeding; "
            "discharged on day 6 on propranolol."
        ),
        relevant_tests="Haemoglobin 68 g/L on admission, 96 g/L at discharge; platelets 52 x10^9/L; INR 1.6.",
        relevant_history="Hepatitis B cirrhosis, oesophageal varices known since screening; no previous bleeding.",
        concomitant_medications=[
            {"name": "Entecavir", "dose": "0.5 mg daily", "route": "oral", "indication": "Chronic hepatitis B"},
            {"name": "Spironolactone", "dose": "40 mg daily", "route": "oral", "indication": "Ascites"},
        ],
        dechallenge="na",
        rechallenge="na",
    )
    sae.sae_details_save(user=_site_user(users, participant), event_id=event.pk, version=0, data=details)
    sae.sae_sponsor_causality_record(
        user=users["datamanager"],
        event_id=event.pk,
        version=1,
        relationship="unlikely",
        assessor="Dr. Chen Yu, sponsor's safety physician",
        comment="Variceal bleeding is expected in decompensated cirrhosis; no temporal link to the infusion.",
    )
    investigator = users.get(f"investigator{participant.site.number}")
    if investigator is not None:
        sae.sae_report_submit(user=investigator, event_id=event.pk, sequence=1)


def _death(users: dict[str, object], candidates: list[Participant]) -> None:
    """A participant of the conventional arm died of liver failure some weeks after their last visit."""
    today = timezone.localdate()
    for participant in reversed(candidates):
        last_visit = participant.visits.aggregate(last=Max("visit_date"))["last"]
        died = (last_visit or participant.enrolment_date) + datetime.timedelta(days=20)
        if died < today:
            break
    else:
        return
    user = _site_user(users, participant)
    fatal = services.adverse_event_report(
        user=user,
        participant_id=participant.pk,
        data=AdverseEventInput(
            term="Hepatic failure",
            body_system="hepatobiliary",
            onset_date=died - datetime.timedelta(days=4),
            end_date=died,
            grade=4,
            relationship="unrelated",
            action_taken="hospitalisation",
            outcome="fatal",
            serious=True,
            serious_criteria=["fatal", "hospitalisation"],
        ),
    )
    services.death_report(
        user=user,
        participant_id=participant.pk,
        death_date=fatal.end_date,
        cause="Hepatic failure (decompensated cirrhosis)",
        relationship="unrelated",
    )


def _counts() -> dict[str, int]:
    events = AdverseEvent.objects.all()
    return {
        "reported": events.filter(status=AdverseEventStatus.REPORTED).count(),
        "proposed": events.filter(status=AdverseEventStatus.PROPOSED).count(),
        "serious": events.filter(expedited_at__isnull=False).count(),
        "notices_sent": SaeNotification.objects.filter(sent_at__isnull=False).count(),
        "deaths": Participant.objects.filter(status=ParticipantStatus.DIED).count(),
    }
