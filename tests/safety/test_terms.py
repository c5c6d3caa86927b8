"""CTCAE terms, SAE notices and the system's history texts in the reader's language; notices in the recipient's."""

import pytest
from django.core import mail
from django.utils import translation

from safety import grading
from safety.models import Notification, SaeNotification
from safety.notify import CONTACT_LANGUAGES, STAFF_LANGUAGES, notice_languages
from safety.terms import history_text_in_language, notice_in_language, term_in_language, terms_zh
from tests.safety.test_sae import serious_event

pytestmark = pytest.mark.usefixtures("zh_catalog")


def in_chinese(function, text):
    with translation.override("zh-hans"):
        return function(text)


def test_every_graded_or_flagged_ctcae_term_has_a_chinese_name():
    book = grading.trial_rules()
    terms = {rule.term for rule in book.rules} | {flag.term for flag in book.flags}
    assert {term for term in terms if term.casefold() not in terms_zh()} == set()
    assert all(any("\u4e00" <= char <= "\u9fff" for char in name) for name in terms_zh().values())


@pytest.mark.parametrize(
    ("term", "chinese"),
    [
        ("Hypoalbuminemia", "低白蛋白血症"),
        ("Alanine aminotransferase increased", "丙氨酸氨基转移酶升高"),
        (" hypoalbuminemia ", "低白蛋白血症"),
        ("Fever after infusion", "Fever after infusion"),  # a verbatim term, shown as written
        ("", ""),
        ("<script>", "<script>"),
    ],
)
def test_a_term_reads_in_chinese_only_on_a_chinese_page(term, chinese):
    assert in_chinese(term_in_language, term) == chinese
    with translation.override("en"):
        assert term_in_language(term) == term


def test_an_sae_notice_stored_in_english_reads_in_chinese():
    stored = "SAE 01-003 AE-002 follow-up 1 (site 1): Hepatic failure, grade 4, onset 2026-11-02"
    assert in_chinese(notice_in_language, stored) == (
        "严重不良事件 01-003 AE-002 第1次随访报告（中心 1）：肝衰竭，4级，发生于 2026-11-02"
    )
    assert notice_in_language(stored) == stored
    assert in_chinese(notice_in_language, "The audit trail's hash chain is broken") == (
        "The audit trail's hash chain is broken"
    )


@pytest.mark.parametrize(
    ("stored", "chinese"),
    [
        ("Hypoalbuminemia CTCAE grade 2", "低白蛋白血症，CTCAE 2级"),
        ("CTCAE v5.0 lab grading of M3 ALB = 29.5 g/L", "CTCAE v5.0 实验室分级：M3 ALB = 29.5 g/L"),
        ("Lab proposal confirmed", "已确认实验室分级提议"),
        ("Initial report", "首次报告"),
        ("Follow-up 2", "随访报告2"),
        ("derived", "自动计算"),
        ("Admitted to hospital: serious", "Admitted to hospital: serious"),  # a person's reason, as written
        ("", ""),
    ],
)
def test_the_systems_history_texts_read_in_chinese(stored, chinese):
    assert in_chinese(history_text_in_language, stored) == chinese


def test_a_flag_message_in_the_criterion_reads_in_chinese():
    flag = grading.trial_rules().flags[0]
    assert "高于正常值上限" in in_chinese(history_text_in_language, f"{flag.message} > 1.0 x ULN")


def test_site_staff_get_the_notice_in_chinese_then_english_and_the_safety_desk_in_english(
    coordinator1, investigator1, monitor, participant, django_capture_on_commit_callbacks
):
    serious_event(coordinator1, participant, django_capture_on_commit_callbacks)
    by_address = {message.to[0]: message for message in mail.outbox}
    staff = by_address[investigator1.email]
    assert staff.body.index("报告了一例严重不良事件") < staff.body.index("A serious adverse event was reported")
    assert "initial report" in staff.subject and "首次报告" in staff.subject
    desk = [m for m in mail.outbox if m.to[0] not in {investigator1.email, monitor.email}]
    assert desk and all("严重不良事件" not in m.body and "initial report" in m.subject for m in desk)
    roles = dict(SaeNotification.objects.values_list("email", "role"))
    assert notice_languages(SaeNotification(role=roles[investigator1.email])) == STAFF_LANGUAGES
    assert notice_languages(SaeNotification(role="sponsor_safety")) == CONTACT_LANGUAGES
    # The in-app notice is stored once, in English, and shown in the reader's language.
    stored = Notification.objects.filter(user=investigator1).values_list("text", flat=True).first()
    assert stored.startswith("SAE ") and in_chinese(notice_in_language, stored).startswith("严重不良事件 ")


def test_a_notice_names_the_verbatim_term_as_written(
    coordinator1, investigator1, participant, django_capture_on_commit_callbacks
):
    serious_event(coordinator1, participant, django_capture_on_commit_callbacks, term="Fall <b>at home</b>")
    body = next(m.body for m in mail.outbox if m.to[0] == investigator1.email)
    assert "事件：AE-001 Fall <b>at home</b>" in body
