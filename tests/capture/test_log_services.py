"""Log forms (CM, MH, DV): rows repeat per participant, with the typed items, edit checks, missing reasons,
audit, queries, SDV, signatures and locks of visit forms."""

import datetime

import pytest
from django.http import Http404

from capture import records, review
from capture.errors import LockedError, StaleVersionError
from capture.logs.selectors import log_rows, participant_logs
from capture.logs.services import log_row_create, log_row_remove, log_row_update, log_values_verify
from capture.models import Flag, LogRow, LogValue, Query, QueryOrigin, QueryState
from tests.factories import screened
from trial.errors import AccessDenied, InvalidInput
from trial.models import AuditRecord

ENTECAVIR = {
    "CMTRT": "Entecavir",
    "CMCLAS": "antiviral",
    "CMINDC": "Chronic hepatitis B",
    "CMDOSE": "0.5",
    "CMDOSU": "mg",
    "CMROUTE": "PO",
    "CMDOSFRQ": "QD",
    "CMSTDAT": "2024-03-01",
    "CMONGO": "true",
}
HISTORY = {"MHTERM": "Chronic hepatitis B", "MHETIOL": "HBV", "MHSTDAT": "2009-05-01", "MHONGO": "yes"}


def deviation(day: datetime.date, **changes):
    return {
        "DVDAT": day.isoformat(),
        "DVCAT": "VISIT_WINDOW",
        "DVTERM": "M3 visit 3 days after its window",
        "DVIDBY": "MONITOR",
        "DVIMPT": "false",
        "DVACT": "RETRAINED",
        **changes,
    }


def add(user, participant, form="CM", values=None, **kwargs):
    return log_row_create(
        user=user, participant_id=participant.pk, form_code=form, values=values or ENTECAVIR, **kwargs
    )


def test_medication_row_is_typed_numbered_and_audited(coordinator1, participant):
    first = add(coordinator1, participant)
    second = add(coordinator1, participant, values={**ENTECAVIR, "CMTRT": "Spironolactone", "CMCLAS": "diuretic"})

    assert (first.row.repeat_key, second.row.repeat_key) == (1, 2)
    assert first.row.version == 1 and first.row.state == "complete"
    values = {v.item.code: v for v in LogValue.objects.filter(row=first.row).select_related("item")}
    assert values["CMDOSE"].number == 0.5 and values["CMSTDAT"].date == datetime.date(2024, 3, 1)
    assert values["CMONGO"].text == "true" and "CMENDAT" not in values  # empty: no row
    audit = AuditRecord.objects.filter(object_type="log_row", object_id=str(first.row.pk))
    assert {(r.action, r.item_code, r.new_value) for r in audit} >= {
        ("create", "", "#1"),
        ("create", "CMTRT", "Entecavir"),
    }
    assert [row.repeat_key for row in log_rows(participant, "CM")] == [1, 2]


def test_required_items_and_types_are_refused_with_nothing_written(coordinator1, participant):
    with pytest.raises(InvalidInput) as error:
        add(coordinator1, participant, values={**ENTECAVIR, "CMDOSE": "half", "CMROUTE": "XX", "CMTRT": ""})
    assert {"CMDOSE", "CMROUTE", "CMTRT"} <= set(error.value.errors)
    with pytest.raises(InvalidInput) as error:
        add(coordinator1, participant, values={**ENTECAVIR, "NOPE": "1"})
    assert "NOPE" in error.value.errors
    assert not LogRow.objects.exists() and not AuditRecord.objects.filter(object_type="log_row").exists()


def test_missing_reason_stands_for_a_required_value(coordinator1, participant):
    values = {k: v for k, v in ENTECAVIR.items() if k != "CMINDC"}
    result = add(coordinator1, participant, values=values, missing={"CMINDC": "unknown"})
    assert LogValue.objects.get(row=result.row, item__code="CMINDC").missing_reason == "unknown"


def test_stop_before_start_and_ongoing_with_stop_raise_queries_closed_by_the_correction(coordinator1, participant):
    result = add(coordinator1, participant, values={**ENTECAVIR, "CMENDAT": "2024-02-01"})

    assert Flag.RULE in result.flags["CMENDAT"]
    queries = Query.objects.filter(record_type="log_row", record_id=result.row.pk, origin=QueryOrigin.AUTOMATIC)
    assert set(queries.values_list("check_code", flat=True)) == {"CM_END_GE_START", "CM_ONGOING_NO_END"}
    assert set(queries.values_list("field_code", flat=True)) == {"CMENDAT"}

    corrected = log_row_update(
        user=coordinator1,
        row_id=result.row.pk,
        version=1,
        values={**ENTECAVIR, "CMENDAT": "2024-06-01", "CMONGO": "false"},
        reason="Stop date misread",
    )
    assert corrected.queries_closed == 2 and corrected.flags["CMENDAT"] == ()
    assert not queries.exclude(state=QueryState.CLOSED).exists()


def test_deviation_before_consent_is_flagged(coordinator1, participant):
    consent = participant.screening.consent_date
    flagged = add(coordinator1, participant, "DV", deviation(consent - datetime.timedelta(days=1)))
    clean = add(coordinator1, participant, "DV", deviation(consent))
    assert Flag.RULE in flagged.flags["DVDAT"] and flagged.queries_opened == 1
    assert clean.flags["DVDAT"] == () and clean.queries_opened == 0


def test_medical_history_records_the_aetiology(coordinator1, participant):
    result = add(coordinator1, participant, "MH", HISTORY)
    assert result.values["MHETIOL"].text == "HBV" and result.values["MHONGO"].text == "true"
    with pytest.raises(InvalidInput) as error:
        add(coordinator1, participant, "MH", {**HISTORY, "MHETIOL": "GALLSTONES"})
    assert "MHETIOL" in error.value.errors


def test_correction_needs_a_reason_and_the_current_version(coordinator1, participant):
    row = add(coordinator1, participant).row
    with pytest.raises(InvalidInput) as error:
        log_row_update(user=coordinator1, row_id=row.pk, version=1, values={**ENTECAVIR, "CMDOSE": "1"})
    assert "reason" in error.value.errors
    log_row_update(
        user=coordinator1, row_id=row.pk, version=1, values={"CMDOSE": "1"}, partial=True, reason="Prescription"
    )
    with pytest.raises(StaleVersionError):
        log_row_update(user=coordinator1, row_id=row.pk, version=1, values={"CMDOSE": "2"}, partial=True, reason="x")
    audit = AuditRecord.objects.get(object_type="log_row", item_code="CMDOSE", action="update")
    assert (audit.old_value, audit.new_value, audit.reason) == ("0.5", "1", "Prescription")


def test_removal_keeps_the_row_with_its_reason_and_takes_no_more_changes(coordinator1, participant):
    row = add(coordinator1, participant).row
    with pytest.raises(InvalidInput):
        log_row_remove(user=coordinator1, row_id=row.pk, version=1, reason="  ")
    log_row_remove(user=coordinator1, row_id=row.pk, version=1, reason="Entered for the wrong participant")

    row.refresh_from_db()
    assert row.removed and row.removed_reason == "Entered for the wrong participant"
    assert list(log_rows(participant, "CM")) == [] and len(log_rows(participant, "CM", removed=True)) == 1
    assert AuditRecord.objects.filter(object_type="log_row", action="remove").exists()
    with pytest.raises(InvalidInput):
        log_row_update(user=coordinator1, row_id=row.pk, version=2, values={"CMDOSE": "1"}, partial=True, reason="x")


def test_other_site_and_other_roles_are_refused(coordinator1, coordinator2, monitor, participant):
    row = add(coordinator1, participant).row
    with pytest.raises(Http404):
        add(coordinator2, participant)
    with pytest.raises(Http404):
        log_row_update(user=coordinator2, row_id=row.pk, version=1, values={}, partial=True, reason="x")
    with pytest.raises(AccessDenied):
        add(monitor, participant)


def test_unknown_form_and_not_enrolled_are_refused(coordinator1, site1, participant):
    with pytest.raises(InvalidInput) as error:
        add(coordinator1, participant, "LIVER")
    assert "form" in error.value.errors
    candidate = screened(coordinator1, site1)
    with pytest.raises(InvalidInput) as error:
        add(coordinator1, candidate)
    assert "participant" in error.value.errors


def test_lock_of_the_participant_refuses_log_changes(coordinator1, datamanager, participant):
    row = add(coordinator1, participant).row
    review.lock_set(user=datamanager, participant_id=participant.pk, reason="Database lock", confirm_open_queries=True)
    with pytest.raises(LockedError):
        add(coordinator1, participant)
    with pytest.raises(LockedError):
        log_row_update(user=coordinator1, row_id=row.pk, version=1, values={}, partial=True, reason="x")


def test_sdv_and_change_since_verification(coordinator1, monitor, participant):
    row = add(coordinator1, participant).row
    assert log_values_verify(user=monitor, row_id=row.pk) == 9  # every item holding a value
    assert log_values_verify(user=monitor, row_id=row.pk) == 0
    with pytest.raises(AccessDenied):
        log_values_verify(user=coordinator1, row_id=row.pk)
    log_row_update(user=coordinator1, row_id=row.pk, version=1, values={"CMDOSE": "1"}, partial=True, reason="x")
    dose = LogValue.objects.get(row=row, item__code="CMDOSE")
    assert dose.verified_at is None and dose.changed_since_verification
    assert LogValue.objects.get(row=row, item__code="CMTRT").verified_at is not None


def test_manual_query_on_a_row_field(coordinator1, monitor, participant):
    row = add(coordinator1, participant).row
    query = review.query_raise_on_record(
        user=monitor, record_type="log_row", record_id=row.pk, field_code="CMDOSE", message="Dose per prescription?"
    )
    assert query.participant_id == participant.pk and query.state == QueryState.OPEN
    described = records.describe([query])[0]
    assert described.record_label.endswith("CM #1") and described.record_field == "Dose"
    with pytest.raises(InvalidInput):
        review.query_raise_on_record(
            user=monitor, record_type="log_row", record_id=row.pk, field_code="NOPE", message="?"
        )


def test_casebook_signature_is_voided_by_a_correction(coordinator1, investigator1, participant):
    row = add(coordinator1, participant).row
    signature = review.Signature.objects.create(
        participant=participant, signed_by=investigator1, signed_at=row.created_at, meaning="m"
    )
    log_row_update(user=coordinator1, row_id=row.pk, version=1, values={"CMDOSE": "1"}, partial=True, reason="x")
    signature.refresh_from_db()
    assert signature.voided_at is not None


def test_participant_logs_cost_the_same_for_2_and_50_rows(coordinator1, participant, django_assert_num_queries):
    def count(rows):
        for _ in range(rows - LogRow.objects.filter(participant=participant).count()):
            add(coordinator1, participant)
        with django_assert_num_queries(2) as captured:
            logs = participant_logs(participant)
        return captured, logs

    count(2)
    _, logs = count(50)
    assert [len(log.rows) for log in logs] == [50, 0, 0]
