"""The one way values read for people: numbers with the item's decimals and unit, local times, choice labels."""

import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.test import override_settings
from django.utils import timezone, translation

from capture.templatetags.capture_tags import audit_value
from trial import display

ALB = SimpleNamespace(decimals=1, unit="g/L", data_type="decimal", choices=[])
ASCITES = SimpleNamespace(
    decimals=None,
    unit="",
    data_type="choice",
    choices=[["none", "None", "无"], ["mild", "Mild", "轻度"], ["moderate_severe", "Moderate to severe", "中-重度"]],
)
REACT = SimpleNamespace(decimals=None, unit="", data_type="boolean", choices=[])


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (Decimal("29.500000"), 1, "29.5"),  # the column's six decimals dropped
        (Decimal("30.000000"), 1, "30.0"),  # the item's one decimal kept
        (Decimal("30"), 0, "30"),
        (Decimal("4"), 2, "4.00"),
        (Decimal("29.55"), 1, "29.55"),  # a stored digit is never rounded away
        (Decimal("-1.250000"), 1, "-1.25"),
        (Decimal("-0.5"), 0, "-0.5"),
        (Decimal("0"), 1, "0.0"),
        (Decimal("0.000001"), 0, "0.000001"),
        (Decimal("99999999999999.999999"), 2, "99999999999999.999999"),  # Decimal(20,6)'s largest, no float
        (Decimal("1E+3"), None, "1000"),  # never an exponent
        (Decimal("100.000000"), None, "100"),
        (7, 1, "7.0"),
        ("12.50", 1, "12.5"),
    ],
)
def test_number_takes_the_items_decimals_and_never_loses_a_digit(value, decimals, expected):
    assert display.number(value, decimals=decimals) == expected


@pytest.mark.parametrize("value", [None, "", "abc", "NaN", "Infinity", "1e", "<not_done>"])
def test_number_of_nothing_or_of_text_that_is_no_number_is_empty(value):
    assert display.number(value, decimals=1, unit="g/L") == ""


def test_item_number_writes_the_unit_and_the_decimals_of_the_item():
    assert display.item_number(Decimal("29.500000"), ALB) == "29.5 g/L"
    assert display.item_number(Decimal("29.500000"), ALB, unit=False) == "29.5"
    assert display.item_number(Decimal("29.500000"), None) == "29.5"
    assert display.item_number(None, ALB) == ""


def test_numbers_follow_the_language_of_the_page():
    with translation.override("zh-hans"):
        assert display.item_number(Decimal("29.5"), ALB) == "29.5 g/L"
    # A language writing a decimal comma shows that the format is the locale's, not a hard-coded point.
    with override_settings(LANGUAGES=[("en", "English"), ("de", "German")]), translation.override("de"):
        assert display.number(Decimal("29.5"), decimals=1) == "29,5"


def test_moment_is_the_trial_time_zone_to_the_minute_or_second_never_iso():
    stored = "2026-12-06T23:56:43.842513+00:00"  # as the audit trail stores an expedited or sent time
    assert display.moment(stored) == "2026-12-07 07:56"  # Asia/Shanghai, UTC+8
    assert display.moment(stored, seconds=True) == "2026-12-07 07:56:43"
    aware = datetime.datetime(2026, 12, 6, 23, 56, 43, 842513, tzinfo=datetime.UTC)
    assert display.moment(aware) == "2026-12-07 07:56"
    assert display.moment("2026-12-06T23:56:43") == "2026-12-07 07:56"  # a naive stored time is UTC
    with timezone.override("Europe/London"):
        assert display.moment(aware) == "2026-12-06 23:56"
    assert display.moment(aware, zone=datetime.timezone(datetime.timedelta(hours=-5))) == "2026-12-06 18:56"


@pytest.mark.parametrize("text", ["", "2026-12-06", "signed", "not a time: 12", "2026-13-45T99:99"])
def test_moment_leaves_dates_and_other_text_as_they_are(text):
    assert display.moment(text) == text
    assert display.moment(None) == ""


def test_choice_labels_in_the_users_language_and_unknown_codes_kept():
    assert display.choice_label(ASCITES.choices, "mild") == "Mild"
    with translation.override("zh-hans"):
        assert display.choice_label(ASCITES.choices, "moderate_severe") == "中-重度"
    assert display.choice_label(ASCITES.choices, "gone") == "gone"
    assert display.choice_label([], "mild") == "mild"
    assert display.choice_label([["x", "Only English"]], "x") == "Only English"


def test_an_audit_value_reads_as_its_item():
    assert audit_value("29.5", ALB) == "29.5 g/L"
    assert audit_value("30", ALB) == "30.0 g/L"
    assert audit_value("-2", ALB) == "-2.0 g/L"
    assert audit_value("mild", ASCITES) == "Mild"
    assert audit_value("true", REACT) == "Yes" and audit_value("false", REACT) == "No"
    assert audit_value("<not_done>", ALB) == "(Not done)"  # a missing value's reason by its label
    assert audit_value("", ALB) == "" and audit_value("29.5") == "29.5"
    assert audit_value("<script>", ALB) == "<script>"  # not a number: shown as stored (and escaped by the page)
    with translation.override("zh-hans"):
        assert audit_value("mild", ASCITES) == "轻度"
        assert audit_value("true", REACT) == "是"
