"""Lab grading as the task runs it: proposals from CTCAE grades, idempotence, corrections (in-process)."""

from safety import lab
from safety.models import AdverseEvent, AdverseEventStatus, FormGrading, LabGrading
from tests.safety.conftest import save_liver, visit_of


def test_alt_at_six_times_uln_at_m3_proposes_grade_3(coordinator1, participant, django_capture_on_commit_callbacks):
    save_liver(coordinator1, visit_of(participant, "M0"), django_capture_on_commit_callbacks)
    save_liver(coordinator1, visit_of(participant, "M3"), django_capture_on_commit_callbacks, ALT="300")
    event = AdverseEvent.objects.get(participant=participant)
    assert event.status == AdverseEventStatus.PROPOSED
    assert event.ctcae_term == "Alanine aminotransferase increased"
    assert event.ctcae_grade == 3
    assert event.lab_visit.definition.code == "M3"


def test_regrading_the_same_data_creates_nothing_twice(coordinator1, participant, django_capture_on_commit_callbacks):
    save_liver(coordinator1, visit_of(participant, "M0"), django_capture_on_commit_callbacks)
    result = save_liver(coordinator1, visit_of(participant, "M3"), django_capture_on_commit_callbacks, ALT="300")
    FormGrading.objects.filter(form=result.form).update(graded_version=0)
    again = lab.form_grade(form_id=result.form.pk)
    assert again.proposed == ()
    assert AdverseEvent.objects.filter(participant=participant).count() == 1
    assert LabGrading.objects.filter(visit=result.form.visit, item_code="ALT").count() == 1


def proposals(participant):
    return list(
        AdverseEvent.objects.filter(participant=participant, status=AdverseEventStatus.PROPOSED).values_list(
            "ctcae_term", "ctcae_grade", "lab_visit__definition__code"
        )
    )


def test_baseline_abnormalities_are_graded_but_not_proposed(
    coordinator1, participant, django_capture_on_commit_callbacks
):
    save_liver(coordinator1, visit_of(participant, "M0"), django_capture_on_commit_callbacks, ALT="300", ALB="25")
    graded = dict(LabGrading.objects.filter(visit__definition__code="M0").values_list("term", "grade"))
    assert graded["Alanine aminotransferase increased"] == 0  # 1.0 x an abnormal baseline
    assert graded["Hypoalbuminemia"] == 2  # < 30 g/L
    assert proposals(participant) == []


def test_only_a_new_or_worse_grade_than_the_previous_visit_is_proposed(
    coordinator1, site1, django_capture_on_commit_callbacks
):
    from tests.factories import enrolled

    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=190)
    run = django_capture_on_commit_callbacks
    save_liver(coordinator1, visit_of(participant, "M0"), run)
    save_liver(coordinator1, visit_of(participant, "M3"), run, ALB="28")  # hypoalbuminemia grade 2: new
    save_liver(coordinator1, visit_of(participant, "M6"), run, ALB="28")  # still grade 2: not new
    assert proposals(participant) == [("Hypoalbuminemia", 2, "M3")]
    save_liver(coordinator1, visit_of(participant, "M6"), run, ALB="19")  # corrected to grade 3: worse
    assert sorted(proposals(participant)) == [("Hypoalbuminemia", 2, "M3"), ("Hypoalbuminemia", 3, "M6")]


def test_a_corrected_value_raises_or_withdraws_the_open_proposal(
    coordinator1, participant, django_capture_on_commit_callbacks
):
    run = django_capture_on_commit_callbacks
    m3 = visit_of(participant, "M3")
    save_liver(coordinator1, visit_of(participant, "M0"), run)
    save_liver(coordinator1, m3, run, ALT="200")  # > 3 x ULN 50: grade 2
    save_liver(coordinator1, m3, run, ALT="1100")  # > 20 x ULN: grade 4, the same proposal raised
    assert proposals(participant) == [("Alanine aminotransferase increased", 4, "M3")]
    save_liver(coordinator1, m3, run, ALT="45")  # a typing error: normal after all
    assert proposals(participant) == []
    withdrawn = AdverseEvent.objects.get(participant=participant)
    assert withdrawn.status == AdverseEventStatus.DISMISSED
    assert withdrawn.dismiss_reason == "Lab value corrected: now grade 0"


def test_a_high_glucose_is_proposed_for_the_investigator_to_grade(
    coordinator1, participant, django_capture_on_commit_callbacks
):
    from capture.models import FormInstance
    from capture.services import form_save

    normal = {"CHOL": "4.5", "HDL": "1.2", "LDL": "2.5", "VLDL": "0.5", "TRIG": "1.2"}
    for code, glucose in (("M0", "5.0"), ("M3", "11.0")):
        visit = visit_of(participant, code)
        with django_capture_on_commit_callbacks(execute=True):
            form_save(
                user=coordinator1,
                visit_id=visit.pk,
                form_code="LIPGLU",
                version=0,
                values={**normal, "GLUC": glucose, "LBDAT": max(visit.window_start, visit.target_date).isoformat()},
            )
    assert proposals(participant) == [("Hyperglycemia", 0, "M3")]
    form = FormInstance.objects.get(visit__definition__code="M3", definition__code="LIPGLU")
    assert FormGrading.objects.get(form=form).graded_version == form.version


def test_the_sweep_finds_lab_forms_whose_grading_never_ran(
    coordinator1, participant, django_capture_on_commit_callbacks
):
    import datetime

    result = save_liver(coordinator1, visit_of(participant, "M0"), lambda execute: _no_commit_hooks())
    assert lab.forms_due(older_than=datetime.timedelta(0)) == [result.form.pk]
    lab.form_grade(form_id=result.form.pk)
    assert lab.forms_due(older_than=datetime.timedelta(0)) == []


def _no_commit_hooks():
    import contextlib

    return contextlib.nullcontext()
