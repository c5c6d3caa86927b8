"""Safety's tasks on a real Celery worker: through Redis after the commit, exactly once in effect.

The worker is a subprocess on the test database (so these tests commit for real: transaction=True, and the
on_commit hooks fire as in production) and on a Redis database of this session's own. It runs the production
settings: nothing here is eager, and nothing in the code under test knows it is being tested.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import itertools
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from capture.models import FormInstance, ItemValue
from safety.models import AdverseEvent, AdverseEventStatus, FormGrading, Notification, SaeNotification
from safety.rules import AdverseEventInput
from safety.services import adverse_event_report, adverse_event_update
from safety.tasks import sae_notify_task
from tests.safety.conftest import save_liver, visit_of
from tests.safety.worker import (
    WORKER_APPLICATION_NAME,
    CeleryWorker,
    broker_backlog,
    broker_empty,
    claimed_redis_database,
    publishing_to,
    recipients_counted,
    redis_of_its_own,
    redis_url_or_missing,
    running_worker,
    unacked_since,
    wait_for,
)
from trial.models import Participant

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LAB_GRADE = "safety.tasks.lab_grade_task"
SAE_NOTIFY = "safety.tasks.sae_notify_task"
ALT_INCREASED = "Alanine aminotransferase increased"
ASCITES = AdverseEventInput(
    term="Ascites",
    body_system="gastrointestinal",
    grade=3,
    relationship="unlikely",
    action_taken="medication",
    outcome="not_recovered",
)


def committed(execute: bool) -> contextlib.AbstractContextManager:
    """save_liver's commit hook: here the commit is real, and on_commit sends the grading to the broker."""
    return contextlib.nullcontext()


def proposals(participant: Participant) -> list[AdverseEvent]:
    return list(AdverseEvent.objects.filter(participant=participant, status=AdverseEventStatus.PROPOSED))


def graded(form: FormInstance) -> bool:
    """Graded at the version it has now (the FormGrading is the grading's outbox: behind, it is due)."""
    form.refresh_from_db()
    return FormGrading.objects.filter(form=form, graded_version=form.version).exists()


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    with claimed_redis_database(redis_url_or_missing()) as url:
        yield url


@pytest.fixture
def broker(broker_url: str) -> Iterator[str]:
    """This test's process sends its tasks through the claimed Redis database, emptied of earlier tests' leftovers."""
    broker_empty(broker_url)
    with publishing_to(broker_url):
        yield broker_url


@pytest.fixture
def start_worker(transactional_db: None, broker: str, tmp_path: Path) -> Iterator[Callable[..., CeleryWorker]]:
    """Start a worker (on this test's broker unless told otherwise); each one stops before the database is flushed."""
    numbers = itertools.count(1)
    with contextlib.ExitStack() as stack:

        def start(**options: object) -> CeleryWorker:
            options.setdefault("broker_url", broker)
            workdir = tmp_path / f"worker-{next(numbers)}"
            return stack.enter_context(running_worker(workdir=workdir, **options))

        yield start


def test_alt_at_six_times_uln_is_proposed_once_by_the_worker(start_worker, coordinator1, participant):
    worker = start_worker(concurrency=2)
    save_liver(coordinator1, visit_of(participant, "M0"), committed)
    m3 = save_liver(coordinator1, visit_of(participant, "M3"), committed, ALT="300").form

    [event] = wait_for(lambda: proposals(participant), "the worker to propose the event", log=worker.log_tail)
    assert (event.ctcae_term, event.ctcae_grade, event.lab_visit_id) == (ALT_INCREASED, 3, m3.visit_id)
    assert event.lab_value == Decimal("300")
    assert worker.task_lines(LAB_GRADE, "received")  # the worker ran it: it came through Redis
    worker.wait_idle()
    runs = len(worker.task_lines(LAB_GRADE, "succeeded"))

    # Saved again with the same ALT (another value corrected; a save that changes nothing is not written at all).
    again = save_liver(coordinator1, m3.visit, committed, ALT="300", AST="31").form
    worker.wait_idle()
    assert len(worker.task_lines(LAB_GRADE, "succeeded")) > runs  # the second save was graded too...
    assert AdverseEvent.objects.filter(participant=participant).count() == 1  # ...and proposed nothing new
    assert graded(again)


def test_marking_an_event_serious_emails_each_recipient_once_even_when_delivered_twice(
    start_worker, coordinator1, investigator1, monitor, participant
):
    worker = start_worker(concurrency=2)
    onset = timezone.localdate() - datetime.timedelta(days=3)
    reported = adverse_event_report(
        user=coordinator1, participant_id=participant.pk, data=dataclasses.replace(ASCITES, onset_date=onset)
    )
    serious = dataclasses.replace(ASCITES, onset_date=onset, serious=True, serious_criteria=["hospitalisation"])
    adverse_event_update(
        user=coordinator1, event_id=reported.pk, version=reported.version, data=serious, reason="Admitted to hospital"
    )
    notices = list(SaeNotification.objects.filter(adverse_event=reported))
    for notice in notices * 2:  # each notice delivered twice more, while the first deliveries may still run
        sae_notify_task.apply_async(args=[notice.pk])
    worker.wait_idle()

    assert all(notice.sent_at for notice in SaeNotification.objects.filter(adverse_event=reported))
    expected = {investigator1.email: 1, monitor.email: 1, settings.SAFETY_CONTACT_EMAIL: 1}
    assert recipients_counted(worker.mail_folder) == Counter(expected)
    in_app = Notification.objects.filter(adverse_event=reported).values_list("user_id", flat=True)
    assert Counter(in_app) == Counter({investigator1.pk: 1, monitor.pk: 1})
    results = Counter(line.rsplit(": ", 1)[-1] for line in worker.task_lines(SAE_NOTIFY, "succeeded"))
    assert results == Counter({"True": len(notices), "False": 2 * len(notices)})  # sent once, twice a no-op


@contextlib.contextmanager
def participant_locked(participant: Participant) -> Iterator[None]:
    """Hold the participant's row lock in a transaction of another session, as a long transaction would.

    NO KEY UPDATE, as every write of the participant takes it first (trial/locking.py): it holds off the grading,
    and a save too, so the tests save before they take it and start the worker that grades after.
    """
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"]
    ) as session:
        table = Participant._meta.db_table
        session.execute(f"SELECT id FROM {table} WHERE id = %s FOR NO KEY UPDATE", [participant.pk])
        with connection.cursor() as cursor:  # should this test's own writes ever wait on it: an error, not a hang
            cursor.execute("SET lock_timeout = '60s'")
        try:
            yield
        finally:
            session.rollback()
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")


def worker_sessions_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:  # autocommit: each query sees pg_stat_activity afresh
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            [WORKER_APPLICATION_NAME],
        )
        return cursor.fetchone()[0]


def test_a_pool_process_killed_while_grading_leaves_the_task_to_be_redone_once(start_worker, coordinator1, participant):
    baseline = start_worker(concurrency=1)
    save_liver(coordinator1, visit_of(participant, "M0"), committed)
    baseline.wait_idle()
    baseline.stop()
    m3 = save_liver(coordinator1, visit_of(participant, "M3"), committed, ALT="300").form  # its grading waits

    with participant_locked(participant):  # form_grade locks the participant first: the task waits on it
        worker = start_worker(concurrency=1)
        wait_for(worker_sessions_waiting_for_a_lock, "the grading to wait for the lock", log=worker.log_tail)
        [pool_process] = worker.pool_processes()
        os.kill(pool_process, signal.SIGKILL)  # as the kernel's OOM killer would
        redelivered = wait_for(
            lambda: [task for task, n in Counter(worker.task_ids(LAB_GRADE, "received")).items() if n == 2],
            "the killed task to be delivered again",
            log=worker.log_tail,
        )
    assert "WorkerLostError" in worker.log()

    [event] = wait_for(lambda: proposals(participant), "the redone grading's proposal", log=worker.log_tail)
    worker.wait_idle()
    assert (event.ctcae_term, event.ctcae_grade) == (ALT_INCREASED, 3)
    assert AdverseEvent.objects.filter(participant=participant).count() == 1
    assert graded(m3)
    assert redelivered[0] in worker.task_ids(LAB_GRADE, "succeeded")


# Redis hands an unacknowledged message to another worker once the visibility timeout has passed; the hard time
# limit must be below it (settings refuse otherwise), or a task still running would be handed out twice.
SHORT_VISIBILITY = {"CELERY_VISIBILITY_TIMEOUT": "15", "CELERY_TASK_TIME_LIMIT": "10"}


def test_a_worker_killed_whole_while_grading_leaves_the_task_to_the_next_worker_once(
    start_worker, broker, coordinator1, participant
):
    baseline = start_worker(concurrency=1, env=SHORT_VISIBILITY)
    save_liver(coordinator1, visit_of(participant, "M0"), committed)
    baseline.wait_idle()
    baseline.stop()
    m3 = save_liver(coordinator1, visit_of(participant, "M3"), committed, ALT="300").form  # its grading waits

    with participant_locked(participant):
        first = start_worker(concurrency=1, env=SHORT_VISIBILITY)
        wait_for(worker_sessions_waiting_for_a_lock, "the grading to wait for the lock", log=first.log_tail)
        first.kill()  # main process and pool at once: nobody is left to reject the message
    [delivered_at] = unacked_since(broker)  # acks_late: the message is still the broker's
    assert broker_backlog(broker) == 1
    assert proposals(participant) == []

    wait_for(lambda: time.time() > delivered_at + 16, "the visibility timeout to pass", timeout=60)
    second = start_worker(concurrency=1, env=SHORT_VISIBILITY)  # it takes back the message on connecting
    [event] = wait_for(lambda: proposals(participant), "the next worker's proposal", log=second.log_tail)
    second.wait_idle()
    assert (event.ctcae_term, event.ctcae_grade) == (ALT_INCREASED, 3)
    assert AdverseEvent.objects.filter(participant=participant).count() == 1
    assert graded(m3)
    assert second.task_ids(LAB_GRADE, "succeeded") == first.task_ids(LAB_GRADE, "received")[-1:]  # the same task


def test_a_lab_save_with_the_broker_down_succeeds_and_is_graded_once_redis_is_back(
    coordinator1, participant, tmp_path, caplog
):
    # A Redis of its own, so that the machine's stays up; no worker yet: it is started on the Redis started again.
    with redis_of_its_own(tmp_path / "redis") as redis_server, publishing_to(redis_server.url):
        m0 = save_liver(coordinator1, visit_of(participant, "M0"), committed).form
        assert broker_backlog(redis_server.url) == 1  # sent through this Redis, and lost when it stops unsaved
        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="trial.background"):
            m3 = save_liver(coordinator1, visit_of(participant, "M3"), committed, ALT="300").form

        assert m3.version == 1
        assert ItemValue.objects.get(visit=m3.visit, item__code="ALT").number == Decimal("300")
        assert "the periodic sweep will" in caplog.text
        assert proposals(participant) == []

        redis_server.start()
        sweep_often = {"SAFETY_SWEEP_SECONDS": "2", "SAFETY_SWEEP_GRACE_SECONDS": "1"}
        with running_worker(redis_server.url, tmp_path / "worker", beat=True, env=sweep_often) as worker:
            [event] = wait_for(lambda: proposals(participant), "the sweep's grading to propose", log=worker.log_tail)
            wait_for(lambda: graded(m0) and graded(m3), "both forms graded", log=worker.log_tail)
            assert (event.ctcae_term, event.ctcae_grade, event.lab_visit_id) == (ALT_INCREASED, 3, m3.visit_id)
            assert AdverseEvent.objects.filter(participant=participant).count() == 1
            assert "Safety sweep re-sent" in worker.log()
