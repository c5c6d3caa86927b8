"""Tasks for tests/trial/test_background.py: they record where they ran, fail, or hold the worker thread."""

import threading

from celery import shared_task
from django.db import connection

RAN: list[tuple[object, str]] = []
GATE = threading.Event()


@shared_task(name="tests.trial.background_tasks.record_task")
def record_task(value: object) -> None:
    RAN.append((value, threading.current_thread().name))


@shared_task(name="tests.trial.background_tasks.backend_task")
def backend_task() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        RAN.append((cursor.fetchone()[0], threading.current_thread().name))


@shared_task(name="tests.trial.background_tasks.fail_task")
def fail_task() -> None:
    raise ValueError("the task failed")


@shared_task(name="tests.trial.background_tasks.hold_task")
def hold_task() -> None:
    """Holds the worker thread until the test opens the gate: what is queued behind it waits."""
    GATE.wait(30)
