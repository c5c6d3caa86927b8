"""Template helpers of the safety pages."""

from django import template

from safety.terms import notice_in_language, term_in_language

register = template.Library()


@register.filter
def ae_term(term: str) -> str:
    """An adverse event's (CTCAE) term in the page's language."""
    return term_in_language(term or "")


@register.filter
def notice_text(text: str) -> str:
    """An in-app SAE notice (stored in English) in the reader's language; any other notice as stored."""
    return notice_in_language(text)
