"""A coordinator enters a visit's liver panel from the subject matrix, sees a flag as they type, corrects a
value with a reason and finds both changes in the item's audit trail, in Chromium."""

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from capture.models import ItemValue
from tests.browser.menu import open_menu
from tests.browser.test_screen_and_enrol import log_in
from tests.factories import enrolled

pytestmark = pytest.mark.browser

LIVER = {
    "Aspartate aminotransferase (AST)": "32",
    "Albumin (ALB)": "41.5",
    "Prealbumin (PA)": "230",
    "Total bilirubin (TB)": "18.2",
    "Direct bilirubin (DB)": "6.1",
}


def test_coordinator_enters_and_corrects_the_liver_panel(live_server, page: Page, coordinator1, site1):
    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=100)  # M3 (day 91 +/- 14) is due
    m3 = participant.visits.get(definition__code="M3")
    log_in(page, live_server.url, "coordinator1")

    open_menu(page, "Participants", "Subject matrix")
    row = page.locator("#matrix tbody tr", has_text=participant.subject_id)
    row.locator('td[data-visit="M3"] a').click()
    expect(page.locator("#visit-facts")).to_contain_text(m3.target_date.isoformat())
    page.locator("#visit-forms").get_by_role("link", name="Liver function").click()
    expect(page.get_by_role("heading", name="Liver function")).to_be_visible()

    page.get_by_label("Date of sample", exact=True).fill(timezone.localdate().isoformat())
    alt = page.get_by_label("Alanine aminotransferase (ALT)", exact=True)
    alt.click()
    alt.press_sequentially("120")
    # The flag comes from the one-value check as it is typed: nothing is saved yet.
    expect(page.locator("#flags-ALT")).to_contain_text("High")
    assert not ItemValue.objects.filter(visit=m3).exists()
    # Tab goes from a value to its missing-reason select (so a missing value needs no mouse), then to the next value,
    # past the history link.
    alt.press("Tab")
    expect(page.get_by_label("Reason ALT has no value", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Aspartate aminotransferase (AST)", exact=True)).to_be_focused()
    for label, value in LIVER.items():
        page.get_by_label(label, exact=True).fill(value)

    page.get_by_role("button", name="Save and mark complete").click()
    expect(page.get_by_text("Liver function of M3 saved (version 1). 1 value is flagged.")).to_be_visible()
    expect(page.locator('#visit-forms tr[data-form="LIVER"]')).to_contain_text("Complete")

    page.locator("#visit-forms").get_by_role("link", name="Liver function").click()
    expect(page.locator("#flags-ALT")).to_contain_text("High")
    alt = page.get_by_label("Alanine aminotransferase (ALT)", exact=True)
    alt.fill("110")
    page.get_by_label("Reason for change").fill("Transcription error: the report reads 110")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Liver function of M3 saved (version 2).")).to_be_visible()

    page.locator("#visit-forms").get_by_role("link", name="Liver function").click()
    page.get_by_label("History of ALT").click()
    expect(page.get_by_role("heading", name="History of changes")).to_contain_text("Alanine aminotransferase")
    rows = page.locator("#audit-trail tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".old-value")).to_have_text("120 U/L")
    expect(rows.nth(0).locator(".new-value")).to_have_text("110 U/L")
    expect(rows.nth(0).locator(".reason")).to_have_text("Transcription error: the report reads 110")
    expect(rows.nth(1).locator(".new-value")).to_have_text("120 U/L")
    expect(rows.nth(1)).to_contain_text("coordinator1")
