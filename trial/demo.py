"""Demo data: the six sites, one account per role, and some 40 participants in realistic states.

Everything is written through the services, so the demo has the audit trail real use would leave.
Dates are relative to today, so the trial looks alive whenever it is seeded.
"""

import datetime
import random
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from trial.models import Participant, Role, Site, SiteMembership, Visit, VisitProgress
from trial.scoring import child_pugh
from trial.services import (
    ScreeningInput,
    participant_enrol,
    participant_screen,
    protocol_current,
    protocol_load,
    visit_complete,
    visit_date_record,
    visit_missed,
)

SURNAME_INITIALS = "ZWLCYHZGSXMJ"
ASKED_CRITERIA_OK = {"IN5": True, **{f"EX{n}": False for n in range(1, 10)}}


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    site_numbers: tuple[int, ...]
    first_name: str
    last_name: str


DEMO_USERS = (
    *(DemoUser(f"coordinator{n}", Role.COORDINATOR, (n,), "Coordinator", f"Site {n}") for n in range(1, 7)),
    DemoUser("investigator1", Role.INVESTIGATOR, (1,), "Hanwei", "Li"),
    DemoUser("investigator2", Role.INVESTIGATOR, (2,), "Xun", "Li"),
    DemoUser("monitor", Role.MONITOR, (1, 2, 3), "Monitor", "Sites 1-3"),
    DemoUser("datamanager", Role.DATA_MANAGER, (1, 2, 3, 4, 5, 6), "Data", "Manager"),
    DemoUser("sponsor", Role.SPONSOR, (1, 2, 3, 4, 5, 6), "Sponsor", "Alliancells"),
)

# (site number, enrolled, eligible awaiting enrolment, screen failures)
SITE_PLAN = ((1, 9, 1, 2), (2, 7, 1, 1), (3, 4, 0, 1), (4, 5, 0, 1), (5, 4, 1, 1), (6, 3, 0, 1))

SCREEN_FAILURES = (
    {"date_of_birth_age": 63},
    {"total_bilirubin": Decimal("22.0"), "albumin": Decimal("38.0"), "ascites": "none"},  # Child-Pugh A
    {"answers": {**ASKED_CRITERIA_OK, "EX5": True}},  # HIV
    {"consent_date": None},
    {"answers": {**ASKED_CRITERIA_OK, "EX4": True}},  # a tumour
    {"diagnosis": "none"},
    {"answers": {**ASKED_CRITERIA_OK, "IN5": False}},
)


def seed(*, password: str) -> tuple[list[str], int]:
    """Create the demo; returns the usernames and the number of participants created (0 if already seeded)."""
    protocol_load()
    users = _users(password)
    if Participant.objects.exists():
        return list(users), 0
    rng = random.Random(1573923)
    created = 0
    for site_number, n_enrolled, n_eligible, n_failed in SITE_PLAN:
        site = Site.objects.get(number=site_number)
        coordinator = users[f"coordinator{site_number}"]
        for index in range(n_enrolled):
            days_ago = int(20 + (index + 0.5) * 430 / n_enrolled + rng.randint(-10, 10))
            _enrolled(rng, coordinator, site, days_ago, arm="MSC" if index % 2 == 0 else "CONV")
        for _ in range(n_eligible):
            participant_screen(user=coordinator, site=site, data=_eligible_screening(rng, rng.randint(1, 10)))
        for index in range(n_failed):
            failure = SCREEN_FAILURES[(site_number + index) % len(SCREEN_FAILURES)]
            participant_screen(user=coordinator, site=site, data=_screening(rng, rng.randint(5, 300), **failure))
        created += n_enrolled + n_eligible + n_failed
    return list(users), created


@transaction.atomic
def _users(password: str) -> dict[str, object]:
    users = {}
    for demo in DEMO_USERS:
        user, _ = get_user_model().objects.update_or_create(
            username=demo.username,
            defaults={
                "first_name": demo.first_name,
                "last_name": demo.last_name,
                "email": f"{demo.username}@example.org",
            },
        )
        user.set_password(password)
        user.save()
        for number in demo.site_numbers:
            SiteMembership.objects.update_or_create(
                user=user, site=Site.objects.get(number=number), defaults={"role": demo.role}
            )
        users[demo.username] = user
    return users


def _screening(
    rng: random.Random, days_ago: int, *, date_of_birth_age: int | None = None, **overrides: object
) -> ScreeningInput:
    screening_date = timezone.localdate() - datetime.timedelta(days=days_ago)
    age = date_of_birth_age or rng.randint(32, 59)
    values = {
        "initials": rng.choice(SURNAME_INITIALS) + rng.choice(SURNAME_INITIALS),
        "sex": rng.choice("MMMF"),  # cirrhosis in China is mostly hepatitis B, more often in men
        "date_of_birth": screening_date - datetime.timedelta(days=age * 365 + rng.randint(10, 300)),
        "screening_date": screening_date,
        "consent_date": screening_date,
        "diagnosis": rng.choice(["compensated", "decompensated", "decompensated"]),
        "total_bilirubin": Decimal(rng.randint(300, 700)) / 10,
        "albumin": Decimal(rng.randint(250, 340)) / 10,
        "inr": Decimal(rng.randint(130, 210)) / 100,
        "ascites": rng.choice(["mild", "mild", "moderate_severe"]),
        "encephalopathy": rng.choice(["none", "none", "grade_1_2"]),
        "answers": dict(ASKED_CRITERIA_OK),
    }
    values.update(overrides)
    return ScreeningInput(**values)


def _eligible_screening(rng: random.Random, days_ago: int) -> ScreeningInput:
    """Random screening values, drawn again until the Child-Pugh score is inside the enrolment range."""
    table = protocol_current().child_pugh_table
    while True:
        data = _screening(rng, days_ago)
        score = child_pugh(
            table=table,
            bilirubin=data.total_bilirubin,
            albumin=data.albumin,
            inr=data.inr,
            ascites=data.ascites,
            encephalopathy=data.encephalopathy,
        )
        if 7 <= score.points <= 12:
            return data


def _enrolled(rng: random.Random, user: object, site: Site, days_ago: int, *, arm: str) -> None:
    screening = _eligible_screening(rng, days_ago + rng.randint(3, 14))
    participant = participant_screen(user=user, site=site, data=screening)
    today = timezone.localdate()
    participant_enrol(
        user=user, participant=participant, arm_code=arm, enrolment_date=today - datetime.timedelta(days=days_ago)
    )
    for visit in Visit.objects.filter(participant=participant).order_by("target_date"):
        _visit_history(rng, user, visit, today)


def _visit_history(rng: random.Random, user: object, visit: Visit, today: datetime.date) -> None:
    """Past visits mostly took place; now and then one is overdue or missed; current ones are under way."""
    if visit.window_start > today:
        return
    if visit.window_end >= today and rng.random() < 0.5:
        return  # due: the participant has not come yet
    if visit.window_end < today:
        fate = rng.random()
        if fate < 0.06:
            return  # overdue: nobody has entered it yet
        if fate < 0.1:
            visit_missed(user=user, visit=visit, reason="Participant could not travel to the hospital.")
            return
    visit_day = min(visit.target_date + datetime.timedelta(days=rng.randint(-5, 7)), today)
    visit_day = max(visit_day, visit.participant.enrolment_date)
    visit_date_record(user=user, visit=visit, visit_date=visit_day)
    if visit.window_end < today or rng.random() < 0.3:
        visit_complete(user=user, visit=visit)


def demo_progress_summary() -> dict[str, int]:
    return {state: Visit.objects.filter(progress=state).count() for state in VisitProgress.values}
