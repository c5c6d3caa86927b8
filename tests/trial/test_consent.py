"""Informed consent: the version signed at screening, re-consent to a new version, the list of who must re-consent."""

import datetime

import pytest
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from tests.factories import enrolled, screened
from trial import consent
from trial.errors import AccessDenied, InvalidInput
from trial.models import AuditRecord, ConsentRecord, Participant
from trial.services import protocol_current

TODAY = timezone.localdate()
OLD = datetime.date(2025, 1, 10)  # before version 2.0 took effect (2026-06-01)


def on_old_version(user, site, **overrides):
    """Enrolled after screening and consenting on OLD, under version 1.0."""
    return enrolled(user, site, days_ago=(TODAY - OLD).days - 7, **overrides)


def versions():
    return [entry.version for entry in consent.icf_versions(protocol_current())]


def test_the_protocol_declares_the_versions_and_the_one_in_force(protocol):
    assert versions() == ["1.0", "2.0"]
    assert consent.icf_current(protocol_current()).version == "2.0"
    assert consent.icf_in_force_on(protocol_current(), OLD).version == "1.0"


def test_screening_records_the_version_in_force_on_the_consent_date(coordinator1, site1):
    old = screened(coordinator1, site1, screening_date=OLD, consent_date=OLD)
    assert (old.icf_version, old.icf_date, old.screening.icf_version) == ("1.0", OLD, "1.0")
    new = screened(coordinator1, site1, initials="AB")
    assert new.icf_version == "2.0"
    record = ConsentRecord.objects.get(participant=new)
    assert (record.kind, record.icf_version) == ("initial", "2.0")
    audit = AuditRecord.objects.filter(participant=new, object_type="consent", item_code="icf_version")
    assert audit.get().new_value == "2.0"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"icf_version": "9.9"}, "icf_version"),
        ({"icf_version": "<b>1</b>"}, "icf_version"),
        ({"icf_version": "2.0", "screening_date": OLD, "consent_date": OLD}, "consent_date"),
        ({"icf_version": "2.0", "consent_date": None}, "consent_date"),
    ],
)
def test_screening_refuses_an_unknown_version_or_a_signature_before_it(coordinator1, site1, overrides, field):
    with pytest.raises(InvalidInput) as refused:
        screened(coordinator1, site1, **overrides)
    assert field in refused.value.errors
    assert not Participant.objects.exists()


def test_reconsent_records_the_new_version_with_audit_and_leaves_the_list(coordinator1, coordinator2, site1, site2):
    old = on_old_version(coordinator1, site1)
    current = enrolled(coordinator1, site1, initials="AB")
    theirs = on_old_version(coordinator2, site2)
    _version, outdated = consent.participants_to_reconsent(coordinator1)
    assert list(outdated) == [old]
    record = consent.participant_reconsent(
        user=coordinator1, participant_id=old.pk, icf_version="2.0", consent_date=TODAY
    )
    old.refresh_from_db()
    assert (old.icf_version, old.icf_date, record.kind) == ("2.0", TODAY, "reconsent")
    assert not consent.participants_to_reconsent(coordinator1)[1].exists()
    assert list(consent.participants_to_reconsent(coordinator2)[1]) == [theirs]
    audit = AuditRecord.objects.filter(participant=old, action="reconsent", item_code="icf_version").get()
    assert (audit.old_value, audit.new_value) == ("1.0", "2.0")
    assert current.icf_version == "2.0"


@pytest.mark.parametrize(
    ("version", "day", "field"),
    [
        ("1.0", TODAY, "icf_version"),  # not newer
        ("3.0", TODAY, "icf_version"),
        ("", TODAY, "icf_version"),
        ("2.0", TODAY + datetime.timedelta(days=1), "consent_date"),
        ("2.0", datetime.date(2026, 5, 31), "consent_date"),  # before 2.0 took effect
        ("2.0", None, "consent_date"),
    ],
)
def test_reconsent_refuses_hostile_input(coordinator1, site1, version, day, field):
    old = on_old_version(coordinator1, site1)
    with pytest.raises(InvalidInput) as refused:
        consent.participant_reconsent(user=coordinator1, participant_id=old.pk, icf_version=version, consent_date=day)
    assert field in refused.value.errors
    assert ConsentRecord.objects.filter(participant=old).count() == 1


def test_reconsent_is_for_the_site_and_its_data_enterers(coordinator1, coordinator2, monitor, site1):
    old = on_old_version(coordinator1, site1)
    with pytest.raises(Http404):
        consent.participant_reconsent(user=coordinator2, participant_id=old.pk, icf_version="2.0", consent_date=TODAY)
    with pytest.raises(AccessDenied):
        consent.participant_reconsent(user=monitor, participant_id=old.pk, icf_version="2.0", consent_date=TODAY)


def test_the_list_page_shows_only_the_users_outdated_participants(
    as_user, coordinator1, coordinator2, site1, site2, django_assert_num_queries
):
    mine = [on_old_version(coordinator1, site1, initials=f"A{c}") for c in "BCD"]
    theirs = on_old_version(coordinator2, site2)
    client = as_user(coordinator1)
    client.get(reverse("trial:reconsent_list"))  # warm the protocol caches and the session
    with django_assert_num_queries(RECONSENT_QUERIES):
        content = client.get(reverse("trial:reconsent_list")).content.decode()
    for participant in mine:
        assert f'data-participant="{participant.pk}"' in content
    assert f'data-participant="{theirs.pk}"' not in content


# Session, user and memberships; the user's sites; the latest protocol; the count and the page of participants.
RECONSENT_QUERIES = 6


def test_the_list_page_runs_the_same_queries_at_3_and_120_participants(
    as_user, datamanager, coordinator1, coordinator2, site1, site2, django_assert_num_queries
):
    """Paginated: a count and a page of participants at any size, the site filter narrowing both."""
    url = reverse("trial:reconsent_list")
    client = as_user(datamanager)
    for n in range(3):
        on_old_version(coordinator1, site1, initials=f"A{'BCD'[n]}")
    client.get(url)  # warm the protocol caches and the session
    with django_assert_num_queries(RECONSENT_QUERIES):
        response = client.get(url)
    assert response.context["page"].paginator.count == 3
    Participant.objects.bulk_create(
        Participant(
            site=site,
            protocol=protocol_current(),
            screening_number=f"S{site.number:02d}-9{n:03d}",
            subject_id=f"{site.number:02d}-9{n:03d}",
            initials="XY",
            sex="F",
            date_of_birth=datetime.date(1970, 1, 1),
            status="enrolled",
            arm=protocol_current().arms.get(code="MSC"),
            enrolment_date=OLD,
            icf_version="1.0",
            icf_date=OLD,
            created_by=coordinator1,
        )
        for site in (site1, site2)
        for n in range(60)
    )
    with django_assert_num_queries(RECONSENT_QUERIES):
        response = client.get(url)
    page = response.context["page"]
    assert (page.paginator.count, len(page.object_list), page.paginator.num_pages) == (123, 50, 3)
    assert [p.site.number for p in page.object_list] == [1] * 50  # by site (the screening number's prefix)
    with django_assert_num_queries(RECONSENT_QUERIES):
        last = client.get(url, {"site": 2, "page": 2})
    assert last.context["page"].paginator.count == 60
    assert {p.site.number for p in last.context["page"].object_list} == {2}
    assert len(last.context["page"].object_list) == 10
    # A coordinator of site 1 sees only site 1's, and asking for site 2 narrows nothing beyond their own sites.
    mine = as_user(coordinator1).get(url)
    assert mine.context["page"].paginator.count == 63
    assert as_user(coordinator1).get(url, {"site": 2}).context["page"].paginator.count == 63


def test_the_reconsent_page_saves_and_refuses(as_user, coordinator1, coordinator2, monitor, site1):
    old = on_old_version(coordinator1, site1)
    url = reverse("trial:reconsent", args=[old.pk])
    assert as_user(coordinator2).get(url).status_code == 404
    assert as_user(monitor).get(url).status_code == 403
    client = as_user(coordinator1)
    refused = client.post(url, {"icf_version": "2.0", "consent_date": "2026-05-01"})
    assert refused.status_code == 400 and "took effect" in refused.content.decode()
    assert client.post(url, {"icf_version": "7", "consent_date": TODAY.isoformat()}).status_code == 400
    saved = client.post(url, {"icf_version": "2.0", "consent_date": TODAY.isoformat()})
    assert saved.status_code == 302
    old.refresh_from_db()
    assert old.icf_version == "2.0"
    detail = client.get(reverse("trial:participant_detail", args=[old.pk])).content.decode()
    assert "2.0, signed on" in detail
