import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from capture import summaries
from capture.errors import StaleVersionError
from capture.models import Flag, FormInstance, FormState, ItemValue, Query, QueryState
from capture.services import form_save
from tests.factories import enrolled
from trial.errors import AccessDenied, InvalidInput
from trial.models import AuditRecord, VisitProgress

LIVER = {"ALT": "30", "AST": "30", "ALB": "42", "PREALB": "250", "BILI": "15", "BILDIR": "5"}


def liver(m3, **changes):
    return {"LBDAT": str(m3.target_date), **LIVER, **changes}


def save(user, visit, form="LIVER", version=0, **kwargs):
    return form_save(user=user, visit_id=visit.pk, form_code=form, version=version, **kwargs)


def writes():
    return ItemValue.objects.count(), FormInstance.objects.count(), AuditRecord.objects.count(), Query.objects.count()


def test_save_stores_typed_values_and_audits_each(coordinator1, m3):
    result = save(coordinator1, m3, values=liver(m3, ALT="48"))

    assert result.form.version == 1 and result.form.state == FormState.IN_PROGRESS
    stored = {v.item.code: v for v in ItemValue.objects.filter(visit=m3).select_related("item")}
    assert stored["ALT"].number == Decimal("48") and stored["LBDAT"].date == m3.target_date
    audit = AuditRecord.objects.filter(object_type="form", form_code="LIVER")
    assert {(r.item_code, r.old_value, r.new_value) for r in audit} >= {("ALT", "", "48"), ("ALB", "", "42")}
    m3.refresh_from_db()
    assert m3.progress == VisitProgress.IN_PROGRESS


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("-0.1", False),
        ("0", True),
        ("10000", True),
        ("10000.5", False),
        ("abc", False),
        ("1e3", False),
        ("４８", True),
    ],  # full-width digits from a Chinese input method are read as 48
)
def test_hard_range_at_its_boundaries(coordinator1, m3, value, accepted):
    before = writes()
    if accepted:
        save(coordinator1, m3, values=liver(m3, ALT=value))
        return
    with pytest.raises(InvalidInput) as error:
        save(coordinator1, m3, values=liver(m3, ALT=value))
    assert list(error.value.errors) == ["ALT"]
    assert writes() == before


def test_hard_range_message_names_item_value_and_range(coordinator1, m3):
    with pytest.raises(InvalidInput) as error:
        save(coordinator1, m3, values=liver(m3, ALB="71"))
    assert error.value.errors["ALB"] == ["Albumin (ALB): 71 g/L is outside the allowed range 5-70 g/L."]


@pytest.mark.parametrize(
    ("value", "flags"),
    [("8", (Flag.LOW,)), ("9", ()), ("50", ()), ("51", (Flag.HIGH,))],
)
def test_reference_range_flags_at_its_boundaries(coordinator1, m3, value, flags):
    result = save(coordinator1, m3, values=liver(m3, ALT=value))
    assert result.items["ALT"].flags == flags
    assert ItemValue.objects.get(visit=m3, item__code="ALT").flags == list(flags)
    assert not Query.objects.exists()  # a value outside the reference range is expected in cirrhosis: no query


@pytest.mark.parametrize(("bildir", "fires"), [("14.9", False), ("15", False), ("15.1", True)])
def test_direct_bilirubin_may_not_exceed_total(coordinator1, m3, bildir, fires):
    result = save(coordinator1, m3, values=liver(m3, BILDIR=bildir))
    assert (Flag.RULE in result.items["BILDIR"].flags) is fires
    assert Query.objects.filter(visit=m3, check_code="LIVER_BILDIR_LE_BILI", state=QueryState.OPEN).count() == fires


@pytest.mark.parametrize(("hdl", "fires"), [("4.49", False), ("4.5", True), ("5", True)])
def test_hdl_must_be_below_total_cholesterol(coordinator1, m3, hdl, fires):
    values = {
        "LBDAT": str(m3.target_date),
        "CHOL": "4.5",
        "HDL": hdl,
        "LDL": "2",
        "VLDL": "0.5",
        "TRIG": "1",
        "GLUC": "5",
    }
    result = save(coordinator1, m3, form="LIPGLU", values=values)
    assert (Flag.RULE in result.items["HDL"].flags) is fires
    assert result.items["NONHDL"].value.number == Decimal("4.5") - Decimal(hdl)


def test_correction_closes_the_automatic_query_and_saving_again_raises_no_second(coordinator1, m3):
    save(coordinator1, m3, values=liver(m3, BILDIR="20"))
    again = save(coordinator1, m3, version=1, values=liver(m3, BILDIR="20"))
    assert Query.objects.filter(visit=m3).count() == 1
    assert again.form.version == 1  # nothing changed: nothing written
    result = save(coordinator1, m3, version=1, values=liver(m3, BILDIR="5"))
    assert result.queries_closed == 1
    assert Query.objects.get(visit=m3).state == QueryState.CLOSED
    assert Flag.RULE not in result.items["BILDIR"].flags


def test_rule_is_rechecked_when_the_other_side_changes(coordinator1, m3):
    save(coordinator1, m3, values=liver(m3, BILDIR="20"))
    result = save(coordinator1, m3, version=1, values=liver(m3, BILDIR="20", BILI="25"))
    assert result.items["BILDIR"].flags == (Flag.HIGH,)
    assert Query.objects.get(visit=m3).state == QueryState.CLOSED


@pytest.fixture
def past_m3(coordinator1, site1):
    """An M3 whose window has closed (enrolled 130 days ago): a sample date after it is not in the future."""
    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=130)
    return participant.visits.select_related("definition").get(definition__code="M3")


@pytest.mark.parametrize(("offset", "flagged"), [(-15, True), (-14, False), (14, False), (15, True)])
def test_sample_date_outside_the_window_is_flagged_and_queried(coordinator1, past_m3, offset, flagged):
    m3 = past_m3
    sample = m3.target_date + datetime.timedelta(days=offset)
    result = save(coordinator1, m3, values=liver(m3, LBDAT=str(sample)))
    assert (Flag.WINDOW in result.items["LBDAT"].flags) is flagged
    assert Query.objects.filter(visit=m3, check_code="WINDOW_M3").exists() is flagged


def window_queries(visit):
    return list(Query.objects.filter(visit=visit, check_code=f"WINDOW_{visit.definition.code}").order_by("pk"))


def test_a_visit_date_outside_the_window_raises_one_query_for_the_visit_not_one_per_form(coordinator1, past_m3):
    m3 = past_m3
    late, inside = str(m3.window_end + datetime.timedelta(days=3)), str(m3.target_date)
    kidney = {"BUN": "5", "URATE": "300", "CREAT": "70"}
    first = save(coordinator1, m3, values=liver(m3, LBDAT=late))
    second = save(coordinator1, m3, form="KIDNEY", values={"LBDAT": late, **kidney})
    assert (first.queries_opened, second.queries_opened) == (1, 0)
    assert Flag.WINDOW in second.items["LBDAT"].flags  # each form's date still carries its flag
    [query] = window_queries(m3)
    assert (query.item_id, query.form_id, query.state) == (None, None, QueryState.OPEN)  # on the whole visit
    assert late in query.message and str(m3.window_end) in query.message

    # One date corrected: the other form's date is still outside, so the visit's query stays open.
    assert save(coordinator1, m3, version=1, values=liver(m3, LBDAT=inside)).queries_closed == 0
    assert window_queries(m3)[0].state == QueryState.OPEN
    # The last one corrected: the query closes itself; a later date outside the window raises a new one.
    assert save(coordinator1, m3, form="KIDNEY", version=1, values={"LBDAT": inside, **kidney}).queries_closed == 1
    assert [q.state for q in window_queries(m3)] == [QueryState.CLOSED]
    save(coordinator1, m3, form="KIDNEY", version=2, values={"LBDAT": late, **kidney})
    assert [q.state for q in window_queries(m3)] == [QueryState.CLOSED, QueryState.OPEN]


def test_the_window_query_of_one_visit_is_not_closed_by_another_visits_correction(coordinator1, past_m3):
    m3 = past_m3
    m0 = m3.participant.visits.select_related("definition").get(definition__code="M0")
    save(coordinator1, m3, values=liver(m3, LBDAT=str(m3.window_end + datetime.timedelta(days=3))))
    save(coordinator1, m0, values=liver(m0, LBDAT=str(m0.window_end + datetime.timedelta(days=1))))
    save(coordinator1, m0, version=1, values=liver(m0))
    assert [q.state for q in window_queries(m0)] == [QueryState.CLOSED]
    assert [q.state for q in window_queries(m3)] == [QueryState.OPEN]


def test_complete_requires_every_required_item_or_a_missing_reason(coordinator1, m3):
    values = liver(m3)
    del values["PREALB"]
    before = writes()
    with pytest.raises(InvalidInput) as error:
        save(coordinator1, m3, values=values, complete=True)
    assert list(error.value.errors) == ["PREALB"]
    assert writes() == before
    result = save(coordinator1, m3, values=values, missing={"PREALB": "not_done"}, complete=True)
    assert result.form.state == FormState.COMPLETE
    assert ItemValue.objects.get(visit=m3, item__code="PREALB").missing_reason == "not_done"


def test_value_and_missing_reason_together_are_refused(coordinator1, m3):
    with pytest.raises(InvalidInput) as error:
        save(coordinator1, m3, values=liver(m3), missing={"ALT": "unknown"})
    assert list(error.value.errors) == ["ALT"]


def test_unknown_or_derived_items_are_refused(coordinator1, m3):
    with pytest.raises(InvalidInput) as error:
        save(coordinator1, m3, form="LIPGLU", values={"NONHDL": "3", "XYZ": "1"})
    assert set(error.value.errors) == {"NONHDL", "XYZ"}


def test_reason_for_change_required_once_completed(coordinator1, m3):
    save(coordinator1, m3, values=liver(m3), complete=True)
    before = writes()
    with pytest.raises(InvalidInput) as error:
        save(coordinator1, m3, version=1, values=liver(m3, ALT="31"))
    assert list(error.value.errors) == ["reason"]
    assert writes() == before
    save(coordinator1, m3, version=1, values=liver(m3, ALT="31"), reason="Transcription error")
    row = AuditRecord.objects.filter(item_code="ALT").latest("id")
    assert (row.old_value, row.new_value, row.reason) == ("30", "31", "Transcription error")
    assert FormInstance.objects.get(visit=m3).state == FormState.COMPLETE


def test_stale_version_is_refused_and_nothing_is_written(coordinator1, m3):
    save(coordinator1, m3, values=liver(m3))
    before = writes()
    with pytest.raises(StaleVersionError) as error:
        save(coordinator1, m3, version=0, values=liver(m3, ALT="99"))
    assert error.value.current_version == 1
    assert writes() == before
    assert ItemValue.objects.get(visit=m3, item__code="ALT").number == Decimal("30")


def test_partial_save_keeps_the_other_items(coordinator1, m3):
    save(coordinator1, m3, values=liver(m3))
    save(coordinator1, m3, version=1, values={"ALT": "77"}, partial=True)
    stored = dict(ItemValue.objects.filter(visit=m3).values_list("item__code", "number"))
    assert stored["ALT"] == Decimal("77") and stored["AST"] == Decimal("30")


def test_full_save_empties_items_left_out(coordinator1, m3):
    save(coordinator1, m3, values=liver(m3))
    save(coordinator1, m3, version=1, values={"ALT": "77"})
    assert ItemValue.objects.get(visit=m3, item__code="AST").number is None


def test_child_pugh_and_meld_are_derived_across_forms(coordinator1, m3):
    save(coordinator1, m3, values=liver(m3, BILI="40", ALB="30", BILDIR="10"))
    clin = {"VISDAT": str(m3.target_date), "WEIGHT": "62.5", "INR": "1.5", "ASCITES": "mild", "HEPENC": "none"}
    result = save(coordinator1, m3, form="CLIN", values=clin)
    assert result.items["CPSCORE"].value.number == 8 and result.items["CPCLASS"].value.text == "B"
    assert result.items["MELD"].value.is_empty  # creatinine not yet entered
    kidney = {"LBDAT": str(m3.target_date), "BUN": "5", "URATE": "300", "CREAT": "88.4"}
    save(coordinator1, m3, form="KIDNEY", values=kidney)
    meld = ItemValue.objects.get(visit=m3, item__code="MELD").number
    # bilirubin 40/17.1 mg/dL, creatinine 1 mg/dL, INR 1.5: 3.78 ln 2.339 + 11.2 ln 1.5 + 0 + 6.43 = 14.19
    assert meld == 14
    assert not ItemValue.objects.filter(visit=m3, item__code="MELDNA", number__isnull=False).exists()  # no sodium
    save(coordinator1, m3, form="KIDNEY", version=1, values={**kidney, "SODIUM": "128"})
    # MELD(i) 14 > 11: 14 + 1.32 x 9 - 0.033 x 14 x 9 = 21.72 -> 22
    assert ItemValue.objects.get(visit=m3, item__code="MELDNA").number == 22
    save(coordinator1, m3, version=1, values=liver(m3, BILI="60", ALB="30", BILDIR="10"))
    assert ItemValue.objects.get(visit=m3, item__code="CPSCORE").number == 9
    m3.refresh_from_db()
    assert m3.visit_date == m3.target_date


def test_visit_is_complete_when_every_form_is(coordinator1, m3):
    from capture.definitions import visit_forms

    for spec in visit_forms(m3):
        missing = {item.code: "not_done" for item in spec.entered}
        save(coordinator1, m3, form=spec.code, missing=missing, complete=True)
    m3.refresh_from_db()
    assert m3.progress == VisitProgress.COMPLETE


def test_infusion_form_only_for_msc_arm_at_m0_to_m9(coordinator1, site1, m3):
    conventional = enrolled(coordinator1, site1, arm="CONV", days_ago=100).visits.get(definition__code="M3")
    with pytest.raises(InvalidInput) as error:
        save(coordinator1, conventional, form="INFUS", values={"LOT": "A1"})
    assert "form" in error.value.errors
    m12 = m3.participant.visits.get(definition__code="M12")
    with pytest.raises(InvalidInput):
        save(coordinator1, m12, form="INFUS", values={"LOT": "A1"})
    assert save(coordinator1, m3, form="INFUS", values={"LOT": "A1"}).form.version == 1


def test_another_sites_visit_is_404_and_a_read_only_role_403(coordinator2, monitor, sponsor, m3):
    with pytest.raises(Http404):
        save(coordinator2, m3, values=liver(m3))
    for user in (monitor, sponsor):
        with pytest.raises(AccessDenied):
            save(user, m3, values=liver(m3))
    assert not ItemValue.objects.exists()


def _panel(size: int, base: int) -> dict[str, str]:
    return {f"X{n:02d}": str(base + n) for n in range(size)}


def test_save_statement_count_does_not_grow_with_items(sized_protocol, coordinator1, site1):
    visit = enrolled(coordinator1, site1, days_ago=100).visits.get(definition__code="M3")
    counts = {}
    for form, size in (("P5", 5), ("P45", 45)):
        save(coordinator1, visit, form=form, values=_panel(size, 20))  # the first save creates the form
        with CaptureQueriesContext(connection) as queries:
            save(coordinator1, visit, form=form, version=1, values=_panel(size, 21))
        counts[form] = len([q for q in queries if "SAVEPOINT" not in q["sql"]])
    assert counts["P5"] == counts["P45"]
    # visit (locked), form instances, values, one upsert, the form's version, the summaries (capture/summaries.py:
    # one statement on PostgreSQL, four on SQLite), audit: head (with its lock on PostgreSQL), insert
    summary = summaries.statement_count(with_forms=True)
    assert counts["P45"] == 7 + summary
    assert ItemValue.objects.filter(visit=visit, item__form__code="P45", number__isnull=False).count() == 45
    assert AuditRecord.objects.filter(form_code="P45", action="update").count() == 45


def test_a_save_that_changes_nothing_writes_nothing_and_keeps_the_version(coordinator1, m3):
    save(coordinator1, m3, values=liver(m3, ALT="48"))
    before = writes()
    with CaptureQueriesContext(connection) as queries:
        result = save(coordinator1, m3, version=1, values=liver(m3, ALT="48.0"))  # the same number, typed again
    assert result.form.version == 1 and result.changed == () and result.queries_opened == 0
    assert FormInstance.objects.get(visit=m3, definition__code="LIVER").version == 1
    assert writes() == before
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def test_marking_an_unchanged_form_complete_is_a_change(coordinator1, m3):
    save(coordinator1, m3, values=liver(m3))
    result = save(coordinator1, m3, version=1, values=liver(m3), complete=True)
    assert result.form.version == 2 and result.form.state == FormState.COMPLETE
