"""CTCAE v5.0 grading of lab values, with the rules read from `safety/ctcae_v5.yaml`.

Pure functions: no database, no Celery. The rules are data so that a reviewer can check them against the CTCAE
text; this module only reads, validates and applies them. The file's header explains how a rule reads.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import yaml

RULES_FILE = Path(__file__).with_name("ctcae_v5.yaml")
SOURCE_PREFIX = "CTCAE v5.0 (NCI, 27 Nov 2017), "

DIRECTIONS = {"high", "low"}
REGIMES = {"uln": "ULN", "lln": "LLN", "baseline": "baseline", "absolute": ""}
WHEN = {"always", "baseline_normal", "baseline_abnormal", "baseline_known"}
SYMBOLS = {"ULN", "LLN"}
GRADES = range(1, 5)

COMPARISONS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
SIGNS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
INCLUSIVE = {"gte", "lte"}
# The bound of a band nearer to normal ("inner") and the one towards the worse grade ("outer"), by direction.
INNER_OPS = {"high": ("gt", "gte"), "low": ("lt", "lte")}
OUTER_OPS = {"high": ("lt", "lte"), "low": ("gt", "gte")}
BAND_KEYS = {"grade", "ctcae", *COMPARISONS}


class RulesFileError(ValueError):
    """The rules file is malformed; grading must not run on it."""


class GradingInputError(ValueError):
    """The caller did not give a reference value (ULN, LLN) that a rule needs, or gave one the rule cannot use."""


@dataclass(frozen=True)
class Bound:
    op: str  # gt, gte, lt, lte
    limit: Decimal | str  # a number in the rule's regime, or the symbol ULN / LLN
    scale: str  # "ULN", "LLN", "baseline", or "" for values in the item's unit

    def __str__(self) -> str:
        if isinstance(self.limit, str) or not self.scale:
            return f"{SIGNS[self.op]} {self.limit}"
        return f"{SIGNS[self.op]} {self.limit} x {self.scale}"

    @property
    def inclusive(self) -> bool:
        return self.op in INCLUSIVE

    def threshold(self, references: References) -> Decimal:
        """The bound in the item's unit, for this site and participant."""
        if isinstance(self.limit, str):
            return references.get(self.limit)
        if not self.scale:
            return self.limit
        return self.limit * references.get(self.scale)

    def holds(self, value: Decimal, references: References) -> bool:
        return COMPARISONS[self.op](value, self.threshold(references))


@dataclass(frozen=True)
class Band:
    grade: int
    inner: Bound  # the bound a value crosses to reach this grade
    outer: Bound | None  # the bound towards the next grade; None for the worst band
    ctcae: str

    def contains(self, value: Decimal, references: References) -> bool:
        return self.inner.holds(value, references) and (self.outer is None or self.outer.holds(value, references))


@dataclass(frozen=True)
class Rule:
    term: str
    item_code: str
    unit: str
    direction: str
    regime: str
    when: str
    source: str
    bands: tuple[Band, ...]
    note: str = ""


@dataclass(frozen=True)
class Flag:
    term: str
    item_code: str
    unit: str
    direction: str
    regime: str
    bound: Bound
    message: str
    source: str


@dataclass(frozen=True)
class Grading:
    """The outcome of grading one value: a CTCAE grade, or a flag for the investigator, or neither."""

    term: str
    item_code: str
    grade: int | None  # 1-4; None when the value is below grade 1 (or only flagged)
    rule: Rule | Flag
    boundary: Bound  # the boundary the value crossed, or (grade None, no flag) did not reach
    threshold: Decimal  # that boundary in the item's unit
    flag: str = ""

    def __str__(self) -> str:
        outcome = f"grade {self.grade}" if self.grade else (f"flag: {self.flag}" if self.flag else "below grade 1")
        return f"{self.term} ({self.item_code}): {outcome}, boundary {self.boundary} = {self.threshold}"


@dataclass(frozen=True)
class References:
    """The site's limits of normal and the participant's baseline, as the rules need them."""

    uln: Decimal | None
    lln: Decimal | None
    baseline: Decimal | None
    item_code: str

    def get(self, name: str) -> Decimal:
        value = {"ULN": self.uln, "LLN": self.lln, "baseline": self.baseline}[name]
        if value is None:
            raise GradingInputError(f"Grading {self.item_code} needs the {name}, which was not given")
        return value

    def baseline_abnormal(self) -> bool:
        """CTCAE's "if baseline was abnormal", for increases: a baseline above the ULN."""
        return self.baseline is not None and self.baseline > self.get("ULN")


@dataclass(frozen=True)
class RuleBook:
    rules: tuple[Rule, ...]
    flags: tuple[Flag, ...]
    not_graded: dict[str, str] = field(default_factory=dict)

    def graded_items(self) -> set[str]:
        return {rule.item_code for rule in self.rules} | {flag.item_code for flag in self.flags}

    def grade(
        self, *, item_code: str, value: Decimal, uln: Decimal | None, lln: Decimal | None, baseline: Decimal | None
    ) -> Grading | None:
        """The worst grading of `value` under this book's rules and flags; None if CTCAE does not grade the item."""
        if item_code not in self.graded_items():
            return None
        references = References(uln=uln, lln=lln, baseline=baseline, item_code=item_code)
        outcomes = [
            _apply_rule(rule, value, references) for rule in self.rules if _applies(rule, item_code, references)
        ]
        outcomes += [_apply_flag(flag, value, references) for flag in self.flags if flag.item_code == item_code]
        return functools.reduce(worse, outcomes, None)


# --- grading -------------------------------------------------------------------------------------------------------


def grade(
    *, item_code: str, value: Decimal, uln: Decimal | None, lln: Decimal | None, baseline: Decimal | None
) -> Grading | None:
    """Grade one lab value against CTCAE v5.0 with the trial's rules file.

    `uln` and `lln` are the site's reference range for the item, `baseline` the participant's baseline value (None
    before there is one). Returns None for an item CTCAE does not grade by value.
    """
    return trial_rules().grade(item_code=item_code, value=value, uln=uln, lln=lln, baseline=baseline)


def worse(a: Grading | None, b: Grading | None) -> Grading | None:
    """The more severe of two gradings: a higher grade, then a flag, then a value below grade 1; `a` on a tie."""
    return b if _severity(b) > _severity(a) else a


def _severity(grading: Grading | None) -> tuple[int, int]:
    if grading is None:
        return (-1, 0)
    return (grading.grade or 0, 1 if grading.flag else 0)


def _applies(rule: Rule, item_code: str, references: References) -> bool:
    if rule.item_code != item_code:
        return False
    if rule.when == "baseline_normal":
        return not references.baseline_abnormal()
    if rule.when == "baseline_abnormal":
        return references.baseline_abnormal()
    if rule.when == "baseline_known":
        return references.baseline is not None and references.baseline > 0
    return True


def _apply_rule(rule: Rule, value: Decimal, references: References) -> Grading:
    _check_symbolic_limits(rule, references)
    for band in reversed(rule.bands):
        if band.contains(value, references):
            return _grading(rule, band.inner, references, grade=band.grade)
    return _grading(rule, rule.bands[0].inner, references, grade=None)


def _apply_flag(flag: Flag, value: Decimal, references: References) -> Grading | None:
    if not flag.bound.holds(value, references):
        return None
    return _grading(flag, flag.bound, references, grade=None, flag=flag.message)


def _grading(
    rule: Rule | Flag, boundary: Bound, references: References, *, grade: int | None, flag: str = ""
) -> Grading:
    return Grading(
        term=rule.term,
        item_code=rule.item_code,
        grade=grade,
        rule=rule,
        boundary=boundary,
        threshold=boundary.threshold(references),
        flag=flag,
    )


def _check_symbolic_limits(rule: Rule, references: References) -> None:
    """Refuse a site limit that lies beyond the band's other bound (a ULN above 7.75 mmol/L for cholesterol)."""
    for band in rule.bands:
        if band.outer is None or not isinstance(band.inner.limit, str):
            continue
        inner, outer = band.inner.threshold(references), band.outer.threshold(references)
        if (inner >= outer) if rule.direction == "high" else (inner <= outer):
            raise GradingInputError(
                f"{rule.term} ({rule.item_code}): the site's {band.inner.limit} {inner} lies beyond grade "
                f"{band.grade}'s other bound {band.outer}; the CTCAE bands cannot be applied"
            )


# --- loading and validating the rules file -------------------------------------------------------------------------


@functools.cache
def trial_rules() -> RuleBook:
    """The trial's rules, read and validated once per process."""
    return load_rules(RULES_FILE)


def load_rules(path: Path) -> RuleBook:
    """Read and validate a rules file; raises RulesFileError naming the file, the rule and the fault."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return _parse_book(data)
    except yaml.YAMLError as error:
        raise RulesFileError(f"{path}: not valid YAML: {error}") from error
    except RulesFileError as error:
        raise RulesFileError(f"{path}: {error}") from error


def _parse_book(data: object) -> RuleBook:
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise RulesFileError("the file must hold a non-empty `rules` list")
    rules = tuple(_parse_rule(raw, f"rule {index + 1}") for index, raw in enumerate(data["rules"]))
    flags = tuple(_parse_flag(raw, f"flag {index + 1}") for index, raw in enumerate(data.get("flags") or []))
    _check_baseline_pairs(rules)
    return RuleBook(rules=rules, flags=flags, not_graded=dict(data.get("not_graded") or {}))


def _parse_header(raw: object, where: str) -> dict:
    """The fields rules and flags share, checked; `where` names the entry in error messages."""
    if not isinstance(raw, dict):
        raise RulesFileError(f"{where}: must be a mapping")
    header = {key: _text(raw, key, where) for key in ("term", "item", "unit", "direction", "regime", "source")}
    where = f"{where} ({header['item']}, {header['term']})"
    _check_choice(header["direction"], DIRECTIONS, "direction", where)
    _check_choice(header["regime"], set(REGIMES), "regime", where)
    if not header["source"].startswith(SOURCE_PREFIX) or not header["source"].endswith(f", {header['term']}"):
        raise RulesFileError(f"{where}: source must read '{SOURCE_PREFIX}<SOC>, {header['term']}'")
    return header | {"where": where}


def _parse_rule(raw: object, where: str) -> Rule:
    header = _parse_header(raw, where)
    where, direction, regime = header["where"], header["direction"], header["regime"]
    when = raw.get("when", "always")
    _check_choice(when, WHEN, "when", where)
    _check_when(when, direction, regime, where)
    if not isinstance(raw.get("bands"), list) or not raw["bands"]:
        raise RulesFileError(f"{where}: bands must be a non-empty list")
    bands = tuple(_parse_band(band, direction, regime, where) for band in raw["bands"])
    _check_bands(bands, direction, where)
    return Rule(
        term=header["term"],
        item_code=header["item"],
        unit=header["unit"],
        direction=direction,
        regime=regime,
        when=when,
        source=header["source"],
        bands=bands,
        note=str(raw.get("note", "")),
    )


def _parse_flag(raw: object, where: str) -> Flag:
    header = _parse_header(raw, where)
    where = header["where"]
    bound = raw.get("bound")
    if not isinstance(bound, dict) or len(bound) != 1:
        raise RulesFileError(f"{where}: bound must hold exactly one of {', '.join(INNER_OPS[header['direction']])}")
    return Flag(
        term=header["term"],
        item_code=header["item"],
        unit=header["unit"],
        direction=header["direction"],
        regime=header["regime"],
        bound=_parse_bound(bound, INNER_OPS[header["direction"]], header["regime"], where),
        message=_text(raw, "message", where),
        source=header["source"],
    )


def _parse_band(raw: object, direction: str, regime: str, where: str) -> Band:
    if not isinstance(raw, dict):
        raise RulesFileError(f"{where}: each band must be a mapping")
    grade = raw.get("grade")
    if grade not in GRADES or isinstance(grade, bool):
        raise RulesFileError(f"{where}: band grade must be 1, 2, 3 or 4, not {grade!r}")
    where = f"{where}, grade {grade}"
    unknown = set(raw) - BAND_KEYS
    if unknown:
        raise RulesFileError(f"{where}: unknown keys {sorted(unknown)}; bounds are written gt, gte, lt, lte")
    inner = _parse_bound(raw, INNER_OPS[direction], regime, where)
    if inner is None:
        raise RulesFileError(f"{where}: needs a bound ({' or '.join(INNER_OPS[direction])}) to enter the band")
    outer = _parse_bound(raw, OUTER_OPS[direction], regime, where)
    return Band(grade=grade, inner=inner, outer=outer, ctcae=str(raw.get("ctcae", "")))


def _parse_bound(raw: dict, ops: tuple[str, str], regime: str, where: str) -> Bound | None:
    present = [op for op in ops if op in raw]
    if len(present) > 1:
        raise RulesFileError(f"{where}: give {ops[0]} or {ops[1]}, not both")
    if not present:
        return None
    op, limit = present[0], raw[present[0]]
    if isinstance(limit, str) and limit in SYMBOLS:
        if regime != "absolute":
            raise RulesFileError(f"{where}: {limit} may only be a bound in the absolute regime")
        return Bound(op=op, limit=limit, scale="")
    if isinstance(limit, bool) or not isinstance(limit, int | float):
        raise RulesFileError(f"{where}: bound {op} must be a number, ULN or LLN, not {limit!r}")
    return Bound(op=op, limit=Decimal(str(limit)), scale=REGIMES[regime])


def _check_bands(bands: tuple[Band, ...], direction: str, where: str) -> None:
    grades = [band.grade for band in bands]
    if grades != list(range(grades[0], grades[0] + len(grades))):
        raise RulesFileError(f"{where}: bands must run in grade order with no grade missing, found {grades}")
    for band in bands:
        _check_band_order(band, direction, where)
    for lower, higher in zip(bands, bands[1:], strict=False):
        _check_meeting(lower, higher, where)
    if bands[-1].outer is not None:
        raise RulesFileError(
            f"{where}: the worst band (grade {bands[-1].grade}) must be open-ended, not {bands[-1].outer}"
        )


def _check_band_order(band: Band, direction: str, where: str) -> None:
    if band.outer is None or isinstance(band.inner.limit, str) or isinstance(band.outer.limit, str):
        return
    ordered = band.inner.limit < band.outer.limit if direction == "high" else band.inner.limit > band.outer.limit
    if not ordered:
        raise RulesFileError(
            f"{where}, grade {band.grade}: bounds out of order ({band.inner} and {band.outer}); "
            f"a {direction} band runs from its entry bound towards the worse grade"
        )


def _check_meeting(lower: Band, higher: Band, where: str) -> None:
    """Consecutive bands must meet at one value, inclusive on exactly one side: no gap, no overlap."""
    if lower.outer is None:
        raise RulesFileError(f"{where}, grade {lower.grade}: only the worst band may be open-ended")
    meets = lower.outer.limit == higher.inner.limit and lower.outer.inclusive != higher.inner.inclusive
    if not meets:
        raise RulesFileError(
            f"{where}: grade {lower.grade} ends at {lower.outer} but grade {higher.grade} starts at "
            f"{higher.inner}; consecutive bands must meet at one value, inclusive on exactly one side "
            f"(a gap or an overlap)"
        )


def _check_when(when: str, direction: str, regime: str, where: str) -> None:
    if regime == "baseline" and when not in {"baseline_abnormal", "baseline_known"}:
        raise RulesFileError(f"{where}: a baseline rule needs when: baseline_abnormal or baseline_known")
    if when in {"baseline_normal", "baseline_abnormal"} and direction != "high":
        raise RulesFileError(f"{where}: a normal or abnormal baseline is defined for increases only")


def _check_baseline_pairs(rules: tuple[Rule, ...]) -> None:
    """A term split by baseline needs both halves, or values of the missing half would go ungraded."""
    split = {(rule.item_code, rule.term, rule.when) for rule in rules if rule.when.startswith("baseline_")}
    for item_code, term, when in split:
        other = {"baseline_normal": "baseline_abnormal", "baseline_abnormal": "baseline_normal"}.get(when)
        if other and (item_code, term, other) not in split:
            raise RulesFileError(f"{item_code} ({term}) has a {when} rule but no {other} rule")


def _text(raw: dict, key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RulesFileError(f"{where}: `{key}` is missing or empty")
    return value.strip()


def _check_choice(value: object, choices: set[str], key: str, where: str) -> None:
    if value not in choices:
        raise RulesFileError(f"{where}: {key} must be one of {sorted(choices)}, not {value!r}")
