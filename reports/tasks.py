"""The reports' Celery tasks: thin, primary keys (or a report kind) in, each calling one service, each safe to
run twice (a run is claimed with a conditional UPDATE; a notice is sent once, under a row lock)."""

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from reports import runs

RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (DatabaseError,),  # a database restart; any other failure is recorded on the run
    "retry_backoff": 5,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}
# A report must finish well inside the broker's visibility timeout (settings check the limits against it); at the
# soft limit the build stops and the run fails saying why.
LIMITS = {
    "soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.CELERY_TASK_TIME_LIMIT,
}


@shared_task(name="reports.tasks.report_generate_task", bind=True, **RETRY, **LIMITS)
def report_generate_task(self: object, run_id: int) -> bool:
    """Generate one report run's PDF, unless another task holds or finished it."""
    return runs.report_generate(run_id=run_id, task_id=self.request.id or "")


@shared_task(name="reports.tasks.scheduled_report_task", bind=True, **RETRY, **LIMITS)
def scheduled_report_task(self: object, kind: str) -> int:
    """On Celery beat (django-celery-beat's schedules): a report of every site, then a link to the sponsor."""
    return runs.scheduled_report(kind=kind, trigger=self.request.id).pk


@shared_task(name="reports.tasks.report_notify_task", **{**RETRY, "autoretry_for": (DatabaseError, OSError)})
def report_notify_task(run_id: int) -> bool:
    """Email the sponsor the link to a scheduled run; a mail server that does not answer is retried."""
    return runs.report_notify(run_id=run_id)


ALL = (report_generate_task, scheduled_report_task, report_notify_task)
