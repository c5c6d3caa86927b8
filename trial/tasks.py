"""The audit chain's scheduled checks and the tallies' compaction (thin: each calls the service)."""

from celery import shared_task

from trial.anchors import audit_check
from trial.tallies import compact


@shared_task(acks_late=True, task_reject_on_worker_lost=True)
def audit_anchor_task() -> bool:
    """Every minute: check what was added since the last anchor, then anchor the head outside the database."""
    return audit_check(full=False, source="beat").intact


@shared_task(acks_late=True, task_reject_on_worker_lost=True)
def audit_verify_task() -> bool:
    """Every hour: verify the whole chain against the last anchor (alerts the data managers if broken)."""
    return audit_check(full=True, source="verify-beat").intact


@shared_task(acks_late=True, task_reject_on_worker_lost=True)
def tallies_compact_task() -> int:
    """Every few minutes: fold the site tallies' deltas into one row per site and kind (trial/tallies.py)."""
    return compact()
