"""Many people writing the same participants' data at once: no deadlock, no error but a conflict, nothing lost.

Sixteen threads, each with its own database connection, run for DURATION_SECONDS the writes a busy site does to
three participants: coordinators save lab forms (on versions read just before, so some saves are stale and
refused), the CTCAE grading task runs on their forms, coordinators correct adverse events and answer queries, the
investigator signs the casebook. Every save of a lab form also queues its grading for after the commit, which the
suite runs at once in the committing thread: the grading of one save overlaps the next saves of other threads, as
it did in the request when a deadlock was first seen under load.

Only the refusals the API answers with 409 are allowed. Afterwards every accepted write is in the audit trail
exactly once (each call carries a token of its own as its reason), no refused one is, each item's trail replays
into its stored value, and the hash chain verifies.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.db import connection

from capture.models import FormInstance, ItemValue, Query
from capture.review import casebook_sign, query_answer, query_raise
from capture.services import display, form_save, typed_of
from safety.models import AdverseEvent
from safety.services import adverse_event_report, adverse_event_update
from safety.tasks import lab_grade_task
from tests.factories import PASSWORD, enrolled
from tests.safety.conftest import ae_input
from trial.audit import audit_verify
from trial.errors import DomainError
from trial.models import AuditRecord

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DURATION_SECONDS = 30
THREADS = 16
PARTICIPANTS = 3
CONFLICT = 409
# What each thread does, by weight: mostly saves, as at a site entering a day's lab results.
ACTIONS = {"save": 8, "grade": 3, "adverse_event": 2, "query": 2, "sign": 1}
LAB_FORMS = {"LIVER": ("ALT", "AST"), "KIDNEY": ("CREAT", "URATE")}
NORMAL = {
    "LIVER": {"ALB": "42", "PREALB": "200", "BILI": "15", "BILDIR": "5"},
    "KIDNEY": {"BUN": "5.00"},
}


@dataclass
class Trial:
    coordinator: object
    investigator: object
    participants: list
    visits: list  # (visit, participant) in their sample window
    events: dict  # participant pk -> adverse event pk
    queries: dict  # participant pk -> query pk


@dataclass
class Tally:
    accepted: Counter = field(default_factory=Counter)
    conflicts: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    tokens: dict = field(default_factory=dict)  # token -> action, of every accepted write
    refused: list = field(default_factory=list)  # tokens of the writes refused with a conflict
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, action: str, token: str, outcome: Exception | None) -> None:
        with self.lock:
            if outcome is None:
                self.accepted[action] += 1
                if token:
                    self.tokens[token] = action
            elif isinstance(outcome, DomainError) and outcome.http_status == CONFLICT:
                self.conflicts[action] += 1
                self.refused.append(token)
            else:
                self.failures.append(f"{action}: {type(outcome).__name__}: {outcome}")


class RetryCounter(logging.Handler):
    """Counts the retries the lock module logs (a deadlock or serialization failure run again)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retry" in record.getMessage().lower():
            self.retries += 1


@pytest.fixture
def trial(coordinator1, investigator1, monitor, site1):
    participants = [enrolled(coordinator1, site1, arm="MSC", days_ago=100) for _ in range(PARTICIPANTS)]
    visits, events, queries = [], {}, {}
    for participant in participants:
        for visit in participant.visits.select_related("definition").filter(definition__code__in=["M0", "M3"]):
            visits.append(visit)
        events[participant.pk] = adverse_event_report(
            user=coordinator1, participant_id=participant.pk, data=ae_input()
        ).pk
        queries[participant.pk] = query_raise(
            user=monitor, visit_id=visits[-1].pk, message="Please confirm the sample date."
        ).pk
    return Trial(coordinator1, investigator1, participants, visits, events, queries)


def test_concurrent_writes_never_deadlock_and_every_accepted_change_is_audited_once(trial):
    tally, counter = Tally(), itertools.count(1)
    retries = RetryCounter()
    logging.getLogger().addHandler(retries)
    try:
        deadline = time.monotonic() + DURATION_SECONDS
        threads = [
            threading.Thread(target=_work, args=(trial, tally, counter, number, deadline)) for number in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        logging.getLogger().removeHandler(retries)
    print(
        f"\n{THREADS} threads for {DURATION_SECONDS} s: accepted {dict(tally.accepted)}, "
        f"conflicts (409) {dict(tally.conflicts)}, retries taken {retries.retries}, "
        f"other errors {len(tally.failures)}"
    )
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert all(tally.accepted[action] for action in ACTIONS), tally.accepted
    _assert_audited_once(tally)
    _assert_trail_replays_into_the_stored_values(trial)
    assert audit_verify().intact


def _work(trial: Trial, tally: Tally, counter: itertools.count, number: int, deadline: float) -> None:
    rng = random.Random(number)
    actions: dict[str, Callable] = {
        "save": _save,
        "grade": _grade,
        "adverse_event": _correct_event,
        "query": _answer_query,
        "sign": _sign,
    }
    try:
        for step in itertools.count():
            if time.monotonic() > deadline:
                return
            action = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
            token = f"stress {number}-{step}"
            try:
                actions[action](trial, rng, token, next(counter))
            except Exception as error:  # noqa: BLE001 - every error is tallied, and any but a conflict fails
                tally.record(action, token, error)
            else:
                tally.record(action, token, None)
    finally:
        connection.close()  # this thread's own connection


def _save(trial: Trial, rng: random.Random, token: str, n: int) -> None:
    visit = rng.choice(trial.visits)
    form_code = rng.choice(list(LAB_FORMS))
    first, second = LAB_FORMS[form_code]
    version = (
        FormInstance.objects.filter(visit=visit, definition__code=form_code).values_list("version", flat=True).first()
    )
    sampled = max(visit.window_start, min(visit.target_date, visit.window_end))
    values = {
        **NORMAL[form_code],
        "LBDAT": sampled.isoformat(),
        # Two counters in two items: each save changes at least one value, so each leaves a trace of its own.
        first: str(10 + n % 2000),
        second: str(10 + n // 2000 % 2000),
    }
    form_save(
        user=trial.coordinator,
        visit_id=visit.pk,
        form_code=form_code,
        version=version or 0,
        values=values,
        reason=token,
    )


def _grade(trial: Trial, rng: random.Random, token: str, n: int) -> None:
    forms = list(
        FormInstance.objects.filter(
            visit__participant__in=trial.participants, definition__code__in=list(LAB_FORMS)
        ).values_list("pk", flat=True)
    )
    if forms:
        lab_grade_task(rng.choice(forms))  # the task's body, in this thread


def _correct_event(trial: Trial, rng: random.Random, token: str, n: int) -> None:
    event_id = trial.events[rng.choice(trial.participants).pk]
    version = AdverseEvent.objects.values_list("version", flat=True).get(pk=event_id)
    adverse_event_update(
        user=trial.coordinator,
        event_id=event_id,
        version=version,
        data=ae_input(description=token, grade=rng.choice([1, 2, 3])),
        reason=token,
    )


def _answer_query(trial: Trial, rng: random.Random, token: str, n: int) -> None:
    query_answer(user=trial.coordinator, query_id=trial.queries[rng.choice(trial.participants).pk], message=token)


def _sign(trial: Trial, rng: random.Random, token: str, n: int) -> None:
    # The meaning of a signature is fixed (no token can ride on it): signatures are counted instead.
    casebook_sign(user=trial.investigator, participant_id=rng.choice(trial.participants).pk, password=PASSWORD)


def _assert_audited_once(tally: Tally) -> None:
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for reason, object_type, action, item_code in AuditRecord.objects.filter(reason__startswith="stress ").values_list(
        "reason", "object_type", "action", "item_code"
    ):
        rows.setdefault(reason, []).append((object_type, action, item_code))
    assert not set(tally.refused) & set(rows), "a write refused with a conflict left audit records"
    problems = []
    for token, action in tally.tokens.items():
        if action in {"grade", "sign"}:
            continue  # gradings and signatures carry no token: they are counted below
        found = rows.get(token, [])
        expected = {
            "save": lambda r: r[0] == "form" and r[1] in {"create", "update"},
            "adverse_event": lambda r: r == ("adverse_event", "update", "description"),
            "query": lambda r: r[:2] == ("query", "answered"),
            "sign": lambda r: r[:2] == ("signature", "sign"),
        }[action]
        mine = [row for row in found if expected(row)]
        items = [row[2] for row in mine]
        if not mine or len(items) != len(set(items)) or (action != "save" and len(mine) != 1):
            problems.append(f"{action} {token}: {found}")
    assert not problems, "\n".join(problems[:20])
    signed = AuditRecord.objects.filter(object_type="signature", action="sign")
    assert signed.count() == tally.accepted["sign"]


def _assert_trail_replays_into_the_stored_values(trial: Trial) -> None:
    """Each item's trail, row after row, starts where the previous row ended and ends at the stored value."""
    for visit in trial.visits:
        forms = FormInstance.objects.filter(visit=visit).values_list("pk", flat=True)
        trail = AuditRecord.objects.filter(
            object_type="form", object_id__in=[str(pk) for pk in forms], action__in=["create", "update"]
        )
        last: dict[tuple[str, str], str] = {}
        for form_code, item_code, old, new in trail.order_by("id").values_list(
            "form_code", "item_code", "old_value", "new_value"
        ):
            key = (form_code, item_code)
            assert old == last.get(key, ""), f"visit {visit.pk} {key}: {old!r} after {last.get(key)!r}"
            last[key] = new
        for value in ItemValue.objects.filter(visit=visit).select_related("item__form"):
            assert last.get((value.item.form.code, value.item.code), "") == display(typed_of(value))
    assert Query.objects.filter(pk__in=trial.queries.values(), state="answered").count() == PARTICIPANTS
