"""A small fixed trial for the report tests: every number the reports show can be worked out by hand from here.

Two sites, six enrolled participants (all enrolled ENROLLED_DAYS_AGO days before today, so every clinic visit
window M0-M12 has closed and no survival contact is due yet), two screen failures and one eligible candidate
who was never enrolled. Participants are screened, enrolled and their deaths reported through the services;
the visit progress, item values, queries, signatures, adverse events and lab gradings are written directly
with chosen timestamps, some of them after the cut-off, which the reports must leave out.

    site 1 (coordinator1)                      site 2 (coordinator2)
    P1 01-001 MSC  alive, M12 seen on day 370    P4 02-001 MSC  died day 100
    P2 01-002 MSC  died day 300                  P5 02-002 CONV alive, M12 seen on day 370
    P3 01-003 CONV died day 150                  P6 02-003 CONV withdrawn after M3
    F1 screen failure: aged 65 (IN2)           F2 screen failure: Child-Pugh 5 (IN4) and HIV (EX5)
                                               E1 eligible, not enrolled

Visit progress (C complete, I in progress, M missed, - not started, x removed by the death report):
          M0 M3 M6 M9 M12 FU18-36
    P1    C  C  C  C  C   -
    P2    C  C  M  I  x   x
    P3    C  C  x  x  x   x
    P4    C  I  x  x  x   x
    P5    C  C  C  M  C   -
    P6    C  C  -  -  -   -
"""

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from capture.models import ItemValue, Query, QueryOrigin, QueryState, Signature
from safety.models import AdverseEvent, LabGrading
from safety.services import death_report
from tests.factories import enrolled, screened
from trial.models import ItemDefinition, Participant, ParticipantStatus, Site, Visit, VisitProgress

ENROLLED_DAYS_AGO = 400
LATE = datetime.timedelta(hours=1)  # after the cut-off

# (form, item): {participant: {visit: value}}; "late" values are saved after the cut-off, None is "not done".
NUMBERS = {
    ("LIVER", "ALB"): {
        "P1": {"M0": 29, "M3": 30},
        "P2": {"M0": 31, "M3": 34},
        "P4": {"M0": 36, "M3": 41},
        "P3": {"M0": 30, "M3": 28},
        "P5": {"M0": 32, "M3": 33},
        "P6": {"M0": 35, "M3": None},
    },
    ("LIVER", "BILI"): {
        "P1": {"M0": 40, "M3": 35},
        "P2": {"M0": 45, "M3": 60},
        "P4": {"M0": 50},
        "P3": {"M0": 38, "M3": 52},
        "P5": {"M0": 42, "M3": 40},
        "P6": {"M0": ("late", 44), "M3": 41},
    },
    ("LIVER", "ALT"): {"P1": {"M0": 60}, "P4": {"M0": 80}},
    ("KIDNEY", "CREAT"): {"P1": {"M0": 70}},
    ("CLIN", "CPSCORE"): {  # derived: never counted for source data verification
        "P1": {"M0": 8, "M3": 7},
        "P2": {"M0": 9, "M3": 8},
        "P4": {"M0": 7},
        "P3": {"M0": 8, "M3": 9},
        "P5": {"M0": 8, "M3": 7},
        "P6": {"M0": 10, "M3": 8},
    },
    ("CYTO", "IL6"): {
        "P1": {"M0": 10, "M3": 6},
        "P2": {"M0": 12, "M3": 9},
        "P4": {"M0": 8},
        "P3": {"M0": 9, "M3": 11},
        "P5": {"M0": 7, "M3": 8},
        "P6": {"M0": 10, "M3": ("late", 14)},
    },
}
CHOICES = {
    ("HEPAT", "HBSAG"): {
        "P1": {"M0": "positive", "M3": "positive"},
        "P2": {"M0": "positive"},
        "P4": {"M0": "negative"},
        "P3": {"M0": "negative"},
        "P5": {"M0": "indeterminate"},
        "P6": {"M0": "positive"},
    },
    ("HEPAT", "HCVAB"): {p: {"M0": "negative"} for p in ("P1", "P2", "P3", "P4", "P5", "P6")},
}
PROGRESS = {
    "P1": {"M0": "C", "M3": "C", "M6": "C", "M9": "C", "M12": "C"},
    "P2": {"M0": "C", "M3": "C", "M6": "M", "M9": "I"},
    "P3": {"M0": "C", "M3": "C"},
    "P4": {"M0": "C", "M3": "I"},
    "P5": {"M0": "C", "M3": "C", "M6": "C", "M9": "M", "M12": "C"},
    "P6": {"M0": "C", "M3": "C"},
}
_PROGRESS = {"C": VisitProgress.COMPLETE, "I": VisitProgress.IN_PROGRESS, "M": VisitProgress.MISSED}
SEEN_ON_DAY = {("P1", "M12"): 370, ("P5", "M12"): 370}  # else a visit took place on its target day
DEATHS = {  # participant: (day, cause, relationship)
    "P4": (100, "食管静脉曲张破裂出血", "unrelated"),
    "P3": (150, "Liver failure", "unrelated"),
    "P2": (300, "Hepatic encephalopathy", "possible"),
}
CHINESE_TERM = "食管静脉曲张破裂出血"  # oesophageal variceal bleeding


@dataclass
class FixedTrial:
    cutoff: datetime.datetime
    people: dict[str, Participant]
    site1: Site
    site2: Site

    def enrolment_day(self) -> datetime.date:
        return self.people["P1"].enrolment_date


def build(coordinator1: object, coordinator2: object, site1: Site, site2: Site) -> FixedTrial:
    people = _people(coordinator1, coordinator2, site1, site2)
    _progress(people)
    for key, (day, cause, relationship) in DEATHS.items():
        participant = people[key]
        died = participant.enrolment_date + datetime.timedelta(days=day)
        user = coordinator1 if participant.site_id == site1.pk else coordinator2
        death_report(user=user, participant_id=participant.pk, death_date=died, cause=cause, relationship=relationship)
    Participant.objects.filter(pk=people["P6"].pk).update(status=ParticipantStatus.WITHDRAWN)
    _timeline(people)
    cutoff = timezone.now()
    visits = {(key, v.definition.code): v for key, p in people.items() for v in p.visits.select_related("definition")}
    _values(visits, cutoff)
    _queries(visits, cutoff)
    _signatures(people, visits, coordinator1, cutoff)
    _adverse_events(people, visits, cutoff)
    _lab_gradings(people, visits, cutoff)
    people = {key: Participant.objects.get(pk=p.pk) for key, p in people.items()}
    return FixedTrial(cutoff=cutoff, people=people, site1=site1, site2=site2)


def _people(coordinator1: object, coordinator2: object, site1: Site, site2: Site) -> dict[str, Participant]:
    def enrol(user: object, site: Site, arm: str) -> Participant:
        return enrolled(user, site, arm=arm, days_ago=ENROLLED_DAYS_AGO)

    people = {
        "P1": enrol(coordinator1, site1, "MSC"),
        "P2": enrol(coordinator1, site1, "MSC"),
        "P3": enrol(coordinator1, site1, "CONV"),
        "P4": enrol(coordinator2, site2, "MSC"),
        "P5": enrol(coordinator2, site2, "CONV"),
        "P6": enrol(coordinator2, site2, "CONV"),
    }
    today = timezone.localdate()
    people["F1"] = screened(coordinator1, site1, date_of_birth=today.replace(year=today.year - 65))
    people["F2"] = screened(
        coordinator2,
        site2,
        total_bilirubin=Decimal("20.0"),
        albumin=Decimal("40.0"),
        inr=Decimal("1.00"),
        ascites="none",
        answers={"IN5": True, **{f"EX{n}": n == 5 for n in range(1, 10)}},
    )
    people["E1"] = screened(coordinator2, site2)
    return people


def _progress(people: dict[str, Participant]) -> None:
    for key, by_visit in PROGRESS.items():
        for code, mark in by_visit.items():
            visit = Visit.objects.get(participant=people[key], definition__code=code)
            day = SEEN_ON_DAY.get((key, code))
            seen = people[key].enrolment_date + datetime.timedelta(days=day) if day else visit.target_date
            visit.progress = _PROGRESS[mark]
            visit.visit_date = None if mark == "M" else seen
            visit.save(update_fields=["progress", "visit_date"])


def _timeline(people: dict[str, Participant]) -> None:
    """Screened a week before enrolment, enrolment entered on its day: a cut-off in the past then sees them."""
    for participant in people.values():
        day = participant.enrolment_date or timezone.localdate()
        entered = _at(day)
        Participant.objects.filter(pk=participant.pk).update(created_at=entered - datetime.timedelta(days=7))
        if participant.enrolment_date:
            Participant.objects.filter(pk=participant.pk).update(enrolled_at=entered)
    for participant in people.values():
        if hasattr(participant, "death_report"):
            report = participant.death_report
            report.reported_at = _at(report.death_date + datetime.timedelta(days=1))
            report.save(update_fields=["reported_at"])


def _at(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(10, 0)))


def _values(visits: dict[tuple[str, str], Visit], cutoff: datetime.datetime) -> None:
    items = {(i.form.code, i.code): i for i in ItemDefinition.objects.select_related("form")}
    rows = []
    for table, field in ((NUMBERS, "number"), (CHOICES, "text")):
        for form_item, by_person in table.items():
            for key, by_visit in by_person.items():
                for code, value in by_visit.items():
                    visit = visits[(key, code)]
                    saved = _at(visit.target_date + datetime.timedelta(days=1))
                    if isinstance(value, tuple):
                        saved, value = cutoff + LATE, value[1]
                    entry = {"missing_reason": "not_done"} if value is None else {field: value}
                    if field == "number" and value is not None:
                        entry = {"number": Decimal(value)}
                    rows.append(ItemValue(visit=visit, item=items[form_item], updated_at=saved, **entry))
    ItemValue.objects.bulk_create(rows)
    _verify(visits, cutoff)


def _verify(visits: dict[tuple[str, str], Visit], cutoff: datetime.datetime) -> None:
    """P1's month-0 values verified before the cut-off (BILI changed since), P5's M0 ALB too; P2's M0 ALB after."""
    before = cutoff - datetime.timedelta(days=5)
    p1_m0 = ItemValue.objects.filter(visit=visits[("P1", "M0")], item__derived="")
    p1_m0.update(verified_at=before)
    p1_m0.filter(item__code="BILI").update(changed_since_verification=True)
    ItemValue.objects.filter(visit=visits[("P5", "M0")], item__code="ALB").update(verified_at=before)
    ItemValue.objects.filter(visit=visits[("P2", "M0")], item__code="ALB").update(verified_at=cutoff + LATE)


def _queries(visits: dict[tuple[str, str], Visit], cutoff: datetime.datetime) -> None:
    days = datetime.timedelta(days=1)
    plan = [  # (participant, visit, state, raised, closed)
        ("P1", "M0", QueryState.OPEN, cutoff - 3 * days, None),  # age 3
        ("P1", "M3", QueryState.OPEN, cutoff - 7 * days - LATE, None),  # age 7: still 0-7
        ("P2", "M3", QueryState.OPEN, cutoff - 20 * days, None),  # age 20
        ("P3", "M0", QueryState.ANSWERED, cutoff - 40 * days, None),  # age 40: answered is not closed
        ("P4", "M0", QueryState.CLOSED, cutoff - 50 * days, cutoff - 45 * days),  # closed before: not open
        ("P5", "M3", QueryState.CLOSED, cutoff - 10 * days, cutoff + LATE),  # closed after: open at the cut-off
        ("P6", "M0", QueryState.OPEN, cutoff + LATE, None),  # raised after the cut-off
    ]
    Query.objects.bulk_create(
        Query(
            participant_id=visits[(key, code)].participant_id,
            visit=visits[(key, code)],
            origin=QueryOrigin.MANUAL,
            state=state,
            message="Please check the source document.",
            created_at=raised,
            closed_at=closed,
        )
        for key, code, state, raised, closed in plan
    )


def _signatures(
    people: dict[str, Participant], visits: dict[tuple[str, str], Visit], user: object, cutoff: datetime.datetime
) -> None:
    before, days = cutoff - datetime.timedelta(days=30), datetime.timedelta(days=1)
    plan = [  # (participant, visit or None for the casebook, signed, voided)
        ("P1", "M0", before, None),
        ("P2", None, before, None),  # the casebook: covers every visit of P2
        ("P3", "M0", before, before + days),  # voided before the cut-off
        ("P3", "M3", cutoff + LATE, None),  # signed after the cut-off
        ("P5", "M0", before, cutoff + LATE),  # voided after the cut-off: valid at it
    ]
    Signature.objects.bulk_create(
        Signature(
            participant=people[key],
            visit=visits[(key, code)] if code else None,
            signed_by=user,
            signed_at=signed,
            meaning="I confirm that the data are accurate and complete.",
            voided_at=voided,
            void_reason="Data changed" if voided else "",
        )
        for key, code, signed, voided in plan
    )


def _adverse_events(
    people: dict[str, Participant], visits: dict[tuple[str, str], Visit], cutoff: datetime.datetime
) -> None:
    created = cutoff - datetime.timedelta(days=30)
    site = {"status": "reported", "source": "site"}
    plan = [  # (participant, number, term, onset day, grade, relationship, outcome, serious criteria, extra)
        ("P1", 1, "Nausea", 20, 1, "unrelated", "recovered", [], site),
        ("P1", 2, "Fever", 95, 2, "possible", "recovered", [], site),
        ("P2", 1, "Hepatic encephalopathy", 200, 3, "probable", "recovering", ["hospitalisation"], site),
        ("P3", 1, "Diarrhoea", 60, 2, "unlikely", "recovered", [], site),
        ("P4", 1, CHINESE_TERM, 98, 4, "unrelated", "fatal", ["fatal", "life_threatening"], site),
        ("P5", 1, "Headache", 30, 1, "possible", "recovered", [], site),
        # Left out: a lab proposal still open, a dismissed one, one reported after the cut-off, and a lab
        # proposal created before the cut-off but confirmed after it.
        ("P5", 2, "Blood bilirubin increased", 91, None, "", "", [], _lab(visits, "P5", "M3", "proposed")),
        ("P5", 3, "Hyperglycemia", 91, None, "", "", [], _dismissed(visits)),
        ("P6", 1, "Ascites", 80, 3, "unrelated", "recovering", [], {**site, "created_at": cutoff + LATE}),
        ("P3", 2, "Blood bilirubin increased", 91, 2, "unrelated", "recovered", [], _confirmed_late(visits, cutoff)),
    ]
    events = []
    for key, number, term, onset, grade, relationship, outcome, criteria, extra in plan:
        fields = {"created_at": created, **extra}
        events.append(
            AdverseEvent(
                participant=people[key],
                subject_id=people[key].subject_id,
                number=number,
                term=term,
                body_system="other",
                onset_date=people[key].enrolment_date + datetime.timedelta(days=onset),
                grade=grade,
                relationship=relationship,
                outcome=outcome,
                serious=bool(criteria),
                serious_criteria=criteria,
                description="Seen by Dr Wang at the ward",  # free text: never in a report
                updated_at=fields["created_at"],
                **fields,
            )
        )
    AdverseEvent.objects.bulk_create(events)


def _lab(visits: dict[tuple[str, str], Visit], key: str, code: str, status: str) -> dict:
    return {"status": status, "source": "lab", "lab_visit": visits[(key, code)], "ctcae_term": "Lab term"}


def _dismissed(visits: dict[tuple[str, str], Visit]) -> dict:
    return {**_lab(visits, "P5", "M0", "dismissed"), "dismiss_reason": "Not clinically significant"}


def _confirmed_late(visits: dict[tuple[str, str], Visit], cutoff: datetime.datetime) -> dict:
    return {
        **_lab(visits, "P3", "M3", "reported"),
        "ctcae_term": "Blood bilirubin increased",
        "decided_at": cutoff + LATE,
    }


def _lab_gradings(
    people: dict[str, Participant], visits: dict[tuple[str, str], Visit], cutoff: datetime.datetime
) -> None:
    bili, alt = "Blood bilirubin increased", "Alanine aminotransferase increased"
    plan = [  # (participant, visit, item, term, grade, graded)
        ("P1", "M3", "BILI", bili, 1, cutoff - datetime.timedelta(days=9)),
        ("P2", "M0", "BILI", bili, 1, cutoff - datetime.timedelta(days=9)),
        ("P2", "M3", "BILI", bili, 2, cutoff - datetime.timedelta(days=9)),
        ("P3", "M3", "BILI", bili, 1, cutoff - datetime.timedelta(days=9)),
        ("P5", "M3", "BILI", bili, 0, cutoff - datetime.timedelta(days=9)),  # grade 0: not an event
        ("P4", "M0", "ALT", alt, 3, cutoff - datetime.timedelta(days=9)),
        ("P6", "M3", "BILI", bili, 2, cutoff + LATE),  # graded after the cut-off
    ]
    LabGrading.objects.bulk_create(
        LabGrading(
            participant=people[key],
            visit=visits[(key, code)],
            item_code=item,
            term=term,
            value=Decimal("1"),
            grade=grade,
            criterion="test",
            form_version=1,
            graded_at=graded,
        )
        for key, code, item, term, grade, graded in plan
    )
