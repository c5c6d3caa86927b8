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

from trial.consent import icf_current, participant_reconsent
from trial.models import Participant, ParticipantStatus, Role, Site, SiteMembership
from trial.scoring import child_pugh
from trial.services import (
    ScreeningInput,
    participant_enrol,
    participant_screen,
    protocol_current,
    protocol_load,
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


# The staff of Chinese hospitals, named as their colleagues write them: the whole name, surname first, in
# first_name (Django's get_full_name puts first_name before last_name, which would turn a Chinese name around).
COORDINATOR_NAMES = ("王芳", "张静", "刘洋", "陈晨", "杨丽", "赵敏")
DEMO_USERS = (
    *(
        DemoUser(f"coordinator{n}", Role.COORDINATOR, (n,), name, "")
        for n, name in enumerate(COORDINATOR_NAMES, start=1)
    ),
    DemoUser("investigator1", Role.INVESTIGATOR, (1,), "李汉伟", ""),
    DemoUser("investigator2", Role.INVESTIGATOR, (2,), "李迅", ""),
    DemoUser("monitor", Role.MONITOR, (1, 2, 3), "周杰", ""),
    DemoUser("datamanager", Role.DATA_MANAGER, (1, 2, 3, 4, 5, 6), "吴磊", ""),
    DemoUser("sponsor", Role.SPONSOR, (1, 2, 3, 4, 5, 6), "孙婷", ""),
)

# (site number, enrolled, eligible awaiting enrolment, screen failures)
SITE_PLAN = ((1, 9, 1, 2), (2, 7, 1, 1), (3, 4, 0, 1), (4, 5, 0, 1), (5, 4, 1, 1), (6, 3, 0, 1))

SCREEN_FAILURES = (
    {"date_of_birth_age": 63},
    {  # Child-Pugh A, 5 points
        "total_bilirubin": Decimal("22.0"),
        "albumin": Decimal("38.0"),
        "inr": Decimal("1.20"),
        "ascites": "none",
        "encephalopathy": "none",
    },
    {"answers": {**ASKED_CRITERIA_OK, "EX5": True}},  # HIV
    {"consent_date": None},
    {"answers": {**ASKED_CRITERIA_OK, "EX4": True}},  # a tumour
    {"diagnosis": "none"},
    {"answers": {**ASKED_CRITERIA_OK, "IN5": False}},
)


def seed(*, password: str) -> tuple[dict[str, object], int]:
    """Create the demo; returns the users by name and the number of participants created (0 if already seeded)."""
    protocol_load()
    users = _users(password)
    if Participant.objects.exists():
        return users, 0
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
    created += _long_term(rng, users)
    _reconsent_some(rng)
    return users, created


# Enrolled about 33 months ago at site 1: their survival contacts at 18, 24 and 30 months are past (symptoms asked).
LONG_TERM_DAYS_AGO = (1000, 990)


def _long_term(rng: random.Random, users: dict[str, object]) -> int:
    site = Site.objects.get(number=1)
    for days_ago, arm in zip(LONG_TERM_DAYS_AGO, ("MSC", "CONV"), strict=True):
        _enrolled(rng, users["coordinator1"], site, days_ago, arm=arm)
    return len(LONG_TERM_DAYS_AGO)


def _reconsent_some(rng: random.Random) -> None:
    """Every other participant who signed an earlier consent form version re-consented to the one in force; the
    others are on the coordinator's list."""
    current = icf_current(protocol_current())
    if current is None:
        return
    today = timezone.localdate()
    outdated = Participant.objects.filter(status=ParticipantStatus.ENROLLED).exclude(icf_version=current.version)
    for index, participant in enumerate(outdated.select_related("site").order_by("pk")):
        if index % 2:
            continue
        day = min(max(current.date, participant.icf_date) + datetime.timedelta(days=rng.randint(5, 60)), today)
        coordinator = get_user_model().objects.get(username=f"coordinator{participant.site.number}")
        participant_reconsent(
            user=coordinator, participant_id=participant.pk, icf_version=current.version, consent_date=day
        )


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
    """An enrolled participant with an empty schedule; capture.demo fills the visits that are past."""
    screening = _eligible_screening(rng, days_ago + rng.randint(3, 14))
    participant = participant_screen(user=user, site=site, data=screening)
    today = timezone.localdate()
    participant_enrol(
        user=user, participant=participant, arm_code=arm, enrolment_date=today - datetime.timedelta(days=days_ago)
    )
