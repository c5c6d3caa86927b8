"""Scheduled reports: the default schedules installed by a command, what beat does when one falls due (called here
as beat would call it), the emailed link, and the data manager's page to change the schedules."""

import datetime
import json
import zoneinfo

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from config.celery import app
from reports import runs
from reports.models import ReportKind, ReportRun, RunState
from reports.schedules import TASK, report_schedules_install
from tests.factories import enrolled, make_user
from trial.models import AuditRecord, Role, Site

pytestmark = pytest.mark.django_db

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = "https://edc.example.org"


@pytest.fixture
def installed(protocol):
    report_schedules_install()
    return {task.name: task for task in PeriodicTask.objects.filter(task=TASK).select_related("crontab")}


def fire(task: PeriodicTask, capture) -> ReportRun:
    """What beat does when the schedule falls due: send the entry's task with its arguments (in-process here)."""
    app.loader.import_default_modules()  # as a worker does at start: the autodiscovered tasks are registered
    entry = ModelEntry(task, app=app)
    with capture(execute=True):
        app.tasks[entry.task].apply_async(args=entry.args, kwargs=entry.kwargs)
    return ReportRun.objects.latest("pk")


def next_run_after(task: PeriodicTask, moment: datetime.datetime) -> datetime.datetime:
    schedule = ModelEntry(task, app=app).schedule
    schedule.nowfun = lambda: moment
    return moment + schedule.remaining_estimate(moment)


# --- The command -------------------------------------------------------------------------------------------------


def test_install_command_creates_the_default_schedules_once(protocol, capsys):
    call_command("install_report_schedules")
    call_command("install_report_schedules")
    out = capsys.readouterr().out
    assert out.count("Weekly trial summary: installed") == 1 and "already installed" in out

    tasks = {task.name: task for task in PeriodicTask.objects.filter(task=TASK)}
    assert set(tasks) == {"Weekly trial summary", "Monthly safety report"}
    weekly, monthly = tasks["Weekly trial summary"].crontab, tasks["Monthly safety report"].crontab
    assert (weekly.minute, weekly.hour, weekly.day_of_week, weekly.day_of_month) == ("0", "6", "1", "*")
    assert (monthly.minute, monthly.hour, monthly.day_of_week, monthly.day_of_month) == ("0", "6", "*", "1")
    assert str(weekly.timezone) == str(monthly.timezone) == "Asia/Shanghai"
    assert json.loads(tasks["Weekly trial summary"].kwargs) == {"kind": "trial_summary"}
    assert json.loads(tasks["Monthly safety report"].kwargs) == {"kind": "safety"}
    assert all(task.enabled for task in tasks.values())
    assert AuditRecord.objects.filter(object_type="report_schedule", action="install").count() == 2


def test_installing_again_keeps_a_data_managers_change(installed, datamanager):
    weekly = installed["Weekly trial summary"]
    change = {"minute": "30", "hour": "7", "day_of_week": "1", "day_of_month": "*", "enabled": False}
    from reports.schedules import report_schedule_update

    report_schedule_update(user=datamanager, schedule_id=weekly.pk, timezone="Asia/Shanghai", **change)
    call_command("install_report_schedules")
    weekly = PeriodicTask.objects.select_related("crontab").get(pk=weekly.pk)
    assert (weekly.crontab.minute, weekly.crontab.hour, weekly.enabled) == ("30", "7", False)
    assert PeriodicTask.objects.filter(task=TASK).count() == 2


def test_the_weekly_summary_falls_due_on_monday_at_six_in_shanghai(installed):
    sunday_noon = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=SHANGHAI)
    due = next_run_after(installed["Weekly trial summary"], sunday_noon).astimezone(SHANGHAI)
    assert (due.weekday(), due.hour, due.minute, due.date()) == (0, 6, 0, datetime.date(2026, 11, 23))
    monthly = next_run_after(installed["Monthly safety report"], sunday_noon).astimezone(SHANGHAI)
    assert (monthly.day, monthly.hour, monthly.minute, monthly.date()) == (1, 6, 0, datetime.date(2026, 12, 1))


# --- What beat calls -----------------------------------------------------------------------------------------------


def test_a_scheduled_run_covers_every_site_and_emails_the_sponsor_a_link(
    installed, sponsor, datamanager, coordinator1, site1, django_capture_on_commit_callbacks
):
    enrolled(coordinator1, site1, days_ago=100)
    make_user("sponsor1", {site1: Role.SPONSOR})  # may not open a report of every site: not told
    run = fire(installed["Weekly trial summary"], django_capture_on_commit_callbacks)

    assert run.kind == ReportKind.TRIAL_SUMMARY and run.state == RunState.DONE and run.requested_by is None
    assert set(run.sites.all()) == set(Site.objects.all())
    assert run.trigger and run.notified_at is not None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [sponsor.email]
    assert message.attachments == [] and not message.message().is_multipart()
    assert f"https://edc.example.org/reports/runs/{run.pk}/download/" in message.body
    assert run.sha256 in message.body and "%PDF" not in message.body
    assert message.subject == "[NCT01573923] Trial summary is ready"
    actions = AuditRecord.objects.filter(object_type="report_run", object_id=str(run.pk)).values_list(
        "action", flat=True
    )
    assert list(actions) == ["schedule", "generate", "notify"]


def test_the_emailed_link_downloads_the_report_for_the_sponsor(
    installed, sponsor, as_user, django_capture_on_commit_callbacks
):
    run = fire(installed["Monthly safety report"], django_capture_on_commit_callbacks)
    link = mail.outbox[0].body.split("https://edc.example.org", 1)[1].split()[0]
    response = as_user(sponsor).get(link)
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert AuditRecord.objects.filter(object_id=str(run.pk), action="download", user=sponsor).exists()


def test_a_retried_firing_goes_on_with_its_own_run_and_notifies_once(
    installed, sponsor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = runs.scheduled_report(kind="safety", trigger="beat-firing-1")
    with django_capture_on_commit_callbacks(execute=True):
        again = runs.scheduled_report(kind="safety", trigger="beat-firing-1")
    assert first.pk == again.pk and ReportRun.objects.count() == 1
    assert again.state == RunState.DONE and again.attempts == 1
    assert len(mail.outbox) == 1


def test_a_failed_scheduled_run_tells_the_sponsor_why_without_a_link_to_a_file(
    installed, sponsor, settings, tmp_path, django_capture_on_commit_callbacks
):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings.MEDIA_ROOT = blocker / "media"
    run = fire(installed["Weekly trial summary"], django_capture_on_commit_callbacks)
    assert run.state == RunState.FAILED
    message = mail.outbox[0]
    assert message.subject == "[NCT01573923] Trial summary could not be generated"
    assert "Not a directory" in message.body and "https://edc.example.org/reports/" in message.body
    assert "/download/" not in message.body


# --- The schedules page ----------------------------------------------------------------------------------------


def test_data_manager_sees_the_schedules(installed, datamanager, as_user):
    response = as_user(datamanager).get(reverse("reports:schedules"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Weekly trial summary" in page and "Monthly safety report" in page and "Asia/Shanghai" in page


@pytest.mark.parametrize("name", ["sponsor", "coordinator1", "monitor", "outsider"])
def test_only_a_data_manager_may_see_or_change_the_schedules(name, request, installed, as_user):
    client = as_user(request.getfixturevalue(name))
    weekly = installed["Weekly trial summary"]
    assert client.get(reverse("reports:schedules")).status_code == 403
    assert client.get(reverse("reports:schedule_edit", args=[weekly.pk])).status_code == 403
    response = client.post(reverse("reports:schedule_edit", args=[weekly.pk]), {"minute": "5", "hour": "5"})
    assert response.status_code == 403
    assert PeriodicTask.objects.get(pk=weekly.pk).crontab_id == weekly.crontab_id


def test_data_manager_changes_a_schedule_and_the_change_is_audited(installed, datamanager, as_user):
    weekly = installed["Weekly trial summary"]
    form = {
        "minute": "15",
        "hour": "7",
        "day_of_week": "1,4",
        "day_of_month": "*",
        "timezone": "Asia/Shanghai",
        "enabled": "on",
    }
    response = as_user(datamanager).post(reverse("reports:schedule_edit", args=[weekly.pk]), form)
    assert response.status_code == 302

    weekly = PeriodicTask.objects.select_related("crontab").get(pk=weekly.pk)
    assert (weekly.crontab.minute, weekly.crontab.hour, weekly.crontab.day_of_week) == ("15", "7", "1,4")
    # The monthly schedule's crontab row is not touched.
    monthly = installed["Monthly safety report"]
    assert CrontabSchedule.objects.get(pk=monthly.crontab_id).hour == "6"
    changes = AuditRecord.objects.filter(object_type="report_schedule", action="update", object_id=str(weekly.pk))
    assert {(c.item_code, c.old_value, c.new_value) for c in changes} == {
        ("minute", "0", "15"),
        ("hour", "6", "7"),
        ("day_of_week", "1", "1,4"),
    }
    assert {c.user for c in changes} == {datamanager}


def test_a_schedule_can_be_switched_off_and_bad_values_are_refused(installed, datamanager, as_user):
    weekly = installed["Weekly trial summary"]
    client = as_user(datamanager)
    url = reverse("reports:schedule_edit", args=[weekly.pk])
    base = {"minute": "0", "hour": "6", "day_of_week": "1", "day_of_month": "*", "timezone": "Asia/Shanghai"}

    refused = client.post(url, {**base, "minute": "61", "hour": "25", "enabled": "on"})
    assert refused.status_code == 400
    assert "Not a valid crontab value: 61." in refused.content.decode()
    assert PeriodicTask.objects.get(pk=weekly.pk).crontab_id == weekly.crontab_id

    assert client.post(url, base).status_code == 302  # "enabled" left unticked
    assert PeriodicTask.objects.get(pk=weekly.pk).enabled is False
    record = AuditRecord.objects.get(object_type="report_schedule", item_code="enabled")
    assert (record.old_value, record.new_value) == ("yes", "no")


@pytest.mark.parametrize("sites", [[1], [1, 2, 3, 4, 5]])
def test_a_data_manager_of_some_sites_only_may_not_change_the_trial_wide_schedules(sites, installed, as_user):
    # A scheduled report covers every site, so its schedule is a trial-wide setting.
    partial = make_user("dm-partial", {Site.objects.get(number=n): Role.DATA_MANAGER for n in sites})
    weekly = installed["Weekly trial summary"]
    audited = AuditRecord.objects.count()
    client = as_user(partial)
    assert client.get(reverse("reports:schedules")).status_code == 403
    form = {"minute": "5", "hour": "5", "day_of_week": "*", "day_of_month": "*", "timezone": "UTC", "enabled": "on"}
    assert client.post(reverse("reports:schedule_edit", args=[weekly.pk]), form).status_code == 403
    assert PeriodicTask.objects.get(pk=weekly.pk).crontab_id == weekly.crontab_id
    assert AuditRecord.objects.count() == audited
    assert "Report schedules" not in client.get(reverse("reports:runs")).content.decode()


def test_a_data_manager_of_every_site_may_change_the_schedules(installed, as_user):
    everywhere = make_user("dm-all", {site: Role.DATA_MANAGER for site in Site.objects.all()})
    weekly = installed["Weekly trial summary"]
    form = {"minute": "5", "hour": "5", "day_of_week": "*", "day_of_month": "*", "timezone": "UTC", "enabled": "on"}
    assert as_user(everywhere).post(reverse("reports:schedule_edit", args=[weekly.pk]), form).status_code == 302
    assert PeriodicTask.objects.select_related("crontab").get(pk=weekly.pk).crontab.hour == "5"


def test_a_data_manager_of_every_site_who_is_something_else_at_one_may_not(installed, as_user):
    roles = {site: Role.DATA_MANAGER for site in Site.objects.all()}
    roles[Site.objects.get(number=6)] = Role.MONITOR
    mixed = make_user("dm-mixed", roles)
    assert as_user(mixed).get(reverse("reports:schedules")).status_code == 403
