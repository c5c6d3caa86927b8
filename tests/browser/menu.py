"""The menu bar as a user works it: the screen size of a hospital laptop, and a page reached through a group of the
menu (a dropdown), as a mouse user would."""

from playwright.sync_api import Page

LAPTOP = {"width": 1366, "height": 768}


def open_menu(page: Page, group: str, entry: str) -> None:
    """Click the menu group `group`, then its entry `entry`."""
    page.locator("#main-menu").get_by_role("button", name=group, exact=True).click()
    page.locator("#main-menu").get_by_role("link", name=entry, exact=True).click()
