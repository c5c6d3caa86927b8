"""One structured log line per request and per task; Prometheus metrics behind a token."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config import observability
from reports import runs
from tests.factories import enrolled


def logged(caplog, logger: str) -> list[dict]:
    return [json.loads(record.getMessage()) for record in caplog.records if record.name == logger]


def test_each_request_logs_one_line_with_user_sites_status_duration_and_sql(as_user, coordinator1, site1, caplog):
    client = as_user(coordinator1)
    caplog.set_level("INFO", logger="edc.request")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("trial:participant_list"), {"q": "ZW"})
    [line] = logged(caplog, "edc.request")
    assert line["event"] == "request" and line["method"] == "GET"
    assert line["path"] == reverse("trial:participant_list")  # the search term stays out of the log
    assert line["user"] == "coordinator1" and line["sites"] == [site1.pk]
    assert line["status"] == 200 and line["duration_ms"] >= 0
    assert line["sql"] == len(queries)
    assert response["X-Request-ID"] == line["request_id"]


def test_a_sane_request_id_from_the_proxy_is_kept_and_a_hostile_one_replaced(client, caplog):
    caplog.set_level("INFO", logger="edc.request")
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID='x"\n{"user": "admin"}')
    assert kept["X-Request-ID"] == "abc-123"
    assert replaced["X-Request-ID"] != 'x"\n{"user": "admin"}' and len(replaced["X-Request-ID"]) == 32
    lines = logged(caplog, "edc.request")
    assert [line["request_id"] for line in lines] == ["abc-123", replaced["X-Request-ID"]]
    assert all(line["user"] is None for line in lines)


def test_each_task_logs_one_line(
    sponsor, coordinator1, site1, settings, tmp_path, caplog, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    enrolled(coordinator1, site1, days_ago=30)

    def task_runs() -> float:
        return observability._counted(observability._redis(), observability.TASK_RUNS_KEY)

    before = task_runs()
    caplog.set_level("INFO", logger="edc.task")
    with django_capture_on_commit_callbacks(execute=True):
        run = runs.report_request(user=sponsor, kind="trial_summary", site_numbers=[1])
    [line] = logged(caplog, "edc.task")
    assert line["task"] == "reports.tasks.report_generate_task" and line["state"] == "SUCCESS"
    assert line["sql"] > 0 and line["duration_ms"] > 0
    assert task_runs() == before + 1  # in Redis with a broker, else in this process
    run.refresh_from_db()
    assert run.state == "done"


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Bearer ", "s3cret-metrics-token"])
def test_metrics_are_hidden_without_the_token(client, settings, header):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    assert client.get("/metrics", **extra).status_code == 404


def test_metrics_are_off_without_a_configured_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_with_the_token(as_user, coordinator1, client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    as_user(coordinator1).get(reverse("trial:dashboard"))
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert response.status_code == 200
    body = response.content.decode()
    for metric in (
        "django_http_requests_latency_seconds_by_view_method",
        "edc_request_sql_statements_bucket",
        "edc_sql_seconds_count",
        "edc_celery_queue_length",
        "edc_celery_task_failures",
        "edc_audit_seconds_since_verified",
    ):
        assert metric in body, metric
    assert response["Cache-Control"].startswith("max-age=0")
