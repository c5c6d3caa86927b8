"""Every page as every role, in English and in Chinese, on the demo data: no server error, no raw template syntax,
no raw value (an ISO time with microseconds, a number with the database column's six decimals).

The crawl starts at each role's home page and follows the links and htmx fragments a user can reach, a couple of
addresses per URL shape (the same page for another id adds nothing), so it finds pages nobody listed by hand.
"""

import re
from collections import Counter, deque
from html.parser import HTMLParser
from io import StringIO
from urllib.parse import urldefrag, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings

ROLES = ["coordinator1", "investigator1", "monitor", "datamanager", "sponsor"]
LANGUAGES = ["en", "zh-hans"]
RAW_SYNTAX = re.compile(r"\{[#%{]|[#%}]\}")
# Raw values: a time as ISO text with microseconds (the audit trail's form), a number with the column's six decimals.
RAW_VALUES = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+|\b\d+\.\d{6}\b")
SKIP_PREFIXES = ("/accounts/logout", "/api/", "/admin/", "/i18n/", "/static/", "/media/", "/favicon.ico")
PER_SHAPE = 2
MAX_PAGES = 150


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name == "href" and tag == "a" or name == "hx-get"):
                self.links.append(value)


def _shape(path: str) -> str:
    return re.sub(r"\d+", "N", path)


def _internal(link: str) -> str | None:
    url, _fragment = urldefrag(link)
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    if parts.path.startswith(SKIP_PREFIXES):
        return None
    return url


def crawl(client: Client) -> dict[str, str]:
    """Every reachable page's problem, by address (empty when every page is sound); also how many were seen."""
    problems: dict[str, str] = {}
    seen: set[str] = set()
    per_shape: Counter[str] = Counter()
    queue = deque(["/"])
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        if response.status_code >= 500:
            problems[url] = f"answered {response.status_code}"
            continue
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        raw = RAW_SYNTAX.search(html)
        if raw:
            problems[url] = f"raw template syntax {html[max(0, raw.start() - 60) : raw.end() + 60]!r}"
        value = RAW_VALUES.search(html)
        if value:
            problems[url] = f"raw value {html[max(0, value.start() - 60) : value.end() + 20]!r}"
        parser = _Links()
        parser.feed(html)
        for link in parser.links:
            target = _internal(link)
            if target and target not in seen and per_shape[_shape(urlsplit(target).path)] < PER_SHAPE:
                per_shape[_shape(urlsplit(target).path)] += 1
                queue.append(target)
    problems["__pages__"] = str(len(seen))
    return problems


@pytest.fixture
def demo(protocol):
    with override_settings(DEBUG=True):
        call_command("seed_demo", stdout=StringIO())


def test_every_page_of_every_role_renders_in_both_languages(demo):
    pages = {}
    problems = {}
    for username in ROLES:
        user = get_user_model().objects.get(username=username)
        for language in LANGUAGES:
            client = Client(HTTP_ACCEPT_LANGUAGE=language)
            client.force_login(user)
            found = crawl(client)
            pages[(username, language)] = int(found.pop("__pages__"))
            problems.update({f"{username} {language} {url}": problem for url, problem in found.items()})
    assert problems == {}
    # The crawl reached the pages behind the menu, not just the home page.
    assert all(count >= 15 for count in pages.values()), pages
