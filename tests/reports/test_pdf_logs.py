"""The summary PDF's log sections: the medication summary by arm and the protocol deviation listing."""

import datetime

import pytest
from django.utils import timezone

from capture.logs.services import log_row_create, log_row_remove
from reports.pdf import TrialSummaryReport
from tests.capture.test_log_services import ENTECAVIR, deviation
from tests.reports.test_pdf import build, text_of, trial  # noqa: F401 (trial is a fixture)
from trial.models import Participant

pytestmark = pytest.mark.django_db


def test_medications_by_arm_and_the_deviation_listing(trial, sponsor, coordinator1, coordinator2):  # noqa: F811
    site1 = Participant.objects.filter(site__number=1, subject_id__isnull=False).order_by("pk")
    site2 = Participant.objects.filter(site__number=2, subject_id__isnull=False).order_by("pk")
    first, second = site1[0], site2[0]

    def add(user, participant, form, values):
        return log_row_create(user=user, participant_id=participant.pk, form_code=form, values=values).row

    add(coordinator1, first, "CM", ENTECAVIR)
    add(coordinator1, first, "CM", {**ENTECAVIR, "CMTRT": "  entecavir "})  # the same medication, typed again
    add(coordinator2, second, "CM", {**ENTECAVIR, "CMTRT": "Spironolactone", "CMCLAS": "diuretic"})
    wrong = add(coordinator1, first, "CM", {**ENTECAVIR, "CMTRT": "Propranolol", "CMCLAS": "beta_blocker"})
    log_row_remove(user=coordinator1, row_id=wrong.pk, version=1, reason="Entered in error")
    day = first.screening.consent_date + datetime.timedelta(days=30)
    add(coordinator1, first, "DV", deviation(day, DVTERM="Liver panel drawn late", DVIMPT="true"))

    text = text_of(build(TrialSummaryReport, sponsor, trial, cutoff=timezone.now()))
    medications = text[text.index("Concomitant medications by arm") :]
    assert "Antiviral (hepatitis B/C)" in medications and "Diuretic" in medications
    assert "Propranolol" not in medications  # removed as entered in error
    assert medications.count("Entecavir") == 1  # one line per medication, whatever the case it was typed in
    listing = text[text.index("Protocol deviation listing") :]
    assert f"{day.isoformat()} {first.subject_id} 01" in listing
    assert "Visit out of window" in listing and "Liver panel drawn late" in listing
    assert "Deviations: 1; important: 1." in listing
