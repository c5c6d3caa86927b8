"""Writing and verifying the hash-chained audit trail. The one way any app records a change of trial data."""

import functools
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
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
_COLUMNS = (*_CONTENT_FIELDS, "previous_hash", "hash", "key_id")
LEGACY_KEY_ID = ""


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


def _content_hash(previous_hash: str, content: dict, key_id: str) -> str:
    """The record's HMAC-SHA256 under the key `key_id` names; legacy records (key id "") were plain SHA-256 of
    the same payload without the key id. Raises KeyError for a key not in the keyring."""
    content = dict(content, at=content["at"].isoformat())
    if key_id == LEGACY_KEY_ID:
        return hashlib.sha256((previous_hash + _ENCODER.encode(content)).encode()).hexdigest()
    content["key_id"] = key_id
    mac = _keyed(key_id, settings.AUDIT_HMAC_KEYRING[key_id]).copy()
    mac.update((previous_hash + _ENCODER.encode(content)).encode())
    return mac.hexdigest()


@functools.lru_cache(maxsize=16)
def _keyed(key_id: str, secret: bytes) -> "hmac.HMAC":
    # Keyed once per key (the secret is part of the cache key, so a changed keyring is never served stale).
    return hmac.new(secret, digestmod=hashlib.sha256)


def _chain_head() -> str:
    """The chain's head, read once this transaction holds the chain: appends are serialised, so it never forks.

    On PostgreSQL an advisory lock, then the head, in one call of `trial_audit_chain_head` (trial migration 0015):
    a VOLATILE function's statements each take a new snapshot, so the head is read after the lock is held (read in
    the locking statement itself, it could miss the row the previous holder committed). SQLite's transactions begin
    IMMEDIATE (settings), so writers are already serialised. Plain SQL: every write of the trial reads it, and the
    ORM took longer to build the statement than to run it.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT trial_audit_chain_head(%s)", [_CHAIN_LOCK_KEY])
        else:
            cursor.execute(
                f"SELECT hash FROM {connection.ops.quote_name(AuditRecord._meta.db_table)} ORDER BY id DESC LIMIT 1"
            )
        last = cursor.fetchone()
    return last[0] if last and last[0] is not None else GENESIS_HASH


def audit_write(
    *,
    user: object | None,
    entries: Iterable[AuditEntry],
    site: Site | None = None,
    participant: Participant | None = None,
) -> int:
    """Append entries to the audit trail in two statements, whatever their number; returns how many.

    The site defaults to the participant's. Call inside the transaction of the change it records, so both
    commit or neither does. Rows are written with one plain multi-row INSERT: on a save's hot path the ORM's
    per-row model instances cost more than the database does.
    """
    entries = list(entries)
    if not entries:
        return 0
    previous = _chain_head()
    common = {
        "at": timezone.now(),
        "user_id": getattr(user, "pk", None),
        "username": getattr(user, "get_username", lambda: "system")(),
        "site_id": site.pk if site is not None else getattr(participant, "site_id", None),
        "participant_id": getattr(participant, "pk", None),
    }
    key_id = settings.AUDIT_HMAC_KEY_ID
    rows = []
    for entry in entries:
        content = {**common, **entry.__dict__}
        digest = _content_hash(previous, content, key_id)
        rows.append([*(content[field] for field in _CONTENT_FIELDS), previous, digest, key_id])
        previous = digest
    _insert(rows)
    return len(rows)


_PG_TYPES = {"at": "timestamptz", "user_id": "integer", "site_id": "bigint", "participant_id": "bigint"}


def _insert(rows: list[list]) -> None:
    at = _COLUMNS.index("at")
    adapted = connection.ops.adapt_datetimefield_value(rows[0][at])  # one time for the whole append
    for row in rows:
        row[at] = adapted
    insert_rows(
        table=AuditRecord._meta.db_table,
        columns=_COLUMNS,
        pg_types=[_PG_TYPES.get(column, "text") for column in _COLUMNS],
        rows=rows,
    )


@dataclass(frozen=True)
class ChainHead:
    """Where the chain ends: its last record's id, how many records it holds, and the last hash."""

    last_id: int
    count: int
    hash: str


@dataclass(frozen=True)
class ChainReport:
    """What a verification found: the head it read, and the first problem (None: intact)."""

    head: ChainHead
    problem: str | None = None
    record_id: int | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


VERIFY_CHUNK = 5000


def audit_verify(*, anchor: ChainHead | None = None) -> ChainReport:
    """Walk the whole chain in id order, a chunk at a time (memory stays flat at any length), and report the first
    record whose hash or link is wrong; with `anchor` (the head last recorded outside the database), also a chain
    that no longer holds the anchored record, holds fewer records up to it, or has another hash there."""
    start = ChainHead(0, 0, GENESIS_HASH)
    return _walk(_rows_in_order(), start, keyed=False, anchor=anchor if anchor and anchor.last_id else None)


def audit_verify_since(anchor: ChainHead) -> ChainReport:
    """The cheap check of the beat's anchoring: the anchored record is still there with its hash and the number
    of records up to it, and every record after it links and hashes right. Anything else: the full walk, which
    names the problem."""
    if not anchor.last_id:
        return audit_verify()
    anchored = AuditRecord.objects.filter(pk=anchor.last_id).values_list("hash", "key_id").first()
    if anchored is None or anchored[0] != anchor.hash:
        return audit_verify(anchor=anchor)
    if AuditRecord.objects.filter(id__lte=anchor.last_id).count() != anchor.count:
        return audit_verify(anchor=anchor)
    return _walk(_rows_in_order(anchor.last_id), anchor, keyed=anchored[1] != LEGACY_KEY_ID, anchor=None)


def _walk(rows: Iterator[tuple], start: ChainHead, *, keyed: bool, anchor: ChainHead | None) -> ChainReport:
    previous, count, last_id = start.hash, start.count, start.last_id
    for record_id, content, previous_hash, digest, key_id in rows:
        problem = _link_problem(content, previous_hash, digest, key_id, previous, keyed)
        if problem:
            return ChainReport(ChainHead(last_id, count, previous), _at_record(record_id, content, problem), record_id)
        previous, count, last_id = digest, count + 1, record_id
        keyed = keyed or key_id != LEGACY_KEY_ID
        if anchor is not None and record_id >= anchor.last_id:
            problem = _anchor_problem(anchor, ChainHead(last_id, count, previous))
            if problem:
                return ChainReport(ChainHead(last_id, count, previous), problem, record_id)
            anchor = None
    head = ChainHead(last_id, count, previous)
    return ChainReport(head, _anchor_problem(anchor, head) if anchor is not None else None)


def _link_problem(
    content: dict, previous_hash: str, digest: str, key_id: str, previous: str, keyed: bool
) -> str | None:
    if previous_hash != previous:
        return "its link to the previous record does not match (a record before it was removed or altered)"
    if key_id == LEGACY_KEY_ID and keyed:
        return "it claims the legacy unkeyed hash after the chain became keyed"
    if key_id not in settings.AUDIT_HMAC_KEYRING and key_id != LEGACY_KEY_ID:
        return f"its key {key_id!r} is not in the keyring"
    if not hmac.compare_digest(_content_hash(previous_hash, content, key_id), digest):
        return "its hash does not match its content (altered, or re-chained without the key)"
    return None


def _anchor_problem(anchor: ChainHead, head: ChainHead) -> str | None:
    if head.last_id < anchor.last_id:
        return (
            f"records missing: the chain ends at record {head.last_id} ({head.count} records) but the anchor "
            f"outside the database recorded record {anchor.last_id} as the head of {anchor.count} records, "
            f"so records {head.last_id + 1} to {anchor.last_id} were removed"
        )
    if head.last_id > anchor.last_id:
        return (
            f"records missing: the anchored record {anchor.last_id} is gone (the chain skips from before it to "
            f"record {head.last_id})"
        )
    if head.count != anchor.count:
        return (
            f"records missing: {anchor.count - head.count} of the {anchor.count} records anchored up to record "
            f"{anchor.last_id} are gone"
        )
    if head.hash != anchor.hash:
        return f"record {anchor.last_id} has another hash than the anchor outside the database recorded (rewritten)"
    return None


def _at_record(record_id: int, content: dict, problem: str) -> str:
    return (
        f"record {record_id} ({content['at']:%Y-%m-%d %H:%M:%S} UTC, {content['object_type']}:{content['object_id']} "
        f"{content['action']}): {problem}"
    )


def _rows_in_order(after_id: int = 0) -> Iterator[tuple[int, dict, str, str, str]]:
    # Keyset pages of plain tuples: no model instances, no server-side cursor held open across the walk.
    fields = ("id", *_CONTENT_FIELDS, "previous_hash", "hash", "key_id")
    while True:
        page = list(AuditRecord.objects.filter(id__gt=after_id).order_by("id").values_list(*fields)[:VERIFY_CHUNK])
        for row in page:
            yield row[0], dict(zip(_CONTENT_FIELDS, row[1:-3], strict=True)), row[-3], row[-2], row[-1]
        if len(page) < VERIFY_CHUNK:
            return
        after_id = page[-1][0]


def audit_head() -> ChainHead:
    """The chain's head as the database holds it now (two queries)."""
    last = AuditRecord.objects.order_by("-id").values_list("id", "hash").first()
    if last is None:
        return ChainHead(0, 0, GENESIS_HASH)
    return ChainHead(last[0], AuditRecord.objects.count(), last[1])
