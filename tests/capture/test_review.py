"""The review services: the query state machine, source data verification, signatures and locks."""

import pytest
from django.http import Http404

from capture.definitions import visit_forms
from capture.errors import LockedError, OpenQueriesError, QueryTransitionError
from capture.models import FormInstance, ItemValue, Query, QueryEventKind, QueryState, Signature
from capture.review import (
    casebook_sign,
    items_verify,
    lock_release,
    lock_set,
    query_answer,
    query_close,
    query_raise,
    query_reopen,
    visit_sign,
)
from capture.services import form_save
from tests.factories import PASSWORD
from trial.errors import AccessDenied, InvalidInput
from trial.models import AuditRecord

LIVER = {"ALT": "30", "AST": "30", "ALB": "42", "PREALB": "250", "BILI": "15", "BILDIR": "5"}


def save_liver(user, visit, version=0, reason="", **changes):
    values = {"LBDAT": str(visit.target_date), **LIVER, **changes}
    return form_save(
        user=user, visit_id=visit.pk, form_code="LIVER", version=version, values=values, reason=reason, complete=True
    )


def version(visit, form="LIVER"):
    return FormInstance.objects.get(visit=visit, definition__code=form).version


@pytest.fixture
def query(monitor, coordinator1, m3):
    save_liver(coordinator1, m3)
    return query_raise(user=monitor, visit_id=m3.pk, form_code="LIVER", item_code="ALT", message="ALT 30 on source?")


# --- Queries ---------------------------------------------------------------------------------------------


def test_query_lifecycle_records_every_step(query, monitor, coordinator1):
    query_answer(user=coordinator1, query_id=query.pk, message="Checked: the report says 30.")
    query_reopen(user=monitor, query_id=query.pk, message="The report attached says 36.")
    query_answer(user=coordinator1, query_id=query.pk, message="Corrected to 36.")
    query = query_close(user=monitor, query_id=query.pk)

    assert query.state == QueryState.CLOSED and query.closed_by == monitor
    events = list(query.events.values_list("kind", "author__username", "state_after"))
    assert events == [
        (QueryEventKind.RAISED, "monitor", "open"),
        (QueryEventKind.ANSWERED, "coordinator1", "answered"),
        (QueryEventKind.REOPENED, "monitor", "open"),
        (QueryEventKind.ANSWERED, "coordinator1", "answered"),
        (QueryEventKind.CLOSED, "monitor", "closed"),
    ]
    assert AuditRecord.objects.filter(object_type="query", object_id=str(query.pk)).count() == 5


@pytest.mark.parametrize(
    ("steps", "illegal"),
    [
        ([], "reopen"),  # an open query cannot be re-opened
        (["close"], "close"),
        (["close"], "answer"),
    ],
)
def test_illegal_transitions_are_refused(query, monitor, coordinator1, steps, illegal):
    actions = {
        "answer": lambda: query_answer(user=coordinator1, query_id=query.pk, message="reply"),
        "close": lambda: query_close(user=monitor, query_id=query.pk),
        "reopen": lambda: query_reopen(user=monitor, query_id=query.pk, message="again"),
    }
    for step in steps:
        actions[step]()
    events = query.events.count()
    with pytest.raises(QueryTransitionError):
        actions[illegal]()
    assert query.events.count() == events


def test_roles_and_sites_of_query_actions(query, coordinator1, coordinator2, sponsor, monitor):
    with pytest.raises(AccessDenied):
        query_close(user=coordinator1, query_id=query.pk)  # the site answers; the monitor closes
    with pytest.raises(AccessDenied):
        query_answer(user=monitor, query_id=query.pk, message="I answer myself")
    with pytest.raises(AccessDenied):
        query_answer(user=sponsor, query_id=query.pk, message="x")
    with pytest.raises(Http404):
        query_answer(user=coordinator2, query_id=query.pk, message="not my site")
    with pytest.raises(AccessDenied):
        query_raise(user=coordinator1, visit_id=query.visit_id, message="coordinators do not raise")


def test_answer_and_reopen_need_a_message(query, coordinator1, monitor):
    with pytest.raises(InvalidInput):
        query_answer(user=coordinator1, query_id=query.pk, message="  ")
    query_answer(user=coordinator1, query_id=query.pk, message="ok")
    with pytest.raises(InvalidInput):
        query_reopen(user=monitor, query_id=query.pk, message="")


def test_queries_on_a_form_and_on_a_visit(monitor, m3):
    on_form = query_raise(user=monitor, visit_id=m3.pk, form_code="KIDNEY", message="Sample haemolysed?")
    on_visit = query_raise(user=monitor, visit_id=m3.pk, message="Visit date differs from the source")
    assert (on_form.form.code, on_form.item) == ("KIDNEY", None)
    assert (on_visit.form, on_visit.item) == (None, None)


def test_correction_auto_closes_with_an_event(coordinator1, m3):
    save_liver(coordinator1, m3, BILDIR="20")
    query = Query.objects.get(visit=m3)
    save_liver(coordinator1, m3, version=1, reason="Swapped on entry", BILDIR="5")
    query.refresh_from_db()
    assert query.state == QueryState.CLOSED
    assert list(query.events.values_list("kind", flat=True)) == [QueryEventKind.AUTO_CLOSED]


# --- Source data verification --------------------------------------------------------------------------


def test_verification_is_cleared_by_a_later_change(coordinator1, monitor, m3):
    save_liver(coordinator1, m3)
    assert items_verify(user=monitor, visit_id=m3.pk, form_code="LIVER") == 7
    alt = ItemValue.objects.get(visit=m3, item__code="ALT")
    assert alt.verified_by == monitor and not alt.changed_since_verification

    save_liver(coordinator1, m3, version=1, reason="Lab amended the result", ALT="36", BILI="16")
    values = {v.item.code: v for v in ItemValue.objects.filter(visit=m3).select_related("item")}
    assert values["ALT"].verified_at is None and values["ALT"].changed_since_verification
    assert values["AST"].verified_at is not None and not values["AST"].changed_since_verification


def test_verify_selected_items_only_and_only_by_a_monitor(coordinator1, monitor, m3):
    save_liver(coordinator1, m3)
    assert items_verify(user=monitor, visit_id=m3.pk, form_code="LIVER", item_codes=["ALT", "AST"]) == 2
    assert ItemValue.objects.filter(visit=m3, verified_at__isnull=False).count() == 2
    with pytest.raises(AccessDenied):
        items_verify(user=coordinator1, visit_id=m3.pk, form_code="LIVER")
    with pytest.raises(InvalidInput):
        items_verify(user=monitor, visit_id=m3.pk, form_code="LIVER", item_codes=["NOPE"])


# --- Signatures ----------------------------------------------------------------------------------------


def complete_visit(user, visit):
    for spec in visit_forms(visit):
        missing = {item.code: "not_done" for item in spec.entered}
        form_save(user=user, visit_id=visit.pk, form_code=spec.code, version=0, missing=missing, complete=True)


def test_sign_requires_the_password_and_complete_forms(coordinator1, investigator1, m3):
    with pytest.raises(InvalidInput) as error:
        visit_sign(user=investigator1, visit_id=m3.pk, password=PASSWORD)
    assert "LIVER" in str(error.value)
    complete_visit(coordinator1, m3)
    with pytest.raises(InvalidInput) as error:
        visit_sign(user=investigator1, visit_id=m3.pk, password="wrong")
    assert list(error.value.errors) == ["password"]
    assert not Signature.objects.exists()
    signature = visit_sign(user=investigator1, visit_id=m3.pk, password=PASSWORD)
    assert signature.meaning.startswith("I confirm")
    assert all(FormInstance.objects.filter(visit=m3).values_list("signed", flat=True))


def test_only_an_investigator_signs(coordinator1, monitor, m3):
    complete_visit(coordinator1, m3)
    for user in (coordinator1, monitor):
        with pytest.raises(AccessDenied):
            visit_sign(user=user, visit_id=m3.pk, password=PASSWORD)


def test_a_change_of_signed_data_voids_the_signature(coordinator1, investigator1, m3):
    complete_visit(coordinator1, m3)
    signature = visit_sign(user=investigator1, visit_id=m3.pk, password=PASSWORD)
    form_save(
        user=coordinator1,
        visit_id=m3.pk,
        form_code="LIVER",
        version=version(m3),
        values={"ALT": "30"},
        partial=True,
        reason="Result received late",
    )
    signature.refresh_from_db()
    assert signature.voided_at is not None and signature.void_reason == "Signed data changed"
    assert not FormInstance.objects.filter(visit=m3, signed=True).exists()
    assert AuditRecord.objects.filter(object_type="signature", action="void").count() == 1


def test_casebook_signature_is_voided_by_new_data_on_a_later_visit(coordinator1, investigator1, participant):
    signature = casebook_sign(user=investigator1, participant_id=participant.pk, password=PASSWORD)
    m6 = participant.visits.get(definition__code="M6")
    form_save(user=coordinator1, visit_id=m6.pk, form_code="SYMPT", version=0, values={"APPETITE": "normal"})
    signature.refresh_from_db()
    assert signature.voided_at is not None


# --- Locks ---------------------------------------------------------------------------------------------


def test_locked_form_refuses_every_save_until_released(coordinator1, datamanager, participant, m3):
    save_liver(coordinator1, m3)
    lock = lock_set(
        user=datamanager,
        participant_id=participant.pk,
        visit_id=m3.pk,
        form_code="LIVER",
        reason="Database lock for interim analysis",
    )
    before = (ItemValue.objects.count(), AuditRecord.objects.count())
    with pytest.raises(LockedError):
        save_liver(coordinator1, m3, version=1, reason="x", ALT="99")
    assert (ItemValue.objects.count(), AuditRecord.objects.count()) == before
    form_save(user=coordinator1, visit_id=m3.pk, form_code="KIDNEY", version=0, values={"BUN": "5"})  # not locked
    with pytest.raises(InvalidInput):
        lock_release(user=datamanager, lock_id=lock.pk, reason="")
    lock_release(user=datamanager, lock_id=lock.pk, reason="Interim analysis done")
    save_liver(coordinator1, m3, version=1, reason="Late correction", ALT="99")


def test_participant_lock_covers_forms_not_yet_started(coordinator1, datamanager, participant, m3):
    lock_set(user=datamanager, participant_id=participant.pk, reason="Final lock")
    with pytest.raises(LockedError):
        form_save(user=coordinator1, visit_id=m3.pk, form_code="SYMPT", version=0, values={"APPETITE": "poor"})
    assert not FormInstance.objects.exists()


def test_overlapping_locks_keep_the_form_locked_until_both_are_released(coordinator1, datamanager, participant, m3):
    save_liver(coordinator1, m3)
    visit_lock = lock_set(user=datamanager, participant_id=participant.pk, visit_id=m3.pk)
    lock_set(user=datamanager, participant_id=participant.pk)
    lock_release(user=datamanager, lock_id=visit_lock.pk, reason="Visit reviewed")
    with pytest.raises(LockedError):
        save_liver(coordinator1, m3, version=1, reason="x", ALT="31")


def test_lock_with_open_queries_needs_confirmation(coordinator1, datamanager, monitor, participant, m3):
    save_liver(coordinator1, m3)
    query_raise(user=monitor, visit_id=m3.pk, form_code="LIVER", item_code="ALT", message="Check")
    with pytest.raises(OpenQueriesError) as error:
        lock_set(user=datamanager, participant_id=participant.pk, visit_id=m3.pk)
    assert error.value.open_queries == 1
    lock_set(user=datamanager, participant_id=participant.pk, visit_id=m3.pk, confirm_open_queries=True)
    assert FormInstance.objects.get(visit=m3).locked


def test_only_a_data_manager_locks(coordinator1, monitor, participant):
    for user in (coordinator1, monitor):
        with pytest.raises(AccessDenied):
            lock_set(user=user, participant_id=participant.pk)


def test_bulk_import_into_a_locked_form_writes_nothing_and_says_why(coordinator1, datamanager, participant, m3, site1):
    from capture import lab_import as imports
    from tests.capture.test_lab_import import HEADER, upload_service

    save_liver(coordinator1, m3)
    lock_set(user=datamanager, participant_id=participant.pk, visit_id=m3.pk, reason="Reviewed")
    lab_import = upload_service(coordinator1, site1, HEADER + f"{participant.subject_id},M3,ALT,55,U/L\n")
    outcome = imports.lab_import_apply(user=coordinator1, lab_import=lab_import)
    outcome = lab_import.outcome if outcome is None else outcome
    assert ItemValue.objects.get(visit=m3, item__code="ALT").number == 30
    assert "locked" in str(outcome).lower()
