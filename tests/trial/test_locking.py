"""The lock order's retry: a deadlock or serialization failure runs the transaction again, bounded, then 409."""

import threading

import psycopg.errors
import pytest
from django.db import OperationalError, connection, transaction
from django.test import RequestFactory

from tests.factories import enrolled
from trial import locking
from trial.locking import Busy, ConflictMiddleware, atomic_with_retry, lock_participant
from trial.models import AuditRecord


def deadlock() -> OperationalError:
    """What Django raises when PostgreSQL aborts a transaction caught in a deadlock."""
    try:
        raise OperationalError("deadlock detected") from psycopg.errors.DeadlockDetected("deadlock detected")
    except OperationalError as error:
        return error


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr(locking, "BACKOFF_SECONDS", 0)


@pytest.mark.postgres  # a transactional test: SQLite's flush is refused by the audit trail's trigger
@pytest.mark.django_db(transaction=True)
def test_a_deadlocked_transaction_is_run_again_whole(no_backoff):
    attempts = []

    @atomic_with_retry
    def write() -> str:
        attempts.append(connection.in_atomic_block)
        AuditRecord.objects.count()
        if len(attempts) < 3:
            raise deadlock()
        return "done"

    assert write() == "done"
    assert attempts == [True, True, True]  # each attempt in a transaction of its own


@pytest.mark.postgres  # a transactional test: SQLite's flush is refused by the audit trail's trigger
@pytest.mark.django_db(transaction=True)
def test_after_bounded_attempts_the_answer_is_busy_409(no_backoff):
    attempts = []

    @atomic_with_retry
    def write() -> None:
        attempts.append(1)
        raise deadlock()

    with pytest.raises(Busy) as busy:
        write()
    assert len(attempts) == locking.ATTEMPTS
    assert busy.value.http_status == 409 and "Nothing was saved" in str(busy.value)


@pytest.mark.postgres  # a transactional test: SQLite's flush is refused by the audit trail's trigger
@pytest.mark.django_db(transaction=True)
def test_other_errors_are_not_retried(no_backoff):
    attempts = []

    @atomic_with_retry
    def write() -> None:
        attempts.append(1)
        raise OperationalError("connection refused")

    with pytest.raises(OperationalError):
        write()
    assert len(attempts) == 1


@pytest.mark.postgres  # a transactional test: SQLite's flush is refused by the audit trail's trigger
@pytest.mark.django_db(transaction=True)
def test_a_failure_after_the_commit_is_never_run_again(no_backoff):
    attempts = []

    def after_commit() -> None:
        raise deadlock()  # say, a task run at once in the committing thread

    @atomic_with_retry
    def write() -> None:
        attempts.append(1)
        transaction.on_commit(after_commit)

    with pytest.raises(OperationalError):
        write()
    assert len(attempts) == 1


def test_nested_in_a_transaction_it_is_a_savepoint_and_leaves_the_retry_to_the_outermost(db):
    attempts = []

    @atomic_with_retry
    def write() -> None:
        attempts.append(1)
        raise deadlock()

    with pytest.raises(OperationalError):
        write()
    assert len(attempts) == 1


@pytest.mark.parametrize(
    ("path", "content_type"), [("/api/v1/visits/1/forms/LIVER/", "application/json"), ("/visits/1/", "text/plain")]
)
def test_a_deadlock_that_reaches_the_response_answers_409_not_500(path, content_type):
    response = ConflictMiddleware(lambda request: None).process_exception(RequestFactory().post(path), deadlock())
    assert response.status_code == 409
    assert response["Content-Type"].startswith(content_type)
    assert b"Nothing was saved" in response.content


def test_other_exceptions_are_left_to_django():
    middleware = ConflictMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/"), OperationalError("connection refused")) is None
    assert middleware.process_exception(RequestFactory().get("/"), ValueError("bug")) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_taking_participants_in_opposite_orders_both_land(coordinator1, site1):
    """A real deadlock on PostgreSQL (the kind the lock order prevents): one of the two is run again."""
    first, second = enrolled(coordinator1, site1), enrolled(coordinator1, site1)
    meeting = threading.Barrier(2, timeout=20)
    attempts: list[str] = []
    errors: list[BaseException] = []

    def writer(name: str, one: int, other: int) -> None:
        @atomic_with_retry
        def write() -> None:
            attempts.append(name)
            lock_participant(one)
            if attempts.count(name) == 1:
                meeting.wait()  # both hold their first participant: each now waits for the other's
            lock_participant(other)

        try:
            write()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=writer, args=("a", first.pk, second.pk)),
        threading.Thread(target=writer, args=("b", second.pk, first.pk)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(attempts) in (["a", "a", "b"], ["a", "b", "b"])  # exactly one was run again
