"""Derived items: computed from other items of the same visit, never typed.

The protocol file writes a formula as `A - B` or `function(ITEM, FORM.ITEM, ...)`; a name without a form is an
item of the derived item's own form. A derivation with a missing input is empty.
"""

import re
from collections.abc import Callable
from decimal import Decimal

from trial.models import ItemDefinition
from trial.scoring import child_pugh, meld, meld_na

_CALL = re.compile(r"^(\w+)\((.*)\)$")
_DIFFERENCE = re.compile(r"^([\w.]+)\s*-\s*([\w.]+)$")

Values = dict[tuple[str, str], object]  # (form code, item code) -> number (Decimal) or text


def inputs(item: ItemDefinition, form_code: str) -> list[tuple[str, str]]:
    """(form code, item code) of every input of a derived item."""
    call = _CALL.match(item.derived)
    names = call.group(2).split(",") if call else _DIFFERENCE.match(item.derived).groups()
    return [_qualify(name.strip(), form_code) for name in names]


def _qualify(name: str, form_code: str) -> tuple[str, str]:
    form, _, code = name.rpartition(".")
    return (form or form_code, code)


def compute(item: ItemDefinition, form_code: str, values: Values, child_pugh_table: dict) -> Decimal | str | None:
    args = [values.get(key) for key in inputs(item, form_code)]
    if any(arg is None or arg == "" for arg in args):
        return None
    call = _CALL.match(item.derived)
    if call is None:
        return args[0] - args[1]
    return _FUNCTIONS[call.group(1)](child_pugh_table, *args)


def _child_pugh(
    table: dict, bilirubin: Decimal, albumin: Decimal, inr: Decimal, ascites: str, encephalopathy: str
) -> object:
    return child_pugh(
        table=table,
        bilirubin=bilirubin,
        albumin=albumin,
        inr=inr,
        ascites=ascites,
        encephalopathy=encephalopathy,
    )


_FUNCTIONS: dict[str, Callable[..., Decimal | str]] = {
    "child_pugh": lambda table, *args: Decimal(_child_pugh(table, *args).points),
    "child_pugh_class": lambda table, *args: _child_pugh(table, *args).grade,
    "meld": lambda table, bilirubin, creatinine, inr: Decimal(
        meld(bilirubin_umol_l=bilirubin, creatinine_umol_l=creatinine, inr=inr)
    ),
    "meld_na": lambda table, bilirubin, creatinine, inr, sodium: Decimal(
        meld_na(bilirubin_umol_l=bilirubin, creatinine_umol_l=creatinine, inr=inr, sodium_mmol_l=sodium)
    ),
}
