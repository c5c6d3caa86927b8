"""The deployed stack proven here: the production processes, started as docker-compose.yml starts them, used in
Chromium.

tests/stack.py reads docker-compose.yml and runs, on this machine's PostgreSQL and Redis: a database of its own with
the least-privilege roles (superuser creates, owner migrates and grants, web, worker and beat connect as the app
role), collectstatic into a folder of its own (whitenoise serves it), then gunicorn with DEBUG off, a Celery worker
and Celery beat, each from an environment built from scratch (so nothing is eager and nothing knows it is tested).
Only plain http on localhost differs from the compose file's defaults (SECURE_SSL_REDIRECT, SECURE_COOKIES,
SECURE_HSTS_SECONDS off), as README documents for a test over http. Chromium is the session's (tests/browser/
conftest.py): Playwright's synchronous API allows one instance per thread.

A coordinator saves a liver panel with a low albumin in Chromium and sees the worker's grading appear on the safety
dashboard; the sponsor asks for the trial summary, which the worker builds, and downloads the PDF; beat's
periodic anchoring reaches the worker; /healthz is green throughout. Every wait polls with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from tests.browser.menu import LAPTOP, open_menu
from tests.conftest import missing
from tests.safety.worker import broker_empty, claimed_redis_database, redis_url_or_missing
from tests.stack import ProductionStack, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

PASSWORD = "test-password-123"  # tests.factories.PASSWORD, which the seed below gives every user
DEADLINE_SECONDS = 90.0  # a loaded CI machine: generous, and nothing asserts how long a step took
LAB_GRADE = "safety.tasks.lab_grade_task"
REPORT_GENERATE = "reports.tasks.report_generate_task"
AUDIT_ANCHOR = "trial.tasks.audit_anchor_task"
LIVER_LOW_ALBUMIN = {
    "Alanine aminotransferase (ALT)": "30",
    "Aspartate aminotransferase (AST)": "32",
    "Albumin (ALB)": "25",  # CTCAE v5.0 hypoalbuminemia grade 2 (<30 - 20 g/L): the grading must propose an event
    "Prealbumin (PA)": "230",
    "Total bilirubin (TB)": "18.2",
    "Direct bilirubin (DB)": "6.1",
}

# Run in the stack's environment as the app role (so the grants are proven for writes too): a coordinator and the
# sponsor, and one participant enrolled 100 days ago (M3 is due), through the services as users would.
SEED = """
from tests.factories import enrolled, make_user
from trial.models import Role, Site

site1 = Site.objects.get(number=1)
coordinator = make_user("coordinator1", {site1: Role.COORDINATOR})
make_user("sponsor", {site: Role.SPONSOR for site in Site.objects.all()})
participant = enrolled(coordinator, site1, arm="MSC", days_ago=100)
print(f"participant={participant.pk}:{participant.subject_id}")
"""


def admin_url_or_missing() -> str:
    """DATABASE_URL, whose role must create databases and roles (the compose file's superuser); else a skip."""
    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url)
    try:
        with psycopg.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password or None,
            dbname="postgres",
            connect_timeout=5,
        ) as connection:
            may = connection.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    except psycopg.Error as error:
        missing(f"PostgreSQL does not answer at {parts.hostname}:{parts.port or 5432} ({type(error).__name__})")
    if not (may and may[0]):
        missing(f"the role of DATABASE_URL ({parts.username}) is not a superuser: it cannot create the stack's roles")
    return url


def stack_database_name(url: str) -> str:
    """The stack's own database, named after DATABASE_URL's (edc_ci -> edc_ci_production)."""
    return f"{urlsplit(url).path.lstrip('/') or 'edc'}_production"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionStack]:
    admin_url = admin_url_or_missing()
    with claimed_redis_database(redis_url_or_missing()) as broker:
        broker_empty(broker)
        stack = ProductionStack(
            admin_url=admin_url,
            database=stack_database_name(admin_url),
            redis_url=broker,
            workdir=tmp_path_factory.mktemp("stack"),
            web_workers=2,  # the compose file's 3 would only slow a 2-core CI machine
            # Beat anchors the audit chain every 5 s and verifies it every 10 s (instead of every minute and every
            # hour), so that the test sees both without waiting.
            extra_environment={"AUDIT_ANCHOR_SECONDS": "5", "AUDIT_VERIFY_SECONDS": "10"},
        )

        def seed(stack: ProductionStack) -> None:
            output = stack.manage("shell", "-c", SEED, broker=False)
            stack.seeded.update(re.search(r"participant=(?P<pk>\d+):(?P<subject>\S+)", output).groupdict())

        with stack.running(seed=seed):
            yield stack


@contextlib.contextmanager
def logs_on_failure(stack: ProductionStack) -> Iterator[None]:
    """Print the processes' logs if the block fails (pytest shows a failed test's output)."""
    try:
        yield
    except BaseException:
        print(stack.log_tail(150))
        raise


@contextlib.contextmanager
def signed_in(browser: Browser, stack: ProductionStack, username: str) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB", timezone_id="Asia/Shanghai", accept_downloads=True, viewport=LAPTOP)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(f"{stack.base_url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Site dashboard")).to_be_visible()
        yield page
    finally:
        context.close()


def task_lines(stack: ProductionStack, task: str, event: str) -> list[str]:
    return re.findall(rf"Task {re.escape(task)}\[[0-9a-f-]+\] {event}\b.*", stack.log("worker"))


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects: (status, headers, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def assert_healthy(stack: ProductionStack) -> None:
    # Polled: /healthz waits 0.5 s for the workers' answers to its ping, which a worker busy starting a task (or a
    # loaded machine) can miss once.
    health = stack.wait_healthy(DEADLINE_SECONDS)
    assert health["status"] == 200, health
    assert (health["database"], health["broker"]) == ("ok", "ok"), health
    assert health["workers"] >= 1, health
    # Beat's verification of the audit chain, whenever it ran, found every record intact.
    assert health["audit"]["intact"] is not False, health


def test_lab_grading_and_a_report_go_through_the_worker_of_the_deployed_stack(stack, browser):
    participant_id, subject_id = stack.seeded["pk"], stack.seeded["subject"]
    with logs_on_failure(stack):
        assert_healthy(stack)

        with signed_in(browser, stack, "coordinator1") as page:
            open_menu(page, "Participants", "Subject matrix")
            row = page.locator("#matrix tbody tr", has_text=subject_id)
            row.locator('td[data-visit="M3"] a').click()
            page.locator("#visit-forms").get_by_role("link", name="Liver function").click()
            expect(page.get_by_role("heading", name="Liver function")).to_be_visible()
            page.get_by_label("Date of sample", exact=True).fill(timezone.localdate().isoformat())
            for label, value in LIVER_LOW_ALBUMIN.items():
                page.get_by_label(label, exact=True).fill(value)
            page.get_by_role("button", name="Save and mark complete").click()
            expect(page.get_by_text("Liver function of M3 saved (version 1).")).to_be_visible()

            # The grading is the worker's: poll the safety dashboard until its proposal appears.
            def proposal_shown() -> bool:
                page.goto(f"{stack.base_url}/safety/")
                return (
                    page.locator("#proposal-table tr", has_text=subject_id).filter(has_text="Hypoalbuminemia").count()
                    == 1
                )

            wait_for(proposal_shown, "the worker's grading to propose hypoalbuminemia", DEADLINE_SECONDS)
            cells = page.locator("#proposal-table tr", has_text="Hypoalbuminemia").locator("td")
            expect(cells.nth(3)).to_have_text("M3")
            expect(cells.nth(4)).to_have_text("ALB = 25.0 g/L")
            expect(cells.nth(6)).to_have_text("2")  # CTCAE v5.0 grade 2: <30 - 20 g/L
            page.goto(f"{stack.base_url}/safety/participants/{participant_id}/adverse-events/")
            expect(page.locator("body")).to_contain_text("Hypoalbuminemia")
        assert task_lines(stack, LAB_GRADE, "succeeded"), "the grading did not run on the worker"

        with signed_in(browser, stack, "sponsor") as page:
            open_menu(page, "Reports", "Report runs")
            page.get_by_label("Trial summary").check()
            page.get_by_role("button", name="Generate report").click()
            expect(page.get_by_text("Trial summary was requested; it is being generated.")).to_be_visible()
            row = page.locator("#report-runs tbody tr").first
            expect(row).to_have_attribute("data-state", "done", timeout=DEADLINE_SECONDS * 1000)
            with page.expect_download() as downloading:
                row.get_by_role("link", name="Download PDF").click()
            content = Path(downloading.value.path()).read_bytes()
        assert content.startswith(b"%PDF-") and b"%%EOF" in content[-1024:]
        assert task_lines(stack, REPORT_GENERATE, "succeeded"), "the report was not built by the worker"

        # Beat sends the audit anchoring on its schedule, and the worker runs it.
        wait_for(lambda: task_lines(stack, AUDIT_ANCHOR, "succeeded"), "beat's anchoring to run", DEADLINE_SECONDS)
        # And its verification of the whole chain: every record (the worker's and the app role's) intact.
        verified = wait_for(
            lambda: stack.health().get("audit", {}).get("last_verified"), "beat's audit verification", DEADLINE_SECONDS
        )
        assert verified and stack.health()["audit"]["intact"] is True
        assert_healthy(stack)
        assert "Traceback" not in stack.log("web") + stack.log("worker"), "a process logged an exception"


def test_the_stack_runs_with_debug_off_behind_its_security_settings(stack):
    with logs_on_failure(stack):
        # DEBUG off: an unknown address is the app's own 404, never Django's technical page.
        status, _headers, body = fetch(f"{stack.base_url}/no-such-page/")
        assert status == 404 and b"Django tried these URL patterns" not in body
        # A page needs a login: a redirect to it over plain http (SECURE_SSL_REDIRECT off), no https.
        status, headers, _body = fetch(f"{stack.base_url}/matrix/")
        assert status == 302 and headers["Location"].startswith("/accounts/login/"), headers
        # Every answer carries the security headers; the login page's CSRF cookie, sent over http here.
        status, headers, body = fetch(f"{stack.base_url}/accounts/login/")
        assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
        assert "no-store" in headers["Cache-Control"] and headers["X-Frame-Options"] == "DENY"
        # The static files were collected: whitenoise serves the manifest's hashed name, cached for good.
        stylesheet = re.search(rb'href="(/static/css/edc\.[0-9a-f]{12}\.css)"', body)
        assert stylesheet, "the page does not name the collected, hashed stylesheet"
        status, headers, css = fetch(f"{stack.base_url}{stylesheet.group(1).decode()}")
        assert status == 200 and css and "immutable" in headers["Cache-Control"]
        # A hostile request: a forged session cookie and a query string of control characters, never a 500.
        status, _headers, _body = fetch(f"{stack.base_url}/matrix/?q=%00%01", Cookie="sessionid=forged")
        assert status in {302, 400}
        # /healthz answers without a login and names no host or user.
        status, _headers, body = fetch(f"{stack.base_url}/healthz")
        assert status == 200 and b"127.0.0.1" not in body and stack.app_role.encode() not in body
