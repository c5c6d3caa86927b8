"""Reading the protocol file into definition rows. Kept apart from services: it is parsing, not an action."""

import hashlib
import re
from decimal import Decimal
from pathlib import Path

import yaml

from trial.errors import InvalidInput
from trial.models import (
    Arm,
    DataType,
    EligibilityCriterion,
    FormDefinition,
    ItemDefinition,
    Protocol,
    VisitDefinition,
)

DEFAULT_PATH = Path(__file__).resolve().parent / "protocols" / "nct01573923.yaml"
_REQUIRED_KEYS = ("code", "title", "arms", "visits", "eligibility", "forms", "sites", "visit_date_item")
# A derived item is `A - B` or `function(ITEM, FORM.ITEM, ...)` (capture/derive.py computes them).
_FORMULA = re.compile(r"^(\w+\([\w., ]+\)|[\w.]+\s*-\s*[\w.]+)$")


def read(path: Path) -> tuple[dict, str]:
    """The parsed file and the SHA-256 of its bytes. Raises InvalidInput naming what is wrong."""
    raw = path.read_bytes()
    try:
        definition = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path.name} is not valid YAML: {exc}") from exc
    missing = [key for key in _REQUIRED_KEYS if not isinstance(definition, dict) or key not in definition]
    if missing:
        raise InvalidInput(f"{path.name} lacks the section(s): {', '.join(missing)}")
    for form in definition["forms"]:
        for item in form["items"]:
            _check_item(form["code"], item)
    _check_log_forms(definition)
    return definition, hashlib.sha256(raw).hexdigest()


# A log form's check compares two items (or an item with the participant's consent date), or flags two items
# that both hold a value.
LOG_CHECK_OPS = ("lt", "lte", "gt", "gte", "not_both")
CONSENT_OPERAND = "@consent"


def _check_log_forms(definition: dict) -> None:
    """Log forms (optional section `log_forms`): codes unique among all forms, items typed, checks readable."""
    codes = [form["code"] for form in definition["forms"]]
    for form in definition.get("log_forms") or []:
        if form["code"] in codes:
            raise InvalidInput(f"{form['code']}: a form of that code is already declared")
        codes.append(form["code"])
        items = {item.get("code") for item in form["items"]}
        for item in form["items"]:
            _check_item(form["code"], item)
        for check in form.get("checks", []):
            _check_log_check(form["code"], check, items)


def _check_log_check(form_code: str, check: dict, items: set) -> None:
    where = f"{form_code}.{check.get('code')}"
    if check.get("op") not in LOG_CHECK_OPS:
        raise InvalidInput(f"{where}: unknown check operator {check.get('op')!r}")
    for side in ("left", "right"):
        if check.get(side) not in items and not (side == "right" and check.get(side) == CONSENT_OPERAND):
            raise InvalidInput(f"{where}: {check.get(side)!r} is not an item of the form")


def _check_item(form_code: str, item: dict) -> None:
    where = f"{form_code}.{item.get('code')}"
    if item.get("type") not in DataType.values:
        raise InvalidInput(f"{where}: unknown type {item.get('type')!r}")
    if item.get("derived") and not _FORMULA.match(item["derived"]):
        raise InvalidInput(f"{where}: cannot read the formula {item['derived']!r}")
    if item["type"] == DataType.CHOICE and not item.get("choices"):
        raise InvalidInput(f"{where}: a choice item needs choices")
    for key in ("hard", "reference"):
        bounds = item.get(key)
        if bounds is not None and (len(bounds) != 2 or Decimal(str(bounds[0])) > Decimal(str(bounds[1]))):
            raise InvalidInput(f"{where}: {key} must be [low, high]")


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def create_rows(protocol: Protocol) -> None:
    """Definition rows of a new protocol version, from its parsed file."""
    definition = protocol.definition
    Arm.objects.bulk_create(
        Arm(protocol=protocol, order=order, **{k: arm.get(k, "") for k in ("code", "name", "name_zh", "description")})
        for order, arm in enumerate(definition["arms"])
    )
    VisitDefinition.objects.bulk_create(
        VisitDefinition(protocol=protocol, order=order, **visit) for order, visit in enumerate(definition["visits"])
    )
    EligibilityCriterion.objects.bulk_create(
        EligibilityCriterion(
            protocol=protocol,
            order=order,
            kind=criterion["kind"],
            code=criterion["code"],
            text=criterion["text"],
            text_zh=criterion.get("text_zh", ""),
            computed=criterion.get("computed", ""),
        )
        for order, criterion in enumerate(definition["eligibility"]["criteria"])
    )
    groups_zh = definition.get("group_names_zh") or {}
    for order, form in enumerate(definition["forms"]):
        _create_form(protocol, order, form, groups_zh)
    for order, form in enumerate(definition.get("log_forms") or [], start=len(definition["forms"])):
        _create_form(protocol, order, form, groups_zh, repeating=True)


def _create_form(
    protocol: Protocol, order: int, form: dict, groups_zh: dict[str, str], *, repeating: bool = False
) -> None:
    form_definition = FormDefinition.objects.create(
        protocol=protocol,
        code=form["code"],
        name=form["name"],
        name_zh=form.get("name_zh", ""),
        order=order,
        visit_codes=form.get("visits", []),
        arm_codes=form.get("arms", []),
        checks=form.get("checks", []),
        repeating=repeating,
    )
    ItemDefinition.objects.bulk_create(
        _item(form_definition, item_order, item, groups_zh) for item_order, item in enumerate(form["items"])
    )


def _item(form: FormDefinition, order: int, item: dict, groups_zh: dict[str, str]) -> ItemDefinition:
    hard = item.get("hard") or [None, None]
    reference = item.get("reference") or [None, None]
    return ItemDefinition(
        form=form,
        order=order,
        code=item["code"],
        label=item["label"],
        label_zh=item.get("label_zh", ""),
        group=item.get("group", ""),
        group_zh=item.get("group_zh") or groups_zh.get(item.get("group", ""), ""),
        data_type=item["type"],
        unit=item.get("unit", ""),
        decimals=item.get("decimals"),
        hard_min=_decimal(hard[0]),
        hard_max=_decimal(hard[1]),
        reference_low=_decimal(reference[0]),
        reference_high=_decimal(reference[1]),
        required=item.get("required", False),
        choices=item.get("choices", []),
        derived=item.get("derived", ""),
        in_window=item.get("window", False),
    )
