"""The menu bar on a hospital laptop (1366x768) and a smaller screen (1024 px), and a lab form entered with the
keyboard alone, in Chromium."""

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from capture.models import FormInstance, ItemValue
from capture.visits import next_form
from tests.browser.menu import LAPTOP
from tests.browser.test_screen_and_enrol import log_in
from tests.factories import enrolled, make_user
from trial.models import Role, Site

pytestmark = pytest.mark.browser

# Every item of the menu bar that sits on its line: the brand, the menu groups, search, language, bell, user menu.
BAR_ITEMS = ", ".join(
    ("#main-navbar .navbar-brand", "#main-menu > li", "#participant-search", "#language-form", "#notification-bell")
    + ("#user-menu > li",)
)
ON_ONE_LINE = f"""() => {{
    const boxes = [...document.querySelectorAll("{BAR_ITEMS}")].map((element) => element.getBoundingClientRect());
    const middles = boxes.map((box) => Math.round(box.top + box.height / 2));
    return {{
        count: boxes.length,
        spread: Math.max(...middles) - Math.min(...middles),
        barHeight: document.querySelector("#main-navbar").getBoundingClientRect().height,
        overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    }};
}}"""
# A select's scrollWidth does not grow with its text: measure the chosen option's name in the select's own font.
LANGUAGE_SHOWN_WHOLE = """() => {
    const select = document.querySelector("#language-select");
    const style = getComputedStyle(select);
    const context = document.createElement("canvas").getContext("2d");
    context.font = style.font;
    const text = context.measureText(select.options[select.selectedIndex].text).width;
    const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const shown = select.options[select.selectedIndex].text;
    return {text: shown, fits: text <= room, scroll: select.scrollWidth <= select.clientWidth};
}"""
ROLES = ["coordinator1", "investigator1", "monitor", "datamanager", "sponsor", "several"]


@pytest.fixture
def several(site1: Site) -> object:
    """A user with a role at each of five sites, so that every group of the menu shows, and a long name."""
    sites = Site.objects.order_by("number")[:5]
    user = make_user("several", dict(zip(sites, Role, strict=True)))
    user.first_name, user.last_name = "Alexandra-Margaretha", "Wellington-Zhang"
    user.save(update_fields=["first_name", "last_name"])
    return user


@contextmanager
def signed_in_at(browser: Browser, base_url: str, username: str, width: int) -> Iterator[Page]:
    context = browser.new_context(
        locale="en-GB", timezone_id="Asia/Shanghai", viewport={"width": width, "height": LAPTOP["height"]}
    )
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        log_in(page, base_url, username)
        yield page
    finally:
        context.close()


def test_the_menu_fits_one_line_at_1366_for_every_role_and_shows_the_language_whole(
    live_server, browser: Browser, coordinator1, investigator1, monitor, datamanager, sponsor, several
):
    found = {}
    for username in ROLES:
        with signed_in_at(browser, live_server.url, username, LAPTOP["width"]) as page:
            expect(page.locator(".navbar-toggler")).to_be_hidden()  # the full menu, not the collapsed one
            for language in ("en", "zh-hans"):
                if language != "en":
                    page.locator("#language-select").select_option(language)
                    expect(page.locator("html")).to_have_attribute("lang", language)
                line, shown = page.evaluate(ON_ONE_LINE), page.evaluate(LANGUAGE_SHOWN_WHOLE)
                found[(username, language)] = (line["spread"] <= 4, line["barHeight"] < 70, line["overflow"], shown)
                assert line["count"] >= 7  # brand, Home, Participants, Safety, search, language, bell, user
            page.locator("#language-select").select_option("en")
    expected = {
        (username, language): (True, True, 0, {"text": name, "fits": True, "scroll": True})
        for username in ROLES
        for language, name in (("en", "English"), ("zh-hans", "简体中文"))
    }
    assert found == expected


def test_each_role_sees_only_its_groups_of_the_menu(live_server, browser: Browser, coordinator1, sponsor, several):
    groups = {}
    for username in ("coordinator1", "sponsor", "several"):
        with signed_in_at(browser, live_server.url, username, LAPTOP["width"]) as page:
            groups[username] = page.locator("#main-menu > li").all_inner_texts()
    assert groups == {
        "coordinator1": ["Home", "Participants", "Review", "Safety"],
        "sponsor": ["Home", "Participants", "Safety", "Reports"],
        "several": ["Home", "Participants", "Review", "Safety", "Reports"],
    }


def test_at_1024_the_menu_collapses_behind_its_button_and_every_page_is_reached(live_server, browser: Browser, several):
    with signed_in_at(browser, live_server.url, "several", 1024) as page:
        assert page.evaluate(ON_ONE_LINE)["overflow"] == 0
        toggler = page.locator(".navbar-toggler")
        expect(toggler).to_be_visible()
        expect(page.locator("#main-menu")).to_be_hidden()
        toggler.press("Enter")  # the keyboard opens it as well as the mouse
        expect(page.locator("#main-menu")).to_be_visible()
        page.locator("#main-menu").get_by_role("button", name="Reports", exact=True).click()
        page.get_by_role("link", name="Data exports", exact=True).click()
        expect(page).to_have_url(f"{live_server.url}{reverse('exports:index')}")
        assert page.evaluate(ON_ONE_LINE)["overflow"] == 0
        toggler.click()
        expect(page.locator("#language-select")).to_be_visible()
        assert page.evaluate(LANGUAGE_SHOWN_WHOLE)["fits"] is True
        page.locator("#current-user").click()
        roles = "Site coordinator, Investigator, Monitor, Data manager, Sponsor"
        expect(page.locator("#current-roles")).to_have_text(roles)


def test_the_active_group_is_marked_and_a_hostile_path_breaks_nothing(live_server, browser: Browser, coordinator1):
    with signed_in_at(browser, live_server.url, "coordinator1", LAPTOP["width"]) as page:
        page.goto(live_server.url + reverse("trial:matrix"))
        expect(page.locator("#menu-participants > .nav-link")).to_have_class("nav-link dropdown-toggle active")
        expect(page.locator("#menu-safety > .nav-link")).not_to_have_class("nav-link dropdown-toggle active")
        page.locator("#menu-participants > .nav-link").click()
        expect(page.locator('#menu-participants a[aria-current="page"]')).to_have_text("Subject matrix")
        # A page no view answers (a 404) has no view name: no group may claim it.
        response = page.goto(live_server.url + "/matrix/%22%3E%3Cscript%3E/")
        assert response.status == 404
        expect(page.locator("#main-menu .active")).to_have_count(0)


# --- A lab form with the keyboard alone ----------------------------------------------------------------------


def watch(page: Page) -> list[str]:
    """Console errors, failed requests and responses of 400 or more, as they happen."""
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url} {request.failure}"))
    page.on(
        "response", lambda response: response.status >= 400 and problems.append(f"{response.status} {response.url}")
    )
    return problems


def tab_to(page: Page, selector: str, limit: int = 6) -> int:
    """Press Tab until the element `selector` has the focus; how many presses it took (fails past `limit`)."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("(selector) => document.activeElement.matches(selector)", selector):
            return presses
    raise AssertionError(f"{selector} not reached with {limit} Tab presses")


def test_a_whole_lab_form_entered_with_the_keyboard_alone_then_save_and_go_to_the_next_form(
    live_server, page: Page, coordinator1, site1
):
    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=100)  # M3 (day 91 +/- 14) is due
    m3 = participant.visits.select_related("definition", "participant__protocol").get(definition__code="M3")
    following = next_form(m3, "LIVER")
    problems = watch(page)
    checking: set[object] = set()  # the value checks sent and not yet answered
    page.on("request", lambda request: "/check/" in request.url and checking.add(request))
    page.on("requestfinished", lambda request: checking.discard(request))
    page.on("requestfailed", lambda request: checking.discard(request))
    log_in(page, live_server.url, "coordinator1")
    page.goto(live_server.url + reverse("capture:form", args=[m3.pk, "LIVER"]))
    page.wait_for_load_state("networkidle")

    sample = timezone.localdate()
    expect(page.locator("#id_LBDAT")).to_be_focused()  # the first value takes the focus: no click
    # Chromium's date field takes its order from the browser's own locale (en-US here), not the page's language.
    page.keyboard.type(sample.strftime("%m%d%Y"))
    expect(page.locator("#id_LBDAT")).to_have_value(sample.isoformat())
    entries = {"ALT": "120", "AST": "32", "ALB": "41.5", "PREALB": None, "BILI": "18.2", "BILDIR": "6.1"}
    for code, typed in entries.items():
        tab_to(page, f"#id_{code}")
        if typed is None:
            # No value: Tab to its missing-reason select and choose the reason by typing its first letters.
            tab_to(page, f"#id_missing_{code}", limit=1)
            page.keyboard.type("Not d")
            expect(page.locator(f"#id_missing_{code}")).to_have_value("not_done")
        else:
            page.keyboard.type(typed)
    expect(page.locator("#flags-ALT")).to_contain_text("High")  # the one-value check ran for the value typed
    tab_to(page, "#save-next", limit=12)
    expect(page.locator("#save-next")).to_have_text(f"Save and go to {following.definition.name}")
    # As a user who reads the flags before saving: every check sent has answered (on a slow machine the date's
    # check, sent after its pause, could still be on its way, and leaving the page would abort it).
    for _ in range(200):
        if not checking:
            break
        page.wait_for_timeout(50)
    assert not checking, [request.url for request in checking]
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name=following.definition.name)).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}{reverse('capture:form', args=[m3.pk, following.code])}")
    expect(page.get_by_text("Liver function of M3 saved (version 1). 1 value is flagged.")).to_be_visible()
    expect(page.locator(f"#id_{following.entered[0].code}")).to_be_focused()  # ready for the next form
    page.wait_for_load_state("networkidle")
    stored = {
        value.item.code: value
        for value in ItemValue.objects.filter(visit=m3, item__form__code="LIVER").select_related("item")
    }
    assert stored["LBDAT"].date == sample
    typed = {code: Decimal(value) for code, value in entries.items() if value is not None}
    assert {code: stored[code].number for code in typed} == typed
    assert (stored["PREALB"].number, stored["PREALB"].missing_reason) == (None, "not_done")
    assert FormInstance.objects.get(visit=m3, definition__code="LIVER").version == 1
    assert problems == []
