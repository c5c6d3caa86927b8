"""Safety's Celery tasks: thin, primary keys in, each calling one service, each safe to run twice."""

import datetime
import logging

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from safety import lab, notify

log = logging.getLogger(__name__)

RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (DatabaseError, OSError),  # a database restart, a mail server that does not answer
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="safety.tasks.lab_grade_task", **RETRY)
def lab_grade_task(form_id: int) -> dict:
    """Grade one saved lab form against CTCAE v5.0 and propose adverse events."""
    outcome = lab.form_grade(form_id=form_id)
    return {"graded": outcome.graded, "proposed": list(outcome.proposed), "skipped": outcome.skipped}


@shared_task(name="safety.tasks.sae_notify_task", **RETRY)
def sae_notify_task(notification_id: int) -> bool:
    """Tell one recipient about a serious adverse event, unless already told."""
    return notify.sae_notification_send(notification_id=notification_id)


@shared_task(name="safety.tasks.safety_sweep_task", **RETRY)
def safety_sweep_task() -> dict:
    """On Celery beat: re-send what a lost task or an unreachable broker left undone."""
    grace = datetime.timedelta(seconds=settings.SAFETY_SWEEP_GRACE_SECONDS)  # a fresh save is left to its own task
    forms = lab.forms_due(older_than=grace)
    notices = notify.notifications_unsent(older_than=grace)
    # A copy the queue has not reached in ten sweeps expires: work still undone is due again at the next sweep,
    # so a backlog holds at most ten copies of each task instead of one more per sweep.
    expires = settings.SAFETY_SWEEP_SECONDS * 10
    for form_id in forms:
        lab_grade_task.apply_async(args=[form_id], expires=expires)
    for notification_id in notices:
        sae_notify_task.apply_async(args=[notification_id], expires=expires)
    if forms or notices:
        log.info("Safety sweep re-sent %s lab gradings and %s SAE notices", len(forms), len(notices))
    return {"forms": forms, "notifications": notices}


ALL = (lab_grade_task, sae_notify_task, safety_sweep_task)
