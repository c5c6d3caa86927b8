"""The one after-commit enqueue (trial/background.py): after the commit only, and without a broker on a worker
thread of the process, so that slow work never runs inside the request."""

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from capture.models import FormInstance
from safety.models import FormGrading
from tests.factories import enrolled
from tests.trial import background_tasks
from trial import background

RECORD = "tests.trial.background_tasks.record_task"
HOLD = "tests.trial.background_tasks.hold_task"
FAIL = "tests.trial.background_tasks.fail_task"
BACKEND = "tests.trial.background_tasks.backend_task"
WORKER_THREAD = "edc-tasks"


@pytest.fixture
def thread_mode(settings):
    """The embedded default, as `make run` has it: no broker, tasks on the worker thread."""
    settings.TASKS_IN_PROCESS = "thread"
    background_tasks.RAN.clear()
    background_tasks.GATE.clear()
    yield
    background_tasks.GATE.set()
    assert background.drain(30)


def test_a_task_is_queued_only_when_the_transaction_commits(db, django_capture_on_commit_callbacks):
    background_tasks.RAN.clear()
    with django_capture_on_commit_callbacks(execute=True) as queued:
        background.enqueue_after_commit(RECORD, "kept")
        assert background_tasks.RAN == []
    assert len(queued) == 1
    assert background_tasks.RAN == [("kept", "MainThread")]  # the suite's inline mode: in the committing thread


def test_a_rolled_back_transaction_queues_nothing(db, django_capture_on_commit_callbacks):
    background_tasks.RAN.clear()
    with django_capture_on_commit_callbacks(execute=True) as queued:
        with pytest.raises(RuntimeError), transaction.atomic():
            background.enqueue_after_commit(RECORD, "dropped")
            raise RuntimeError("rolled back")
    assert queued == [] and background_tasks.RAN == []


def test_without_a_broker_the_task_runs_on_the_worker_thread_not_in_the_caller(thread_mode):
    background.enqueue(HOLD)  # the worker is busy: what follows waits in the queue
    background.enqueue(RECORD, 1)
    background.enqueue(RECORD, 2)
    assert background_tasks.RAN == []  # the caller went on without running them
    background_tasks.GATE.set()
    assert background.drain(30)
    assert background_tasks.RAN == [(1, WORKER_THREAD), (2, WORKER_THREAD)]


def test_a_task_that_fails_in_process_calls_the_failure_handler_and_the_worker_goes_on(thread_mode):
    failures = []
    background.enqueue(FAIL, on_failure=failures.append)
    background.enqueue(RECORD, "after")
    assert background.drain(30)
    assert [type(error) for error in failures] == [ValueError]
    assert background_tasks.RAN == [("after", WORKER_THREAD)]


def test_drain_gives_up_at_its_timeout(thread_mode):
    background.enqueue(HOLD)
    assert background.drain(0.2) is False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_each_task_runs_on_a_fresh_database_connection_closed_after_it(thread_mode):
    background.enqueue(BACKEND)
    background.enqueue(BACKEND)
    assert background.drain(30)
    (first, thread), (second, _thread) = background_tasks.RAN
    assert thread == WORKER_THREAD and first != second  # two sessions: the first was closed after its task


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lab_save_answers_before_its_grading_runs(thread_mode, coordinator1, site1):
    """The request commits and answers; the grading it queued runs afterwards, on the worker thread."""
    participant = enrolled(coordinator1, site1, arm="MSC", days_ago=100)
    m3 = participant.visits.get(definition__code="M3")
    client = APIClient()
    client.force_authenticate(coordinator1)
    background.enqueue(HOLD)  # holds the worker, so the test sees the moment between the answer and the grading
    values = {"LBDAT": str(m3.target_date), "ALT": "400", "AST": "30", "ALB": "42", "PREALB": "250"}
    values |= {"BILI": "15", "BILDIR": "5"}
    saved = client.put(f"/api/v1/visits/{m3.pk}/forms/LIVER/", {"version": 0, "values": values}, format="json")
    assert saved.status_code == 200, saved.json()
    form = FormInstance.objects.get(visit=m3, definition__code="LIVER")
    assert not FormGrading.objects.filter(form=form).exists()  # answered before the grading
    background_tasks.GATE.set()
    assert background.drain(30)
    assert FormGrading.objects.get(form=form).graded_version == form.version
