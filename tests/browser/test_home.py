"""From the home page to the task in at most two clicks, for each role, in Chromium at 1366x768 (a hospital laptop),
with no console error and no failed request on the way."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from capture.models import Signature
from reports.models import ReportKind, ReportRun, RunState
from tests.browser.test_accessibility import severe_violations
from tests.browser.test_review import complete_visit
from tests.browser.test_screen_and_enrol import log_in
from tests.factories import PASSWORD, enrolled
from tests.reports.home_data import work_at
from trial.models import Site

pytestmark = pytest.mark.browser


@contextmanager
def watched(browser: Browser, base_url: str, username: str) -> Iterator[tuple[Page, list[str]]]:
    """A logged-in page at 1366x768 and the problems seen on it: console errors, failed or refused requests."""
    context = browser.new_context(locale="en-GB", timezone_id="Asia/Shanghai", viewport={"width": 1366, "height": 768})
    context.set_default_timeout(15_000)
    problems: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("requestfailed", lambda request: problems.append(f"failed {request.url} {request.failure}"))
    page.on(
        "response",
        lambda response: problems.append(f"{response.status} {response.url}") if response.status >= 400 else None,
    )
    try:
        log_in(page, base_url, username)
        page.wait_for_load_state("networkidle")
        assert severe_violations(page) == []  # axe-core: the home page with its work shown
        yield page, problems
    finally:
        context.close()


def first_row_link(page: Page, key: str) -> object:
    return page.locator(f'[data-list="{key}"] tbody tr[data-item] a').first


def test_coordinator_answers_a_query_one_click_from_home(live_server, browser, coordinator1, site1):
    work = work_at(site1, coordinator1, 3)
    with watched(browser, live_server.url, "coordinator1") as (page, problems):
        oldest = work.queries["open_40"][0]
        first_row_link(page, "queries_to_answer").click()  # click 1: the oldest open query
        expect(page).to_have_url(f"{live_server.url}/review/queries/{oldest.pk}/")
        page.locator("#query-step-form textarea").fill("Checked against the source: the value is right.")
        page.get_by_role("button", name="Answer").click()
        expect(page.locator(".alert-success, .alert-info").first).to_be_visible()
        oldest.refresh_from_db()
        assert oldest.state == "answered"
        assert problems == []


def test_monitor_verifies_a_form_one_click_from_home(live_server, browser, coordinator1, monitor, site1):
    work = work_at(site1, coordinator1, 3)
    with watched(browser, live_server.url, "monitor") as (page, problems):
        expect(page.locator('[data-list="sdv_forms"]')).to_have_attribute("data-count", "3")
        first_row_link(page, "sdv_forms").click()  # click 1: the form completed first
        form = work.sdv_forms[0]
        expect(page).to_have_url(f"{live_server.url}/visits/{form.visit_id}/forms/{form.definition.code}/")
        page.locator("#verify-whole").click()
        expect(page.locator("#nothing-to-verify")).to_be_visible()
        page.goto(live_server.url + "/")
        expect(page.locator('[data-list="sdv_forms"]')).to_have_attribute("data-count", "2")
        assert problems == []


def test_investigator_signs_a_visit_one_click_from_home(live_server, browser, coordinator1, investigator1, site1):
    participant = enrolled(coordinator1, site1, days_ago=3)
    m0 = participant.visits.get(definition__code="M0")
    complete_visit(coordinator1, m0)
    with watched(browser, live_server.url, "investigator1") as (page, problems):
        first_row_link(page, "visits_to_sign").click()  # click 1: the sign page
        expect(page).to_have_url(f"{live_server.url}/review/visits/{m0.pk}/sign/")
        page.get_by_label("Password").fill(PASSWORD)
        page.locator("#sign-button").click()
        expect(page.locator(".alert-success").first).to_be_visible()
        assert Signature.objects.filter(visit=m0, voided_at__isnull=True).exists()
        assert problems == []


def test_data_manager_reaches_the_lock_of_a_ready_form_in_two_clicks(
    live_server, browser, coordinator1, datamanager, site1
):
    work = work_at(site1, coordinator1, 2)
    with watched(browser, live_server.url, "datamanager") as (page, problems):
        first_row_link(page, "forms_to_lock").click()  # click 1: the form page
        form = work.lock_forms[0]
        expect(page).to_have_url(f"{live_server.url}/visits/{form.visit_id}/forms/{form.definition.code}/")
        page.locator("#lock-form").click()  # click 2: its lock
        expect(page).to_have_url(f"{live_server.url}/review/visits/{form.visit_id}/forms/{form.definition.code}/lock/")
        expect(page.locator("main form button[type=submit]").first).to_be_visible()
        assert problems == []


def test_sponsor_downloads_the_latest_report_one_click_from_home(
    live_server, browser, coordinator1, sponsor, site1, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    work_at(site1, coordinator1, 3)
    content = b"%PDF-1.4 the trial summary"
    run = ReportRun.objects.create(
        kind=ReportKind.TRIAL_SUMMARY,
        cutoff=timezone.now(),
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
    )
    run.file.save("summary.pdf", ContentFile(content))
    ReportRun.objects.filter(pk=run.pk).update(state=RunState.DONE, progress=100, finished_at=timezone.now())
    run.sites.set(Site.objects.all())
    with watched(browser, live_server.url, "sponsor") as (page, problems):
        expect(page.locator("#enrolment-chart")).to_be_visible()
        expect(page.locator("#enrolment-chart-title")).to_contain_text("3 of the target 320")
        with page.expect_download() as download:
            page.locator("#latest-report").click()  # click 1: the file
        assert download.value.suggested_filename == run.filename
        assert problems == []
