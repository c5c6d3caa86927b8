"""CTCAE terms in the reader's language: the Chinese names kept beside the grading rules in `ctcae_v5.yaml`.

The stored term stays the English CTCAE v5.0 term (the sponsor's listings, MedDRA coding and the exports read it);
a page in Chinese shows its Chinese name. A term the file does not name (an investigator's verbatim term) is
shown as it was written.
"""

import re
from functools import cache

import yaml
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from safety.grading import RULES_FILE
from trial.system_text import system_text


@cache
def _rules_file() -> dict:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8")) or {}


@cache
def terms_zh() -> dict[str, str]:
    """{English CTCAE term: Chinese name}, read once per process."""
    return {str(term).casefold(): str(name) for term, name in (_rules_file().get("terms_zh") or {}).items()}


@cache
def flag_messages_zh() -> dict[str, str]:
    """{a flag's English message: its Chinese}, from the flags' `message_zh`."""
    flags = _rules_file().get("flags") or []
    return {flag["message"]: flag["message_zh"] for flag in flags if flag.get("message") and flag.get("message_zh")}


def term_in_language(term: str) -> str:
    """The term's Chinese name when the page is in Chinese and one is known, else the term as stored."""
    if term and (get_language() or "").startswith("zh"):
        return terms_zh().get(term.strip().casefold(), term)
    return term


# The one-line SAE notice safety.notify stores, in English.
_NOTICE = re.compile(
    r"^SAE (?P<subject>\S+) (?P<label>\S+) (?P<report>initial report|final report \(follow-up (?P<final>\d+)\)|"
    r"follow-up (?P<sequence>\d+)) \(site (?P<site>\d+)\): (?P<term>.*), grade (?P<grade>\d+), onset (?P<onset>\S+)$"
)


def notice_in_language(text: str) -> str:
    """A stored SAE notice in the reader's language (rendered from its parts); any other text as stored."""
    match = _NOTICE.match(text or "")
    if match is None or not (get_language() or "").startswith("zh"):
        return text
    if match["final"]:
        report = _("final report (follow-up %(sequence)s)") % {"sequence": match["final"]}
    elif match["sequence"]:
        report = _("follow-up %(sequence)s") % {"sequence": match["sequence"]}
    else:
        report = _("initial report")
    return _("SAE %(subject)s %(label)s %(report)s (site %(site)s): %(term)s, grade %(grade)s, onset %(onset)s") % {
        **match.groupdict(),
        "report": report,
        "term": term_in_language(match["term"]),
    }


_PROPOSED = re.compile(r"^(?P<term>.+) CTCAE grade (?P<grade>\d)$")
_GRADED = re.compile(r"^CTCAE v5\.0 lab grading of (?P<visit>\S+) (?P<item>\S+) = (?P<value>.+)$")
_FOLLOW_UP = re.compile(r"^Follow-up (?P<number>\d+)$")
_FINAL = re.compile(r"^Final report \(follow-up (?P<number>\d+)\)$")


def history_text_in_language(text: str) -> str:
    """A value or reason the system wrote (in English) into an event's history, in the page's language: the lab
    grading's proposal, the SAE report versions, the system's reasons. What a person wrote is shown as written."""
    if not text or not (get_language() or "").startswith("zh"):
        return text
    if text == "Initial report":
        return _("Initial report")
    for pattern, message in (
        (_FOLLOW_UP, _("Follow-up %(number)s")),
        (_FINAL, _("Final report (follow-up %(number)s)")),
        (_GRADED, _("CTCAE v5.0 lab grading of %(visit)s %(item)s = %(value)s")),
    ):
        match = pattern.match(text)
        if match:
            return message % match.groupdict()
    match = _PROPOSED.match(text)
    if match:
        return _("%(term)s, CTCAE grade %(grade)s") % {"term": term_in_language(match["term"]), "grade": match["grade"]}
    for message, message_zh in flag_messages_zh().items():
        text = text.replace(message, message_zh)  # a flag's message inside the criterion met
    return system_text(text)
