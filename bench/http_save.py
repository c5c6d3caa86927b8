"""Saving the 45-item lab panel over HTTP, against a plain Django admin add of a flat 25-field model, in one run.

(a) the data-entry page's POST (session, as a coordinator's browser), (b) the API's PUT (knox token, as an
integration), (c) the admin add of `bench.flatcrf.FlatCrf` (a superuser's session): each request through Django's
test Client, which runs the whole middleware stack (sessions, CSRF middleware, authentication, locale, the
request log...) and the URL resolver, the view, the template or the serializer, without a socket; the Client does not
enforce CSRF tokens. Interleaved rounds (the three kinds in rotating order), medians, SQL statements of each. The
clock runs while the request is sent and answered: the body (the form's controls, the API's JSON) is built before, as
a browser or a client program has it ready, and the answer is checked after, on every side alike.

Both forms are sent as a browser sends them: application/x-www-form-urlencoded (neither page's <form> has file inputs,
so neither asks for multipart/form-data; the admin's change form only does when the model has a file field), with
every control the page holds (the entry form's 45 values and 45 missing-reason selects, left blank, and the button
pressed), not the test Client's default multipart encoding.

Target (../shared/PERFORMANCE.md): the page POST and the API PUT at most 1.5x the admin add, at most 15 SQL
statements. Runs in a throw-away test database (test_<name of DATABASE_URL>) on PostgreSQL:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc_bench .venv/bin/python bench/http_save.py [--rounds 7]
"""

import argparse
import datetime
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"  # the project's settings plus bench.flatcrf

from capture_save import ITEMS, a_visit, amended_protocol  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils.http import urlencode  # noqa: E402
from harness import test_database  # noqa: E402
from knox.models import AuthToken  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from bench.flatcrf.models import NUMBERS, FlatCrf  # noqa: E402
from trial.services import protocol_load  # noqa: E402

PER_ROUND = 30
FORM_ENCODED = "application/x-www-form-urlencoded"  # a <form method="post"> without enctype, in every browser


class Request(NamedTuple):
    """One request ready to send: what a browser or a client program has built before it sends (the form's body,
    the JSON), so that the time measured is the server's answer, on both sides alike; and the check of the answer
    (the API's JSON read back), after the clock."""

    send: Callable[[], object]
    check: Callable[[object], None]


def browser_post(client: Client, path: str, data: dict[str, str]) -> Callable[[], object]:
    """The POST of an HTML form's controls as a browser submits it.

    Both pages answer a save with a redirect and a message ("... saved"), which the browser shows on the page it is
    redirected to; that page's response clears the messages cookie. The redirect is not followed here (only the
    POST is timed), so the cookie is cleared as that page would have cleared it: otherwise the unread messages pile
    up to the cookie's 2 KB limit, and every POST after that re-encodes the pile several times to trim it, which
    no browser's POST ever does.
    """
    body = urlencode(data)

    def send() -> object:
        response = client.post(path, body, content_type=FORM_ENCODED)
        client.cookies.pop("messages", None)
        return response

    return send


class Saves:
    """The three kinds of save, each a method that builds one request (`Request`)."""

    def __init__(self) -> None:
        user, visit = a_visit()
        self.page_visit = visit
        self.api_visit = visit.participant.visits.get(definition__code="M6")
        self.page = Client()
        self.page.force_login(user)
        self.api = APIClient()
        _token, key = AuthToken.objects.create(user=user)
        self.api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        admin = get_user_model().objects.create_superuser("bench-admin", password="bench-password-1")
        self.admin = Client()
        self.admin.force_login(admin)
        self.versions = {"page": 0, "api": 0}
        self.n = 0

    def _values(self) -> dict[str, str]:
        self.n += 1
        return {f"X{i:02d}": str(10 + (self.n + i) % 900) for i in range(ITEMS)}

    def page_post(self) -> Request:
        data = {"version": str(self.versions["page"])}
        for code, value in self._values().items():
            data.update({code: value, f"missing_{code}": ""})
        data["save"] = "1"

        def check(response: object) -> None:
            assert response.status_code == 302, (response.status_code, response.content[:500])
            self.versions["page"] += 1

        return Request(browser_post(self.page, f"/visits/{self.page_visit.pk}/forms/P45/", data), check)

    def api_put(self) -> Request:
        body = json.dumps({"version": self.versions["api"], "values": self._values()})
        path = f"/api/v1/visits/{self.api_visit.pk}/forms/P45/"

        def check(response: object) -> None:
            assert response.status_code == 200, (response.status_code, response.content[:500])
            self.versions["api"] = response.json()["version"]

        return Request(lambda: self.api.put(path, body, content_type="application/json"), check)

    def admin_add(self) -> Request:
        self.n += 1
        data = {"subject": f"01-{self.n:05d}", "visit_code": "M3", "report_date": datetime.date.today().isoformat()}
        data.update({name: str(10 + (self.n + i) % 900) for i, name in enumerate(NUMBERS)})
        data["_save"] = "Save"

        def check(response: object) -> None:
            assert response.status_code == 302, (response.status_code, response.content[:500])

        return Request(browser_post(self.admin, "/admin/flatcrf/flatcrf/add/", data), check)


def run(kind: Callable[[], Request]) -> float:
    """Build one request, send it and check its answer; the seconds of the send alone."""
    request = kind()
    began = time.perf_counter()
    response = request.send()
    seconds = time.perf_counter() - began
    request.check(response)
    return seconds


def statements(kind: Callable[[], Request]) -> tuple[int, int]:
    """SQL statements of one request: all, and without SAVEPOINT / RELEASE."""
    request = kind()
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        response = request.send()
    request.check(response)
    return len(queries), len([q for q in queries if "SAVEPOINT" not in q["sql"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args()
    logging.disable(logging.WARNING)  # the request log and the login notices, one line per request
    with test_database() as name:
        if connection.vendor != "postgresql":
            raise SystemExit("bench/http_save.py measures on PostgreSQL: set DATABASE_URL=postgres://...")
        protocol_load()
        amended_protocol()
        saves = Saves()
        kinds = {"page POST": saves.page_post, "API PUT": saves.api_put, "admin add": saves.admin_add}
        for kind in kinds.values():  # warm the process's caches (definitions, templates) and create the forms
            run(kind)
            run(kind)
        counts = {name: statements(kind) for name, kind in kinds.items()}
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        load_before = os.getloadavg()
        order = list(kinds)
        for round_ in range(arguments.rounds):
            for kind in order[round_ % 3 :] + order[: round_ % 3]:  # rotate who goes first
                for _ in range(PER_ROUND):
                    times[kind].append(run(kinds[kind]))
        load_after = os.getloadavg()
        medians = {kind: statistics.median(values) * 1000 for kind, values in times.items()}
        print(f"database: {connection.vendor} ({name}); {arguments.rounds} rounds x {PER_ROUND} requests of each kind")
        print(f"through Django's test Client: full middleware stack, no socket; {ITEMS}-item panel vs 25-field admin")
        print("load average (1, 5, 15 min): before " + ", ".join(f"{x:.2f}" for x in load_before), end="")
        print(", after " + ", ".join(f"{x:.2f}" for x in load_after) + f"; {os.cpu_count()} CPUs")
        print(f"{'save':<11}{'median ms':>10}{'x admin':>9}{'SQL':>6}{'SQL w/o savepoints':>20}")
        for kind in kinds:
            ratio = medians[kind] / medians["admin add"]
            print(f"{kind:<11}{medians[kind]:>10.1f}{ratio:>9.2f}{counts[kind][0]:>6}{counts[kind][1]:>20}")
        print(f"rows: {FlatCrf.objects.count()} admin adds; targets: <= 1.5x the admin add, <= 15 SQL statements")


if __name__ == "__main__":
    main()
