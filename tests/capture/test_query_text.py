"""Automatic queries read in the reader's language, whoever saved them, including rows stored before."""

import datetime

import pytest
from django.template import Context, Template
from django.utils import translation

from capture.models import Query, QueryOrigin
from capture.query_text import query_text
from capture.services import form_save
from tests.capture.test_query_text_data import LIPGLU_VALUES

pytestmark = pytest.mark.usefixtures("zh_catalog")

HDL_MESSAGE = ("HDL cholesterol must be lower than total cholesterol", "高密度脂蛋白胆固醇必须低于总胆固醇")


def save_lipids(user, visit, language, **changes):
    with translation.override(language):
        values = {"LBDAT": str(visit.target_date), **LIPGLU_VALUES, **changes}
        return form_save(user=user, visit_id=visit.pk, form_code="LIPGLU", version=0, values=values)


def shown(query, language):
    with translation.override(language):
        return query_text(query)


@pytest.mark.parametrize("saved_in", ["en", "zh-hans"])
def test_a_cross_item_query_reads_in_the_readers_language_whoever_saved_it(coordinator1, m3, saved_in):
    save_lipids(coordinator1, m3, saved_in, HDL="5")
    query = Query.objects.get(visit=m3, check_code="LIPGLU_HDL_LT_CHOL")
    assert (shown(query, "en"), shown(query, "zh-hans")) == HDL_MESSAGE


@pytest.mark.parametrize("saved_in", ["en", "zh-hans"])
def test_a_window_query_reads_in_the_readers_language_with_its_dates(coordinator1, participant, saved_in):
    m0 = participant.visits.select_related("definition").get(definition__code="M0")
    early = m0.window_start - datetime.timedelta(days=3)  # M0 cannot precede enrolment
    save_lipids(coordinator1, m0, saved_in, LBDAT=str(early))
    query = Query.objects.get(visit=m0, check_code__startswith="WINDOW_")
    english, chinese = shown(query, "en"), shown(query, "zh-hans")
    assert english == f"Date of sample {early} is outside the visit window {m0.window_start} to {m0.window_end}."
    assert chinese == f"采样日期 {early} 超出访视窗口 {m0.window_start} 至 {m0.window_end}。"


def test_a_query_stored_in_english_before_reads_in_chinese(coordinator1, m3):
    save_lipids(coordinator1, m3, "en", HDL="5")
    query = Query.objects.get(visit=m3, check_code="LIPGLU_HDL_LT_CHOL")
    Query.objects.filter(pk=query.pk).update(message="HDL cholesterol must be lower than total cholesterol")
    query.refresh_from_db()
    with translation.override("zh-hans"):
        html = Template("{% load capture_tags %}{{ query|query_message }}").render(Context({"query": query}))
    assert html == HDL_MESSAGE[1]


def test_what_a_person_wrote_is_shown_as_written(coordinator1, m3):
    save_lipids(coordinator1, m3, "en", HDL="5")
    query = Query.objects.get(visit=m3, check_code="LIPGLU_HDL_LT_CHOL")
    person = Query(origin=QueryOrigin.MANUAL, message="Please check <b>HDL</b>", check_code="")
    answer = "Checked: the lab report says 1.2"
    with translation.override("zh-hans"):
        assert query_text(person) == "Please check <b>HDL</b>"
        # The inbox passes the thread's latest message: a person's answer is shown as written.
        rendered = Template("{% load capture_tags %}{{ q|query_message:text }}").render(
            Context({"q": query, "text": answer})
        )
    assert rendered == answer


@pytest.mark.parametrize(
    "message",
    ["", "garbage without dates", "x 2026-01-01 y", "<script>alert(1)</script> 2026-01-01 a 2026-01-02 b 2026-01-03"],
)
def test_a_window_message_that_does_not_parse_is_shown_as_stored_or_rebuilt_escaped(db, message):
    query = Query(origin=QueryOrigin.AUTOMATIC, check_code="WINDOW_M3", message=message)
    with translation.override("zh-hans"):
        text = query_text(query)
        html = Template("{% load capture_tags %}{{ q|query_message }}").render(Context({"q": query}))
    assert "<script>" not in html
    if message.count("-") < 6:
        assert text == message


def test_an_unknown_check_code_is_shown_as_stored(db):
    query = Query(origin=QueryOrigin.AUTOMATIC, check_code="NO_SUCH_CHECK", message="As stored")
    with translation.override("zh-hans"):
        assert query_text(query) == "As stored"
