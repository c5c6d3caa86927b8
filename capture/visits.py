"""Reaching a visit and its forms: always through trial/access.py, with what the form definitions read loaded."""

import functools

from django.db import connection
from django.http import Http404
from django.utils.translation import gettext as _

from capture.definitions import FormSpec, visit_forms, with_schedule
from trial import access
from trial.access import Action
from trial.errors import InvalidInput
from trial.models import Participant, Protocol, Site, Visit
from trial.plain_rows import Columns
from trial.prepared import execute_prepared


def visit_or_404(user: object, visit_id: int, action: Action = Action.VIEW, *, lock: bool = False) -> Visit:
    """The visit if the user may see it (else 404) and may do `action` at its site (else 403), in one query.

    With `lock`, the participant and then the visit stay locked to the end of the transaction (the lock order of
    trial/locking.py), so every other write to their data waits.
    """
    if lock:
        visit = _locked_visit(visit_id, access.site_ids(user))
    else:
        visits = (
            access.visits(user)
            .select_related("participant__protocol", "participant__site")
            .defer("participant__protocol__definition")  # large; read once per process (protocol_definition)
        )
        visit = access.get_or_404(visits, pk=visit_id)
    if action != Action.VIEW:
        access.require(user, action, visit.participant.site_id)
    return with_schedule(visit)  # its definition and the participant's arm: the protocol version's, cached


_VISIT = Columns(Visit, "v")
_PARTICIPANT = Columns(Participant, "p")
_PROTOCOL = Columns(Protocol, "pr", defer=("definition",))  # large; read once per process (protocol_definition)
_SITE = Columns(Site, "s")


def _locked_visit(visit_id: int, site_ids: list[int]) -> Visit:
    """The visit of one of `site_ids` with its participant, protocol and site, the participant locked: steps 1
    and 2 of trial/locking.py in one statement, as `locking.lock_visit` takes them (FOR NO KEY UPDATE OF the
    participant only).

    Every save reads it. Plain SQL (trial/plain_rows.py), since the ORM took twice as long to build this statement
    as the database took to run it; and on PostgreSQL a statement prepared once per connection (trial/prepared.py),
    since planning its four joins took the database three times as long as running it. The same rows, columns and
    lock as the queryset it replaces; a visit out of scope is 404.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            numbers = [f"${n}" for n in range(2, len(site_ids) + 2)]
            execute_prepared(
                cursor,
                name=f"capture_locked_visit_{len(site_ids)}",
                sql=functools.partial(_locked_visit_sql, "$1", numbers, " FOR NO KEY UPDATE OF p"),
                types=["bigint"] * (1 + len(site_ids)),
                params=[visit_id, *site_ids],
            )
        else:
            cursor.execute(_locked_visit_sql("%s", ["%s"] * len(site_ids), ""), [visit_id, *site_ids])
        row = cursor.fetchone()
    if row is None:
        raise Http404("No visit matches the given query.")
    visit = _VISIT.build(row)
    participant = _PARTICIPANT.build(row, len(_VISIT))
    start = len(_VISIT) + len(_PARTICIPANT)
    protocol, site = _PROTOCOL.build(row, start), _SITE.build(row, start + len(_PROTOCOL))
    participant._state.fields_cache.update(protocol=protocol, site=site)
    visit._state.fields_cache["participant"] = participant
    return visit


def _locked_visit_sql(visit: str, sites: list[str], lock: str) -> str:
    return (
        f"SELECT {_VISIT.sql()}, {_PARTICIPANT.sql()}, {_PROTOCOL.sql()}, {_SITE.sql()} "
        f"FROM {Visit._meta.db_table} v "
        f"JOIN {Participant._meta.db_table} p ON p.id = v.participant_id "
        f"JOIN {Protocol._meta.db_table} pr ON pr.id = p.protocol_id "
        f"JOIN {Site._meta.db_table} s ON s.id = p.site_id "
        f"WHERE v.id = {visit} AND p.site_id IN ({', '.join(sites) or 'NULL'}){lock}"
    )


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
