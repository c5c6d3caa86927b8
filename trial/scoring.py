"""Clinical scores computed from captured values, with their tables taken from the protocol file."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

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
MELD_MAX = 40
MELD_NA_THRESHOLD = 11  # MELD-Na adjusts only a MELD(i) above this
SODIUM_LOW, SODIUM_HIGH = Decimal(125), Decimal(137)
# ln() of a Decimal is correctly rounded to the context's precision: no float in the score.
_PRECISION = Context(prec=40)


def meld(*, bilirubin_umol_l: Decimal, creatinine_umol_l: Decimal, inr: Decimal, on_dialysis: bool = False) -> int:
    """The MELD score as UNOS computes it (OPTN Policy 9.1, "MELD Score"), from SI units, capped at 40.

    MELD(i) = 0.957 x ln(creatinine mg/dL) + 0.378 x ln(bilirubin mg/dL) + 1.120 x ln(INR) + 0.643, rounded to
    the tenth decimal place and multiplied by 10. Laboratory values below 1.0 are set to 1.0; creatinine is
    capped at 4.0 mg/dL and set to 4.0 on dialysis (twice in the past week, or 24 hours of CVVHD) - this protocol
    records no dialysis, so `on_dialysis` is False unless a caller knows better. The score ranges 6-40.
    """
    return min(_meld_initial(bilirubin_umol_l, creatinine_umol_l, inr, on_dialysis), MELD_MAX)


def meld_na(
    *,
    bilirubin_umol_l: Decimal,
    creatinine_umol_l: Decimal,
    inr: Decimal,
    sodium_mmol_l: Decimal,
    on_dialysis: bool = False,
) -> int:
    """MELD-Na as UNOS computes it since January 2016 (OPTN Policy 9.1, Kim et al., N Engl J Med 2008;359:1018).

    With MELD(i) as in `meld` (before the cap) and sodium bounded to 125-137 mmol/L: if MELD(i) > 11,
    MELD = MELD(i) + 1.32 x (137 - Na) - [0.033 x MELD(i) x (137 - Na)], rounded to the nearest whole number
    (half up); otherwise MELD = MELD(i). The score is capped at 40.
    """
    initial = _meld_initial(bilirubin_umol_l, creatinine_umol_l, inr, on_dialysis)
    if initial <= MELD_NA_THRESHOLD:
        return min(initial, MELD_MAX)
    sodium = min(max(Decimal(sodium_mmol_l), SODIUM_LOW), SODIUM_HIGH)
    gap = SODIUM_HIGH - sodium
    score = initial + Decimal("1.32") * gap - Decimal("0.033") * initial * gap
    return min(int(score.quantize(Decimal(1), rounding=ROUND_HALF_UP)), MELD_MAX)


def _meld_initial(bilirubin_umol_l: Decimal, creatinine_umol_l: Decimal, inr: Decimal, on_dialysis: bool) -> int:
    """MELD(i) before the cap: the UNOS formula, rounded to the tenth (half up), times 10."""
    one, four = Decimal(1), Decimal(4)
    bilirubin = max(Decimal(bilirubin_umol_l) / BILIRUBIN_UMOL_PER_MG_DL, one)
    creatinine = four if on_dialysis else min(max(Decimal(creatinine_umol_l) / CREATININE_UMOL_PER_MG_DL, one), four)
    inr = max(Decimal(inr), one)
    with localcontext(_PRECISION):
        score = (
            Decimal("0.957") * creatinine.ln()
            + Decimal("0.378") * bilirubin.ln()
            + Decimal("1.120") * inr.ln()
            + Decimal("0.643")
        )
    return int(score.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) * 10)
