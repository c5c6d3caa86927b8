"""A coordinator screens a candidate, enrols them in the MSC arm and sees their visit schedule, in Chromium."""

import datetime
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser.menu import open_menu
from tests.factories import PASSWORD
from trial.models import Participant, ParticipantStatus

pytestmark = pytest.mark.browser

VISIT_CODES = ["M0", "M3", "M6", "M9", "M12", "FU18", "FU24", "FU30", "FU36"]


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site dashboard")).to_be_visible()


def fill_eligible_candidate(page: Page) -> None:
    today = timezone.localdate()
    page.get_by_label("Initials").fill("HL")
    page.get_by_label("Sex").select_option("M")
    page.get_by_label("Date of birth").fill(f"{today.year - 48}-03-15")
    page.get_by_label("Screening date").fill((today - datetime.timedelta(days=2)).isoformat())
    page.get_by_label("Date of written informed consent").fill((today - datetime.timedelta(days=2)).isoformat())
    page.get_by_label("Clinical diagnosis").select_option("decompensated")
    page.get_by_label("Total bilirubin").fill("45.0")
    page.get_by_label("Albumin").fill("31.0")
    page.get_by_label("INR").fill("1.80")
    page.get_by_label("Ascites").select_option("mild")
    page.get_by_label("Hepatic encephalopathy").select_option("none")
    page.locator("input[name=criterion_IN5][value=yes]").check()
    for number in range(1, 10):
        page.locator(f"input[name=criterion_EX{number}][value=no]").check()


def test_coordinator_screens_enrols_and_sees_the_schedule(live_server, page: Page, coordinator1, site1):
    log_in(page, live_server.url, "coordinator1")

    open_menu(page, "Participants", "Screen a candidate")
    expect(page.get_by_role("heading", name="Screen a candidate")).to_be_visible()
    fill_eligible_candidate(page)
    page.get_by_role("button", name="Record screening").click()

    expect(page.get_by_text("screened: eligible.")).to_be_visible()
    # Bilirubin 2 + albumin 2 + INR 2 + ascites 2 + encephalopathy 1.
    expect(page.locator("#child-pugh")).to_have_text("Class B, 9 points")
    expect(page.locator("#eligibility")).to_contain_text("Eligible")

    page.get_by_role("link", name="Enrol").click()
    page.get_by_label("Conventional therapy + UC-MSC").check()
    page.get_by_role("button", name="Enrol").click()

    expect(page.get_by_text(re.compile(r"enrolled as 01-\d{3}\."))).to_be_visible()
    expect(page.locator("#participant-arm")).to_have_text("Conventional therapy + UC-MSC")
    expect(page.locator("#visit-schedule tbody tr")).to_have_count(len(VISIT_CODES))
    codes = page.locator("#visit-schedule tbody tr").evaluate_all("rows => rows.map(r => r.dataset.visit)")
    assert codes == VISIT_CODES
    expect(page.locator('#visit-schedule tr[data-visit="M0"]')).to_contain_text(timezone.localdate().isoformat())

    participant = Participant.objects.get()
    assert participant.status == ParticipantStatus.ENROLLED
    assert participant.arm.code == "MSC"
    assert participant.enrolled_by == coordinator1
