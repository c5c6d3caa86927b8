"""The safety texts as people read them: a graded lab value and the CTCAE criterion it met as one sentence ("29.5
g/L, below 30 g/L: grade 2"), and the values of an adverse event's history by their labels and local times.

The grading stores its criterion in one language-neutral form (`criterion_text`, e.g. "< 30 (= 30)" or "> 3.0 x
ULN (= 150.0)"); the sentence is built from it at display time, in the reader's language, with the item's decimals
and unit (trial/display.py), so that rows stored before this change read as well as new ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from capture.definitions import protocol_forms
from safety.grading import SIGNS, Grading
from safety.models import (
    ActionTaken,
    AdverseEvent,
    AdverseEventStatus,
    BodySystem,
    ChallengeResult,
    Outcome,
    Relationship,
    SeriousCriterion,
)
from trial import display
from trial.models import ItemDefinition

_CRITERION = re.compile(
    r"^(?P<flag>.*?)\s*(?P<sign>>=|<=|>|<) (?P<limit>\S+)(?: x (?P<scale>\S+))? \(= (?P<threshold>-?\d+(?:\.\d+)?)\)$"
)
_OPS = {sign: op for op, sign in SIGNS.items()}


def criterion_text(result: Grading) -> str:
    """The stored form of the criterion a value met: the flag's message, the bound, and the bound in the unit."""
    return f"{result.flag or ''} {result.boundary} (= {result.threshold:f})".strip()


@dataclass(frozen=True)
class Criterion:
    flag: str
    op: str  # gt, gte, lt, lte
    limit: str  # a multiple of `scale`, a symbol (ULN, LLN), or a value in the item's unit
    scale: str  # ULN, LLN, baseline, or ""
    threshold: Decimal


def parse_criterion(text: str) -> Criterion | None:
    """The stored criterion's parts; None for text in no known form."""
    found = _CRITERION.match((text or "").strip())
    if found is None:
        return None
    try:
        threshold = Decimal(found["threshold"])
    except InvalidOperation:
        return None
    return Criterion(found["flag"], _OPS[found["sign"]], found["limit"], found["scale"] or "", threshold)


def _crossed(op: str) -> str:
    return {
        "gt": _("above %(threshold)s"),
        "gte": _("at or above %(threshold)s"),
        "lt": _("below %(threshold)s"),
        "lte": _("at or below %(threshold)s"),
    }[op]


def _not_crossed(op: str) -> str:
    return {
        "gt": _("at or below %(threshold)s"),
        "gte": _("below %(threshold)s"),
        "lt": _("at or above %(threshold)s"),
        "lte": _("above %(threshold)s"),
    }[op]


def _scale_name(scale: str) -> str:
    return _("baseline") if scale == "baseline" else scale  # ULN and LLN are CTCAE's own abbreviations


def _bound_note(criterion: Criterion) -> str:
    """How the threshold was reached: '3 x ULN', 'ULN', '' for a value in the item's unit."""
    if criterion.limit in {"ULN", "LLN"}:
        return criterion.limit
    if not criterion.scale:
        return ""
    return f"{criterion.limit} × {_scale_name(criterion.scale)}"  # the multiple as CTCAE writes it: 3.0 x ULN


def criterion_sentence(
    *, criterion: str, value: Decimal | None, grade: int | None, item: ItemDefinition | None = None
) -> str:
    """'29.5 g/L, below 30 g/L: grade 2' in the reader's language; the stored text when it cannot be read."""
    parsed = parse_criterion(criterion)
    if parsed is None or value is None:
        return criterion
    unit = getattr(item, "unit", "") if item is not None else ""
    threshold = display.number(parsed.threshold, unit=unit)
    note = _bound_note(parsed)
    if note:
        threshold = _("%(threshold)s (%(bound)s)") % {"threshold": threshold, "bound": note}
    crossed = _crossed(parsed.op) if (grade or parsed.flag) else _not_crossed(parsed.op)
    values = {"value": display.item_number(value, item), "where": crossed % {"threshold": threshold}}
    if grade:
        return _("%(value)s, %(where)s: grade %(grade)s") % {**values, "grade": grade}
    if parsed.flag:
        return _("%(value)s, %(where)s: %(flag)s") % {**values, "flag": parsed.flag}
    return _("%(value)s, %(where)s: below grade 1") % values


def lab_item(event: AdverseEvent) -> ItemDefinition | None:
    """The graded item of a lab-proposed event, from its participant's protocol version (no query once the
    version's definitions are read; the event must come with its participant's protocol)."""
    if not event.lab_item_code or not event.lab_visit_id:
        return None
    found = None
    for spec in protocol_forms(event.participant.protocol).values():
        item = spec.by_code.get(event.lab_item_code)
        if item is not None and item.data_type in {"decimal", "integer"}:
            found = item
            if item.reference_low is not None or item.reference_high is not None:
                return item  # the lab panel's item, with the reference range the grading used
    return found


def event_lab_value(event: AdverseEvent) -> str:
    """The graded value of a lab-proposed event with its item's decimals and unit."""
    return display.item_number(event.lab_value, lab_item(event)) if event.lab_value is not None else ""


def event_criterion(event: AdverseEvent) -> str:
    """The CTCAE criterion a lab-proposed event met, as a sentence."""
    if not event.ctcae_criterion:
        return ""
    return criterion_sentence(
        criterion=event.ctcae_criterion, value=event.lab_value, grade=event.ctcae_grade, item=lab_item(event)
    )


# --- An adverse event's history ----------------------------------------------------------------------------------

_CODED_FIELDS = {
    "body_system": BodySystem,
    "relationship": Relationship,
    "sponsor_relationship": Relationship,
    "action_taken": ActionTaken,
    "outcome": Outcome,
    "status": AdverseEventStatus,
    "dechallenge": ChallengeResult,
    "rechallenge": ChallengeResult,
}
_YES_NO_FIELDS = {"serious"}
_LIST_FIELDS = {"serious_criteria": SeriousCriterion}
_TIME_FIELDS = {"expedited_at"}
_STAMPED_ACTIONS = {"sent", "expedite"}  # their new value is the time it happened
_SIX_DECIMALS = re.compile(r"\b\d+\.\d{6}\b")


def _label(choices: type, code: str) -> str:
    return str(choices(code).label) if code in choices.values else code


def history_value(text: str, *, field: str, action: str = "") -> str:
    """An old or new value of the event's history as people read it: labels for codes, yes/no in words, times in
    the trial's time zone."""
    if not text:
        return text
    if field in _CODED_FIELDS:
        return _label(_CODED_FIELDS[field], text)
    if field in _LIST_FIELDS:
        return ", ".join(_label(_LIST_FIELDS[field], code) for code in text.split(",") if code)
    if field in _YES_NO_FIELDS:
        return display.yes_no(text)
    if field in _TIME_FIELDS or action in _STAMPED_ACTIONS:
        return display.moment(text)
    return text


def history_reason(text: str) -> str:
    """A reason as stored; a number written with the column's six decimals (rows before this change) without them."""
    return _SIX_DECIMALS.sub(lambda found: display.number(found[0]), text) if text else text
