"""Safety texts people read: the CTCAE criterion as a sentence, an event's history by labels and local times."""

import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from safety import grading, services
from safety.display import criterion_sentence, criterion_text, history_reason, history_value, parse_criterion
from safety.models import AdverseEvent
from tests.safety.conftest import SERIOUS, ae_input, save_liver, visit_of

ALB = SimpleNamespace(decimals=1, unit="g/L", data_type="decimal", choices=[])
ALT = SimpleNamespace(decimals=0, unit="U/L", data_type="decimal", choices=[])
GLUC = SimpleNamespace(decimals=2, unit="mmol/L", data_type="decimal", choices=[])
ISO_WITH_MICROSECONDS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+")


def sentence(code: str, value: str, item: object, *, uln=None, lln=None, baseline=None) -> str:
    """Grade a value with the trial's CTCAE rules, store the criterion as the grading does, read it back."""
    result = grading.grade(item_code=code, value=Decimal(value), uln=uln, lln=lln, baseline=baseline)
    stored = Decimal(value).quantize(Decimal("0.000001"))  # as the Decimal(20,6) column gives it back
    return criterion_sentence(criterion=criterion_text(result), value=stored, grade=result.grade, item=item)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("40", "40.0 g/L, at or above 40 g/L (LLN): below grade 1"),
        ("39.9", "39.9 g/L, below 40 g/L (LLN): grade 1"),
        ("30", "30.0 g/L, below 40 g/L (LLN): grade 1"),  # 30 itself is the last value of grade 1
        ("29.9", "29.9 g/L, below 30 g/L: grade 2"),
        ("29.5", "29.5 g/L, below 30 g/L: grade 2"),  # the example
        ("20", "20.0 g/L, below 30 g/L: grade 2"),
        ("19.9", "19.9 g/L, below 20 g/L: grade 3"),
    ],
)
def test_hypoalbuminemia_at_each_boundary_below(value, expected):
    assert sentence("ALB", value, ALB, lln=Decimal(40), uln=Decimal(55)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("50", "50 U/L, at or below 50 U/L (1.0 × ULN): below grade 1"),
        ("51", "51 U/L, above 50 U/L (1.0 × ULN): grade 1"),
        ("150", "150 U/L, above 50 U/L (1.0 × ULN): grade 1"),
        ("151", "151 U/L, above 150 U/L (3.0 × ULN): grade 2"),
        ("251", "251 U/L, above 250 U/L (5.0 × ULN): grade 3"),
        ("1000", "1000 U/L, above 250 U/L (5.0 × ULN): grade 3"),
        ("1001", "1001 U/L, above 1000 U/L (20.0 × ULN): grade 4"),
    ],
)
def test_alt_increased_at_each_boundary_above(value, expected):
    assert sentence("ALT", value, ALT, uln=Decimal(50), lln=Decimal(9), baseline=Decimal(30)) == expected


def test_a_flag_reads_with_its_message_and_an_abnormal_baseline_as_a_multiple_of_it():
    flagged = sentence("GLUC", "8.7", GLUC, uln=Decimal("6.1"), lln=Decimal("3.9"))
    assert flagged.startswith("8.70 mmol/L, above 6.1 mmol/L (1.0 × ULN): Glucose above the ULN.")
    # An abnormal baseline (above the ULN): ALT grades by multiples of the participant's baseline.
    by_baseline = sentence("ALT", "181", ALT, uln=Decimal(50), lln=Decimal(9), baseline=Decimal(60))
    assert by_baseline == "181 U/L, above 180 U/L (3.0 × baseline): grade 2"


def test_the_sentence_in_chinese():
    with translation.override("zh-hans"):
        assert sentence("ALB", "29.5", ALB, lln=Decimal(40)) == "29.5 g/L，低于 30 g/L：2 级"
        assert sentence("ALB", "40", ALB, lln=Decimal(40)) == "40.0 g/L，不低于 40 g/L（LLN）：未达 1 级"
        baseline = sentence("ALT", "181", ALT, uln=Decimal(50), lln=Decimal(9), baseline=Decimal(60))
        assert baseline == "181 U/L，高于 180 U/L（3.0 × 基线）：2 级"


def test_rows_stored_before_read_as_well_and_unknown_text_is_shown_as_stored():
    # As the grading stored it before: the threshold with the column's digits, the item unknown.
    assert parse_criterion("> 1.0 x ULN (= 6.1000000)").threshold == Decimal("6.1")
    assert criterion_sentence(criterion="< 30 (= 30)", value=Decimal("29.500000"), grade=2) == (
        "29.5, below 30: grade 2"
    )
    for hostile in ("", "grade 2", "< 30", "<script>alert(1)</script> (= x)", "< 30 (= 1e5)", "> ULN (= -)"):
        assert criterion_sentence(criterion=hostile, value=Decimal(1), grade=1, item=ALB) == hostile
    assert criterion_sentence(criterion="< 30 (= 30)", value=None, grade=2, item=ALB) == "< 30 (= 30)"


def test_history_values_by_their_labels_and_times_in_the_trials_zone():
    assert history_value("recovering", field="outcome") == "Recovering"
    assert history_value("gastrointestinal", field="body_system") == "Gastrointestinal disorders"
    assert history_value("hospitalisation,fatal", field="serious_criteria") == (
        "Requires or prolongs hospitalisation, Fatal"
    )
    assert history_value("yes", field="serious") == "Yes" and history_value("no", field="serious") == "No"
    assert history_value("2026-12-06T23:56:43.842513+00:00", field="expedited_at") == "2026-12-07 07:56"
    assert history_value("2026-12-06T23:56:43.842513+00:00", field="investigator", action="sent") == (
        "2026-12-07 07:56"
    )
    assert history_value("2026-12-06", field="onset_date") == "2026-12-06"
    assert history_value("made-up", field="outcome") == "made-up" and history_value("", field="outcome") == ""
    assert history_reason("CTCAE v5.0 lab grading of M3 ALB = 29.500000") == "CTCAE v5.0 lab grading of M3 ALB = 29.5"
    assert history_reason("Typo 1.5 fixed") == "Typo 1.5 fixed"
    with translation.override("zh-hans"):
        assert history_value("recovering", field="outcome") == "好转中"


def test_event_history_page_shows_labels_and_local_times(as_user, coordinator1, investigator1, participant):
    event = services.adverse_event_report(user=coordinator1, participant_id=participant.pk, data=ae_input())
    services.adverse_event_update(
        user=coordinator1,
        event_id=event.pk,
        version=event.version,
        data=ae_input(outcome="recovering", body_system="hepatobiliary", **SERIOUS),
        reason="Follow-up",
    )
    event = AdverseEvent.objects.get(pk=event.pk)
    page = as_user(investigator1).get(reverse("safety:adverse_event", args=[event.pk])).content.decode()
    history = page[page.index('id="event-history"') :]
    new_values = re.findall(r'class="new-value[^"]*">([^<]*)</td>', history)
    assert "Recovering" in new_values and "Hepatobiliary disorders" in new_values
    assert "Requires or prolongs hospitalisation" in new_values and "Yes" in new_values
    assert "recovering" not in new_values and "hepatobiliary" not in new_values
    assert timezone.localtime(event.expedited_at).strftime("%Y-%m-%d %H:%M") in new_values
    assert not ISO_WITH_MICROSECONDS.search(page)
    client = as_user(investigator1)
    client.cookies["django_language"] = "zh-hans"
    with translation.override("en"):  # the request activates Chinese in this thread; put English back after
        chinese = client.get(reverse("safety:adverse_event", args=[event.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "好转中" in re.findall(r'class="new-value[^"]*">([^<]*)</td>', chinese.content.decode())


def test_dashboard_and_event_pages_show_the_lab_value_with_its_unit_in_no_extra_query(
    as_user, coordinator1, investigator1, participant, django_capture_on_commit_callbacks, django_assert_num_queries
):
    save_liver(coordinator1, visit_of(participant, "M0"), django_capture_on_commit_callbacks)
    save_liver(coordinator1, visit_of(participant, "M3"), django_capture_on_commit_callbacks, ALB="29.5", ALT="300")
    client = as_user(investigator1)
    client.get(reverse("safety:dashboard"))  # the session, and the protocol's definitions, read once
    # The sites' tallies, then only the parts they count any of: the proposals (and the deaths, not tallied), not
    # the open or serious events (tests/safety/test_views.py has all four: 8 queries).
    with django_assert_num_queries(7):
        board = client.get(reverse("safety:dashboard")).content.decode()
    assert "ALB = 29.5 g/L" in board and "ALT = 300 U/L" in board
    event = AdverseEvent.objects.get(participant=participant, lab_item_code="ALB")
    page = client.get(reverse("safety:adverse_event", args=[event.pk])).content.decode()
    assert 'data-field="ctcae_criterion">29.5 g/L, below 30 g/L: grade 2<' in page
    assert "CTCAE v5.0 lab grading of M3 ALB = 29.5 g/L" in page  # the audit reason, stored readable
    confirm = client.get(reverse("safety:adverse_event_confirm", args=[event.pk])).content.decode()
    assert "M3 ALB = 29.5 g/L: Hypoalbuminemia, CTCAE grade 2" in confirm
    assert "(29.5 g/L, below 30 g/L: grade 2)" in confirm
