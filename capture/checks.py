"""Edit checks: parsing what was typed, hard and reference ranges, cross-item rules, visit windows.

Pure functions over definitions and values, so every rule is tested without HTTP or a database, and the
form save, the one-field check of the page and the bulk import all apply the same rules.
"""

import datetime
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from capture.models import Flag, MissingReason
from trial.models import DataType, ItemDefinition, Visit
from trial.scoring import COMPARISONS
from trial.services import hard_range_error
from trial.validators import TEXT_MAX, date_problem, text_problem

_NUMBER = re.compile(r"^[+-]?\d{1,14}(\.\d{1,6})?$")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
MAX_TEXT = TEXT_MAX


@dataclass(frozen=True)
class Typed:
    """A parsed value in the column it is stored in. All empty means no value."""

    number: Decimal | None = None
    text: str = ""
    date: datetime.date | None = None
    missing_reason: str = ""

    @property
    def is_empty(self) -> bool:
        return self.number is None and self.text == "" and self.date is None and not self.missing_reason

    @property
    def has_value(self) -> bool:
        return self.number is not None or self.text != "" or self.date is not None


EMPTY = Typed()


class ParseError(ValueError):
    pass


def parse(item: ItemDefinition, raw: object) -> Typed:
    """The typed value of what was entered for `item`; raises ParseError with a message for the user."""
    raw_text = "" if raw is None else str(raw)
    # Before normalising: NFKC would keep a NUL and could not fold a lone surrogate into anything valid.
    problem = text_problem(raw_text, multiline=item.data_type == DataType.TEXT)
    if problem:
        raise ParseError(f"{item.shown_label}: {problem}")
    text = unicodedata.normalize("NFKC", raw_text).strip()
    if text == "":
        return EMPTY
    parser = _PARSERS[item.data_type]
    return parser(item, text)


def _parse_number(item: ItemDefinition, text: str) -> Typed:
    if not _NUMBER.match(text):
        raise ParseError(
            _("%(item)s: enter a number such as 48 or 48.5, not %(text)s.")
            % {"item": item.shown_label, "text": repr(text)[:40]}
        )
    number = Decimal(text)
    if item.data_type == DataType.INTEGER and number != number.to_integral_value():
        raise ParseError(_("%(item)s: enter a whole number.") % {"item": item.shown_label})
    message = hard_range_error(item, number)
    if message:
        raise ParseError(message)
    return Typed(number=number)


def _parse_date(item: ItemDefinition, text: str) -> Typed:
    try:
        date = datetime.date.fromisoformat(text)
    except ValueError:
        raise ParseError(_("%(item)s: enter a date as YYYY-MM-DD.") % {"item": item.shown_label}) from None
    # Every date a CRF of this protocol asks for is the date of something that already happened.
    problem = date_problem(date)
    if problem:
        raise ParseError(f"{item.shown_label}: {problem}")
    return Typed(date=date)


def _parse_choice(item: ItemDefinition, text: str) -> Typed:
    codes = [choice[0] for choice in item.choices]
    if text not in codes:
        raise ParseError(
            _("%(item)s: choose one of %(codes)s.") % {"item": item.shown_label, "codes": ", ".join(codes)}
        )
    return Typed(text=text)


def _parse_boolean(item: ItemDefinition, text: str) -> Typed:
    lowered = text.lower()
    if lowered in _TRUE:
        return Typed(text="true")
    if lowered in _FALSE:
        return Typed(text="false")
    raise ParseError(_("%(item)s: answer yes or no.") % {"item": item.shown_label})


def _parse_text(item: ItemDefinition, text: str) -> Typed:
    if len(text) > MAX_TEXT:
        raise ParseError(_("%(item)s: at most %(max)d characters.") % {"item": item.shown_label, "max": MAX_TEXT})
    return Typed(text=text)


_PARSERS = {
    DataType.DECIMAL: _parse_number,
    DataType.INTEGER: _parse_number,
    DataType.DATE: _parse_date,
    DataType.CHOICE: _parse_choice,
    DataType.BOOLEAN: _parse_boolean,
    DataType.TEXT: _parse_text,
}


def parse_missing(item: ItemDefinition, reason: str) -> Typed:
    if reason not in MissingReason.values:
        raise ParseError(
            _("%(item)s: the reason a value is missing is one of %(reasons)s.")
            % {"item": item.shown_label, "reasons": ", ".join(MissingReason.values)}
        )
    return Typed(missing_reason=reason)


def reference_flag(item: ItemDefinition, number: Decimal | None) -> str | None:
    if number is None:
        return None
    if item.reference_high is not None and number > item.reference_high:
        return Flag.HIGH
    if item.reference_low is not None and number < item.reference_low:
        return Flag.LOW
    return None


def window_flag(item: ItemDefinition, date: datetime.date | None, visit: Visit) -> str | None:
    if not item.in_window or date is None:
        return None
    return None if visit.window_start <= date <= visit.window_end else Flag.WINDOW


def rule_failures(
    checks: list[dict], numbers: dict[str, Decimal | None], texts: dict[str, str] | None = None
) -> list[dict]:
    """The cross-item checks that fail; a check with an empty side is not applied.

    Two kinds: a comparison (`left op right`), and a `rise` (`after - before >= rise` while the `unless` item is
    answered no, say a fever after an infusion recorded with "no infusion reaction").
    """
    return [check for check in checks if _fails(check, numbers, texts or {})]


def _fails(check: dict, numbers: dict[str, Decimal | None], texts: dict[str, str]) -> bool:
    if check.get("kind") == "rise":
        before, after = numbers.get(check["before"]), numbers.get(check["after"])
        if before is None or after is None or texts.get(check["unless"]) != "false":
            return False
        return after - before >= Decimal(str(check["rise"]))
    left, right = numbers.get(check["left"]), numbers.get(check["right"])
    return left is not None and right is not None and not COMPARISONS[check["op"]](left, right)


def check_item(check: dict) -> str:
    """The item a failed check's query is raised on."""
    return check["after"] if check.get("kind") == "rise" else check["left"]


def window_check_code(visit: Visit) -> str:
    return f"WINDOW_{visit.definition.code}"
