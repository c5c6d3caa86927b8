"""Accessibility with axe-core in Chromium: the home, list and form pages of each role have no violation of
serious or critical impact (contrast, names of controls, table headers...)."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from playwright.sync_api import Browser, Page

from capture.services import form_save
from tests.browser.test_review import signed_in
from tests.factories import enrolled
from trial.models import Visit

pytestmark = pytest.mark.browser

SEVERE = {"serious", "critical"}
ROLES = ["coordinator1", "investigator1", "monitor", "datamanager", "sponsor"]


def pages_of(visit: Visit) -> list[str]:
    participant = visit.participant
    return [
        reverse("trial:dashboard"),
        reverse("trial:participant_list"),
        reverse("trial:matrix"),
        reverse("trial:participant_detail", args=[participant.pk]),
        reverse("capture:visit", args=[visit.pk]),
        reverse("capture:form", args=[visit.pk, "LIVER"]),
        reverse("inbox:queries"),
        reverse("inbox:sdv"),
        reverse("safety:dashboard"),
    ]


def severe_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']][:5]}"
        for violation in results.response["violations"]
        if violation["impact"] in SEVERE
    ]


def test_no_serious_or_critical_violation_on_the_pages_of_each_role(
    live_server, browser: Browser, coordinator1, investigator1, monitor, datamanager, sponsor, site1
):
    participant = enrolled(coordinator1, site1, days_ago=95)
    m3 = participant.visits.get(definition__code="M3")
    values = {"LBDAT": m3.target_date.isoformat(), "ALT": "120", "AST": "32", "ALB": "25", "BILI": "18.2"}
    form_save(user=coordinator1, visit_id=m3.pk, form_code="LIVER", version=0, values=values)
    found = {}
    for username in ROLES:
        with signed_in(browser, live_server.url, username) as page:
            for path in pages_of(m3):
                response = page.goto(live_server.url + path)
                if response.status == 200:
                    page.wait_for_load_state("networkidle")
                    violations = severe_violations(page)
                    if violations:
                        found[f"{username} {path}"] = violations
    assert found == {}
