"""The site tallies (trial/tallies.py): equal to a recount of their rows after every kind of write (the services,
bulk writes, updates that move a row from one kind to another, deletions, a rolled-back transaction), after
compaction and after a rebuild; exact under concurrent writers and compaction on PostgreSQL; and the lists that
read them give the same totals as counting, in the same number of SQL queries at two sizes."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from capture.models import Lock, Signature
from capture.review import casebook_sign, lock_release, lock_set, query_raise
from safety import services as safety_services
from safety.models import AdverseEvent, AdverseEventStatus
from safety.survival import followed
from tests.factories import PASSWORD, enrolled, make_user, screened
from tests.safety.conftest import ae_input
from trial import selectors, tallies
from trial.models import Participant, ParticipantStatus, Role, Site, SiteTally, Visit
from trial.tallies import Tally

pytestmark = pytest.mark.django_db


def recount() -> dict[tuple[int, str], int]:
    """Every tally, counted from the rows themselves with the ORM."""
    counts: Counter = Counter()
    for site_id, status, arm, enrolment_date in Participant.objects.values_list(
        "site_id", "status", "arm__code", "enrolment_date"
    ):
        counts[site_id, f"participant:{status}:{arm or ''}:{0 if enrolment_date is None else 1}"] += 1
    for site_id in Visit.objects.values_list("participant__site_id", flat=True):
        counts[site_id, "visit"] += 1
    for site_id, status, end, expedited in AdverseEvent.objects.values_list(
        "participant__site_id", "status", "end_date", "expedited_at"
    ):
        ended = "open" if end is None else "ended"
        counts[site_id, f"ae:{status}:{ended}:{'routine' if expedited is None else 'expedited'}"] += 1
    for site_id in Signature.objects.values_list("participant__site_id", flat=True):
        counts[site_id, "signature"] += 1
    for site_id in Lock.objects.values_list("participant__site_id", flat=True):
        counts[site_id, "lock"] += 1
    return dict(counts)


def stored() -> dict[tuple[int, str], int]:
    tally = Tally(Site.objects.values_list("pk", flat=True))
    return {(site, kind): n for site, kinds in tally.by_site.items() for kind, n in kinds.items() if n}


def assert_tallies_exact() -> None:
    expected = recount()
    assert stored() == expected
    tallies.compact()
    assert stored() == expected
    assert SiteTally.objects.count() == len(expected)  # one row per site and kind once compacted
    tallies.rebuild()
    assert stored() == expected


def test_tallies_follow_every_kind_of_write(
    coordinator1: object, coordinator2: object, investigator1: object, datamanager: object, site1: Site, site2: Site
) -> None:
    first = enrolled(coordinator1, site1, arm="MSC", days_ago=30)
    enrolled(coordinator1, site1, arm="CONV")
    enrolled(coordinator2, site2, arm="MSC")
    screened(coordinator1, site1)  # eligible, not enrolled
    screened(coordinator2, site2, consent_date=None)  # a screen failure
    assert_tallies_exact()
    assert Tally([site1.pk]).participants(enrolled=True) == 2

    event = safety_services.adverse_event_report(user=coordinator1, participant_id=first.pk, data=ae_input())
    # A bulk update moves it from one kind to another.
    AdverseEvent.objects.filter(pk=event.pk).update(status=AdverseEventStatus.DISMISSED, dismiss_reason="Duplicate")
    safety_services.adverse_event_report(user=coordinator1, participant_id=first.pk, data=ae_input(term="Fatigue"))
    casebook_sign(user=investigator1, participant_id=first.pk, password=PASSWORD)
    lock = lock_set(user=datamanager, participant_id=first.pk, reason="Interim analysis")
    lock_release(user=datamanager, lock_id=lock.pk, reason="Interim analysis done")
    assert_tallies_exact()

    Participant.objects.filter(pk=first.pk).update(status=ParticipantStatus.WITHDRAWN)
    AdverseEvent.objects.filter(pk=event.pk).delete()
    Lock.objects.all().delete()
    with pytest.raises(RuntimeError), transaction.atomic():  # rolled back: no delta survives
        AdverseEvent.objects.update(status=AdverseEventStatus.DISMISSED, dismiss_reason="Entered twice")
        Visit.objects.filter(participant=first).delete()
        raise RuntimeError
    assert_tallies_exact()
    assert Tally([site1.pk]).total("visit") == Visit.objects.filter(participant__site=site1).count() > 0


def test_a_site_number_narrows_the_tally_to_one_of_the_users_sites(coordinator1: object, site1: Site, site2: Site):
    enrolled(coordinator1, site1)
    assert Tally([site1.pk], site_number=site1.number).participants() == 1
    assert Tally([site1.pk], site_number=site2.number).participants() == 0  # not among the sites asked for
    assert Tally([]).participants() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_tallies_stay_exact_under_concurrent_writers_and_compaction(coordinator1: object, site1: Site) -> None:
    people = [enrolled(coordinator1, site1, arm="MSC" if n % 2 else "CONV") for n in range(4)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(participant: Participant) -> None:
        try:
            for n in range(40):  # each update moves the participant from one kind to another and back
                status = ParticipantStatus.WITHDRAWN if n % 2 == 0 else ParticipantStatus.ENROLLED
                with transaction.atomic():
                    Participant.objects.filter(pk=participant.pk).update(status=status)
                    if n % 5 == 0:
                        AdverseEvent.objects.filter(participant=participant).update(status=AdverseEventStatus.REPORTED)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    def compactor() -> None:
        try:
            while not stop.is_set():
                tallies.compact()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(p,)) for p in people]
    folding = threading.Thread(target=compactor)
    folding.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    folding.join()
    assert not errors
    assert stored() == recount()


# --- The lists that read them ---------------------------------------------------------------------------------------


def _api(user: object) -> APIClient:
    client = APIClient()
    _token, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture(params=[2, 5])
def trial_of_size(
    request: pytest.FixtureRequest,
    coordinator1: object,
    coordinator2: object,
    investigator1: object,
    site1: Site,
    site2: Site,
) -> int:
    """`size` enrolled participants at site 1, each with a reported event and a signed casebook, one more enrolled
    at site 2 and a screen failure at site 1: the same lists at two sizes. Returns the size."""
    n = request.param
    for i in range(n):
        participant = enrolled(coordinator1, site1, arm="MSC" if i % 2 else "CONV", days_ago=100)
        safety_services.adverse_event_report(user=coordinator1, participant_id=participant.pk, data=ae_input())
        casebook_sign(user=investigator1, participant_id=participant.pk, password=PASSWORD)
    enrolled(coordinator2, site2)  # another site's: never counted for site 1's users
    screened(coordinator1, site1, consent_date=None)
    return n


def test_api_lists_total_from_the_tallies_in_constant_queries(
    trial_of_size: int, datamanager: object, site1: Site, site2: Site
) -> None:
    size = trial_of_size
    for visit in Visit.objects.filter(participant__site=site1, definition__code="M0")[:2]:
        query_raise(user=datamanager, visit_id=visit.pk, message="Please check the source.")
    reader = make_user("reader-1-2", {site1: Role.DATA_MANAGER, site2: Role.DATA_MANAGER})
    api = _api(reader)
    scope = [site1.pk, site2.pk]
    expected = {
        "/api/v1/visits/": Visit.objects.filter(participant__site__in=scope).count(),
        "/api/v1/adverse-events/": AdverseEvent.objects.filter(participant__site__in=scope).count(),
        "/api/v1/adverse-events/?status=reported&site=1": AdverseEvent.objects.filter(
            participant__site=site1, status="reported"
        ).count(),
        "/api/v1/signatures/": Signature.objects.filter(participant__site__in=scope).count(),
        "/api/v1/locks/": 0,
        "/api/v1/participants/": Participant.objects.filter(site__in=scope).count(),
        "/api/v1/participants/?status=screen_failed": 1,
        "/api/v1/participants/?site=2": 1,
        "/api/v1/survival/": followed(Participant.objects.filter(site__in=scope)).count(),
        "/api/v1/survival/?arm=MSC&site=1": size // 2,
        # The queries' totals come from the sites' summaries (capture/summaries.py).
        "/api/v1/queries/": 2,
        "/api/v1/queries/?state=open&site=1": 2,
        "/api/v1/queries/?state=closed": 0,
        "/api/v1/queries/?site=2": 0,
    }
    for url, count in expected.items():
        assert api.get(url).json()["count"] == count, url
    # Narrowed by what the tallies do not count, the list is counted: the same totals.
    participant = Participant.objects.filter(site=site1, status="enrolled").first()
    narrowed = api.get(f"/api/v1/visits/?participant={participant.pk}").json()["count"]
    assert narrowed == participant.visits.count() > 0
    assert (
        api.get("/api/v1/adverse-events/?grade=1").json()["count"]
        == AdverseEvent.objects.filter(participant__site__in=scope, grade=1).count()
    )
    # Token, memberships, tally, page: whatever the number of rows (pinned at two sizes).
    for url, queries in {"/api/v1/visits/": 4, "/api/v1/signatures/": 4}.items():
        with CaptureQueriesContext(connection) as captured:
            api.get(url)
        assert len(captured) == queries, (url, [q["sql"] for q in captured])
        assert not any("COUNT(" in q["sql"].upper() for q in captured), url


def test_pages_total_from_the_tallies(trial_of_size: int, datamanager: object) -> None:
    size = trial_of_size
    client = Client()
    client.force_login(datamanager)
    # The data manager holds every site.
    listing = client.get("/safety/listing/")
    assert listing.context["page"].paginator.count == AdverseEvent.objects.filter(status="reported").count() == size
    participants = client.get("/participants/")
    assert participants.context["page"].paginator.count == Participant.objects.count() == size + 2
    assert client.get("/participants/?status=screen_failed").context["page"].paginator.count == 1
    matrix = client.get("/matrix/")
    assert matrix.context["page"].paginator.count == size + 1
    with CaptureQueriesContext(connection) as captured:
        client.get("/participants/")
    assert not any("COUNT(" in q["sql"].upper() for q in captured)
    # The home page's sites table: its counts from the tallies equal counting the participants.
    rows, _arms = selectors.dashboard(datamanager, today=timezone.localdate())
    for row in rows:
        at_site = Participant.objects.filter(site=row.site)
        assert row.screened == at_site.count()
        assert row.screen_failures == at_site.filter(status="screen_failed").count()
        assert row.eligible == at_site.filter(status="eligible").count()
        by_arm = Counter(at_site.exclude(arm=None).values_list("arm__code", flat=True))
        assert row.enrolled_by_arm == dict(by_arm)
