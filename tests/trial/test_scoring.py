from decimal import Decimal

import pytest
import yaml

from trial.protocol_file import DEFAULT_PATH
from trial.scoring import child_pugh, meld, meld_na

TABLE = yaml.safe_load(DEFAULT_PATH.read_text())["eligibility"]["child_pugh"]
BASE = {"bilirubin": "20", "albumin": "40", "inr": "1.0", "ascites": "none", "encephalopathy": "none"}


def points(**changes: str) -> int:
    values = {**BASE, **changes}
    return child_pugh(
        table=TABLE,
        bilirubin=Decimal(values["bilirubin"]),
        albumin=Decimal(values["albumin"]),
        inr=Decimal(values["inr"]),
        ascites=values["ascites"],
        encephalopathy=values["encephalopathy"],
    ).points


@pytest.mark.parametrize(
    ("bilirubin", "expected"),
    [("33.9", 5), ("34", 6), ("34.1", 6), ("51", 6), ("51.1", 7), ("400", 7)],
)
def test_bilirubin_bands_at_their_boundaries(bilirubin, expected):
    assert points(bilirubin=bilirubin) == expected


@pytest.mark.parametrize(
    ("albumin", "expected"),
    [("35.1", 5), ("35", 6), ("28", 6), ("27.9", 7), ("10", 7)],
)
def test_albumin_bands_at_their_boundaries(albumin, expected):
    assert points(albumin=albumin) == expected


@pytest.mark.parametrize(("inr", "expected"), [("1.69", 5), ("1.7", 6), ("2.3", 6), ("2.31", 7)])
def test_inr_bands_at_their_boundaries(inr, expected):
    assert points(inr=inr) == expected


@pytest.mark.parametrize(
    ("ascites", "encephalopathy", "expected"),
    [("mild", "none", 6), ("moderate_severe", "none", 7), ("none", "grade_1_2", 6), ("none", "grade_3_4", 7)],
)
def test_ascites_and_encephalopathy_points(ascites, encephalopathy, expected):
    assert points(ascites=ascites, encephalopathy=encephalopathy) == expected


@pytest.mark.parametrize(
    ("changes", "points_", "grade"),
    [
        ({}, 5, "A"),
        ({"bilirubin": "40"}, 6, "A"),
        ({"bilirubin": "40", "albumin": "30"}, 7, "B"),
        ({"bilirubin": "60", "albumin": "30", "ascites": "mild"}, 9, "B"),
        ({"bilirubin": "60", "albumin": "30", "ascites": "mild", "inr": "1.8"}, 10, "C"),
        (
            {
                "bilirubin": "60",
                "albumin": "20",
                "ascites": "moderate_severe",
                "inr": "2.5",
                "encephalopathy": "grade_3_4",
            },
            15,
            "C",
        ),
    ],
)
def test_class_follows_total_points(changes, points_, grade):
    values = {**BASE, **changes}
    score = child_pugh(
        table=TABLE,
        bilirubin=Decimal(values["bilirubin"]),
        albumin=Decimal(values["albumin"]),
        inr=Decimal(values["inr"]),
        ascites=values["ascites"],
        encephalopathy=values["encephalopathy"],
    )
    assert (score.points, score.grade) == (points_, grade)


def test_meld_floors_values_below_one_at_six():
    # bilirubin 1 mg/dL, creatinine 1 mg/dL, INR 1: every log is 0, MELD = 6.43 -> 6.
    assert meld(bilirubin_umol_l=Decimal("10"), creatinine_umol_l=Decimal("50"), inr=Decimal("0.9")) == 6


def test_meld_known_value():
    # bilirubin 3 mg/dL (51.3 umol/L), creatinine 2 mg/dL (176.8 umol/L), INR 2:
    # 3.78 ln 3 + 11.2 ln 2 + 9.57 ln 2 + 6.43 = 4.153 + 7.763 + 6.633 + 6.43 = 24.98 -> 25
    assert meld(bilirubin_umol_l=Decimal("51.3"), creatinine_umol_l=Decimal("176.8"), inr=Decimal("2")) == 25


def test_meld_caps_creatinine_at_four_and_dialysis_counts_as_four():
    capped = meld(bilirubin_umol_l=Decimal("17.1"), creatinine_umol_l=Decimal("900"), inr=Decimal("1"))
    dialysis = meld(
        bilirubin_umol_l=Decimal("17.1"), creatinine_umol_l=Decimal("60"), inr=Decimal("1"), on_dialysis=True
    )
    assert capped == dialysis == round(9.57 * 1.3862944 + 6.43)


def _mg(bilirubin: str = "1", creatinine: str = "1", inr: str = "1") -> dict:
    """Arguments in mg/dL, converted to the SI units the functions take."""
    return {
        "bilirubin_umol_l": Decimal(bilirubin) * Decimal("17.1"),
        "creatinine_umol_l": Decimal(creatinine) * Decimal("88.4"),
        "inr": Decimal(inr),
    }


def test_meld_is_capped_at_forty():
    assert meld(bilirubin_umol_l=Decimal(1000), creatinine_umol_l=Decimal(3000), inr=Decimal(15)) == 40


def test_meld_rounds_to_the_tenth_then_times_ten_half_up():
    # 0.957 ln 1.5 + 0.643 = 1.031032...; bilirubin 1.65 mg/dL adds 0.378 ln 1.65 = 0.189297...: 1.2203 -> 12.
    assert meld(**_mg(creatinine="1.5")) == 10
    assert meld(**_mg(creatinine="1.5", bilirubin="1.65")) == 12
    # 0.643 + 0.0070...01 (INR just above e^(0.007/1.12)) rounds to 0.7 -> 7; just below 0.65 it stays 6.
    inr = (Decimal("0.007") / Decimal("1.120")).exp()
    assert meld(**{**_mg(), "inr": inr + Decimal("1e-9")}) == 7
    assert meld(**{**_mg(), "inr": inr - Decimal("1e-9")}) == 6


def test_meld_creatinine_at_its_bounds():
    at_four = meld(**_mg(creatinine="4"))
    assert meld(**_mg(creatinine="4.01")) == at_four == meld(**_mg(creatinine="9"))
    assert meld(**_mg(creatinine="0.5"), on_dialysis=True) == at_four
    assert meld(**_mg(creatinine="0.99")) == meld(**_mg(creatinine="1")) == 6


@pytest.mark.parametrize(
    ("sodium", "expected"),
    [
        # MELD(i) 20 (bilirubin 1, creatinine 4, INR 1: 0.957 ln 4 + 0.643 = 1.9697 -> 2.0 -> 20).
        ("137", 20),  # no adjustment at 137
        ("150", 20),  # above 137 counts as 137
        ("136", 21),  # 20 + 1.32 - 0.66 = 20.66 -> 21
        ("125", 28),  # 20 + 15.84 - 7.92 = 27.92 -> 28
        ("110", 28),  # below 125 counts as 125
    ],
)
def test_meld_na_bounds_sodium_to_125_137(sodium, expected):
    assert meld_na(**_mg(creatinine="4"), sodium_mmol_l=Decimal(sodium)) == expected


def test_meld_na_applies_only_above_eleven():
    # creatinine 1.6 mg/dL: 0.957 ln 1.6 + 0.643 = 1.0928 -> 1.1 -> MELD(i) 11: sodium does not count.
    assert meld(**_mg(creatinine="1.6")) == 11
    assert meld_na(**_mg(creatinine="1.6"), sodium_mmol_l=Decimal(125)) == 11
    # creatinine 1.7: 0.957 ln 1.7 + 0.643 = 1.1508 -> 1.2 -> 12, and then sodium counts: 12 + 15.84 - 4.752.
    assert meld(**_mg(creatinine="1.7")) == 12
    assert meld_na(**_mg(creatinine="1.7"), sodium_mmol_l=Decimal(125)) == 23


def test_meld_na_is_capped_at_forty():
    worst = {"bilirubin_umol_l": Decimal(1000), "creatinine_umol_l": Decimal(3000), "inr": Decimal(15)}
    assert meld_na(**worst, sodium_mmol_l=Decimal(120)) == 40
    assert meld_na(**_mg(bilirubin="20", creatinine="4", inr="3"), sodium_mmol_l=Decimal(125)) == 40
