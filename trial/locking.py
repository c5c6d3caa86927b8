"""The one lock order of every write of a participant's data, and the retry of a transaction PostgreSQL aborted.

The order. A transaction that writes a participant's data takes its locks in this order, each step optional, and
never goes back up:

    0. the site            only to number participants (screening, enrolment): `lock_site`
    1. the participant     `lock_participant` / `lock_participant_of`: every write of their data takes it first
    2. the visit           `lock_visit`: read with its participant locked, in one statement (steps 1 and 2);
                           a form save takes the same lock in plain SQL (capture/visits.py `_locked_visit`)
    3. the form instances  read locked where a write reads a version it then changes: the form save
                           (capture/services.py `_locked_forms`); other writes update them while holding step 1
    4. other records       `lock_records`: a query, an adverse event, a data lock, an SAE notice...
    4b. the summary rows   `capture.summaries.participant_changed`: the participant's summary, then their site's
                           (one row each, written by the one statement; once per write, just before the audit)
    5. the audit chain     taken by `trial.audit.audit_write` (a transaction-level advisory lock, with the chain's
                           head, in one call of `trial_audit_chain_head`): always last

The site's summary row is shared by every writer of the site, so it is taken as late as possible: after
everything of the participant, and it is held only until the commit, as the audit chain is.

Because step 1 comes first, two writes of one participant run one after the other, and no write waits for a
participant while holding a lower step. So the rows below the participant need no lock of their own to be safe;
they are locked where a service reads a row it then changes (a form's version, a query's state), and updated
(which locks them) only while the participant is held.

The locks are FOR NO KEY UPDATE (`select_for_update(no_key=True)`): they serialise writers without blocking
the foreign-key checks (FOR KEY SHARE) of rows that reference the locked row. Those checks run at COMMIT
(Django's foreign keys are DEFERRABLE INITIALLY DEFERRED), that is after the audit chain is taken, so a plain
FOR UPDATE on a participant, a site or a user deadlocks with any writer that is committing an audit record
pointing at it. Only a write that changes a key (enrolment sets the unique subject id) asks for FOR UPDATE,
with `key_change=True`.

Writes that belong to no participant (report runs) take only their own row and the audit chain.

The site tallies (trial/tallies.py) are outside the order: their triggers add a delta row, a plain insert that
locks no row and waits for nobody, whatever the write.

The retry. PostgreSQL may still abort a transaction with a deadlock or a serialization failure (lock waits it
cannot see, such as unique-index waits). `atomic_with_retry` replaces `transaction.atomic` on every service: at
the outermost level it runs the whole transaction again, a bounded number of times with jittered backoff, and
then answers `Busy` (HTTP 409), never a 500. Nested in another atomic block it is a plain savepoint: only the
outermost block can retry, since a deadlocked transaction is lost whole. A retry is idempotent: the aborted
attempt rolled everything back, with the work it had queued by `transaction.on_commit`. A failure after the
commit (in an on_commit callback) is never retried.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import OperationalError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from trial.errors import DomainError
from trial.models import Participant, Site, Visit

log = logging.getLogger(__name__)

ATTEMPTS = 6
BACKOFF_SECONDS = 0.05  # the first wait's ceiling; doubled at each attempt, the wait drawn below it
# deadlock_detected, serialization_failure: PostgreSQL rolled the transaction back and asks to run it again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})

P = ParamSpec("P")
R = TypeVar("R")


class Busy(DomainError):
    """Others changed the same data at the same moment, again and again: nothing was saved; try again."""

    http_status = 409


# --- The order ---------------------------------------------------------------------------------------------------


def lock_site(site_id: int) -> Site:
    """Step 0: the site, to give its next participant number."""
    return Site.objects.select_for_update(no_key=True).get(pk=site_id)


def lock_participant(participant_id: int, *, key_change: bool = False) -> Participant:
    """Step 1: the participant, for the rest of the transaction. `key_change` when the write changes a unique
    column (FOR UPDATE instead of FOR NO KEY UPDATE)."""
    return Participant.objects.select_for_update(no_key=not key_change).get(pk=participant_id)


def lock_participant_of(participants: QuerySet[Participant]) -> int | None:
    """Step 1 in one statement, for a write that starts from a record of the participant: the one participant
    `participants` selects (for example `access.participants(user).filter(visits=visit_id)`); its id, or None
    (the caller answers 404 as it would anyway)."""
    return participants.select_for_update(no_key=True, of=("self",)).values_list("pk", flat=True).first()


def lock_visit(visits: QuerySet[Visit]) -> QuerySet[Visit]:
    """Steps 1 and 2 in one statement: the visit `visits` selects, read with its participant's row locked
    (FOR NO KEY UPDATE OF the participant only: one row, so no order to get wrong inside the statement)."""
    return visits.select_related("participant").select_for_update(no_key=True, of=("participant",))


def lock_records(records: QuerySet) -> QuerySet:
    """Step 4: other records of the participant (a query, an adverse event, a data lock, an SAE notice), locked
    when read."""
    return records.select_for_update(no_key=True, of=("self",))


# --- The retry ---------------------------------------------------------------------------------------------------


def is_retryable(error: BaseException) -> bool:
    """A deadlock or serialization failure: the database rolled the transaction back and asks to run it again."""
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__
    return (getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)) in RETRYABLE_SQLSTATES


def atomic_with_retry(func: Callable[P, R]) -> Callable[P, R]:
    """`transaction.atomic` that, as the outermost block, runs the whole transaction again after a deadlock or a
    serialization failure (bounded, with jittered backoff), then answers Busy (409)."""
    atomic = transaction.atomic(func)

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if transaction.get_connection().in_atomic_block:
            return atomic(*args, **kwargs)
        for attempt in range(1, ATTEMPTS + 1):
            committed: list[bool] = []
            try:
                with transaction.atomic():
                    # The first hook of the transaction: it runs before any other, so a failure after it comes
                    # from after the commit, which must not run the work twice.
                    transaction.on_commit(functools.partial(committed.append, True))
                    return func(*args, **kwargs)
            except OperationalError as error:
                if committed or not is_retryable(error):
                    raise
                if attempt == ATTEMPTS:
                    log.error("%s gave up after %d attempts: %s", func.__qualname__, attempt, error)
                    raise Busy(_busy_message()) from error
                log.warning("%s: %s; retry %d of %d", func.__qualname__, _first_line(error), attempt, ATTEMPTS - 1)
                time.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not secrecy
        raise AssertionError("unreachable")

    return run


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _busy_message() -> str:
    return _("Others were changing the same data at the same moment. Nothing was saved: please try again.")


class ConflictMiddleware:
    """The last line: a deadlock or serialization failure that reaches the response (a write outside the services'
    retry) answers 409 with a message, never a 500. Nothing was saved: the transaction was rolled back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not (isinstance(exception, Busy) or is_retryable(exception)):
            return None
        log.warning("%s %s answered 409: %s", request.method, request.path, _first_line(exception))
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": _busy_message()}, status=409)
        return HttpResponse(_busy_message(), status=409, content_type="text/plain; charset=utf-8")
