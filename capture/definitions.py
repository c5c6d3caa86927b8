"""The CRF definitions of a protocol version, read once per process.

A protocol version never changes once loaded (a changed file is a new version), so its forms and items can be
kept in memory: a form save or a form page then spends no query on definitions.
"""

from dataclasses import dataclass, field

from trial.models import Arm, FormDefinition, ItemDefinition, Protocol, Visit, VisitDefinition

_cache: dict[tuple[int, str], dict[str, "FormSpec"]] = {}
_schedules: dict[tuple[int, str], tuple[dict[int, Arm], dict[int, VisitDefinition]]] = {}
_definitions: dict[tuple[int, str], dict] = {}
_items: dict[tuple[int, str], dict[int, tuple["FormSpec", ItemDefinition]]] = {}


@dataclass(frozen=True)
class FormSpec:
    definition: FormDefinition
    items: tuple[ItemDefinition, ...]
    by_code: dict[str, ItemDefinition] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_code", {item.code: item for item in self.items})

    @property
    def code(self) -> str:
        return self.definition.code

    @property
    def entered(self) -> tuple[ItemDefinition, ...]:
        """The items a person types; derived items are computed."""
        return tuple(item for item in self.items if not item.derived)

    @property
    def derived(self) -> tuple[ItemDefinition, ...]:
        return tuple(item for item in self.items if item.derived)


def protocol_forms(protocol: Protocol) -> dict[str, FormSpec]:
    """{form code: FormSpec} of a protocol version, in protocol order."""
    key = (protocol.pk, protocol.sha256)
    if key not in _cache:
        forms = list(FormDefinition.objects.filter(protocol_id=protocol.pk).order_by("order"))
        items: dict[int, list[ItemDefinition]] = {form.pk: [] for form in forms}
        for item in ItemDefinition.objects.filter(form__protocol_id=protocol.pk).order_by("form_id", "order"):
            items[item.form_id].append(item)
        _cache[key] = {form.code: FormSpec(definition=form, items=tuple(items[form.pk])) for form in forms}
    return _cache[key]


def visit_forms(visit: Visit) -> list[FormSpec]:
    """The forms collected at this visit for this participant's arm, in protocol order.

    `visit` must come with its participant (with protocol and arm) and definition loaded.
    """
    participant = visit.participant
    arm_code = participant.arm.code if participant.arm_id else None
    return [
        spec
        for spec in protocol_forms(participant.protocol).values()
        if spec.definition.applies_to(visit_code=visit.definition.code, arm_code=arm_code)
    ]


def with_schedule(visit: Visit) -> Visit:
    """The visit with its definition and its participant's arm set from its protocol version's rows, read once per
    process as its forms are: a visit read with its participant and protocol then needs no join for them.

    The rows are shared by every request of the process: read them, never change them."""
    participant = visit.participant
    key = (participant.protocol.pk, participant.protocol.sha256)
    if key not in _schedules:
        _schedules[key] = (
            {arm.pk: arm for arm in Arm.objects.filter(protocol_id=key[0])},
            {definition.pk: definition for definition in VisitDefinition.objects.filter(protocol_id=key[0])},
        )
    arms, definitions = _schedules[key]
    visit.definition = definitions[visit.definition_id]
    participant.arm = arms[participant.arm_id] if participant.arm_id is not None else None
    return visit


def item_by_id(protocol: Protocol) -> dict[int, tuple[FormSpec, ItemDefinition]]:
    """{item id: (its form, the item)} of a protocol version, built once per process."""
    key = (protocol.pk, protocol.sha256)
    if key not in _items:
        _items[key] = {item.pk: (spec, item) for spec in protocol_forms(protocol).values() for item in spec.items}
    return _items[key]


def protocol_definition(protocol: Protocol) -> dict:
    """The parsed protocol file of a version, decoded once per process (callers may defer the column)."""
    key = (protocol.pk, protocol.sha256)
    if key not in _definitions:
        _definitions[key] = Protocol.objects.values_list("definition", flat=True).get(pk=protocol.pk)
    return _definitions[key]
