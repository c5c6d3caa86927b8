"""The audit chain's anchors outside the database, and the checks that use them.

Each anchor is one JSON line appended to a log under AUDIT_ANCHOR_DIR: the chain's head (last id, record count,
hash) when it was written, signed with the audit HMAC key. The database's superuser can rewrite the database, but
not this file (nor its copies shipped off the machine), so a chain shortened or rewritten up to an anchored record
is reported by `verify_audit`. The beat writes one every AUDIT_ANCHOR_SECONDS, after checking that the chain still
extends the last one; every successful full verification writes one too.
"""

import datetime
import hashlib
import hmac
import json
import logging
import os
import re
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from trial.alerts import alert_raise, data_managers
from trial.audit import ChainHead, ChainReport, audit_head, audit_verify, audit_verify_since

logger = logging.getLogger(__name__)

ALERT_KIND = "audit_broken"
_TAIL_BYTES = 8192


class AnchorLogError(Exception):
    """The anchor log cannot be trusted: unreadable, or its last line's signature does not match."""


def _label() -> str:
    # One log per database, so a machine that serves several databases never checks one against another's head.
    name = Path(str(connection.settings_dict["NAME"])).name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "default"


def anchor_log_path() -> Path:
    return Path(settings.AUDIT_ANCHOR_DIR) / f"{_label()}.anchors.jsonl"


def _status_path() -> Path:
    return Path(settings.AUDIT_ANCHOR_DIR) / f"{_label()}.verified.json"


def _mac(body: dict, key_id: str) -> str:
    payload = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(settings.AUDIT_HMAC_KEYRING[key_id], payload, hashlib.sha256).hexdigest()


def anchor_append(*, head: ChainHead, source: str) -> None:
    """Append the signed head to the anchor log (opened append-only, flushed to disk before returning)."""
    key_id = settings.AUDIT_HMAC_KEY_ID
    body = {
        "at": timezone.now().isoformat(),
        "database": _label(),
        "last_id": head.last_id,
        "count": head.count,
        "hash": head.hash,
        "source": source,
        "key_id": key_id,
    }
    line = json.dumps({**body, "mac": _mac(body, key_id)}, sort_keys=True) + "\n"
    path = anchor_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, line.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def anchor_latest() -> ChainHead | None:
    """The head the last anchor recorded, its signature checked; None before the first anchor."""
    path = anchor_log_path()
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - _TAIL_BYTES))
            tail = log.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnchorLogError(f"the anchor log {path} cannot be read: {exc}") from None
    # A line cut short by a crash has no newline yet: the last complete line is the last anchor.
    lines = [line for line in tail.split(b"\n")[:-1] if line.strip()]
    if not lines:
        return None
    return _parse(lines[-1], path)


def _parse(line: bytes, path: Path) -> ChainHead:
    try:
        anchor = json.loads(line)
        body = {key: value for key, value in anchor.items() if key != "mac"}
        valid = hmac.compare_digest(_mac(body, anchor["key_id"]), anchor["mac"])
        head = ChainHead(int(anchor["last_id"]), int(anchor["count"]), str(anchor["hash"]))
    except (ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise AnchorLogError(f"the last anchor in {path} is unreadable or its signature does not match")
    return head


def audit_check(*, full: bool, source: str) -> ChainReport:
    """Check the chain against the last anchor (the whole chain, or with `full` False only what was added since
    the anchor); record the outcome for /healthz; if intact, anchor the head just checked; if broken, alert every
    data manager. The beat runs it every minute (not full) and every hour (full); so does `verify_audit` (full)."""
    try:
        anchor = anchor_latest()
    except AnchorLogError as exc:
        report = ChainReport(audit_head(), str(exc))
    else:
        if full or anchor is None:
            report = audit_verify(anchor=anchor)
        else:
            report = audit_verify_since(anchor)
    if full or not report.intact:
        _write_status(report)
    if report.intact:
        anchor_append(head=report.head, source=source)
    else:
        _alert_broken(report)
    return report


def _write_status(report: ChainReport) -> None:
    status = {
        "verified_at": timezone.now().isoformat(),
        "intact": report.intact,
        "records": report.head.count,
        "last_id": report.head.last_id,
    }
    path = _status_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(status))
    temporary.replace(path)


def audit_status() -> dict:
    """When the chain was last verified and whether it was intact (for /healthz); reveals no record content."""
    try:
        status = json.loads(_status_path().read_text())
        verified_at = datetime.datetime.fromisoformat(status["verified_at"])
        return {"last_verified": verified_at.isoformat(), "intact": bool(status["intact"])}
    except FileNotFoundError:
        return {"last_verified": None, "intact": None}
    except (OSError, ValueError, KeyError, TypeError):
        return {"last_verified": None, "intact": None, "error": "unreadable status"}


def _alert_broken(report: ChainReport) -> None:
    logger.error("audit trail broken: %s", report.problem)
    text = _("The audit trail's hash chain is broken: %(problem)s") % {"problem": report.problem}
    alert_raise(users=data_managers(), kind=ALERT_KIND, text=text, once=True)
