"""How a value reads for people, on a page, in a PDF or in a safety text: the one place that shows a number with
its item's decimals and unit, a time in the trial's time zone, and a coded value by its label.

Stored values stay as they are (Decimal(20,6) numbers, ISO text in the audit trail, codes); these functions only
render them, in the active language. Exports and the API keep the stored form.
"""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation

from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language
from django.utils.translation import gettext as _

MINUTES = "Y-m-d H:i"
SECONDS = "Y-m-d H:i:s"


def number(value: Decimal | int | str | None, *, decimals: int | None = None, unit: str = "") -> str:
    """A number as people read it: `decimals` places at least (as the item is entered), never fewer than the value
    holds (a stored digit is never rounded away), no trailing zeros of the column's scale, no exponent, the active
    language's separators, then the unit. '' for None or text that is not a number."""
    try:
        exact = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    if value is None or not exact.is_finite():
        return ""
    places = max(decimals or 0, _places(exact))
    text = formats.number_format(exact.quantize(Decimal(1).scaleb(-places)), decimal_pos=places, use_l10n=True)
    return f"{text} {unit}" if unit else text


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def item_number(value: Decimal | int | str | None, item: object | None, *, unit: bool = True) -> str:
    """A value of an item (ItemDefinition or anything with `decimals` and `unit`), with its decimals and unit."""
    if item is None:
        return number(value)
    return number(value, decimals=getattr(item, "decimals", None), unit=getattr(item, "unit", "") if unit else "")


def moment(value: datetime.datetime | str | None, *, seconds: bool = False, zone: object | None = None) -> str:
    """A time in the trial's time zone (the current one, or `zone`), to the minute or the second: never ISO text with
    microseconds. Takes an aware datetime or the ISO text the audit trail stores; other text comes back as it is."""
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip()) if "T" in value or ":" in value else None
        except ValueError:  # well formed but no real time (month 13): shown as stored
            parsed = None
        if parsed is None:
            return value
        value = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, datetime.UTC)
    if value is None:
        return ""
    return formats.date_format(timezone.localtime(value, zone), SECONDS if seconds else MINUTES)


def in_language(label: str, label_zh: str = "") -> str:
    """The Chinese label when the page is in Chinese and one is given, else the English one."""
    return label_zh if label_zh and (get_language() or "").startswith("zh") else label


def choice_label(choices: list, code: str) -> str:
    """A protocol choice list's ([[code, label, label_zh], ...]) label of `code`, in the active language; the code
    itself when the list does not hold it (a value captured under another version)."""
    for choice in choices or ():
        if choice and choice[0] == code:
            return in_language(choice[1], choice[2] if len(choice) > 2 else "")
    return code


def yes_no(text: str) -> str:
    """'true'/'false' (and 'yes'/'no', as the safety audit writes them) in words; other text as it is."""
    lowered = text.strip().lower()
    if lowered in {"true", "yes"}:
        return str(_("Yes"))
    if lowered in {"false", "no"}:
        return str(_("No"))
    return text


def item_value(text: str, item: object | None) -> str:
    """A value of an item as the audit trail stores it (a number, an ISO date, a choice code, 'true'/'false'), as
    people read it: the number with the item's decimals and unit, the choice's label, yes or no."""
    if not text or item is None:
        return text
    data_type = getattr(item, "data_type", "")
    if data_type in {"decimal", "integer"}:
        return number(text, decimals=item.decimals, unit=item.unit) or text
    if data_type == "choice":
        return choice_label(item.choices, text)
    if data_type == "boolean":
        return yes_no(text)
    return text
