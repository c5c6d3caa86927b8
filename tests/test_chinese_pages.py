"""Every page as every role in Simplified Chinese: no English interface text.

The crawl of tests/test_pages.py visits each role's pages in zh-Hans; each page's visible text (text nodes outside
script and style, and the title, aria-label, placeholder and alt attributes) is split into words, and an ASCII word
of three letters or more is English interface text unless it is a code, a unit, an identifier or a proper name on
the allow-list below. The allow-list holds no English words: a page that shows one is fixed by translating it.
"""

import re
import zoneinfo
from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.test import Client

from capture.models import ItemValue, Lock, LogValue, Query, QueryEvent, QueryOrigin
from safety.models import AdverseEvent, AdverseEventSource, DeathReport, SeriousAdverseEvent
from tests.test_pages import MAX_PAGES, PER_SHAPE, ROLES, _internal, _Links
from tests.test_pages import _shape as _page_shape
from tests.test_pages import demo as demo  # the seeded demo, as a fixture
from trial.models import AuditRecord, DataType, Protocol, Site
from trial.system_text import SYSTEM_REASONS

SHOWN_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt"}
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_./@-]*")
# Codes and identifiers: all capitals or capitals with digits (ALB, M0, IL1B, SCR-01-0001, CTCAE), units and
# their fractions (mg/dL, g/L, umol/L), anything with a digit, e-mail and web addresses, file names, identifiers
# with an underscore (child_pugh_class, not_recovered), and a name called as a function in a formula (meld(...)).
CODE = re.compile(
    r"^([A-Z0-9][A-Z0-9_./+-]*|[a-zA-Z]{0,5}/[a-zA-Z0-9]+|.*[0-9].*|.*@.*|.*\.(pdf|csv|xml|zip|example)|\w*_\w*)$"
)
# A time zone by its IANA name (Asia/Shanghai, America/Argentina/Buenos_Aires, Hongkong), as the zone menu offers.
TIME_ZONE = re.compile(r"^[A-Z][A-Za-z_-]+(/[A-Za-z_+-]+)+$")
TIME_ZONES = frozenset(zoneinfo.available_timezones())
CALL = re.compile(r"\(")
# An attribute whose whole value is one lower-case identifier is a code shown for reference (title="outcome").
IDENTIFIER = re.compile(r"^[a-z][a-z_]*$")
# Literal code the page quotes (a file's header, a formula): shown as it must be typed.
LITERAL_TAGS = {"code", "pre", "kbd", "samp"}
HIDDEN_TAGS = {"script", "style", "template"}
# Proper names, units, standards and brands that are the same in a Chinese interface.
ALLOWED = {
    # units
    "mmol",
    "umol",
    "mL",
    "dL",
    "mmHg",
    "kg",
    "cm",
    "bpm",
    "mg",
    "min",
    "beats/min",
    # standards, formats and products named in the interface
    "CTCAE",
    "CDISC",
    "ODM",
    "MedDRA",
    "CIOMS",
    "ICH",
    "NCT01573923",
    "Child-Pugh",
    "Pugh",
    "Child",
    "MELD-Na",
    "MELD",
    "Excel",
    "zip",
    "Bootstrap",
    "Celery",
    "Crontab",
    "crontab",
    "htmx",
    "OpenAPI",
    "API",
    "Token",
    "Swagger",
    "PDF",
    "CSV",
    "UTC",
    "Asia/Shanghai",
    # demo users' log-in names and the product's own name
    "coordinator1",
    "coordinator2",
    "investigator1",
    "investigator2",
    "monitor",
    "datamanager",
    "sponsor",
    "admin",
    "EDC",
    # each language is offered under its own name in the language menu
    "English",
}


class _ShownText(HTMLParser):
    """The text a user reads: text nodes outside script, style and template (and outside quoted code), and the
    attributes shown."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hidden_depth = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_TAGS | LITERAL_TAGS:
            self.hidden_depth += 1
        for name, value in attrs:
            if name in SHOWN_ATTRIBUTES and value and not IDENTIFIER.match(value):
                self.chunks.append(value)
            if tag == "input" and name == "value" and value and dict(attrs).get("type") in {"submit", "button"}:
                self.chunks.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS | LITERAL_TAGS and self.hidden_depth:
            self.hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.chunks.append(data)


def entered_words() -> set[str]:
    """Words people typed (free text of values, queries, events, narratives) and proper names of the records:
    data, not interface text. The demo's people write English; what they wrote is shown as written."""
    texts: list[str] = []
    for model in (ItemValue, LogValue):
        texts += model.objects.filter(item__data_type=DataType.TEXT).values_list("text", flat=True)
    texts += Query.objects.exclude(origin=QueryOrigin.AUTOMATIC).values_list("message", flat=True)
    texts += QueryEvent.objects.values_list("text", flat=True)
    texts += Lock.objects.values_list("reason", flat=True)
    # Reasons for change a person gave (the system's own reasons are translated: trial/system_text.py).
    people = AuditRecord.objects.exclude(username="system").exclude(reason__in=SYSTEM_REASONS)
    texts += people.values_list("reason", flat=True).distinct()
    texts += AdverseEvent.objects.values_list("description", flat=True)
    texts += AdverseEvent.objects.filter(source=AdverseEventSource.SITE).values_list("term", flat=True)
    texts += AdverseEvent.objects.values_list("dismiss_reason", flat=True)
    for sae in SeriousAdverseEvent.objects.all():
        texts += [sae.narrative, sae.relevant_tests, sae.relevant_history, sae.sponsor_assessor, sae.sponsor_comment]
        texts += [str(sae.suspect_medications), str(sae.concomitant_medications)]
    texts += DeathReport.objects.values_list("cause", flat=True)
    texts += Site.objects.values_list("principal_investigator", flat=True)
    texts += [str(protocol.definition.get("sponsor", "")) for protocol in Protocol.objects.all()]
    return {match.group().rstrip("./-") for text in texts for match in WORD.finditer(text or "")}


def english_words(html: str, entered: frozenset[str] = frozenset()) -> list[str]:
    """The English words a page shows: ASCII words of 3+ letters that are no code, unit or allowed name."""
    parser = _ShownText()
    parser.feed(html)
    words = []
    for chunk in parser.chunks:
        for match in WORD.finditer(chunk):
            word = match.group().rstrip("./-")
            letters = sum(char.isalpha() for char in word)
            if letters < 3 or word in ALLOWED or word in entered or word in TIME_ZONES:
                continue
            if CODE.match(word) or TIME_ZONE.match(word):
                continue
            if CALL.match(chunk, match.end()):
                continue
            words.append(word)
    return words


def _shape(path: str) -> str:
    """The page's shape; one item's history is every item's history (the form's items differ only in their data)."""
    return re.sub(r"/audit/[A-Z0-9_]+/$", "/audit/ITEM/", _page_shape(path))


def crawl_english(client: Client, entered: frozenset[str] = frozenset()) -> tuple[dict[str, list[str]], int]:
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
        words = english_words(html, entered)
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
        '<input placeholder="Search"><span aria-label="Close">x</span><td title="outcome">转归</td>'
        "<p>计算公式：meld(LIVER.BILI, INR)</p><pre>participant,visit,item</pre><p>child_pugh_class umol/L</p>"
        "<p>Spironolactone 40 mg</p><option>Africa/Addis_Ababa</option><option>Hongkong</option>"
        "<option>America/Argentina/Buenos_Aires</option>"
    )
    assert sorted(english_words(html)) == ["Close", "Participant", "Save", "Search", "Spironolactone", "form", "the"]
    # What a person typed is data, not interface text.
    assert english_words(html, frozenset({"Spironolactone"})).count("Spironolactone") == 0


def test_every_page_of_every_role_in_chinese_shows_no_english(zh_catalog, demo):
    entered = frozenset(entered_words())
    problems = {}
    pages = {}
    for username in ROLES:
        client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
        client.force_login(get_user_model().objects.get(username=username))
        found, pages[username] = crawl_english(client, entered)
        problems.update({f"{username} {url}": words for url, words in found.items()})
    assert all(count >= 15 for count in pages.values()), pages
    assert problems == {}, "\n".join(f"{page}: {words}" for page, words in problems.items())
