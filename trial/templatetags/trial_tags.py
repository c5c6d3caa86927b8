"""Small helpers for the trial pages: localised protocol text, ages, visit states, the user's roles."""

import datetime

from django import template
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, ngettext

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
def matrix_cells(context: template.Context, cells: list) -> SafeString:
    """A matrix row's cells (trial.selectors.matrix_rows): one tag per row, written in Python, because the
    template language would spend a third of a millisecond on each of a page's 450 cells. The visit link and the
    state labels are worked out once per page."""
    page = context.render_context.get("matrix_cells")
    if page is None:
        marker = 987654321  # a visit id in no URL but this one: its place is where each cell's id goes
        page = context.render_context["matrix_cells"] = {
            "link": reverse("capture:visit", args=[marker]).replace(str(marker), "{}"),
            "labels": {state: escape(label) for state, label in VisitState.choices},
        }
    return mark_safe("".join(_matrix_cell(cell, page) for cell in cells))  # noqa: S308 - every text escaped


_NO_VISIT = '<td class="text-center text-muted">—</td>'


def _matrix_cell(cell: object, page: dict) -> str:
    visit = cell.visit
    if visit is None:
        return _NO_VISIT
    queries = ""
    if visit.open_queries:
        n = int(visit.open_queries)
        title = escape(ngettext("%(counter)s open query", "%(counter)s open queries", n) % {"counter": n})
        queries = (
            f'<span class="badge rounded-pill text-bg-warning" data-open-queries="{n}" title="{title}">'
            f'<span aria-hidden="true">{n}</span><span class="visually-hidden">{title}</span></span>'
        )
    state = escape(cell.state)
    return (
        f'<td class="text-center visit-cell visit-{state}" data-state="{state}" '
        f'data-visit="{escape(visit.definition.code)}" '
        f'title="{visit.window_start.isoformat()} – {visit.window_end.isoformat()}">'
        f'<a class="d-block text-reset text-decoration-none" href="{page["link"].format(int(visit.pk))}">'
        f'<div class="small fw-semibold">{page["labels"].get(cell.state, "")}</div>'
        f'<div class="small">{visit.target_date.isoformat()}</div>{queries}</a></td>'
    )


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
