"""Factories. Participants are made through the services, so tests see what users would create."""

import datetime
from dataclasses import replace
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from trial.models import Participant, Site, SiteMembership
from trial.services import ScreeningInput, participant_enrol, participant_screen

PASSWORD = "test-password-123"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password(PASSWORD)


def make_user(username: str, roles: dict[Site, str]) -> object:
    user = UserFactory(username=username)
    for site, role in roles.items():
        SiteMembership.objects.update_or_create(user=user, site=site, defaults={"role": role})
    return user


def eligible_input(**overrides: object) -> ScreeningInput:
    """A candidate who meets every criterion: Child-Pugh B (8 points), aged 45."""
    today = timezone.localdate()
    data = ScreeningInput(
        initials="ZW",
        sex="M",
        date_of_birth=today.replace(year=today.year - 45) - datetime.timedelta(days=30),
        screening_date=today - datetime.timedelta(days=7),
        consent_date=today - datetime.timedelta(days=7),
        diagnosis="decompensated",
        total_bilirubin=Decimal("40.0"),  # 2 points
        albumin=Decimal("30.0"),  # 2 points
        inr=Decimal("1.50"),  # 1 point
        ascites="mild",  # 2 points
        encephalopathy="none",  # 1 point
        answers={"IN5": True, **{f"EX{n}": False for n in range(1, 10)}},
    )
    return replace(data, **overrides)


def screened(user: object, site: Site, **overrides: object) -> Participant:
    return participant_screen(user=user, site=site, data=eligible_input(**overrides))


def enrolled(user: object, site: Site, *, arm: str = "MSC", days_ago: int = 0, **overrides: object) -> Participant:
    today = timezone.localdate()
    screening_date = today - datetime.timedelta(days=days_ago + 7)
    participant = screened(user, site, screening_date=screening_date, consent_date=screening_date, **overrides)
    return participant_enrol(
        user=user, participant=participant, arm_code=arm, enrolment_date=today - datetime.timedelta(days=days_ago)
    )
