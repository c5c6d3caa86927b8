"""Writing and verifying the hash-chained audit trail. The one way any app records a change of trial data."""

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from trial.bulk_sql import insert_rows
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


_CONTENT_FIELDS = (
    "at",
    "user_id",
    "username",
    "site_id",
    "participant_id",
    "object_type",
    "object_id",
    "action",
    "form_code",
    "item_code",
    "old_value",
    "new_value",
    "reason",
)
_COLUMNS = (*_CONTENT_FIELDS, "previous_hash", "hash")


def _content_hash(previous_hash: str, content: dict) -> str:
    content = dict(content, at=content["at"].isoformat())
    payload = previous_hash + json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _record_hash(record: AuditRecord) -> str:
    return _content_hash(record.previous_hash, {field: getattr(record, field) for field in _CONTENT_FIELDS})


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
) -> int:
    """Append entries to the audit trail in three statements, whatever their number; returns how many.

    The site defaults to the participant's. Call inside the transaction of the change it records, so both
    commit or neither does. Rows are written with one plain multi-row INSERT: on a save's hot path the ORM's
    per-row model instances cost more than the database does.
    """
    entries = list(entries)
    if not entries:
        return 0
    _lock_chain()
    previous = _last_hash()
    common = {
        "at": timezone.now(),
        "user_id": getattr(user, "pk", None),
        "username": getattr(user, "get_username", lambda: "system")(),
        "site_id": site.pk if site is not None else getattr(participant, "site_id", None),
        "participant_id": getattr(participant, "pk", None),
    }
    rows = []
    for entry in entries:
        content = {**common, **entry.__dict__}
        digest = _content_hash(previous, content)
        rows.append([*(content[field] for field in _CONTENT_FIELDS), previous, digest])
        previous = digest
    _insert(rows)
    return len(rows)


_PG_TYPES = {"at": "timestamptz", "user_id": "integer", "site_id": "bigint", "participant_id": "bigint"}


def _insert(rows: list[list]) -> None:
    at = _COLUMNS.index("at")
    for row in rows:
        row[at] = connection.ops.adapt_datetimefield_value(row[at])
    insert_rows(
        table=AuditRecord._meta.db_table,
        columns=_COLUMNS,
        pg_types=[_PG_TYPES.get(column, "text") for column in _COLUMNS],
        rows=rows,
    )


def audit_verify() -> AuditRecord | None:
    """The first record whose link is broken (altered, inserted or removed before it), or None if intact."""
    previous = GENESIS_HASH
    for record in _in_order():
        if record.previous_hash != previous or _record_hash(record) != record.hash:
            return record
        previous = record.hash
    return None


def _in_order() -> Iterator[AuditRecord]:
    return AuditRecord.objects.order_by("id").iterator(chunk_size=2000)
