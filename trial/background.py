"""The one way any app queues slow work: a Celery task, named, sent once the transaction commits.

Services name the task ("safety.tasks.lab_grade_task") instead of importing it, so that services -> tasks ->
services never closes into a circle, and a rolled-back transaction sends nothing.

Where the task runs:
- with a broker (REDIS_URL), on a Celery worker;
- without one (`make run`, the embedded default), on a worker thread of this process, fed after the commit: the
  request answers first, and grading, notices and report builds never run inside it. The thread takes one task at
  a time, on its own database connection, closed after each task; `drain()` waits for what is queued (seed_demo
  calls it; so does the process at exit);
- under the test suite (TASKS_IN_PROCESS = "inline"), at once in the committing thread, so tests stay
  deterministic.

A task that cannot be sent (the broker is down) or, run in-process, fails, is logged and handed to the caller's
`on_failure`; the periodic sweeps re-send what they own.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections, transaction

log = logging.getLogger(__name__)

OnFailure = Callable[[BaseException], None]
EXIT_DRAIN_SECONDS = 60


def enqueue_after_commit(task_name: str, *args: object, on_failure: OnFailure | None = None) -> None:
    """Queue `task_name(*args)` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(functools.partial(enqueue, task_name, *args, on_failure=on_failure))


def enqueue(task_name: str, *args: object, on_failure: OnFailure | None = None) -> None:
    """Queue `task_name(*args)` now: to the broker, to the in-process worker thread, or (tests) run it inline."""
    task = task_named(task_name)
    if not task.app.conf.task_always_eager or settings.TASKS_IN_PROCESS == "inline":
        try:
            task.apply_async(args=args, retry=False)
        except Exception as error:  # the broker down, or an inline run failing: the caller decides what then
            _failed(task_name, args, error, on_failure)
        return
    _worker.submit(functools.partial(_run, task_name, args, on_failure))


def task_named(task_name: str) -> object:
    """The Celery task of that name (its module path and function name), imported on first use."""
    module, _dot, name = task_name.rpartition(".")
    return getattr(importlib.import_module(module), name)


def drain(timeout: float | None = None) -> bool:
    """Wait until the in-process worker has run every task queued so far; False if `timeout` came first."""
    return _worker.drain(timeout)


def _run(task_name: str, args: tuple, on_failure: OnFailure | None) -> None:
    try:
        task_named(task_name).apply(args=args, throw=True)
    except Exception as error:  # a task that failed past its own retries: logged, and the caller's to handle
        _failed(task_name, args, error, on_failure)


def _failed(task_name: str, args: tuple, error: BaseException, on_failure: OnFailure | None) -> None:
    log.warning(
        "Could not run %s%s now; the periodic sweep will, or the caller's handler", task_name, args, exc_info=error
    )
    if on_failure is None:
        return
    try:
        on_failure(error)
    except Exception:  # the handler's own failure must not reach the request that queued the task
        log.exception("The failure handler of %s%s failed", task_name, args)


class _Worker:
    """One daemon thread per process, started on first use (so after a fork, in the process that serves)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._pid = 0
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        with self._guard:
            if self._pid != os.getpid():  # forked: the parent's thread and queue are not ours
                self._pid, self._queue, self._thread = os.getpid(), queue.Queue(), None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, args=(self._queue,), name="edc-tasks", daemon=True)
                self._thread.start()
            self._queue.put(job)

    @staticmethod
    def _loop(jobs: queue.Queue) -> None:
        while True:
            job = jobs.get()
            try:
                job()
            except Exception:  # a job logs its own failures; this keeps the thread alive whatever happens
                log.exception("An in-process task failed")
            finally:
                connections.close_all()  # this thread's connections only: each task starts on a fresh one
                jobs.task_done()

    def drain(self, timeout: float | None) -> bool:
        if self._pid != os.getpid():
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True


_worker = _Worker()


@atexit.register
def _drain_at_exit() -> None:
    # A command (seed_demo, a lab import) or a server that stops finishes what it queued, within reason.
    if not _worker.drain(EXIT_DRAIN_SECONDS):
        log.warning("Tasks were still queued in-process at exit; the periodic sweeps re-send what they own")
