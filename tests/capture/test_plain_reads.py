"""The save's plain-SQL reads (capture/visits.py, capture/services.py through trial/plain_rows.py) give what the ORM
querysets they replace gave: the same rows, the same typed values on SQLite and PostgreSQL, the same scope (another
site's visit is 404) and, on PostgreSQL, the same lock."""

import datetime
import threading
from decimal import Decimal

import pytest
from django.db import OperationalError, connections, transaction
from django.http import Http404

from capture.models import FormInstance, ItemValue
from capture.services import Stored, _locked_forms, _stored_values, form_save, visit_for_entry
from tests.capture.test_services import LIVER
from trial.models import Participant, Protocol, Site, Visit


def _saved(coordinator1, m3) -> None:
    values = {"LBDAT": str(m3.target_date), **LIVER, "ALT": "480.5", "PREALB": ""}
    form_save(
        user=coordinator1, visit_id=m3.pk, form_code="LIVER", version=0, values=values, missing={"PREALB": "not_done"}
    )


def _fields(instance: object) -> dict:
    """Every loaded column of a model instance."""
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_the_locked_visit_is_the_orm_s_visit_with_its_participant_protocol_and_site(coordinator1, m3):
    expected = Visit.objects.select_related("participant__protocol", "participant__site").get(pk=m3.pk)
    with transaction.atomic():
        visit = visit_for_entry(user=coordinator1, visit_id=m3.pk)
    assert _fields(visit) == _fields(expected)
    assert _fields(visit.participant) == _fields(expected.participant)
    assert isinstance(visit.participant.site, Site) and _fields(visit.participant.site) == _fields(
        expected.participant.site
    )
    protocol = visit.participant.protocol
    assert isinstance(protocol, Protocol) and protocol.pk == expected.participant.protocol_id
    assert "definition" in protocol.get_deferred_fields()  # large: read once per process instead
    assert isinstance(visit.participant, Participant) and isinstance(visit.target_date, datetime.date)
    assert visit.definition.code == "M3" and visit.participant.arm.code == "MSC"  # with_schedule's


def test_the_locked_visit_of_another_site_or_of_no_site_is_404(coordinator2, outsider, m3):
    for user in (coordinator2, outsider):
        with pytest.raises(Http404), transaction.atomic():
            visit_for_entry(user=user, visit_id=m3.pk)


def test_stored_values_and_forms_read_as_the_orm_reads_them(coordinator1, m3):
    _saved(coordinator1, m3)
    stored = _stored_values(m3)
    rows = ItemValue.objects.filter(visit=m3).values_list(*Stored._fields)
    expected = {row[0]: Stored(*row[:5], tuple(row[5]), *row[6:]) for row in rows}
    assert {value.item_id: value for value in stored.values()} == expected
    alt = stored[("LIVER", "ALT")]
    assert alt.number == Decimal("480.5") and alt.flags == ("high",) and alt.date is None
    assert stored[("LIVER", "LBDAT")].date == m3.target_date
    prealbumin = stored[("LIVER", "PREALB")]
    assert prealbumin.number is None and prealbumin.missing_reason == "not_done" and prealbumin.flags == ()
    forms = _locked_forms(m3)
    assert [_fields(form) for form in forms] == [_fields(form) for form in FormInstance.objects.filter(visit=m3)]
    assert forms[0].version == 1 and isinstance(forms[0].updated_at, datetime.datetime)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_locked_visit_holds_its_participant_until_the_transaction_ends(coordinator1, m3):
    outcome = {}

    def other_writer() -> None:
        try:
            with transaction.atomic():
                Participant.objects.select_for_update(nowait=True).get(pk=m3.participant_id)
            outcome["locked"] = False
        except OperationalError:
            outcome["locked"] = True
        finally:
            connections.close_all()

    with transaction.atomic():
        visit_for_entry(user=coordinator1, visit_id=m3.pk)
        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join()
    assert outcome == {"locked": True}
