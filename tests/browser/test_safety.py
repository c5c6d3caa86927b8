"""Safety in Chromium: investigator1 confirms a proposed lab AE, coordinator1 reports an SAE, and the monitor sees it
on the safety dashboard, with its notices sent and the bell in the navigation bar. One browser context per user."""

import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from capture.services import form_save
from safety import lab
from safety.models import AdverseEvent, AdverseEventStatus, Notification
from tests.browser.menu import open_menu
from tests.browser.test_review import signed_in
from tests.factories import enrolled
from trial.models import Participant

pytestmark = pytest.mark.browser

LIVER_NORMAL = {"ALT": "30", "AST": "30", "ALB": "42", "PREALB": "200", "BILI": "15", "BILDIR": "5"}
SAE_TERM = "Upper gastrointestinal bleeding"


def propose_alt_increase(user: object, participant: Participant) -> AdverseEvent:
    """M0 normal, then ALT 300 U/L (six times the upper limit) at M3: the grading proposes a grade 3 event."""
    form_id = None
    for code, alt in (("M0", "30"), ("M3", "300")):
        visit = participant.visits.get(definition__code=code)
        sampled = max(visit.window_start, min(visit.target_date, timezone.localdate()))
        values = {**LIVER_NORMAL, "ALT": alt, "LBDAT": sampled.isoformat()}
        form_id = form_save(user=user, visit_id=visit.pk, form_code="LIVER", version=0, values=values).form.pk
    lab.form_grade(form_id=form_id)  # already graded after the commit; a second run changes nothing
    return AdverseEvent.objects.get(participant=participant, status=AdverseEventStatus.PROPOSED)


def open_safety_dashboard(page: Page) -> None:
    open_menu(page, "Safety", "Safety dashboard")
    expect(page.get_by_role("heading", name="Site safety dashboard")).to_be_visible()


def test_investigator_confirms_coordinator_reports_an_sae_and_the_monitor_sees_it(
    live_server, browser: Browser, coordinator1, investigator1, monitor, site1
):
    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=100)
    proposal = propose_alt_increase(coordinator1, participant)
    base = live_server.url

    with signed_in(browser, base, "investigator1") as page:
        open_safety_dashboard(page)
        proposals = page.locator("#proposal-table")
        expect(proposals).to_contain_text("Alanine aminotransferase increased")
        proposals.get_by_role("link", name=proposal.label).click()
        expect(page.locator("#lab-origin")).to_contain_text("300")
        page.get_by_role("link", name="Confirm as adverse event").click()
        expect(page.get_by_label("Adverse event", exact=True)).to_have_value("Alanine aminotransferase increased")
        expect(page.get_by_label("Onset date")).to_have_value(proposal.onset_date.isoformat())
        page.get_by_label("Grade (protocol scale 0-4)").select_option("2")
        page.get_by_label("Relationship to the study treatment").select_option("possible")
        page.get_by_label("Action taken").select_option("none")
        page.get_by_label("Outcome").select_option("not_recovered")
        page.get_by_role("button", name="Confirm as adverse event").click()
        expect(page.get_by_text(f"{proposal.label} was confirmed as an adverse event.")).to_be_visible()
        expect(page.locator(".ae-status")).to_have_text("Reported")
    proposal.refresh_from_db()
    assert (proposal.status, proposal.grade, proposal.decided_by) == (AdverseEventStatus.REPORTED, 2, investigator1)

    with signed_in(browser, base, "coordinator1") as page:
        page.goto(f"{base}/participants/{participant.pk}/")
        page.get_by_role("link", name="Adverse events and survival").click()
        expect(page.locator("#adverse-events")).to_contain_text("Alanine aminotransferase increased")
        page.get_by_role("link", name="Report adverse event").click()
        yesterday = timezone.localdate() - datetime.timedelta(days=1)
        page.get_by_label("Adverse event", exact=True).fill(SAE_TERM)
        page.get_by_label("Body system (MedDRA SOC)").select_option("gastrointestinal")
        page.get_by_label("Onset date").fill(yesterday.isoformat())
        page.get_by_label("Grade (protocol scale 0-4)").select_option("4")
        page.get_by_label("Relationship to the study treatment").select_option("unlikely")
        page.get_by_label("Action taken").select_option("hospitalisation")
        page.get_by_label("Outcome").select_option("not_recovered")
        page.get_by_label("Serious adverse event").check()
        page.get_by_label("Requires or prolongs hospitalisation").check()
        page.get_by_role("button", name="Report", exact=True).click()
        expect(page.get_by_text("AE-002 was reported.")).to_be_visible()
        expect(page.locator("#event-term")).to_have_text(SAE_TERM)
        expect(page.locator("#notifications")).to_contain_text("All sent")
    sae = AdverseEvent.objects.get(participant=participant, number=2)
    assert sae.serious and sae.expedited_at is not None
    assert Notification.objects.filter(user=monitor, adverse_event=sae).exists()

    with signed_in(browser, base, "monitor") as page:
        expect(page.locator("#notification-count [data-unread]")).to_have_text("1 unread notification")
        open_safety_dashboard(page)
        row = page.locator(f'#serious-table tr[data-event="{sae.pk}"]')
        expect(row).to_contain_text(participant.subject_id)
        expect(row).to_contain_text(SAE_TERM)
        expect(row.locator(".notice-state")).to_have_text("All sent")
        expect(page.locator('[data-count="serious"]')).to_have_text("1")
        expect(page.locator('[data-count="proposals"]')).to_have_text("0")
        page.get_by_role("link", name="Safety listing across sites").click()
        listing = page.locator("#safety-listing")
        expect(listing).to_contain_text("Alanine aminotransferase increased")
        expect(listing).not_to_contain_text(SAE_TERM)
        page.locator("#notification-bell").click()
        expect(page.locator("#notification-list")).to_contain_text(f"SAE {participant.subject_id} AE-002")
        expect(page.locator("#notification-count [data-unread]")).to_have_count(0)
