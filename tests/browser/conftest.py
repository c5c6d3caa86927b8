"""Playwright fixtures: one headless Chromium per session, a fresh browser context (cookies, storage) per test.

The root conftest skips `browser` tests when PostgreSQL or Chromium is missing, before these fixtures run.
"""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.menu import LAPTOP
from tests.conftest import CHROMIUM

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB", timezone_id="Asia/Shanghai", viewport=LAPTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()
