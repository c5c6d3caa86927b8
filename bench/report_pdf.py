"""The sponsor's trial summary PDF at 320 and 3,200 participants: build time, peak Python memory, SQL statements.

Target (../shared/PERFORMANCE.md): the time grows at most linearly from 320 to 3,200 participants (a ratio of 10
or less); the statistics aggregate in the database, so the SQL count stays the same. Full data from
bench/report_data.py (every visit done, every form filled), which needs PostgreSQL:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc_bench .venv/bin/python bench/report_pdf.py
"""

import statistics
import time
import tracemalloc

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from harness import test_database
from report_data import grow_to

from reports.pdf import TrialSummaryReport
from trial import access
from trial.models import Role, Site, SiteMembership
from trial.services import protocol_load

SIZES = (320, 3200)
REPEATS = 3


def build_once(user: object, protocol: object) -> bytes:
    report = TrialSummaryReport(
        participants=access.participants(user),
        cutoff=timezone.now(),
        generated_by=user.username,
        protocol=protocol,
    )
    return report.build()


def measure(user: object, protocol: object, repeats: int) -> dict[str, float]:
    with CaptureQueriesContext(connection) as queries:
        pdf = build_once(user, protocol)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        build_once(user, protocol)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    build_once(user, protocol)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": statistics.median(times), "peak_mib": peak / 2**20, "sql": len(queries), "kib": len(pdf) / 1024}


def bench_pdf(sizes: tuple[int, ...] = SIZES, repeats: int = REPEATS) -> dict[int, dict[str, float]]:
    """Build the summary PDF for a sponsor of every site at each size (participants); print and return figures."""
    results: dict[int, dict[str, float]] = {}
    with test_database() as test_name:
        protocol, _ = protocol_load()
        user = get_user_model().objects.create_user("bench-sponsor", password="bench-password-1")
        SiteMembership.objects.bulk_create(
            SiteMembership(user=user, site=site, role=Role.SPONSOR) for site in Site.objects.all()
        )
        build_once(user, protocol)  # warm: the protocol's definitions are read once per process
        for size in sizes:
            grow_to(size, protocol, user)
            results[size] = measure(user, protocol, repeats)
        print(f"database: {connection.vendor} ({test_name}); median of {repeats} builds")
        print(f"{'participants':>12}{'seconds':>10}{'peak MiB':>10}{'SQL':>6}{'PDF KiB':>9}")
        for size, figures in results.items():
            print(
                f"{size:>12}{figures['seconds']:>10.2f}{figures['peak_mib']:>10.1f}"
                f"{figures['sql']:>6}{figures['kib']:>9.0f}"
            )
        first, last = sizes[0], sizes[-1]
        ratio = results[last]["seconds"] / results[first]["seconds"]
        print(f"time x{ratio:.2f} for participants x{last / first:.0f} (linear or better: <= {last / first:.0f})")
    return results


if __name__ == "__main__":
    bench_pdf()
