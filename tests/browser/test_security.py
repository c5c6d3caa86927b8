"""The pages under the Content-Security-Policy in Chromium: nothing is blocked, the language switch (a script file,
no inline handler) still submits, and the API tokens page revokes a token."""

import pytest
from knox.models import AuthToken
from playwright.sync_api import Page, expect

from tests.browser.test_screen_and_enrol import log_in

pytestmark = pytest.mark.browser


def watch_for_csp_violations(page: Page) -> list[str]:
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return violations


def test_pages_run_under_the_policy_and_the_language_switch_works(live_server, page: Page, coordinator1, site1):
    violations = watch_for_csp_violations(page)
    log_in(page, live_server.url, "coordinator1")
    # htmx loads the notification badge after the page: htmx runs under the policy.
    page.wait_for_load_state("networkidle")
    page.locator("#language-select").select_option("zh-hans")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    page.goto(f"{live_server.url}/participants/")
    assert violations == []


def test_user_revokes_a_token_on_the_page(live_server, page: Page, coordinator1, site1):
    _token, _key = AuthToken.objects.create(user=coordinator1)
    log_in(page, live_server.url, "coordinator1")
    page.locator("#current-user").click()
    page.locator("#api-tokens-link").click()
    expect(page.locator("#token-table tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("#no-tokens")).to_be_visible()
    assert not AuthToken.objects.filter(user=coordinator1).exists()
