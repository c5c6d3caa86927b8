"""The safety pages' readable values: a lab-proposed event's graded value with its unit, and its CTCAE criterion
as a sentence (safety/display.py)."""

from django import template

from safety import display
from safety.models import AdverseEvent

register = template.Library()


@register.filter
def lab_value(event: AdverseEvent) -> str:
    """'29.5 g/L': the event's graded lab value with its item's decimals and unit."""
    return display.event_lab_value(event)


@register.filter
def lab_criterion(event: AdverseEvent) -> str:
    """'29.5 g/L, below 30 g/L: grade 2'."""
    return display.event_criterion(event)
