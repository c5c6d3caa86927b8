"""Writing and verifying the hash-chained audit trail. The one way any app records a change of trial data."""

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from trial.models import AuditRecord, Participant, Site

GENESIS_HASH = "0" * 64
# Any constant shared by all writers: it serialises appends so the chain never forks.
_CHAIN_LOCK_KEY = 7_357_001


@dataclass(frozen=True)
class AuditEntry:
    object_type: str
    object_id: str
    action: str
    form_code: str = ""
    item_code: str = ""
    old_value: str = ""
    new_value: str = ""
    reason: str = ""


def _content_hash(record: AuditRecord) -> str:
    content = {
        "at": record.at.isoformat(),
        "user_id": record.user_id,
        "username": record.username,
        "site_id": record.site_id,
        "participant_id": record.participant_id,
        "object_type": record.object_type,
        "object_id": record.object_id,
        "action": record.action,
        "form_code": record.form_code,
        "item_code": record.item_code,
        "old_value": record.old_value,
        "new_value": record.new_value,
        "reason": record.reason,
    }
    payload = record.previous_hash + json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _lock_chain() -> None:
    # A statement of its own: in READ COMMITTED a statement reads the snapshot taken when it starts, so a head
    # read in the locking statement could miss the row the previous lock holder committed, and fork the chain.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    # SQLite: transactions begin IMMEDIATE (settings), so writers are already serialised.


def _last_hash() -> str:
    last = AuditRecord.objects.order_by("-id").values_list("hash", flat=True).first()
    return last or GENESIS_HASH


def audit_write(
    *,
    user: object | None,
    entries: Iterable[AuditEntry],
    site: Site | None = None,
    participant: Participant | None = None,
) -> list[AuditRecord]:
    """Append entries to the audit trail in three statements, whatever their number.

    The site defaults to the participant's.
    Call inside the transaction of the change it records, so both commit or neither does.
    """
    entries = list(entries)
    if not entries:
        return []
    _lock_chain()
    previous = _last_hash()
    now = timezone.now()
    user_id = getattr(user, "pk", None)
    username = getattr(user, "get_username", lambda: "system")()
    site_id = site.pk if site is not None else getattr(participant, "site_id", None)
    records = []
    for entry in entries:
        record = AuditRecord(
            at=now,
            user_id=user_id,
            username=username,
            site_id=site_id,
            participant=participant,
            previous_hash=previous,
            **entry.__dict__,
        )
        record.hash = _content_hash(record)
        previous = record.hash
        records.append(record)
    return AuditRecord.objects.bulk_create(records)


def audit_verify() -> AuditRecord | None:
    """The first record whose link is broken (altered, inserted or removed before it), or None if intact."""
    previous = GENESIS_HASH
    for record in _in_order():
        if record.previous_hash != previous or _content_hash(record) != record.hash:
            return record
        previous = record.hash
    return None


def _in_order() -> Iterator[AuditRecord]:
    return AuditRecord.objects.order_by("id").iterator(chunk_size=2000)
