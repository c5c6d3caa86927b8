"""Data review in Chromium: the monitor queries an ALT value, the coordinator corrects it and answers, the monitor
closes the query and verifies the form, and the investigator signs the visit. One browser context per user."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.urls import Resolver404, resolve
from playwright.sync_api import Browser, Page, expect

from capture.definitions import visit_forms
from capture.models import ItemValue, Query, QueryState, Signature
from capture.services import form_save
from tests.browser.menu import LAPTOP
from tests.browser.test_screen_and_enrol import log_in
from tests.factories import PASSWORD, enrolled
from trial.models import Visit

pytestmark = pytest.mark.browser

LIVER = {"ALT": "120", "AST": "32", "ALB": "41.5", "PREALB": "230", "BILI": "18.2", "BILDIR": "6.1"}
QUESTION = "ALT 120 U/L: the lab report in the source file reads 102. Please check."


@contextmanager
def signed_in(browser: Browser, base_url: str, username: str) -> Iterator[Page]:
    """A page in a browser context of its own (own cookies), logged in as `username`."""
    context = browser.new_context(locale="en-GB", timezone_id="Asia/Shanghai", viewport=LAPTOP)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in(page, base_url, username)
        yield page
    finally:
        context.close()


def complete_visit(user: object, visit: Visit) -> None:
    """The liver panel with values, every other form of the visit with its items 'not done', all complete."""
    values = {"LBDAT": visit.target_date.isoformat(), **LIVER}
    form_save(user=user, visit_id=visit.pk, form_code="LIVER", version=0, values=values, complete=True)
    for spec in visit_forms(visit):
        if spec.code != "LIVER":
            missing = {item.code: "not_done" for item in spec.entered}
            form_save(user=user, visit_id=visit.pk, form_code=spec.code, version=0, missing=missing, complete=True)


def inbox_is_there() -> bool:
    try:
        resolve("/inbox/")
    except Resolver404:
        return False
    return True


def open_liver_form(page: Page, base_url: str, participant: object) -> None:
    """From the participant's page to M3, then to its liver panel, as a user would go."""
    page.goto(f"{base_url}/participants/{participant.pk}/")
    page.locator('#visit-schedule tr[data-visit="M3"] a').click()
    page.locator("#visit-forms").get_by_role("link", name="Liver function").click()
    expect(page.get_by_role("heading", name="Liver function")).to_be_visible()


def test_query_correction_verification_and_signature(
    live_server, browser: Browser, coordinator1, investigator1, monitor, site1
):
    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=100)
    m3 = participant.visits.select_related("participant__protocol", "participant__arm", "definition").get(
        definition__code="M3"
    )
    complete_visit(coordinator1, m3)
    base = live_server.url

    with signed_in(browser, base, "monitor") as page:
        open_liver_form(page, base, participant)
        row = page.locator("#item-ALT")
        row.locator("summary", has_text="Raise a query on ALT").click()
        page.get_by_label("Query on ALT").fill(QUESTION)
        row.get_by_role("button", name="Raise query").click()
        expect(page.get_by_text("The query was raised; the site will answer it.")).to_be_visible()
        expect(page.locator("#item-ALT .query-thread")).to_contain_text("Query: Open")
    query = Query.objects.get()

    with signed_in(browser, base, "coordinator1") as page:
        if inbox_is_there():
            page.goto(f"{base}/inbox/")
            expect(page.get_by_text(QUESTION)).to_be_visible()
        open_liver_form(page, base, participant)
        thread = page.locator(f"#query-{query.pk}")
        expect(thread).to_contain_text(QUESTION)
        expect(thread.locator('[data-event="raised"]')).to_contain_text("monitor")
        page.get_by_label("Alanine aminotransferase (ALT)", exact=True).fill("102")
        page.get_by_label("Reason for change").fill("Transcription error: the report reads 102")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_text("Liver function of M3 saved (version 2).")).to_be_visible()

        page.locator("#visit-forms").get_by_role("link", name="Liver function").click()
        thread = page.locator(f"#query-{query.pk}")
        thread.locator("summary", has_text="Reply").click()
        thread.get_by_label("Your answer").fill("Corrected to 102 as on the lab report.")
        thread.get_by_role("button", name="Answer").click()
        expect(page.get_by_text("The query was answered.")).to_be_visible()
        expect(page.locator(f"#query-{query.pk}")).to_contain_text("Query: Answered")
    assert ItemValue.objects.get(visit=m3, item__code="ALT").number == 102

    with signed_in(browser, base, "monitor") as page:
        open_liver_form(page, base, participant)
        thread = page.locator(f"#query-{query.pk}")
        expect(thread.locator('[data-event="answered"]')).to_contain_text("Corrected to 102 as on the lab report.")
        thread.locator("summary", has_text="Close or re-open").click()
        thread.get_by_role("button", name="Close query").click()
        expect(page.get_by_text("The query was closed.")).to_be_visible()
        page.get_by_role("button", name="Verify whole form").click()
        expect(page.get_by_text("7 items verified.")).to_be_visible()
        expect(page.locator("#sdv-ALT")).to_contain_text("Verified by monitor on")
    assert Query.objects.get().state == QueryState.CLOSED

    with signed_in(browser, base, "investigator1") as page:
        page.goto(f"{base}/participants/{participant.pk}/")
        page.locator('#visit-schedule tr[data-visit="M3"] a').click()
        expect(page.locator('#visit-forms [data-sdv="LIVER"]')).to_contain_text("7 / 7")
        page.get_by_role("link", name="Sign this visit").click()
        expect(page.locator("#signature-meaning")).to_have_text("I confirm that the data are accurate and complete.")
        page.get_by_label("Your password").fill("not my password")
        page.get_by_role("button", name="Sign", exact=True).click()
        expect(page.get_by_text("The password is not correct: the signature was not recorded.")).to_be_visible()
        page.get_by_label("Your password").fill(PASSWORD)
        page.get_by_role("button", name="Sign", exact=True).click()
        expect(page.get_by_text("You signed visit M3.")).to_be_visible()
        expect(page.locator("#signatures")).to_contain_text("signed by investigator1")
    signature = Signature.objects.get()
    assert (signature.visit_id, signature.signed_by, signature.voided_at) == (m3.pk, investigator1, None)
