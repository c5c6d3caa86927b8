"""Every list page and API list at 10 and at 10,000 participants: SQL statements and median time per request.

Target (../shared/PERFORMANCE.md): the SQL count is the same at both sizes and at most 15.
Runs in a throw-away test database on whatever DATABASE_URL names (SQLite by default):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc_bench .venv/bin/python bench/lists.py
"""

import datetime
import statistics
import time

from django.contrib.auth import get_user_model
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from harness import test_database

from trial.models import (
    Participant,
    ParticipantStatus,
    Role,
    Screening,
    Site,
    SiteMembership,
    Visit,
)
from trial.services import protocol_load, schedule

SIZES = (10, 10_000)
URLS = (
    "/",
    "/participants/",
    "/matrix/",
    "/inbox/queries/",
    "/inbox/sdv/",
    "/api/v1/participants/",
    "/api/v1/visits/",
    "/api/v1/sites/",
    "/api/v1/queries/",
)
REPEATS = 7


def grow_to(target: int, protocol: object, sites: list[Site], user: object) -> None:
    """Add enrolled participants (with screening and visits) until there are `target`, in bulk."""
    have = Participant.objects.count()
    today = timezone.localdate()
    arms = list(protocol.arms.all())
    batch = []
    for n in range(have, target):
        site = sites[n % len(sites)]
        batch.append(
            Participant(
                site=site,
                protocol=protocol,
                screening_number=f"S{site.number:02d}-{n:05d}",
                subject_id=f"{site.number:02d}-{n:05d}",
                initials="ZW",
                sex="M",
                date_of_birth=datetime.date(1975, 1, 1),
                status=ParticipantStatus.ENROLLED,
                arm=arms[n % 2],
                enrolment_date=today - datetime.timedelta(days=n % 700),
                enrolled_at=timezone.now(),
                enrolled_by=user,
                created_by=user,
            )
        )
    created = Participant.objects.bulk_create(batch, batch_size=2000)
    if connection.vendor != "postgresql":  # SQLite returns no keys from bulk_create on every version
        created = list(Participant.objects.filter(screening_number__in=[p.screening_number for p in batch]))
    Screening.objects.bulk_create(
        [
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
        ],
        batch_size=2000,
    )
    Visit.objects.bulk_create([v for p in created for v in schedule(p)], batch_size=5000)


def measure(client: Client, url: str) -> tuple[int, float]:
    reset_queries()  # the query log is a bounded deque: a full one would hide new entries
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - start)
    return len(queries), statistics.median(times) * 1000


def main() -> None:
    with test_database() as test_name:
        protocol, _ = protocol_load()
        sites = list(Site.objects.order_by("number"))
        user = get_user_model().objects.create_user("bench-datamanager", password="bench-password-1")
        SiteMembership.objects.bulk_create(SiteMembership(user=user, site=s, role=Role.DATA_MANAGER) for s in sites)
        client = Client()
        client.force_login(user)
        results: dict[str, dict[int, tuple[int, float]]] = {url: {} for url in URLS}
        for size in SIZES:
            grow_to(size, protocol, sites, user)
            for url in URLS:
                results[url][size] = measure(client, url)
        print(f"database: {connection.vendor} ({test_name})")
        print(f"{'url':<24}" + "".join(f"{f'SQL@{s}':>10}{f'ms@{s}':>11}" for s in SIZES) + "  same SQL count")
        for url, by_size in results.items():
            row = "".join(f"{by_size[s][0]:>10}{by_size[s][1]:>11.1f}" for s in SIZES)
            same = len({by_size[s][0] for s in SIZES}) == 1
            print(f"{url:<24}{row}  {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
