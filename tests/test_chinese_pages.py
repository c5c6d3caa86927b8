"""Every page as every role in Simplified Chinese: no English interface text.

The crawl of tests/test_pages.py visits each role's pages in zh-Hans; each page's visible text (text nodes outside
script and style, and the title, aria-label, placeholder and alt attributes) is split into words, and an ASCII word
of three letters or more is English interface text unless it is a code, a unit, an identifier or a proper name on
the allow-list below. The allow-list holds no English words: a page that shows one is fixed by translating it.
"""

import re
from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.test import Client

from tests.test_pages import MAX_PAGES, PER_SHAPE, ROLES, _internal, _Links, _shape, demo  # noqa: F401

SHOWN_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt"}
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")
# Codes and identifiers: all capitals or capitals with digits (ALB, M0, IL1B, SCR-01-0001, CTCAE), units and
# their fractions (mg/dL, g/L, umol/L, 10^9/L), e-mail addresses, addresses, file names.
CODE = re.compile(r"^([A-Z0-9][A-Z0-9_./+-]*|[a-zA-Z]{0,3}/[a-zA-Z0-9]+|.*[0-9].*|.*@.*|.*\.(pdf|csv|xml|zip))$")
# Proper names, units, standards and brands that are the same in a Chinese interface.
ALLOWED = {
    # units
    "mmol", "umol", "mL", "dL", "mmHg", "kg", "cm", "bpm", "mg", "min",
    # standards, formats and products named in the interface
    "CTCAE", "CDISC", "ODM", "MedDRA", "CIOMS", "ICH", "NCT01573923", "Child-Pugh", "Pugh", "Child",
    "Bootstrap", "htmx", "OpenAPI", "API", "Token", "Swagger", "PDF", "CSV", "UTC",
    "Asia/Shanghai",
    # demo users' log-in names and the product's own name
    "coordinator1", "coordinator2", "investigator1", "investigator2", "monitor", "datamanager", "sponsor",
    "admin", "EDC",
}


class _ShownText(HTMLParser):
    """The text a user reads: text nodes outside script, style and template, and the attributes shown."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hidden_depth = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style", "template"}:
            self.hidden_depth += 1
        for name, value in attrs:
            if name in SHOWN_ATTRIBUTES and value:
                self.chunks.append(value)
            if tag == "input" and name == "value" and value and dict(attrs).get("type") in {"submit", "button"}:
                self.chunks.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style", "template"} and self.hidden_depth:
            self.hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.chunks.append(data)


def english_words(html: str) -> list[str]:
    """The English words a page shows: ASCII words of 3+ letters that are no code, unit or allowed name."""
    parser = _ShownText()
    parser.feed(html)
    words = []
    for chunk in parser.chunks:
        for match in WORD.finditer(chunk):
            word = match.group().rstrip("./-")
            letters = sum(char.isalpha() for char in word)
            if letters < 3 or word in ALLOWED or CODE.match(word):
                continue
            words.append(word)
    return words


def crawl_english(client: Client) -> tuple[dict[str, list[str]], int]:
    """Each reachable page's English words, by address, and how many pages were read."""
    found: dict[str, list[str]] = {}
    seen: set[str] = set()
    per_shape: Counter[str] = Counter()
    queue = deque(["/"])
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        words = english_words(html)
        if words:
            found[url] = sorted(set(words))
        parser = _Links()
        parser.feed(html)
        for link in parser.links:
            target = _internal(link)
            if target and target not in seen and per_shape[_shape(urlsplit(target).path)] < PER_SHAPE:
                per_shape[_shape(urlsplit(target).path)] += 1
                queue.append(target)
    return found, len(seen)


def test_english_words_are_found_and_codes_are_not():
    html = (
        '<p title="Save the form">保存</p><script>var x = "hidden words";</script><style>.a{color:red}</style>'
        "<td>ALB 29.5 g/L</td><td>SCR-01-0001</td><td>M0</td><td>mg/dL</td><td>IL1B</td><p>受试者 Participant</p>"
        '<input placeholder="Search"><span aria-label="Close">x</span>'
    )
    assert sorted(english_words(html)) == ["Close", "Participant", "Save", "Search", "form", "the"]


def test_every_page_of_every_role_in_chinese_shows_no_english(demo):
    problems = {}
    pages = {}
    for username in ROLES:
        client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
        client.force_login(get_user_model().objects.get(username=username))
        found, pages[username] = crawl_english(client)
        problems.update({f"{username} {url}": words for url, words in found.items()})
    assert all(count >= 15 for count in pages.values()), pages
    assert problems == {}
