"""Clinical scores computed from captured values, with their tables taken from the protocol file."""

import math
from dataclasses import dataclass
from decimal import Decimal

# The comparisons the protocol file may name, for Child-Pugh bands and cross-item edit checks alike.
COMPARISONS = {
    "lt": lambda value, bound: value < bound,
    "lte": lambda value, bound: value <= bound,
    "gt": lambda value, bound: value > bound,
    "gte": lambda value, bound: value >= bound,
}


@dataclass(frozen=True)
class ChildPugh:
    points: int
    grade: str  # A, B or C

    def __str__(self) -> str:
        return f"{self.grade} ({self.points})"


def _band_points(bands: list[dict], value: Decimal) -> int:
    for band in bands:
        tests = {key: bound for key, bound in band.items() if key in COMPARISONS}
        if all(COMPARISONS[key](value, Decimal(str(bound))) for key, bound in tests.items()):
            return band["points"]
    raise ValueError(f"{value} falls in no band of the Child-Pugh table")


def child_pugh(
    *, table: dict, bilirubin: Decimal, albumin: Decimal, inr: Decimal, ascites: str, encephalopathy: str
) -> ChildPugh:
    """Child-Pugh points and class from the protocol's table (bilirubin umol/L, albumin g/L)."""
    points = (
        _band_points(table["bilirubin"], Decimal(bilirubin))
        + _band_points(table["albumin"], Decimal(albumin))
        + _band_points(table["inr"], Decimal(inr))
        + table["ascites"][ascites]
        + table["encephalopathy"][encephalopathy]
    )
    for grade, (low, high) in table["classes"].items():
        if low <= points <= high:
            return ChildPugh(points=points, grade=grade)
    raise ValueError(f"{points} points fall in no Child-Pugh class")


BILIRUBIN_UMOL_PER_MG_DL = Decimal("17.1")
CREATININE_UMOL_PER_MG_DL = Decimal("88.4")


def meld(*, bilirubin_umol_l: Decimal, creatinine_umol_l: Decimal, inr: Decimal, on_dialysis: bool = False) -> int:
    """The original MELD score (UNOS, before MELD-Na), from SI units.

    Values below 1 count as 1 and creatinine is capped at 4 mg/dL (4 also on dialysis), as UNOS specifies.
    """
    bilirubin = max(Decimal(bilirubin_umol_l) / BILIRUBIN_UMOL_PER_MG_DL, Decimal(1))
    creatinine = Decimal(4) if on_dialysis else Decimal(creatinine_umol_l) / CREATININE_UMOL_PER_MG_DL
    creatinine = min(max(creatinine, Decimal(1)), Decimal(4))
    inr = max(Decimal(inr), Decimal(1))
    score = 3.78 * math.log(float(bilirubin)) + 11.2 * math.log(float(inr)) + 9.57 * math.log(float(creatinine)) + 6.43
    return round(score)
