"""Small helpers for the trial pages: localised protocol text, ages, visit states, the user's roles."""

import datetime

from django import template
from django.utils.translation import get_language

from trial import access
from trial.access import Action
from trial.models import Role, VisitState
from trial.system_text import system_text, system_user_label

register = template.Library()


@register.filter
def localized(obj: object, field: str) -> str:
    """`obj.<field>_zh` when the page is in Chinese and the protocol file gives one, else `obj.<field>`."""
    if (get_language() or "").startswith("zh"):
        text = getattr(obj, f"{field}_zh", "")
        if text:
            return text
    return getattr(obj, field, "")


@register.filter
def age_on(participant: object, day: datetime.date) -> int:
    return participant.age_on(day)


@register.filter
def state_label(state: str) -> str:
    return VisitState(state).label if state in VisitState.values else ""


@register.simple_tag(takes_context=True)
def may_anywhere(context: template.Context, action: str) -> bool:
    """Whether the page's user may do `action` at any of their sites (to show or hide a menu entry)."""
    return access.can_anywhere(context["request"].user, Action(action))


@register.simple_tag(takes_context=True)
def user_roles(context: template.Context) -> str:
    """The page user's roles, as labels, in the order Role lists them."""
    held = set(access.site_roles(context["request"].user).values())
    return ", ".join(str(role.label) for role in Role if role in held)


@register.filter
def state_on(visit: object, day: datetime.date) -> str:
    return visit.state_on(day)


@register.filter(name="system_text")
def system_text_filter(text: str) -> str:
    """A reason the system wrote (in English) in the page's language; what a person wrote, as written."""
    return system_text(text or "")


@register.filter
def audit_who(username: str) -> str:
    """Who wrote an audit record: the user's log-in name, or the system (the name audit records give it)."""
    return system_user_label(username or "")
