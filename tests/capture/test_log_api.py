"""The log forms' REST API: list, add, read, correct and remove rows of CM, MH and DV under the participant."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.test import APIClient

from capture.logs.services import log_row_create
from capture.models import LogRow, Query
from tests.capture.test_log_services import ENTECAVIR, HISTORY, deviation
from trial.models import AuditRecord

pytestmark = pytest.mark.django_db


def api(user: object) -> APIClient:
    client = APIClient()
    _token, key = AuthToken.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def rows_url(participant, form: str, key: int | None = None, tail: str = "") -> str:
    url = f"/api/v1/participants/{participant.pk}/logs/{form}/rows/"
    return url + (f"{key}/" if key else "") + tail


def test_medications_are_added_listed_and_corrected(coordinator1, participant):
    client = api(coordinator1)
    created = client.post(rows_url(participant, "CM"), {"values": {**ENTECAVIR, "CMONGO": True}}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["repeat_key"] == 1 and created.json()["values"]["CMDOSE"] == "0.5"
    assert created.json()["values"]["CMONGO"] == "true"

    listed = client.get(rows_url(participant, "CM")).json()
    assert [row["repeat_key"] for row in listed["rows"]] == [1]
    assert [item["code"] for item in listed["items"]][:2] == ["CMTRT", "CMCLAS"]

    body = {"version": 1, "values": {"CMDOSE": 1}, "partial": True}
    no_reason = client.put(rows_url(participant, "CM", 1), body, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    body = {"version": 1, "values": {"CMDOSE": 1}, "partial": True, "reason": "Prescription re-read"}
    corrected = client.put(rows_url(participant, "CM", 1), body, format="json")
    assert corrected.status_code == 200 and corrected.json()["values"]["CMDOSE"] == "1"
    stale = client.put(rows_url(participant, "CM", 1), body, format="json")
    assert stale.status_code == 409 and stale.json()["current_version"] == 2


def test_medication_refused_entries_are_400_keyed_by_item(coordinator1, participant):
    response = api(coordinator1).post(
        rows_url(participant, "CM"), {"values": {**ENTECAVIR, "CMDOSFRQ": "hourly", "CMDOSE": [1]}}, format="json"
    )
    assert response.status_code == 400 and "CMDOSE" in response.json()
    response = api(coordinator1).post(
        rows_url(participant, "CM"), {"values": {**ENTECAVIR, "CMDOSFRQ": "hourly"}}, format="json"
    )
    assert response.status_code == 400 and set(response.json()) == {"CMDOSFRQ"}
    assert not LogRow.objects.exists()


def test_medical_history_row_and_its_removal(coordinator1, participant):
    client = api(coordinator1)
    assert client.post(rows_url(participant, "MH"), {"values": HISTORY}, format="json").status_code == 201
    no_reason = client.post(rows_url(participant, "MH", 1, "remove/"), {"version": 1, "reason": ""}, format="json")
    assert no_reason.status_code == 400
    removed = client.post(
        rows_url(participant, "MH", 1, "remove/"), {"version": 1, "reason": "Duplicate"}, format="json"
    )
    assert removed.status_code == 200 and removed.json()["removed"] and removed.json()["removed_reason"] == "Duplicate"
    assert client.get(rows_url(participant, "MH")).json()["rows"][0]["removed"] is True
    assert AuditRecord.objects.filter(object_type="log_row", action="remove").count() == 1


def test_protocol_deviation_before_consent_is_flagged_with_a_query(coordinator1, participant):
    day = participant.screening.consent_date - datetime.timedelta(days=3)
    response = api(coordinator1).post(rows_url(participant, "DV"), {"values": deviation(day)}, format="json")
    assert response.status_code == 201
    assert response.json()["flags"] == {"DVDAT": ["rule"]} and response.json()["queries_opened"] == 1
    assert Query.objects.get(record_type="log_row").check_code == "DV_DATE_GE_CONSENT"


@pytest.mark.parametrize("form", ["CM", "MH", "DV"])
def test_other_site_is_404_and_read_only_roles_are_403(coordinator1, coordinator2, monitor, participant, form):
    values = {"CM": ENTECAVIR, "MH": HISTORY, "DV": deviation(participant.screening.consent_date)}[form]
    log_row_create(user=coordinator1, participant_id=participant.pk, form_code=form, values=values)
    assert api(coordinator2).get(rows_url(participant, form)).status_code == 404
    assert api(coordinator2).get(rows_url(participant, form, 1)).status_code == 404
    assert api(coordinator2).post(rows_url(participant, form), {"values": values}, format="json").status_code == 404
    assert api(monitor).get(rows_url(participant, form, 1)).status_code == 200
    assert api(monitor).post(rows_url(participant, form), {"values": values}, format="json").status_code == 403
    assert APIClient().get(rows_url(participant, form)).status_code in (401, 403)


def test_unknown_log_and_row_are_404(coordinator1, participant):
    assert api(coordinator1).get(rows_url(participant, "LIVER")).status_code == 404
    assert api(coordinator1).get(rows_url(participant, "CM", 7)).status_code == 404


def test_list_costs_the_same_for_2_and_50_rows(coordinator1, participant, django_assert_num_queries):
    client = api(coordinator1)

    def grow(rows: int) -> None:
        while LogRow.objects.filter(participant=participant).count() < rows:
            log_row_create(user=coordinator1, participant_id=participant.pk, form_code="CM", values=ENTECAVIR)

    grow(2)
    client.get(rows_url(participant, "CM"))  # warms the per-process caches (protocol definitions)
    with CaptureQueriesContext(connection) as two:
        assert len(client.get(rows_url(participant, "CM")).json()["rows"]) == 2
    grow(50)
    with django_assert_num_queries(len(two)):
        assert len(client.get(rows_url(participant, "CM")).json()["rows"]) == 50
