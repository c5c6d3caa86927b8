"""The text of an automatic query in the reader's language, rendered when it is shown.

An automatic query stores the message of the check that raised it as it read at the save: the protocol's English
for a cross-item check, the saver's language for a visit window. Who reads it must not depend on who saved, so the
pages render the message again from the query's check code and the protocol (the check's `message_zh`, the item's
`label_zh`), which also makes the rows stored before this existed read right. A query a person raised is shown as
they wrote it.
"""

import re
from dataclasses import dataclass, field

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from capture.models import Query, QueryOrigin
from trial.models import FormDefinition, ItemDefinition

# The stored window message, in either language: "<item> <date> ... <start> ... <end>".
_DATE = r"\d{4}-\d{2}-\d{2}"
_WINDOW = re.compile(rf"^(?P<item>.+?) (?P<date>{_DATE}) \D+ (?P<start>{_DATE}) \D+ (?P<end>{_DATE})")


@dataclass
class _Texts:
    """Every check's (English, Chinese) message by code, and every window date's labels by either label."""

    checks: dict[str, tuple[str, str]] = field(default_factory=dict)
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    loaded_forms: int = -1


_TEXTS = _Texts()


def _load() -> None:
    """Read the checks and window labels of every protocol version (a few dozen rows; definitions never change)."""
    forms = list(FormDefinition.objects.order_by("pk").values_list("pk", "checks"))
    for _pk, checks in forms:
        for check in checks or []:
            _TEXTS.checks[check["code"]] = (check.get("message", ""), check.get("message_zh", ""))
    for label, label_zh in ItemDefinition.objects.filter(in_window=True).values_list("label", "label_zh"):
        _TEXTS.labels[label] = _TEXTS.labels[label_zh or label] = (label, label_zh)
    _TEXTS.loaded_forms = len(forms)


def _check_texts(code: str) -> tuple[str, str] | None:
    if code not in _TEXTS.checks and _TEXTS.loaded_forms != FormDefinition.objects.count():
        _load()  # a protocol version loaded since: read once more
    return _TEXTS.checks.get(code)


def _in_language(text: str, text_zh: str) -> str:
    return text_zh if text_zh and (get_language() or "").startswith("zh") else text


def _window_text(message: str) -> str:
    match = _WINDOW.match(message)
    if match is None:
        return message
    if match["item"] not in _TEXTS.labels:
        _load()
    label, label_zh = _TEXTS.labels.get(match["item"], (match["item"], ""))
    return _("%(item)s %(date)s is outside the visit window %(start)s to %(end)s.") % {
        "item": _in_language(label, label_zh),
        "date": match["date"],
        "start": match["start"],
        "end": match["end"],
    }


def query_text(query: Query) -> str:
    """The query's message as the page's reader should read it."""
    if query.origin != QueryOrigin.AUTOMATIC or not query.check_code:
        return query.message
    if query.check_code.startswith("WINDOW_"):
        return _window_text(query.message)
    texts = _check_texts(query.check_code)
    if texts is None:
        return query.message
    return _in_language(*texts) or query.message
