"""Small helpers of the data-entry pages: flag badges, reference ranges, form states, audit values."""

from decimal import Decimal

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from capture.models import Flag, FormState, MissingReason
from capture.query_text import query_text
from capture.selectors import CurrentValue
from trial import display
from trial.models import DataType, ItemDefinition

register = template.Library()

# Short enough to sit beside a value; the title gives the long label.
_FLAG_BADGES = {
    Flag.HIGH: (gettext_lazy("High"), "text-bg-danger"),
    Flag.LOW: (gettext_lazy("Low"), "text-bg-primary"),
    Flag.RULE: (gettext_lazy("check"), "text-bg-warning"),
    Flag.WINDOW: (gettext_lazy("window"), "text-bg-warning"),
}
_AUDIT_ACTIONS = {
    "create": gettext_lazy("Entered"),
    "update": gettext_lazy("Changed"),
    "state": gettext_lazy("Form state"),
    "verify": gettext_lazy("Source data verified"),
}


@register.filter
def flag_label(flag: str) -> str:
    return str(_FLAG_BADGES[flag][0]) if flag in _FLAG_BADGES else flag


@register.filter
def flag_class(flag: str) -> str:
    return _FLAG_BADGES[flag][1] if flag in _FLAG_BADGES else "text-bg-secondary"


@register.filter
def flag_title(flag: str) -> str:
    return str(Flag(flag).label) if flag in Flag.values else flag


def _number(value: Decimal) -> str:
    return display.number(value)


@register.filter
def reference_range(item: ItemDefinition) -> str:
    """'ref 9-50 U/L', or '' for an item without a reference range."""
    low, high = item.reference_low, item.reference_high
    if low is None and high is None:
        return ""
    if low is None:
        bounds = f"≤ {_number(high)}"
    elif high is None:
        bounds = f"≥ {_number(low)}"
    else:
        bounds = f"{_number(low)}-{_number(high)}"
    return (_("ref %(range)s %(unit)s") % {"range": bounds, "unit": item.unit}).strip()


@register.filter
def form_state_label(state: str) -> str:
    return str(FormState(state).label) if state in FormState.values else state


@register.filter
def missing_label(reason: str) -> str:
    return str(MissingReason(reason).label) if reason in MissingReason.values else reason


@register.filter
def audit_action(action: str) -> str:
    return str(_AUDIT_ACTIONS.get(action, action))


@register.filter
def audit_value(text: str, item: ItemDefinition | None = None) -> str:
    """An audit trail value as people read it: a missing value's reason ('<not_done>') by its label, a number with
    its item's decimals and unit, a choice by its label, yes or no in words."""
    if text.startswith("<") and text.endswith(">") and text[1:-1] in MissingReason.values:
        return f"({MissingReason(text[1:-1]).label})"
    return display.item_value(text, item)


@register.filter
def shown_value(current: CurrentValue) -> str:
    """A stored value as the report would read it: a choice by its label, yes/no in words, '' when empty."""
    item, value = current.item, current.value
    if value.missing_reason:
        return f"({missing_label(value.missing_reason)})"
    if not value.has_value:
        return ""
    if item.data_type == DataType.BOOLEAN:
        return str(_("Yes") if value.text == "true" else _("No"))
    if item.data_type == DataType.CHOICE:
        return display.choice_label(item.choices, value.text)
    if value.number is not None:
        return display.item_number(value.number, item, unit=False)  # the page writes the unit beside it
    return current.display


@register.filter
def query_message(query: object, text: str | None = None) -> str:
    """A query's message in the reader's language (an automatic one is rendered from its check); `text`, when
    given, is the thread's latest message, shown as written unless it is the query's own."""
    if text is not None and text != query.message:
        return text
    return query_text(query)
