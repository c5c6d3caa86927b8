"""Reaching a visit and its forms: always through trial/access.py, with what the form definitions read loaded."""

from django.http import Http404
from django.utils.translation import gettext as _

from capture.definitions import FormSpec, visit_forms, with_schedule
from trial import access, locking
from trial.access import Action
from trial.errors import InvalidInput
from trial.models import Visit


def visit_or_404(user: object, visit_id: int, action: Action = Action.VIEW, *, lock: bool = False) -> Visit:
    """The visit if the user may see it (else 404) and may do `action` at its site (else 403), in one query.

    With `lock`, the participant and then the visit stay locked to the end of the transaction (the lock order of
    trial/locking.py), so every other write to their data waits.
    """
    visits = (
        access.visits(user)
        .select_related("participant__protocol", "participant__site")
        .defer("participant__protocol__definition")  # large; read once per process (protocol_definition)
    )
    if lock:
        visits = locking.lock_visit(visits)
    visit = access.get_or_404(visits, pk=visit_id)
    if action != Action.VIEW:
        access.require(user, action, visit.participant.site_id)
    return with_schedule(visit)  # its definition and the participant's arm: the protocol version's, cached


def visit_form(visit: Visit, form_code: str) -> FormSpec | None:
    """The form if it is collected at this visit for this participant's arm."""
    return next((spec for spec in visit_forms(visit) if spec.code == form_code), None)


def next_form(visit: Visit, form_code: str) -> FormSpec | None:
    """The form after `form_code` in the visit's form order, or None after the last."""
    specs = visit_forms(visit)
    codes = [spec.code for spec in specs]
    position = codes.index(form_code) if form_code in codes else len(codes)
    return specs[position + 1] if position + 1 < len(specs) else None


def _not_collected(form_code: str) -> str:
    return _("%(form)s is not collected at this visit.") % {"form": form_code}


def form_or_404(visit: Visit, form_code: str) -> FormSpec:
    """For pages and reads: a form not collected here does not exist here."""
    spec = visit_form(visit, form_code)
    if spec is None:
        raise Http404(_not_collected(form_code))
    return spec


def form_or_invalid(visit: Visit, form_code: str) -> FormSpec:
    """For services: a form not collected here is a field error on `form`."""
    spec = visit_form(visit, form_code)
    if spec is None:
        raise InvalidInput(errors={"form": [_not_collected(form_code)]})
    return spec
