"""The one text validator and the date plausibility check, without HTTP."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from trial.validators import EARLIEST_DATE, date_problem, text_problem, validate_text

HOSTILE = ["a\x00b", "a\x07b", "a\x1bb", "a\x7fb", "a\ud800b", "a\udfffb"]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("multiline", [False, True])
def test_nul_control_characters_and_lone_surrogates_are_refused(text, multiline):
    assert text_problem(text, multiline=multiline)
    with pytest.raises(ValidationError) as refused:
        validate_text(text, multiline=multiline)
    assert refused.value.code == "text_character"


def test_the_message_names_the_character_and_its_position():
    assert text_problem("ab\x00", multiline=False) == (
        "The text holds a control character (U+0000) at position 3: remove it."
    )
    assert "U+D800" in text_problem("\ud800", multiline=True)


@pytest.mark.parametrize("text", ["line one\nline two", "a\tb", "windows\r\nline"])
def test_tabs_and_line_breaks_only_where_text_spans_lines(text):
    assert text_problem(text, multiline=True) is None
    assert text_problem(text, multiline=False) == "Write this on one line: tabs and line breaks are not allowed here."


@pytest.mark.parametrize("text", ["", "ALT 300 U/L, please confirm", "轻度发热、寒战", "Ünïcödé 😀", "=SUM(A1)"])
def test_ordinary_text_passes(text):
    assert text_problem(text, multiline=False) is None


def test_dates_before_1900_are_refused_and_1900_01_01_accepted():
    assert date_problem(datetime.date(1899, 12, 31)) == "Dates before 1900-01-01 are not accepted."
    assert date_problem(datetime.date(1899, 12, 31), happened=False)
    assert date_problem(EARLIEST_DATE) is None


def test_a_date_of_something_that_happened_cannot_be_tomorrow_in_the_trials_time_zone():
    today = timezone.localdate()
    assert date_problem(today) is None
    assert date_problem(today + datetime.timedelta(days=1)) == "This date cannot be in the future."
    assert date_problem(today + datetime.timedelta(days=1), happened=False) is None
    assert date_problem(None) is None


def test_messages_are_in_the_users_language():
    from django.utils import translation

    with translation.override("zh-hans"):
        assert date_problem(datetime.date(1, 1, 1)) != "Dates before 1900-01-01 are not accepted."
        assert "U+0000" in text_problem("\x00", multiline=False)
        assert (
            text_problem("\x00", multiline=False)
            != "The text holds a control character (U+0000) at position 1: remove it."
        )
