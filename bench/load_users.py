"""The simulated coordinators of bench/load.py (a locustfile; run by load.py, not on its own).

Each user is a coordinator of one of the six sites (user n: site n % 6 + 1, as that site's demo account), logs in
through the login page (a session, CSRF) and obtains a knox token through the API, then pages through the trial as
coordinators do: dashboard, subject matrix, participant, visit, the liver panel (page and API), saves of the liver
panel (page POST with the form's CSRF token and version; API PUT with the version) and /healthz. It works mostly on
participants of its own (the site's enrolled participants dealt out among the site's users) and, with the plan's
`overlap` probability, on any participant of its site, so that saves meet on one form and some are refused as stale.

Outcomes are counted by kind: 5xx, connection errors, other unexpected statuses (failures in locust), and 409
(stale version) and 423 (locked data) as expected refusals (successes in locust, counted apart). Measuring starts
once every user has logged in and lasts the plan's `duration`. The plan comes from the JSON file EDC_LOAD_PLAN; at
the end the figures go to the JSON file EDC_LOAD_RESULTS.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
from collections import Counter
from decimal import Decimal

import gevent
from locust import HttpUser, between, events, task
from locust.stats import calculate_response_time_percentile

PLAN = json.loads(open(os.environ["EDC_LOAD_PLAN"]).read())  # noqa: SIM115 (read once at import)
RESULTS = os.environ.get("EDC_LOAD_RESULTS", "")
FORM = "LIVER"
SAVES = ("form save (page POST)", "form save (API PUT)")
REASON = "Load test: re-entered from the source document"
EXPECTED = {409: "409 stale version (expected)", 423: "423 locked (expected)"}

OUTCOMES: Counter = Counter()
_numbers = itertools.count()

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
VERSION = re.compile(r'name="version" value="(\d+)"')


def liver_values(sample_date: str) -> dict[str, str]:
    """A plausible liver panel; one in ten with a low albumin, which the worker's grading turns into a proposal."""
    bilirubin = Decimal(random.randint(100, 400)) / 10
    albumin = Decimal(random.randint(220, 290) if random.random() < 0.1 else random.randint(350, 480)) / 10
    return {
        "LBDAT": sample_date,
        "ALT": str(random.randint(15, 80)),
        "AST": str(random.randint(15, 60)),
        "ALB": str(albumin),
        "PREALB": str(random.randint(150, 300)),
        "BILI": str(bilirubin),
        "BILDIR": str((bilirubin / 3).quantize(Decimal("0.1"))),
    }


def judged(response: object, expected: tuple[int, ...]) -> None:
    """Mark a `catch_response` response: expected status, an expected refusal, or a failure of its kind."""
    status = response.status_code
    if status in expected:
        OUTCOMES["ok"] += 1
        response.success()
    elif status in EXPECTED:
        OUTCOMES[EXPECTED[status]] += 1
        response.success()
    elif not status:
        OUTCOMES["connection error"] += 1
        response.failure(f"connection error: {response.error!r}"[:200])
    elif status >= 500:
        OUTCOMES["5xx"] += 1
        response.failure(f"server error {status}")
    else:
        OUTCOMES[f"{status} unexpected"] += 1
        response.failure(f"unexpected {status}: {response.text[:200]!r}")


class Coordinator(HttpUser):
    wait_time = between(PLAN["wait"][0], PLAN["wait"][1])

    def on_start(self) -> None:
        number = next(_numbers)
        site = str(number % 6 + 1)
        plan = PLAN["sites"][site]
        self.username = plan["username"]
        self.site_participants = plan["participants"]
        # The site's users deal its participants out among themselves, as coordinators share a site's work.
        users_here = len(range(int(site) - 1, PLAN["users"], 6)) or 1
        rank = number // 6
        own = [p for index, p in enumerate(self.site_participants) if index % users_here == rank % users_here]
        self.own = own or [self.site_participants[rank % len(self.site_participants)]]
        self.log_in()
        self.token_obtain()
        user_ready()

    def log_in(self) -> None:
        page = self.client.get("/accounts/login/", name="login page")
        token = CSRF.search(page.text)
        with self.client.post(
            "/accounts/login/",
            data={
                "username": self.username,
                "password": PLAN["password"],
                "csrfmiddlewaretoken": token.group(1) if token else "",
            },
            name="login (setup)",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            judged(response, (302,))

    def token_obtain(self) -> None:
        with self.client.post(
            "/api/v1/auth/token/",
            data={"username": self.username, "password": PLAN["password"]},
            name="token (setup)",
            catch_response=True,
        ) as response:
            judged(response, (200,))
            self.api_headers = {"Authorization": f"Token {response.json().get('token', '')}"} if response.ok else {}

    # -- what to work on

    def participant(self) -> dict:
        pool = self.site_participants if random.random() < PLAN["overlap"] else self.own
        return random.choice(pool)

    def visit(self) -> dict:
        return random.choice(self.participant()["visits"])

    def get(self, path: str, name: str, **options: object) -> object:
        with self.client.get(path, name=name, catch_response=True, allow_redirects=False, **options) as response:
            judged(response, (200,))
            return response

    # -- the pages

    @task(1)
    def dashboard(self) -> None:
        self.get("/", "dashboard")

    @task(1)
    def matrix(self) -> None:
        self.get("/matrix/", "matrix")

    @task(2)
    def participant_page(self) -> None:
        self.get(f"/participants/{self.participant()['id']}/", "participant")

    @task(2)
    def visit_page(self) -> None:
        self.get(f"/visits/{self.visit()['id']}/", "visit")

    @task(2)
    def form_page(self) -> None:
        self.get(f"/visits/{self.visit()['id']}/forms/{FORM}/", "form GET (page)")

    @task(3)
    def form_save_page(self) -> None:
        visit = self.visit()
        path = f"/visits/{visit['id']}/forms/{FORM}/"
        page = self.get(path, "form GET (page)")
        csrf, version = CSRF.search(page.text or ""), VERSION.search(page.text or "")
        if not (page.status_code == 200 and csrf and version):
            OUTCOMES["form page without an entry form, locked (expected)"] += 1
            return
        data = {
            "csrfmiddlewaretoken": csrf.group(1),
            "version": version.group(1),
            "reason": REASON,
            "complete": "1",
            **liver_values(visit["sample_date"]),
        }
        with self.client.post(
            path, data=data, name=SAVES[0], allow_redirects=False, catch_response=True, headers={"Referer": path}
        ) as response:
            judged(response, (302,))

    @task(3)
    def form_save_api(self) -> None:
        visit = self.visit()
        path = f"/api/v1/visits/{visit['id']}/forms/{FORM}/"
        with self.client.get(path, name="form GET (API)", headers=self.api_headers, catch_response=True) as form:
            judged(form, (200,))
            if form.status_code != 200:
                return
            version = form.json()["version"]
        body = {"version": version, "values": liver_values(visit["sample_date"]), "reason": REASON, "complete": True}
        with self.client.put(path, json=body, name=SAVES[1], headers=self.api_headers, catch_response=True) as saved:
            judged(saved, (200,))

    @task(1)
    def healthz(self) -> None:
        self.get("/healthz", "/healthz")

    @task(1)
    def healthz_live(self) -> None:
        self.get("/healthz/live", "/healthz/live")


ENVIRONMENT: list = []  # locust's Environment, once it exists
_logged_in = itertools.count(1)


@events.init.add_listener
def _keep_environment(environment: object, **kwargs: object) -> None:
    ENVIRONMENT.append(environment)


def user_ready() -> None:
    """Once every user has logged in, measure from zero for PLAN["duration"] seconds, then stop.

    The logins (a deliberately slow password hash each, twice per user) would otherwise crowd the first seconds.
    """
    if next(_logged_in) != PLAN["users"]:
        return
    environment = ENVIRONMENT[0]
    environment.stats.reset_all()
    OUTCOMES.clear()
    gevent.spawn_later(PLAN["duration"], environment.runner.quit)


@events.quitting.add_listener
def _write_results(environment: object, **kwargs: object) -> None:
    if not RESULTS:
        return
    stats = environment.stats
    endpoints = {}
    for (name, method), entry in sorted(stats.entries.items()):
        endpoints[name] = {
            "method": method,
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "rps": entry.total_rps,
            "p50": entry.get_response_time_percentile(0.50),
            "p95": entry.get_response_time_percentile(0.95),
            "p99": entry.get_response_time_percentile(0.99),
            "max": entry.max_response_time,
        }
    # Both saves together: their response-time histograms added up.
    times: Counter = Counter()
    count = 0
    for (name, _method), entry in stats.entries.items():
        if name in SAVES:
            times.update(entry.response_times)
            count += entry.num_requests
    combined = {
        f"p{p}": calculate_response_time_percentile(times, count, p / 100) if count else 0 for p in (50, 95, 99)
    }
    total = stats.total
    results = {
        "users": PLAN["users"],
        "seconds": max(0.0, total.last_request_timestamp - total.start_time) if total.last_request_timestamp else 0,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": total.total_rps,
        "outcomes": dict(OUTCOMES),
        "endpoints": endpoints,
        "save": {"requests": count, **combined},
        "errors": [
            {"name": error.name, "error": str(error.error)[:300], "occurrences": error.occurrences}
            for error in stats.errors.values()
        ],
    }
    with open(RESULTS, "w") as file:
        json.dump(results, file, indent=1)
