"""The PDF reports, read back: pypdf for the text, PDFium (pypdfium2) to render every page."""

import datetime
import io
import re

import pypdf
import pypdfium2
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from reports.pdf import REPORTS, Report, SafetyReport, TrialSummaryReport
from tests.reports import fixed_dataset
from tests.reports.test_statistics import grow
from trial import access
from trial.services import protocol_current

SITE1_ZH = "中国人民解放军第三〇二医院"
SITE2_ZH = "兰州大学第一医院"
SUMMARY_HEADINGS = [
    "Enrolment",
    "Visit completion",
    "Lab outcomes by arm and visit",
    "Cytokine profile by arm and visit",
    "Hepatitis B and C status by arm and visit",
    "Clinical symptoms by arm through the 3-year follow-up",
    "Safety",
    "Survival",
    "Concomitant medications by arm",
    "Protocol deviations",
    "Data quality",
]


@pytest.fixture
def trial(coordinator1, coordinator2, site1, site2):
    return fixed_dataset.build(coordinator1, coordinator2, site1, site2)


def build(report_class, user, trial, **kwargs):
    report = report_class(
        participants=access.participants(user),
        cutoff=kwargs.pop("cutoff", trial.cutoff),
        generated_by="Li Na (sponsor)",
        protocol=protocol_current(),
    )
    return report.build(**kwargs)


def text_of(pdf: bytes) -> str:
    """The text of every page, whitespace collapsed: a table row reads as its cells separated by spaces."""
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    return " ".join(" ".join(page.extract_text().split()) for page in pages)


@pytest.fixture
def summary_pdf(trial, sponsor):
    return build(TrialSummaryReport, sponsor, trial)


def test_the_reports_are_registered_by_code():
    assert REPORTS == {"trial_summary": TrialSummaryReport, "safety": SafetyReport}
    assert all(issubclass(cls, Report) for cls in REPORTS.values())


def test_summary_has_a_cover_and_every_section(summary_pdf, trial):
    reader = pypdf.PdfReader(io.BytesIO(summary_pdf))
    cover = reader.pages[0].extract_text()
    for expected in ("Trial summary report", "NCT01573923", "Protocol version", "Li Na (sponsor)", "Data cut-off"):
        assert expected in cover
    assert timezone.localtime(trial.cutoff).strftime("%Y-%m-%d %H:%M") in cover
    text = text_of(summary_pdf)
    for title in SUMMARY_HEADINGS:
        assert title in text
    assert [item.title for item in reader.outline] == SUMMARY_HEADINGS  # the reader's bookmarks


def test_every_page_has_the_header_and_footer(summary_pdf):
    pages = pypdf.PdfReader(io.BytesIO(summary_pdf)).pages
    for number, page in enumerate(pages, start=1):
        text = page.extract_text()
        assert f"Page {number} of {len(pages)}" in text
        assert "Confidential" in text
    assert all("NCT01573923 · Trial summary report" in page.extract_text() for page in pages[1:])


def test_summary_shows_the_hand_computed_numbers(summary_pdf):
    text = text_of(summary_pdf)
    assert "Enrolled: 3" in text  # the CONSORT boxes: 3 in each arm
    assert "complete 2 · missed 0 · pending 1 · off schedule 0" in text  # MSC at month 3
    # ALB month 3 (arms in protocol order): CONV 28, 33 -> n 2, mean 30.50, SD 3.536, median 30.50;
    # MSC 30, 34, 41 -> n 3, mean 35.00, SD 5.568, median 34.00
    assert "Month 3 2 30.50 3.536 30.50 3 35.00 5.568 34.00" in text
    # IL6 change at month 3: CONV +2, +1 -> n 2, mean 1.500, SD 0.7071; MSC -4, -3 -> n 2, mean -3.500, SD 0.7071
    assert "Month 3 2 1.500 0.7071 – 2 -3.500 0.7071 –" in text
    # Kaplan-Meier: MSC 3 participants, 2 deaths, 1 censored, S(6) = 0.667, S(12) = 0.333
    # with 95% CIs (Greenwood, log-log: tests/reports/test_statistics.py checks them against lifelines)
    assert re.search(r"3 2 1 0\.667 \(0\.\d{3}-0\.\d{3}\) 0\.333 \(0\.\d{3}-0\.\d{3}\)", text)
    # MSC median: day 300 = 9.9 months; CONV's S stays at 0.5 from day 150 = 4.9 months
    assert "Median survival" in text and "9.9" in text and "Log-rank test" in text
    # Site 1's open queries: 2, 1, 1 (total 4); 27 values entered, 7 verified, 25%; 9 complete visits, 6 unsigned
    assert "2 1 1 4 27 7 25% 9 6" in text


def test_numbers_and_times_read_as_people_write_them(summary_pdf, trial):
    text = text_of(summary_pdf)
    assert not re.search(r"\b\d+\.\d{6}\b", text)  # no number with the database column's six decimals
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text)  # no ISO time
    cutoff = timezone.localtime(trial.cutoff)
    assert f"Data cut-off: {cutoff:%Y-%m-%d %H:%M} Asia/Shanghai" in text  # the trial's zone, to the minute
    # Lab statistics one decimal beyond the item's (ALB: 1 decimal -> 2), with the item's unit in its heading.
    assert "Albumin (ALB) (g/L)" in text and "30.50" in text


def test_chinese_text_survives(summary_pdf):
    text = text_of(summary_pdf)
    assert SITE1_ZH in text and SITE2_ZH in text
    assert fixed_dataset.CHINESE_TERM in text  # a free-text AE term in the SAE listing
    assert "Seen by Dr Wang" not in text  # the free-text description never is


def test_chinese_text_is_set_in_a_cjk_font(summary_pdf):
    reader = pypdf.PdfReader(io.BytesIO(summary_pdf))
    cover_fonts = {font["/BaseFont"] for font in reader.pages[0]["/Resources"]["/Font"].values()}
    assert "/STSong-Light" in cover_fonts
    descendant = next(f for f in reader.pages[0]["/Resources"]["/Font"].values() if f["/BaseFont"] == "/STSong-Light")
    assert descendant["/Encoding"] == "/UniGB-UCS2-H"  # Unicode in, so text extraction gives the characters back


def test_every_page_renders_with_content(summary_pdf):
    document = pypdfium2.PdfDocument(summary_pdf)
    assert len(document) >= len(SUMMARY_HEADINGS) + 1
    for index in range(len(document)):
        image = document[index].render(scale=0.5).to_pil().convert("L")
        inked = sum(image.histogram()[:200])  # pixels darker than light grey
        assert inked > 500, f"page {index + 1} is (nearly) blank"


def test_progress_is_reported_after_each_section(trial, sponsor):
    calls = []
    build(TrialSummaryReport, sponsor, trial, progress=lambda percent, title: calls.append((percent, title)))
    assert [title for _percent, title in calls] == [*SUMMARY_HEADINGS, "Trial summary report"]
    percents = [percent for percent, _title in calls]
    assert percents == sorted(percents) and percents[-1] == 100 and percents[0] > 0


def test_a_viewer_of_site_1_sees_only_site_1(trial, coordinator1):
    text = text_of(build(TrialSummaryReport, coordinator1, trial))
    assert SITE1_ZH in text
    assert SITE2_ZH not in text
    assert "02-001" not in text  # site 2's SAE
    # ALB month 3 at site 1: CONV 28 alone (no SD); MSC 30, 34 -> n 2, mean 32.00, SD 2.828, median 32.00
    assert "Month 3 1 28.00 – 28.00 2 32.00 2.828 32.00" in text


def test_safety_report_has_safety_survival_and_deaths_only(trial, sponsor):
    pdf = build(SafetyReport, sponsor, trial)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert [item.title for item in reader.outline] == ["Safety", "Survival", "Deaths"]
    text = text_of(pdf)
    assert "Safety report" in reader.pages[0].extract_text()
    # The deaths by date: 02-001 day 100, 01-003 day 150, 01-002 day 300
    assert f"02-001 02 Conventional therapy + UC-MSC {trial.enrolment_day() + datetime.timedelta(days=100)} 100" in text
    assert text.index(fixed_dataset.CHINESE_TERM) < text.index("Liver failure") < text.index("300 Hepatic")
    assert "Visit completion" not in text


def test_the_report_is_written_in_the_active_language(trial, sponsor):
    with translation.override("zh-hans"):
        text = text_of(build(TrialSummaryReport, sponsor, trial))
    assert "常规治疗" in text  # the arm's Chinese name from the protocol file
    assert "第3月" in text  # the visit's Chinese name


def test_the_whole_build_runs_the_same_queries_at_two_sizes(trial, sponsor, coordinator1, site1):
    build(TrialSummaryReport, sponsor, trial)  # the protocol's definitions are read once per process
    with CaptureQueriesContext(connection) as small:
        build(TrialSummaryReport, sponsor, trial)
    grow(trial, coordinator1, site1, 8)
    later = timezone.now()
    with CaptureQueriesContext(connection) as large:
        pdf = build(TrialSummaryReport, sponsor, trial, cutoff=later)
    assert len(small) == len(large) <= 40
    assert "Enrolled: 7" in text_of(pdf)  # 3 + 4 of the 8 new ones in each arm
