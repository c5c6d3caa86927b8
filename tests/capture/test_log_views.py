"""The pages of log forms: a participant's logs, a new row, one row with its corrections, queries and removal."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from capture.logs.services import log_row_create
from capture.models import LogRow, LogValue
from tests.capture.test_log_services import ENTECAVIR, HISTORY

pytestmark = pytest.mark.django_db


def add(user, participant, form="CM", values=ENTECAVIR):
    return log_row_create(user=user, participant_id=participant.pk, form_code=form, values=values).row


def test_participant_page_shows_each_log_with_rows_and_add(as_user, coordinator1, participant):
    add(coordinator1, participant)
    add(coordinator1, participant, "MH", HISTORY)
    page = as_user(coordinator1).get(reverse("capture:participant_logs", args=[participant.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="log-CM"' in text and 'id="log-MH"' in text and 'id="log-DV"' in text
    assert 'id="add-CM"' in text and "Entecavir" in text and "Once daily" in text and "Hepatitis B" in text


def test_monitor_reads_without_add_and_other_site_is_404(as_user, coordinator1, coordinator2, monitor, participant):
    row = add(coordinator1, participant)
    page = as_user(monitor).get(reverse("capture:participant_logs", args=[participant.pk]))
    assert page.status_code == 200 and 'id="add-CM"' not in page.content.decode()
    client = as_user(coordinator2)
    assert client.get(reverse("capture:participant_logs", args=[participant.pk])).status_code == 404
    assert client.get(reverse("capture:log_row", args=[row.pk])).status_code == 404
    assert client.get(reverse("capture:log_row_add", args=[participant.pk, "CM"])).status_code == 404
    assert (
        client.post(reverse("capture:log_row_remove", args=[row.pk]), {"version": 1, "reason": "x"}).status_code == 404
    )


def test_add_page_saves_a_row_and_shows_errors_by_field(as_user, coordinator1, participant):
    client = as_user(coordinator1)
    url = reverse("capture:log_row_add", args=[participant.pk, "CM"])
    bad = client.post(url, {**ENTECAVIR, "CMDOSE": "lots"})
    assert bad.status_code == 400 and 'data-error-for="CMDOSE"' in bad.content.decode()
    assert not LogRow.objects.exists()
    good = client.post(url, ENTECAVIR)
    assert good.status_code == 302 and LogRow.objects.get().repeat_key == 1


def test_row_page_corrects_with_a_reason_and_removes(as_user, coordinator1, participant):
    row = add(coordinator1, participant)
    client = as_user(coordinator1)
    url = reverse("capture:log_row", args=[row.pk])
    assert client.get(url).status_code == 200
    refused = client.post(url, {**ENTECAVIR, "CMDOSE": "1", "version": 1})
    assert refused.status_code == 400 and 'data-error-for="reason"' in refused.content.decode()
    saved = client.post(url, {**ENTECAVIR, "CMDOSE": "1", "version": 1, "reason": "Prescription re-read"})
    assert saved.status_code == 302
    assert LogValue.objects.get(row=row, item__code="CMDOSE").number == 1
    client.post(reverse("capture:log_row_remove", args=[row.pk]), {"version": 2, "reason": "Wrong participant"})
    row.refresh_from_db()
    assert row.removed and "Removed" in client.get(url).content.decode()


def test_logs_page_costs_the_same_for_2_and_50_rows(as_user, coordinator1, participant, django_assert_num_queries):
    client = as_user(coordinator1)
    url = reverse("capture:participant_logs", args=[participant.pk])

    def grow(rows: int) -> None:
        while LogRow.objects.filter(participant=participant).count() < rows:
            add(coordinator1, participant)

    grow(2)
    client.get(url)
    with CaptureQueriesContext(connection) as two:
        client.get(url)
    grow(50)
    with django_assert_num_queries(len(two)):
        assert client.get(url).content.decode().count('data-row="') == 50
