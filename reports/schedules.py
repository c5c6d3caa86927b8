"""The beat schedule of the reports: django-celery-beat's periodic tasks that start `scheduled_report_task`.

The defaults are installed by `manage.py install_report_schedules` (and the demo); a data manager may then change
when each runs, in which time zone, or switch it off. Beat (DatabaseScheduler) reads the change from the database.
"""

from __future__ import annotations

import json
import zoneinfo
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django_celery_beat import validators
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from reports.models import ReportKind
from trial import access
from trial.audit import AuditEntry, audit_write
from trial.errors import AccessDenied, InvalidInput
from trial.models import Role

TASK = "reports.tasks.scheduled_report_task"
TIME_ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class DefaultSchedule:
    name: str
    kind: str
    minute: str = "0"
    hour: str = "6"
    day_of_week: str = "*"
    day_of_month: str = "*"


DEFAULTS = (
    DefaultSchedule("Weekly trial summary", ReportKind.TRIAL_SUMMARY, day_of_week="1"),  # Mondays 06:00
    DefaultSchedule("Monthly safety report", ReportKind.SAFETY, day_of_month="1"),  # the 1st, 06:00
)

CRONTAB_FIELDS = {
    "minute": validators.minute_validator,
    "hour": validators.hour_validator,
    "day_of_week": validators.day_of_week_validator,
    "day_of_month": validators.day_of_month_validator,
}


def report_schedules() -> QuerySet[PeriodicTask]:
    return PeriodicTask.objects.filter(task=TASK).select_related("crontab").order_by("name")


def schedule_kind(task: PeriodicTask) -> str:
    return json.loads(task.kwargs or "{}").get("kind", "")


def may_edit_schedules(user: object) -> bool:
    """The schedules are trial-wide (a scheduled report covers every site): only a data manager of every site."""
    return access.holds_role_everywhere(user, Role.DATA_MANAGER)


def require_schedule_editor(user: object) -> None:
    if not may_edit_schedules(user):
        raise AccessDenied(_("Only a data manager of every site may change the report schedules."))


def schedule_or_404(user: object, schedule_id: int) -> PeriodicTask:
    require_schedule_editor(user)
    return access.get_or_404(report_schedules(), pk=schedule_id)


@transaction.atomic
def report_schedules_install() -> list[tuple[PeriodicTask, bool]]:
    """Create the default schedules that are missing: (task, created) for each. A schedule already there is left as
    it is, so running this again never undoes a data manager's change."""
    installed = []
    for default in DEFAULTS:
        task = PeriodicTask.objects.filter(name=default.name).first()
        created = task is None
        if created:
            crontab = _crontab(default.minute, default.hour, default.day_of_week, default.day_of_month, TIME_ZONE)
            task = PeriodicTask.objects.create(
                name=default.name, task=TASK, crontab=crontab, kwargs=json.dumps({"kind": default.kind})
            )
            audit_write(
                user=None,
                entries=[AuditEntry("report_schedule", str(task.pk), "install", new_value=crontab_text(task))],
            )
        installed.append((task, created))
    return installed


@transaction.atomic
def report_schedule_update(
    *,
    user: object,
    schedule_id: int,
    minute: str,
    hour: str,
    day_of_week: str,
    day_of_month: str,
    timezone: str,
    enabled: bool,
) -> PeriodicTask:
    """A data manager changes when a scheduled report runs, or switches it on or off; each change is audited."""
    task = schedule_or_404(user, schedule_id)
    fields = {"minute": minute, "hour": hour, "day_of_week": day_of_week, "day_of_month": day_of_month}
    fields = {name: value.strip().replace(" ", "") for name, value in fields.items()}
    _validate(fields, timezone)
    before = _described(task)
    # Another task may share the old crontab row: pick (or make) the row of the new timing, never edit one in place.
    task.crontab = _crontab(**fields, timezone=timezone)
    task.enabled = enabled
    task.save()
    after = _described(task)
    entries = [
        AuditEntry("report_schedule", str(task.pk), "update", item_code=name, old_value=before[name], new_value=value)
        for name, value in after.items()
        if before[name] != value
    ]
    audit_write(user=user, entries=entries)
    return task


def _validate(fields: dict[str, str], timezone: str) -> None:
    errors: dict[str, list[str]] = {}
    for name, value in fields.items():
        try:
            CRONTAB_FIELDS[name](value)
        except (ValidationError, ValueError):
            errors[name] = [_("Not a valid crontab value: %(value)s.") % {"value": value or '""'}]
    if timezone not in zoneinfo.available_timezones():
        errors["timezone"] = [_("Not a known time zone: %(zone)s.") % {"zone": timezone}]
    if errors:
        raise InvalidInput(errors=errors)


def _crontab(minute: str, hour: str, day_of_week: str, day_of_month: str, timezone: str) -> CrontabSchedule:
    crontab, _created = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_week=day_of_week,
        day_of_month=day_of_month,
        month_of_year="*",
        timezone=zoneinfo.ZoneInfo(timezone),
    )
    return crontab


def _described(task: PeriodicTask) -> dict[str, str]:
    crontab = task.crontab
    return {
        "minute": crontab.minute,
        "hour": crontab.hour,
        "day_of_week": crontab.day_of_week,
        "day_of_month": crontab.day_of_month,
        "timezone": str(crontab.timezone),
        "enabled": "yes" if task.enabled else "no",
    }


def crontab_text(task: PeriodicTask) -> str:
    """The timing as crontab writes it (minute hour day-of-month month day-of-week), with its time zone."""
    crontab = task.crontab
    fields = (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week)
    return f"{' '.join(fields)} ({crontab.timezone})"
