"""CTCAE v5.0 lab grading (safety/grading.py with safety/ctcae_v5.yaml). Pure: no database, no Celery.

The expected tables are typed here from the CTCAE v5.0 text, never derived from the rules file, so a wrong
number in the file fails a test. Each boundary is tried one reporting step below it, at it, and one step above
it. The limits of normal are the protocol's reference ranges (a test checks that they still are).
"""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from safety.grading import (
    SOURCE_PREFIX,
    GradingInputError,
    RulesFileError,
    grade,
    load_rules,
    trial_rules,
    worse,
)
from trial.protocol_file import DEFAULT_PATH, read

ALT = "Alanine aminotransferase increased"
AST = "Aspartate aminotransferase increased"
BILI = "Blood bilirubin increased"
CREAT = "Creatinine increased"
CHOL = "Cholesterol high"
ALB = "Hypoalbuminemia"
HYPOGLYCEMIA = "Hypoglycemia"
HYPONATREMIA = "Hyponatremia"
HYPERGLYCEMIA = "Hyperglycemia"
TRIG = "Hypertriglyceridemia"
URATE = "Hyperuricemia"

# The protocol's reference ranges, (LLN, ULN), for the graded items.
REFERENCE = {
    "ALT": ("9", "50"),
    "AST": ("15", "40"),
    "BILI": ("0", "21"),
    "CREAT": ("57", "111"),
    "URATE": ("208", "428"),
    "ALB": ("40", "55"),
    "GLUC": ("3.9", "6.1"),
    "SODIUM": ("137", "147"),
    "CHOL": ("2.8", "5.2"),
    "TRIG": ("0.56", "1.7"),
}


@dataclass(frozen=True)
class Table:
    """Boundaries of one rule: (boundary, grade one step below, grade at, grade one step above)."""

    name: str
    item_code: str
    term: str
    step: str
    baseline: str | None
    boundaries: list[tuple[str, int | None, int | None, int | None]]


# fmt: off
TABLES = [
    # >ULN - 3.0 x ULN; >3.0 - 5.0 x ULN; >5.0 - 20.0 x ULN; >20.0 x ULN (ULN 50 U/L)
    Table("ALT, baseline normal", "ALT", ALT, "1", baseline="30", boundaries=[
        # boundary  below  at    above
        ("50",      None,  None, 1),
        ("150",     1,     1,    2),
        ("250",     2,     2,    3),
        ("1000",    3,     3,    4),
    ]),
    # 1.5 - 3.0 x baseline (pinned: 1.5 inclusive); >3.0 - 5.0; >5.0 - 20.0; >20.0 x baseline (baseline 80 > ULN 50)
    Table("ALT, baseline abnormal", "ALT", ALT, "1", baseline="80", boundaries=[
        ("120",     None,  1,    1),
        ("240",     1,     1,    2),
        ("400",     2,     2,    3),
        ("1600",    3,     3,    4),
    ]),
    # as ALT (ULN 40 U/L)
    Table("AST, baseline normal", "AST", AST, "1", baseline="20", boundaries=[
        ("40",      None,  None, 1),
        ("120",     1,     1,    2),
        ("200",     2,     2,    3),
        ("800",     3,     3,    4),
    ]),
    # as ALT (baseline 60 > ULN 40)
    Table("AST, baseline abnormal", "AST", AST, "1", baseline="60", boundaries=[
        ("90",      None,  1,    1),
        ("180",     1,     1,    2),
        ("300",     2,     2,    3),
        ("1200",    3,     3,    4),
    ]),
    # >ULN - 1.5 x ULN; >1.5 - 3.0 x ULN; >3.0 - 10.0 x ULN; >10.0 x ULN (ULN 21 umol/L)
    Table("bilirubin, baseline normal", "BILI", BILI, "0.1", baseline="10.0", boundaries=[
        ("21.0",    None,  None, 1),
        ("31.5",    1,     1,    2),
        ("63.0",    2,     2,    3),
        ("210.0",   3,     3,    4),
    ]),
    # >1.0 - 1.5 x baseline; >1.5 - 3.0; >3.0 - 10.0; >10.0 x baseline (baseline 30.0 > ULN 21)
    Table("bilirubin, baseline abnormal", "BILI", BILI, "0.1", baseline="30.0", boundaries=[
        ("30.0",    None,  None, 1),
        ("45.0",    1,     1,    2),
        ("90.0",    2,     2,    3),
        ("300.0",   3,     3,    4),
    ]),
    # >ULN - 1.5 x ULN; >1.5 - 3.0 x ULN; >3.0 - 6.0 x ULN; >6.0 x ULN (ULN 111 umol/L), no baseline yet
    Table("creatinine, by ULN", "CREAT", CREAT, "1", baseline=None, boundaries=[
        ("111",     None,  None, 1),
        ("166.5",   1,     1,    2),
        ("333",     2,     2,    3),
        ("666",     3,     3,    4),
    ]),
    # >1.5 - 3.0 x baseline; >3.0 x baseline (baseline 40, normal): the baseline decides, even below the ULN
    Table("creatinine, by a normal baseline", "CREAT", CREAT, "1", baseline="40", boundaries=[
        ("60",      None,  None, 2),
        ("120",     2,     2,    3),
    ]),
    # baseline 150 > ULN 111: 1.5 x and 3.0 x baseline (225, 450) never beat the ULN bands
    Table("creatinine, baseline abnormal", "CREAT", CREAT, "1", baseline="150", boundaries=[
        ("111",     None,  None, 1),
        ("166.5",   1,     1,    2),
        ("225",     2,     2,    2),
        ("333",     2,     2,    3),
        ("450",     3,     3,    3),
        ("666",     3,     3,    4),
    ]),
    # <LLN - 30 g/L; <30 - 20 g/L; <20 g/L (LLN 40 g/L)
    Table("hypoalbuminemia", "ALB", ALB, "0.1", baseline=None, boundaries=[
        ("40.0",    1,     None, None),
        ("30.0",    2,     1,    1),
        ("20.0",    3,     2,    2),
    ]),
    # <LLN - 3.0; <3.0 - 2.2; <2.2 - 1.7; <1.7 mmol/L (LLN 3.9 mmol/L)
    Table("hypoglycemia", "GLUC", HYPOGLYCEMIA, "0.01", baseline=None, boundaries=[
        ("3.90",    1,     None, None),
        ("3.00",    2,     1,    1),
        ("2.20",    3,     2,    2),
        ("1.70",    4,     3,    3),
    ]),
    # <LLN - 130; 125-129 (asymptomatic: grade 2); 120-124; <120 mmol/L (LLN 137 mmol/L)
    Table("hyponatremia", "SODIUM", HYPONATREMIA, "0.1", baseline=None, boundaries=[
        ("137.0",   1,     None, None),
        ("130.0",   2,     1,    1),
        ("125.0",   3,     2,    2),
        ("120.0",   4,     3,    3),
    ]),
    # 1.71 - 3.42 (1.71 inclusive); >3.42 - 5.7; >5.7 - 11.4; >11.4 mmol/L
    Table("hypertriglyceridemia", "TRIG", TRIG, "0.01", baseline=None, boundaries=[
        ("1.71",    None,  1,    1),
        ("3.42",    1,     1,    2),
        ("5.70",    2,     2,    3),
        ("11.40",   3,     3,    4),
    ]),
    # >ULN - 7.75; >7.75 - 10.34; >10.34 - 12.92; >12.92 mmol/L (ULN 5.2 mmol/L)
    Table("cholesterol", "CHOL", CHOL, "0.01", baseline=None, boundaries=[
        ("5.20",    None,  None, 1),
        ("7.75",    1,     1,    2),
        ("10.34",   2,     2,    3),
        ("12.92",   3,     3,    4),
    ]),
    # >ULN without physiologic consequences: grade 1 only (ULN 428 umol/L)
    Table("hyperuricemia", "URATE", URATE, "1", baseline=None, boundaries=[
        ("428",     None,  None, 1),
    ]),
]
# fmt: on


def _cases() -> list:
    cases = []
    for table in TABLES:
        step = Decimal(table.step)
        for boundary, *grades in table.boundaries:
            at = Decimal(boundary)
            for where, value, expected in zip(
                ("below", "at", "above"), (at - step, at, at + step), grades, strict=True
            ):
                case_id = f"{table.name}: {value} ({where} {boundary})"
                cases.append(pytest.param(table, value, expected, id=case_id))
    return cases


def grade_item(item_code: str, value: Decimal | str, baseline: Decimal | str | None = None):
    lln, uln = REFERENCE[item_code]
    return grade(
        item_code=item_code,
        value=Decimal(value),
        uln=Decimal(uln),
        lln=Decimal(lln),
        baseline=None if baseline is None else Decimal(baseline),
    )


@pytest.mark.parametrize(("table", "value", "expected"), _cases())
def test_every_boundary_grades_as_ctcae_says(table: Table, value: Decimal, expected: int | None):
    result = grade_item(table.item_code, value, table.baseline)
    assert result is not None
    assert (result.term, result.grade, result.flag) == (table.term, expected, "")


def test_the_tables_use_the_protocols_reference_ranges():
    definition, _ = read(DEFAULT_PATH)
    ranges = {
        item["code"]: tuple(str(limit) for limit in item["reference"])
        for form in definition["forms"]
        for item in form["items"]
        if "reference" in item
    }
    for item_code, (lln, uln) in REFERENCE.items():
        assert Decimal(ranges[item_code][0]) == Decimal(lln), item_code
        assert Decimal(ranges[item_code][1]) == Decimal(uln), item_code


# --- the boundary that decided -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item_code", "value", "baseline", "rule_regime", "boundary", "threshold"),
    [
        ("ALT", "151", None, "uln", "> 3.0 x ULN", "150"),
        ("ALT", "120", "80", "baseline", ">= 1.5 x baseline", "120"),
        ("BILI", "30.1", "30.0", "baseline", "> 1.0 x baseline", "30.0"),
        ("CREAT", "61", "40", "baseline", "> 1.5 x baseline", "60"),
        ("CREAT", "334", "150", "uln", "> 3.0 x ULN", "333"),
        ("ALB", "19.9", None, "absolute", "< 20", "20"),
        ("CHOL", "5.21", None, "absolute", "> ULN", "5.2"),
        ("TRIG", "1.71", None, "absolute", ">= 1.71", "1.71"),
        ("GLUC", "3.89", None, "absolute", "< LLN", "3.9"),
    ],
)
def test_grading_names_the_rule_and_boundary_that_decided(item_code, value, baseline, rule_regime, boundary, threshold):
    result = grade_item(item_code, value, baseline)
    assert result.rule.regime == rule_regime
    assert str(result.boundary) == boundary
    assert result.threshold == Decimal(threshold)
    assert result.rule.source.startswith(SOURCE_PREFIX)


def test_below_grade_1_reports_the_grade_1_boundary_not_reached():
    result = grade_item("ALT", "50")
    assert result.grade is None
    assert (str(result.boundary), result.threshold) == ("> 1.0 x ULN", Decimal("50.0"))


# --- baselines -----------------------------------------------------------------------------------------------------


def test_a_baseline_at_the_uln_is_normal():
    assert grade_item("ALT", "51", baseline="50").grade == 1
    assert grade_item("ALT", "51", baseline="50").rule.regime == "uln"


def test_a_baseline_just_above_the_uln_is_abnormal():
    result = grade_item("ALT", "51", baseline="51")
    assert (result.grade, result.rule.regime) == (None, "baseline")
    assert grade_item("ALT", "76.5", baseline="51").grade == 1


def test_without_a_baseline_alt_is_graded_by_the_uln():
    assert grade_item("ALT", "151").grade == 2


@pytest.mark.parametrize("item_code", ["ALT", "AST"])
def test_a_rise_above_the_uln_but_below_1_5_x_an_abnormal_baseline_is_not_graded(item_code):
    _, uln = REFERENCE[item_code]
    baseline = Decimal(uln) * 2
    result = grade_item(item_code, baseline * Decimal("1.49"), baseline)
    assert result.grade is None


def test_an_abnormal_bilirubin_baseline_uses_baseline_multiples_even_when_the_uln_would_grade_higher():
    # 100 umol/L is > 3.0 x ULN (63, grade 3) but only > 1.5 - 3.0 x the baseline of 60 (grade 2).
    assert grade_item("BILI", "100.0", baseline="60.0").grade == 2


def test_creatinine_without_a_usable_baseline_is_graded_by_the_uln_only():
    assert grade_item("CREAT", "100").grade is None
    assert grade_item("CREAT", "100", baseline="0").grade is None
    assert grade_item("CREAT", "100", baseline="40").grade == 2


# --- flags and pinned choices --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["6.11", "11.10", "33.30"])
def test_high_glucose_is_flagged_for_the_investigator_not_graded(value):
    result = grade_item("GLUC", value)
    assert (result.term, result.grade) == (HYPERGLYCEMIA, None)
    assert "investigator" in result.flag
    assert result.rule.source == f"{SOURCE_PREFIX}Metabolism and nutrition disorders, Hyperglycemia"


def test_glucose_at_the_uln_is_neither_flagged_nor_graded():
    result = grade_item("GLUC", "6.10")
    assert (result.term, result.grade, result.flag) == (HYPOGLYCEMIA, None, "")


@pytest.mark.parametrize("value", ["429", "800", "2000"])
def test_uric_acid_above_the_uln_is_grade_1_whatever_its_height(value):
    result = grade_item("URATE", value)
    assert (result.term, result.grade) == (URATE, 1)
    assert "investigator" in result.rule.note


@pytest.mark.parametrize("item_code", ["BUN", "BILDIR", "HDL", "LDL", "PREALB", "CRP", "IL6", "NOSUCHITEM"])
def test_items_ctcae_does_not_grade_by_value_give_no_grading(item_code):
    assert grade(item_code=item_code, value=Decimal("999"), uln=Decimal("1"), lln=Decimal("0"), baseline=None) is None


# --- wrong input ---------------------------------------------------------------------------------------------------


def test_a_missing_uln_is_refused_not_taken_as_normal():
    with pytest.raises(GradingInputError, match="ALT needs the ULN"):
        grade(item_code="ALT", value=Decimal("500"), uln=None, lln=None, baseline=None)


def test_a_missing_lln_is_refused_not_taken_as_normal():
    with pytest.raises(GradingInputError, match="ALB needs the LLN"):
        grade(item_code="ALB", value=Decimal("15"), uln=Decimal("55"), lln=None, baseline=None)


def test_a_site_uln_above_a_ctcae_absolute_bound_is_refused():
    with pytest.raises(GradingInputError, match=r"Cholesterol high \(CHOL\).*cannot be applied"):
        grade(item_code="CHOL", value=Decimal("9"), uln=Decimal("7.75"), lln=Decimal("2.8"), baseline=None)


# --- worse ---------------------------------------------------------------------------------------------------------


def test_worse_prefers_a_higher_grade_then_a_flag_then_a_value_below_grade_1():
    grade_3, grade_1 = grade_item("ALT", "251"), grade_item("ALT", "51")
    flagged, below = grade_item("GLUC", "7.00"), grade_item("ALT", "40")
    assert worse(grade_1, grade_3) is grade_3
    assert worse(grade_3, grade_1) is grade_3
    assert worse(flagged, grade_1) is grade_1
    assert worse(below, flagged) is flagged
    assert worse(None, below) is below
    assert worse(below, None) is below
    assert worse(None, None) is None


def test_worse_keeps_the_first_on_a_tie():
    first, second = grade_item("ALT", "151"), grade_item("ALT", "200")
    assert worse(first, second) is first


# --- the rules file ------------------------------------------------------------------------------------------------


def test_the_file_grades_exactly_these_terms_and_flags_hyperglycemia():
    book = trial_rules()
    assert {(rule.item_code, rule.term) for rule in book.rules} == {
        ("ALT", ALT),
        ("AST", AST),
        ("BILI", BILI),
        ("CREAT", CREAT),
        ("CHOL", CHOL),
        ("ALB", ALB),
        ("GLUC", HYPOGLYCEMIA),
        ("SODIUM", HYPONATREMIA),
        ("TRIG", TRIG),
        ("URATE", URATE),
    }
    assert {(flag.item_code, flag.term) for flag in book.flags} == {("GLUC", HYPERGLYCEMIA)}


def test_the_file_is_loaded_once():
    assert trial_rules() is trial_rules()


def test_every_numeric_lab_panel_item_is_graded_or_says_why_not():
    definition, _ = read(DEFAULT_PATH)
    book = trial_rules()
    lab_items = {
        item["code"]: item.get("unit")
        for form in definition["forms"]
        if any(item["code"] == "LBDAT" for item in form["items"])
        for item in form["items"]
        if item["type"] == "decimal"
    }
    assert set(lab_items) == book.graded_items() | set(book.not_graded)
    assert not book.graded_items() & set(book.not_graded)
    for rule in (*book.rules, *book.flags):
        assert rule.unit == lab_items[rule.item_code], rule.term


VALID_FILE = """
rules:
  - term: Alanine aminotransferase increased
    item: ALT
    unit: U/L
    direction: high
    regime: uln
    when: WHEN
    source: CTCAE v5.0 (NCI, 27 Nov 2017), Investigations, Alanine aminotransferase increased
    bands:
BANDS
"""
GOOD_BANDS = """
      - {grade: 1, gt: 1.0, lte: 3.0}
      - {grade: 2, gt: 3.0, lte: 5.0}
      - {grade: 3, gt: 5.0}
"""


def write_rules(tmp_path: Path, bands: str = GOOD_BANDS, when: str = "always", **replace: str) -> Path:
    text = VALID_FILE.replace("BANDS", bands.strip("\n")).replace("WHEN", when)
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_file_loads(tmp_path):
    book = load_rules(write_rules(tmp_path))
    result = book.grade(item_code="ALT", value=Decimal("151"), uln=Decimal("50"), lln=None, baseline=None)
    assert result.grade == 2


def bands(*lines: str) -> str:
    return "\n".join(f"      - {line}" for line in lines)


@pytest.mark.parametrize(
    ("broken_bands", "message"),
    [
        pytest.param(
            bands("{grade: 1, gt: 1.0, lte: 3.0}", "{grade: 2, gt: 3.5, lte: 5.0}", "{grade: 3, gt: 5.0}"),
            r"grade 1 ends at <= 3.0 x ULN but grade 2 starts at > 3.5 x ULN.*gap or an overlap",
            id="gap",
        ),
        pytest.param(
            bands("{grade: 1, gt: 1.0, lte: 3.0}", "{grade: 2, gte: 3.0, lte: 5.0}", "{grade: 3, gt: 5.0}"),
            r"grade 1 ends at <= 3.0 x ULN but grade 2 starts at >= 3.0 x ULN",
            id="overlap at one value",
        ),
        pytest.param(
            bands("{grade: 1, gt: 1.0, lt: 3.0}", "{grade: 2, gt: 3.0, lte: 5.0}", "{grade: 3, gt: 5.0}"),
            r"grade 1 ends at < 3.0 x ULN but grade 2 starts at > 3.0 x ULN",
            id="one value in no band",
        ),
        pytest.param(
            bands("{grade: 1, gt: 1.0, lte: 3.0}", "{grade: 2, gt: 3.0, lte: 2.0}", "{grade: 3, gt: 2.0}"),
            r"grade 2: bounds out of order \(> 3.0 x ULN and <= 2.0 x ULN\)",
            id="unordered band",
        ),
        pytest.param(
            bands("{grade: 2, gt: 3.0, lte: 5.0}", "{grade: 1, gt: 1.0, lte: 3.0}", "{grade: 3, gt: 5.0}"),
            r"bands must run in grade order with no grade missing, found \[2, 1, 3\]",
            id="grades out of order",
        ),
        pytest.param(
            bands("{grade: 1, gt: 1.0, lte: 3.0}", "{grade: 3, gt: 3.0}"),
            r"found \[1, 3\]",
            id="grade missing",
        ),
        pytest.param(
            bands("{grade: 1, gt: 1.0, lte: 3.0}", "{grade: 2, gt: 3.0, lte: 5.0}"),
            r"worst band \(grade 2\) must be open-ended",
            id="worst band closed",
        ),
        pytest.param(
            bands("{grade: 1, gt: 1.0}", "{grade: 2, gt: 3.0}"),
            r"grade 1: only the worst band may be open-ended",
            id="middle band open",
        ),
        pytest.param(
            bands("{grade: 1, gt: 1.0, gte: 1.0, lte: 3.0}", "{grade: 2, gt: 3.0}"),
            r"give gt or gte, not both",
            id="two lower bounds",
        ),
        pytest.param(
            bands("{grade: 1, gt: 1.0, le: 3.0}", "{grade: 2, gt: 3.0}"),
            r"unknown keys \['le'\]",
            id="misspelt bound",
        ),
        pytest.param(
            bands("{grade: 1, gt: ULN, lte: 3.0}", "{grade: 2, gt: 3.0}"),
            r"ULN may only be a bound in the absolute regime",
            id="symbol outside the absolute regime",
        ),
        pytest.param(
            bands("{grade: 5, gt: 1.0}"),
            r"band grade must be 1, 2, 3 or 4, not 5",
            id="grade 5",
        ),
    ],
)
def test_a_broken_band_table_is_refused_with_a_clear_message(tmp_path, broken_bands, message):
    path = write_rules(tmp_path, broken_bands)
    with pytest.raises(RulesFileError, match=message) as error:
        load_rules(path)
    assert str(path) in str(error.value)
    assert "rule 1 (ALT, Alanine aminotransferase increased)" in str(error.value)


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        pytest.param(
            {"  - term: Alanine aminotransferase increased\n": "  -\n"}, r"rule 1: `term` is missing", id="no term"
        ),
        pytest.param(
            {"term: Alanine aminotransferase increased": "term: ''"}, r"`term` is missing or empty", id="empty term"
        ),
        pytest.param({"CTCAE v5.0 (NCI, 27 Nov 2017), ": "CTCAE v4.03, "}, r"source must read", id="wrong source"),
        pytest.param(
            {"Investigations, Alanine": "Investigations, Aspartate"}, r"source must read", id="source of another term"
        ),
        pytest.param({"direction: high": "direction: up"}, r"direction must be one of", id="bad direction"),
        pytest.param({"regime: uln": "regime: upper"}, r"regime must be one of", id="bad regime"),
    ],
)
def test_a_rule_without_its_term_or_source_or_with_a_bad_choice_is_refused(tmp_path, replace, message):
    with pytest.raises(RulesFileError, match=message):
        load_rules(write_rules(tmp_path, **replace))


def test_a_rule_without_bands_is_refused(tmp_path):
    with pytest.raises(
        RulesFileError, match=r"rule 1 \(ALT, Alanine aminotransferase increased\): bands must be a non-empty"
    ):
        load_rules(write_rules(tmp_path, bands=""))


def test_a_baseline_split_without_its_other_half_is_refused(tmp_path):
    with pytest.raises(RulesFileError, match=r"ALT \(Alanine aminotransferase increased\) has a baseline_normal rule"):
        load_rules(write_rules(tmp_path, when="baseline_normal"))


def test_a_baseline_rule_must_say_which_baselines_it_grades(tmp_path):
    with pytest.raises(RulesFileError, match=r"a baseline rule needs when: baseline_abnormal or baseline_known"):
        load_rules(write_rules(tmp_path, **{"regime: uln": "regime: baseline"}))


def test_a_file_that_is_not_yaml_is_refused(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules: [unclosed", encoding="utf-8")
    with pytest.raises(RulesFileError, match="not valid YAML"):
        load_rules(path)


def test_a_rule_may_be_written_in_multiples_of_the_lln(tmp_path):
    path = write_rules(
        tmp_path,
        bands("{grade: 1, lt: 1.0, gte: 0.5}", "{grade: 2, lt: 0.5}"),
        **{"direction: high": "direction: low", "regime: uln": "regime: lln"},
    )
    book = load_rules(path)
    results = [
        book.grade(item_code="ALT", value=Decimal(value), uln=None, lln=Decimal("10"), baseline=None)
        for value in ("10", "9.9", "5", "4.9")
    ]
    assert [result.grade for result in results] == [None, 1, 1, 2]
    assert str(results[3].boundary) == "< 0.5 x LLN"
