"""Every page and API list at 100, 10,000 and 100,000 participants with full data: SQL statements and median time.

Target (../shared/PERFORMANCE.md): the same SQL count at every size, at most 15; the time at the largest size within
3x of the smallest. Runs against the kept datasets of bench/dataset.py (whichever exist and match the migrations;
build them first), in interleaved rounds (size A, B, C, A, B, C...), as a data manager of all six sites and as the
coordinator of site 1, through Django's test Client (the full middleware stack, no network):

    .venv/bin/python bench/dataset.py 100 10000 100000
    .venv/bin/python bench/lists.py [--rounds 5] [--sizes 100 10000 100000] [--only /inbox/]

The server is DATABASE_URL's (default postgres://postgres@127.0.0.1:5432); the database name is replaced by each
dataset's. The objects a detail page shows (participant 01-00001, its M3 visit, its LIVER form) hold the same data
at every size, because the builder derives each participant's data from its index.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from dataclasses import dataclass, field

from dataset import db_name, expected_state, label_of, stored_state, use_database  # also sets Django up
from django.db import OperationalError, connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext, setup_test_environment

ROLES = ("datamanager", "coordinator1")
PAGES = (
    "/",
    "/participants/",
    "/matrix/",
    "/matrix/?q=01-0000",
    "/participants/{participant}/",
    "/participants/{participant}/logs/",
    "/visits/{visit}/",
    "/visits/{visit}/forms/LIVER/",
    "/review/participants/{participant}/",
    "/inbox/",
    "/inbox/queries/",
    "/inbox/sdv/",
    "/safety/",
    "/safety/listing/",
    "/safety/notifications/",
    "/safety/participants/{participant}/adverse-events/",
    "/participants/reconsent/",
    "/reports/",
    "/exports/",
    "/api/v1/participants/",
    "/api/v1/visits/",
    "/api/v1/visits/{visit}/forms/",
    "/api/v1/queries/",
    "/api/v1/adverse-events/",
    "/api/v1/signatures/",
    "/api/v1/locks/",
    "/api/v1/survival/",
    "/api/v1/reports/",
)


@dataclass
class Measure:
    status: int | str = 0
    sql: int = 0
    kib: float = 0.0
    times: list[float] = field(default_factory=list)
    slow: bool = False  # over --slow once: not asked again in later rounds

    @property
    def ms(self) -> float:
        return statistics.median(self.times) * 1000 if self.times else float("nan")


def available(sizes: list[int]) -> list[int]:
    kept = []
    for size in sizes:
        stored = stored_state(db_name(size))
        wanted = expected_state(size)
        if stored and all(stored.get(key) == wanted[key] for key in wanted):
            kept.append(size)
        else:
            print(f"{db_name(size)}: missing or built for other migrations, skipped (bench/dataset.py {size})")
    return kept


def objects() -> dict[str, int]:
    from capture.models import FormInstance  # noqa: F401  (the form page's instance exists: the visit is complete)
    from trial.models import Participant, Visit

    participant = Participant.objects.get(subject_id="01-00001")
    visit = Visit.objects.get(participant=participant, definition__code="M3")
    return {"participant": participant.pk, "visit": visit.pk}


def clients(size: int) -> dict[str, Client]:
    from django.contrib.auth import get_user_model

    by_role = {}
    for role in ROLES:
        client = Client()
        client.force_login(get_user_model().objects.get(username=f"bench-{role}"))
        by_role[role] = client
    return by_role


def request(client: Client, url: str, measure: Measure, *, timed: bool, slow: float) -> None:
    """One GET: its status, SQL count and size (the last round's), and its time unless this is the warm-up round.

    A page that runs into the statement timeout is marked (status "timeout") and left out of later rounds."""
    if measure.status == "timeout" or measure.slow:
        return
    reset_queries()  # the query log is a bounded deque: a full one would hide new entries
    began = time.perf_counter()
    try:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
    except OperationalError as error:
        if "statement timeout" not in str(error):
            raise
        measure.status = "timeout"
        connection.close()
        return
    elapsed = time.perf_counter() - began
    measure.status, measure.sql, measure.kib = response.status_code, len(queries), len(response.content) / 1024
    if timed or elapsed > slow:  # a slow warm-up is its only sample
        measure.times.append(elapsed)
    measure.slow = elapsed > slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=int, default=[100, 10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="measure only pages whose address contains this")
    parser.add_argument("--statement-timeout", type=int, default=120, help="seconds; a slower page is marked")
    parser.add_argument("--slow", type=float, default=30, help="seconds; a slower page is timed once, not again")
    arguments = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the request log, login notices, the tracebacks of timed-out pages
    setup_test_environment()  # the test Client's response.content and templates, ALLOWED_HOSTS testserver
    sizes = available(arguments.sizes)
    if not sizes:
        raise SystemExit("no kept dataset: run bench/dataset.py first")
    pages = [page for page in PAGES if arguments.only in page]
    setup: dict[int, tuple[dict[str, Client], dict[str, int]]] = {}
    for size in sizes:
        use_database(db_name(size))
        setup[size] = (clients(size), objects())
    results: dict[tuple[str, str], dict[int, Measure]] = {
        (role, page): {size: Measure() for size in sizes} for role in ROLES for page in pages
    }
    load_before = os.getloadavg()
    began = time.perf_counter()
    for round_ in range(arguments.rounds + 1):  # round 0 warms the caches up; the SQL count is the last round's
        for size in sizes:  # interleaved: A, B, C, A, B, C...
            use_database(db_name(size))  # the next connection starts with the statement timeout
            options = connection.settings_dict.setdefault("OPTIONS", {})
            options["options"] = f"-c statement_timeout={arguments.statement_timeout * 1000}"
            by_role, ids = setup[size]
            for (role, page), by_size in results.items():
                request(by_role[role], page.format(**ids), by_size[size], timed=round_ > 0, slow=arguments.slow)
        print(f"round {round_} done ({time.perf_counter() - began:.0f} s)", flush=True)
    load_after = os.getloadavg()
    report(results, sizes, arguments.rounds, load_before, load_after)


def report(results: dict, sizes: list[int], rounds: int, load_before: tuple, load_after: tuple) -> None:
    smallest, largest = sizes[0], sizes[-1]
    print()
    print("* slower than --slow: timed in one round only (the warm-up round if it was slow already)")
    print(f"database: PostgreSQL {', '.join(db_name(s) for s in sizes)}; {rounds} timed rounds, medians")
    print(f"load average (1, 5, 15 min): before {_load(load_before)}, after {_load(load_after)}; {os.cpu_count()} CPUs")
    head = "".join(f"{'SQL@' + label_of(s):>9}" for s in sizes) + "".join(f"{'ms@' + label_of(s):>11}" for s in sizes)
    print(f"{'role':<13}{'page':<44}{head}{'KiB@' + label_of(largest):>10}{'time x':>8}  same SQL")
    for (role, page), by_size in results.items():
        statuses = {by_size[s].status for s in sizes}
        if statuses != {200}:
            shown = " ".join(f"{label_of(s)}:{by_size[s].status}" for s in sizes)
            print(f"{role:<13}{page:<44}  status {shown}")
            continue
        sql = "".join(f"{by_size[s].sql:>9}" for s in sizes)
        ms = "".join(f"{by_size[s].ms:>10.1f}{'*' if by_size[s].slow else ' '}" for s in sizes)
        ratio = by_size[largest].ms / by_size[smallest].ms
        same = "yes" if len({by_size[s].sql for s in sizes}) == 1 else "NO"
        flag = "" if ratio <= 3 and by_size[largest].sql <= 15 else "  <-- over target"
        print(f"{role:<13}{page:<44}{sql}{ms}{by_size[largest].kib:>10.0f}{ratio:>8.2f}  {same}{flag}")


def _load(load: tuple) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


if __name__ == "__main__":
    main()
