"""The Celery app of web, worker and beat: configured from Django's settings (the CELERY_* names), tasks found in
each app's tasks.py.

How tasks survive a lost worker or broker is set there: acks late, rejected back to the queue when their process
dies, a hard time limit below Redis's visibility timeout, one message prefetched per process. Without REDIS_URL
(and under pytest) tasks run in-process: on a worker thread after the commit, or under pytest at the commit (see
trial/background.py, the one way to queue a task); tests/safety/test_worker.py runs them on a real worker.
"""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("edc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _task_started(task_id: str, task: object, **kwargs: object) -> None:
    from config.observability import task_started

    task_started(task_id, task)


@task_postrun.connect
def _task_finished(task_id: str, task: object, state: str = "", **kwargs: object) -> None:
    # One structured log line per task, and the failure counter /metrics reads (config/observability.py).
    from config.observability import task_finished

    task_finished(task_id, task, state=state or "")
