"""Clinical symptoms through the 3-year follow-up: the statistic by hand, its constant SQL count, its PDF section."""

import datetime
import io

import pypdf
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from capture.models import ItemValue
from reports.pdf import TrialSummaryReport
from reports.statistics.symptoms import SymptomCounts, SymptomKey, symptom_change
from tests.factories import enrolled
from trial import access
from trial.models import ItemDefinition
from trial.services import protocol_current

RANKS = {
    "ABDDIST": ["none", "mild", "moderate", "severe"],
    "APPETITE": ["normal", "reduced", "poor"],
    "DEBIL": ["none", "mild", "moderate", "severe"],
    "LLEDEMA": ["none", "mild", "moderate", "severe"],
}
# participant: (arm, {visit: abdominal distension}); the survival contacts FU18-FU36 ask the symptoms too.
PLAN = {
    "A": ("MSC", {"M0": "moderate", "M12": "mild", "FU18": "none", "FU36": "none"}),
    "B": ("MSC", {"M0": "mild", "M12": "mild", "FU18": "severe"}),
    "C": ("CONV", {"M0": "none", "M12": "mild", "FU18": "mild", "FU36": "moderate"}),
    "D": ("CONV", {"FU18": "mild"}),  # no month-0 answer: counted present, never compared
    "E": ("CONV", {"M0": "severe", "FU36": ("late", "none")}),  # saved after the cut-off: left out
}


def write(user, site, plan, cutoff):
    item = ItemDefinition.objects.get(form__code="SYMPT", code="ABDDIST", form__protocol=protocol_current())
    rows = []
    for arm, answers in plan.values():
        participant = enrolled(user, site, arm=arm, days_ago=1100)
        visits = {visit.definition.code: visit for visit in participant.visits.select_related("definition")}
        for code, answer in answers.items():
            saved = cutoff - datetime.timedelta(days=1)
            if isinstance(answer, tuple):
                saved, answer = cutoff + datetime.timedelta(hours=1), answer[1]
            rows.append(ItemValue(visit=visits[code], item=item, text=answer, updated_at=saved))
    ItemValue.objects.bulk_create(rows)


@pytest.fixture
def cutoff(coordinator1, site1):
    moment = timezone.now() + datetime.timedelta(minutes=5)  # the participants are enrolled by then
    write(coordinator1, site1, PLAN, moment)
    return moment


def test_symptoms_present_and_changed_from_month_0_by_arm_and_time_point(coordinator1, cutoff):
    found = symptom_change(access.participants(coordinator1), cutoff=cutoff, ranks=RANKS)
    key = SymptomKey
    assert found[key("ABDDIST", "MSC", "M0")] == SymptomCounts(assessed=2, present=2)
    assert found[key("ABDDIST", "MSC", "M12")] == SymptomCounts(2, 2, paired=2, better=1, same=1, worse=0)
    assert found[key("ABDDIST", "MSC", "FU18")] == SymptomCounts(2, 1, paired=2, better=1, same=0, worse=1)
    assert found[key("ABDDIST", "MSC", "FU36")] == SymptomCounts(1, 0, paired=1, better=1, same=0, worse=0)
    assert found[key("ABDDIST", "CONV", "M0")] == SymptomCounts(assessed=2, present=1)
    assert found[key("ABDDIST", "CONV", "FU18")] == SymptomCounts(2, 2, paired=1, better=0, same=0, worse=1)
    assert found[key("ABDDIST", "CONV", "FU36")] == SymptomCounts(1, 1, paired=1, better=0, same=0, worse=1)
    assert found[key("ABDDIST", "CONV", "M12")] == SymptomCounts(1, 1, paired=1, better=0, same=0, worse=1)
    assert len(found) == 8


def test_the_statistic_runs_two_queries_at_any_size(coordinator1, site1, cutoff):
    def count():
        with CaptureQueriesContext(connection) as queries:
            symptom_change(access.participants(coordinator1), cutoff=cutoff, ranks=RANKS)
        return len(queries)

    small = count()
    write(coordinator1, site1, {f"X{i}": ("MSC", {"M0": "mild", "FU24": "none"}) for i in range(6)}, cutoff)
    assert count() == small == 3  # the month-0 visit definitions, the answers, the paired answers


def test_a_viewer_of_another_site_sees_none_of_them(coordinator2, cutoff):
    assert symptom_change(access.participants(coordinator2), cutoff=cutoff, ranks=RANKS) == {}


def test_the_summary_pdf_shows_each_symptoms_change_over_the_three_years(sponsor, cutoff):
    pdf = TrialSummaryReport(
        participants=access.participants(sponsor), cutoff=cutoff, generated_by="sponsor", protocol=protocol_current()
    ).build()
    text = " ".join(" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    section = text[text.index("Clinical symptoms by arm through the 3-year follow-up") :]
    assert "Abdominal distension" in section and "Edema of lower limbs" in section
    assert "Month 36 survival contact" in section
    # Month 18, CONV: 2 of 2 with the symptom, the one compared worse; MSC: 1 of 2, one better and one worse.
    assert "Month 18 survival contact 2 (100%) 0 (0%) 0 (0%) 1 (100%) 1 (50%) 1 (50%) 0 (0%) 1 (50%)" in section
