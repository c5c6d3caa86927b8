"""Reads of captured data that are more than one queryset. Callers pass a visit they reached through
trial/access.py (with participant, protocol, arm and definition loaded); each read is a fixed number of queries.
"""

from dataclasses import dataclass

from django.db.models import Count

from capture.checks import Typed
from capture.definitions import FormSpec, visit_forms
from capture.models import FormInstance, FormState, ItemValue, Query, QueryState
from capture.services import display, typed_of
from trial.models import ItemDefinition, Visit


@dataclass(frozen=True)
class FormSummary:
    spec: FormSpec
    instance: FormInstance | None
    open_queries: int

    @property
    def state(self) -> str:
        return self.instance.state if self.instance else FormState.NOT_STARTED

    @property
    def version(self) -> int:
        return self.instance.version if self.instance else 0


@dataclass(frozen=True)
class CurrentValue:
    item: ItemDefinition
    value: Typed
    flags: tuple[str, ...]

    @property
    def display(self) -> str:
        return display(self.value)


def visit_form_summaries(visit: Visit) -> list[FormSummary]:
    """The forms of a visit, in protocol order, with their state, version and open query count (2 queries)."""
    instances = {form.definition_id: form for form in FormInstance.objects.filter(visit=visit)}
    open_counts = dict(
        Query.objects.filter(visit=visit)
        .exclude(state=QueryState.CLOSED)
        .values("form_id")
        .annotate(n=Count("id"))
        .values_list("form_id", "n")
    )
    return [
        FormSummary(
            spec=spec, instance=instances.get(spec.definition.pk), open_queries=open_counts.get(spec.definition.pk, 0)
        )
        for spec in visit_forms(visit)
    ]


def form_current(visit: Visit, spec: FormSpec) -> tuple[FormInstance | None, dict[str, CurrentValue]]:
    """The form's instance and its current value of every item, derived ones included (2 queries)."""
    instance = FormInstance.objects.filter(visit=visit, definition=spec.definition).first()
    stored = {value.item_id: value for value in ItemValue.objects.filter(visit=visit, item__form=spec.definition)}
    values = {}
    for item in spec.items:
        value = stored.get(item.pk)
        values[item.code] = CurrentValue(item=item, value=typed_of(value), flags=tuple(value.flags) if value else ())
    return instance, values
