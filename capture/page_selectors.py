"""Reads of the data-entry pages. Every one starts from a trial/access.py queryset and runs a fixed number of
queries, whatever the number of items or forms.
"""

from dataclasses import dataclass

from django.db.models import CharField, QuerySet
from django.db.models.functions import Cast
from django.http import Http404
from django.utils.translation import gettext as _

from capture.checks import ParseError, parse, reference_flag, window_flag
from capture.definitions import FormSpec, visit_forms
from capture.models import FormInstance
from trial import access
from trial.models import AuditRecord, ItemDefinition, Visit


def visit_or_404(user: object, visit_id: int) -> Visit:
    """The visit if the user may see it, with its participant, site, arm, protocol and definition (1 query)."""
    return access.get_or_404(
        access.visits(user)
        .select_related("participant__protocol", "participant__arm", "participant__site", "definition")
        .defer("participant__protocol__definition"),  # large; the pages never read it
        pk=visit_id,
    )


def form_spec_or_404(visit: Visit, form_code: str) -> FormSpec:
    """The form if it is collected at this visit for the participant's arm; any other does not exist here."""
    for spec in visit_forms(visit):
        if spec.code == form_code:
            return spec
    raise Http404(_("%(form)s is not collected at this visit.") % {"form": form_code})


def item_or_404(spec: FormSpec, item_code: str) -> ItemDefinition:
    item = spec.by_code.get(item_code)
    if item is None:
        raise Http404(_("%(item)s is not an item of this form.") % {"item": item_code})
    return item


def entered_item_or_404(spec: FormSpec, item_code: str) -> ItemDefinition:
    """An item a person types; a derived item is computed, so has nothing to check as typed."""
    item = item_or_404(spec, item_code)
    if item.derived:
        raise Http404(_("%(item)s is computed, not entered.") % {"item": item_code})
    return item


@dataclass(frozen=True)
class ItemCheck:
    """What the page tells of one value as it is typed: why it would be refused, or its flags."""

    error: str = ""
    flags: tuple[str, ...] = ()


def item_check(visit: Visit, item: ItemDefinition, raw: str) -> ItemCheck:
    """The checks of one entered value that need no other item: type, hard range, reference range, window.

    Writes nothing. Cross-item rules need the whole form and are applied when it is saved.
    """
    try:
        value = parse(item, raw)
    except ParseError as error:
        return ItemCheck(error=str(error))
    flags = (reference_flag(item, value.number), window_flag(item, value.date, visit))
    return ItemCheck(flags=tuple(flag for flag in flags if flag))


def form_audit(visit: Visit, form_code: str, item_code: str = "") -> QuerySet[AuditRecord]:
    """The audit trail of one form of this visit (or of one of its items), newest first (1 query).

    The rows are those written by saves of this visit's forms: a derived item of this form changes when another
    form of the same visit is saved, so rows are matched on every form instance of the visit, not only this one.
    """
    instance_ids = FormInstance.objects.filter(visit=visit).annotate(key=Cast("pk", CharField())).values("key")
    rows = AuditRecord.objects.filter(
        participant_id=visit.participant_id, form_code=form_code, object_type="form", object_id__in=instance_ids
    )
    if item_code:
        rows = rows.filter(item_code=item_code)
    return rows.order_by("-id").only(
        "at", "username", "action", "form_code", "item_code", "old_value", "new_value", "reason"
    )


@dataclass(frozen=True)
class AuditLine:
    record: AuditRecord
    item: ItemDefinition | None  # None for a change of the form itself (its state)


def audit_lines(visit: Visit, spec: FormSpec, item_code: str = "") -> list[AuditLine]:
    """The form's audit trail at this visit, newest first, each row with its item's definition (1 query)."""
    return [
        AuditLine(record=record, item=spec.by_code.get(record.item_code))
        for record in form_audit(visit, spec.code, item_code)
    ]
