"""Log forms in Chromium: the coordinator adds a medication row and corrects it with a reason, the monitor raises a
query on its dose. One browser context per user."""

import pytest
from playwright.sync_api import Browser, expect

from capture.models import LogRow, LogValue, Query
from tests.browser.test_review import signed_in
from tests.factories import enrolled
from trial.models import AuditRecord

pytestmark = pytest.mark.browser

ENTRIES = {"CMTRT": "Entecavir", "CMINDC": "Chronic hepatitis B", "CMDOSE": "0.5", "CMSTDAT": "2024-03-01"}
CHOICES = {"CMCLAS": "antiviral", "CMDOSU": "mg", "CMROUTE": "PO", "CMDOSFRQ": "QD", "CMONGO": "true"}
QUESTION = "The prescription in the source reads 1 mg: please check the dose."


def test_add_correct_and_query_a_medication_row(live_server, browser: Browser, coordinator1, monitor, site1):
    participant = enrolled(coordinator1, site1, arm="CONV", days_ago=100)
    base = live_server.url

    with signed_in(browser, base, "coordinator1") as page:
        page.goto(f"{base}/participants/{participant.pk}/")
        page.locator("#logs-link").click()
        page.locator("#add-CM").click()
        for code, value in ENTRIES.items():
            page.locator(f"#id_{code}").fill(value)
        for code, value in CHOICES.items():
            page.locator(f"#id_{code}").select_option(value)
        page.locator("#save").click()
        expect(page.get_by_text("Row 1 of CM saved.")).to_be_visible()
        row = page.locator('#log-CM tr[data-row="1"]')
        expect(row).to_contain_text("Entecavir")
        expect(row.locator('td[data-item="CMDOSFRQ"]')).to_have_text("Once daily")

        row.get_by_role("link", name="1").click()
        page.locator("#id_CMDOSE").fill("1")
        page.locator("#save").click()
        expect(page.locator('[data-error-for="reason"]')).to_be_visible()  # a saved row needs a reason to change
        page.locator("#id_CMDOSE").fill("1")
        page.locator("#id_reason").fill("Dose misread from the prescription")
        page.locator("#save").click()
        expect(page.get_by_text("Row 1 of CM saved.")).to_be_visible()
        expect(page.locator("#value-CMDOSE")).to_contain_text("1")
        expect(page.locator('#row-history tr[data-item="CMDOSE"][data-action="update"] .reason')).to_have_text(
            "Dose misread from the prescription"
        )

    medication = LogRow.objects.get(participant=participant)
    assert LogValue.objects.get(row=medication, item__code="CMDOSE").number == 1
    assert AuditRecord.objects.filter(object_type="log_row", item_code="CMDOSE", new_value="1").exists()

    with signed_in(browser, base, "monitor") as page:
        page.goto(f"{base}/log-rows/{medication.pk}/")
        expect(page.locator("#log-row-form")).to_have_count(0)  # the monitor reads, never enters
        page.locator("#raise-CMDOSE").click()
        page.locator("#query-raise-form textarea").fill(QUESTION)
        page.get_by_role("button", name="Raise query").click()
        expect(page.get_by_text("The query was raised; the site will answer it.")).to_be_visible()
        expect(page.locator("#queries-CMDOSE .query-thread")).to_contain_text("Query: Open")

    query = Query.objects.get(record_type="log_row", record_id=medication.pk)
    assert (query.field_code, query.state, query.message) == ("CMDOSE", "open", QUESTION)
