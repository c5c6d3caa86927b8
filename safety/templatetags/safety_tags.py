"""Template helpers of the safety pages: readable values (safety/display.py) and texts in the reader's language
(safety/terms.py)."""

from django import template

from safety import display
from safety.models import AdverseEvent, SeriousCriterion
from safety.terms import history_text_in_language, notice_in_language, term_in_language
from trial.system_text import system_user_label

register = template.Library()


@register.filter
def lab_value(event: AdverseEvent) -> str:
    """'29.5 g/L': the event's graded lab value with its item's decimals and unit."""
    return display.event_lab_value(event)


@register.filter
def lab_criterion(event: AdverseEvent) -> str:
    """'29.5 g/L, below 30 g/L: grade 2'."""
    return display.event_criterion(event)


@register.filter
def ae_term(term: str) -> str:
    """An adverse event's (CTCAE) term in the page's language."""
    return term_in_language(term or "")


@register.filter
def notice_text(text: str) -> str:
    """An in-app SAE notice (stored in English) in the reader's language; any other notice as stored."""
    return notice_in_language(text)


@register.filter
def serious_criteria_labels(codes: list[str]) -> str:
    """The serious criteria an event meets, by their labels in the page's language."""
    return ", ".join(str(SeriousCriterion(code).label) if code in SeriousCriterion.values else code for code in codes)


@register.filter
def history_text(text: str) -> str:
    """A value or reason of an event's history that the system wrote, in the page's language."""
    return history_text_in_language(text or "")


@register.filter
def audit_who(username: str) -> str:
    """Who wrote a history line: the user's log-in name, or the system in the page's language."""
    return system_user_label(username or "")
