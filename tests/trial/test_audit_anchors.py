"""The keyed audit chain and its anchors outside the database: tampering by whoever holds the database's
superuser (triggers disabled, newest records deleted, a value changed and the chain recomputed with plain SHA-256)
is reported by verify_audit, which exits non-zero, alerts every data manager and shows on /healthz."""

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

from tests.factories import enrolled, make_user, screened
from trial.anchors import anchor_latest, anchor_log_path, audit_check
from trial.audit import _CONTENT_FIELDS, GENESIS_HASH, audit_verify
from trial.models import Alert, AuditRecord, Role
from trial.tasks import audit_anchor_task, audit_verify_task

pytestmark = pytest.mark.django_db

# The attacker recomputes every hash over the same content as the chain does, only without the key.
FIELDS = _CONTENT_FIELDS


def settle_constraints() -> None:
    # The test's transaction holds deferred foreign key checks, which PostgreSQL runs before an ALTER or TRUNCATE.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def superuser_disables_triggers() -> None:
    settle_constraints()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE trial_auditrecord DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER trial_auditrecord_no_update")
            cursor.execute("DROP TRIGGER trial_auditrecord_no_delete")


def delete_newest(count: int) -> list[int]:
    newest = list(AuditRecord.objects.order_by("-id").values_list("id", flat=True)[:count])
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM trial_auditrecord WHERE id IN ({', '.join(['%s'] * len(newest))})", newest)
    return sorted(newest)


def rechain_with_sha256(*, from_id: int, key_id: str | None = None) -> None:
    """What a forger without the key can do: recompute every hash from `from_id` on with plain SHA-256
    (keeping each record's key id, or claiming `key_id`)."""
    previous = AuditRecord.objects.filter(id__lt=from_id).order_by("-id").values_list("hash", flat=True).first()
    previous = previous or GENESIS_HASH
    with connection.cursor() as cursor:
        for row in AuditRecord.objects.filter(id__gte=from_id).order_by("id").values("id", "key_id", *FIELDS):
            claimed = row["key_id"] if key_id is None else key_id
            content = {field: row[field] for field in FIELDS} | {"at": row["at"].isoformat()}
            if claimed:
                content["key_id"] = claimed
            digest = hashlib.sha256((previous + json.dumps(content, sort_keys=True)).encode()).hexdigest()
            cursor.execute(
                "UPDATE trial_auditrecord SET previous_hash = %s, hash = %s, key_id = %s WHERE id = %s",
                [previous, digest, claimed, row["id"]],
            )
            previous = digest


def verify_fails(match: str) -> None:
    with pytest.raises(CommandError, match=match):
        call_command("verify_audit")


def anchor_lines() -> list[dict]:
    return [json.loads(line) for line in anchor_log_path().read_text().splitlines()]


@pytest.fixture
def chain(coordinator1, site1):
    enrolled(coordinator1, site1)
    return list(AuditRecord.objects.order_by("id"))


def test_records_are_keyed_and_name_their_key(chain, settings):
    assert {record.key_id for record in chain} == {settings.AUDIT_HMAC_KEY_ID}
    assert audit_verify().intact


def test_verify_anchors_the_head_it_verified(chain, capsys):
    call_command("verify_audit")
    assert capsys.readouterr().out.splitlines()[0] == "ok"
    [anchor] = anchor_lines()
    assert (anchor["last_id"], anchor["count"], anchor["hash"]) == (chain[-1].pk, len(chain), chain[-1].hash)
    assert anchor["source"] == "verify"
    assert anchor_latest().last_id == chain[-1].pk


@pytest.mark.postgres
def test_truncate_is_refused(chain):
    settle_constraints()
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE trial_auditrecord")
    assert AuditRecord.objects.count() == len(chain)


def test_deleting_the_newest_records_with_triggers_disabled_is_reported(chain, datamanager):
    call_command("verify_audit")
    superuser_disables_triggers()
    removed = delete_newest(3)
    assert audit_verify().intact  # the chain alone cannot tell: its head is simply earlier
    verify_fails(
        f"records missing: the chain ends at record {removed[0] - 1} .* so records {removed[0]} to {removed[-1]} "
        "were removed"
    )


def test_deleting_every_record_is_reported(chain):
    call_command("verify_audit")
    superuser_disables_triggers()
    delete_newest(len(chain))
    verify_fails(f"records missing: the chain ends at record 0 .* records 1 to {chain[-1].pk} were removed")


def test_rechaining_a_changed_value_with_plain_sha256_is_reported(chain):
    call_command("verify_audit")
    target = chain[len(chain) // 2]
    superuser_disables_triggers()
    AuditRecord.objects.filter(pk=target.pk).update(new_value="forged")
    rechain_with_sha256(from_id=target.pk)
    verify_fails(f"record {target.pk} .*re-chained without the key")


def test_rechaining_everything_as_unkeyed_legacy_is_reported_against_the_anchor(chain):
    call_command("verify_audit")
    superuser_disables_triggers()
    AuditRecord.objects.filter(pk=chain[2].pk).update(new_value="forged")
    rechain_with_sha256(from_id=chain[0].pk, key_id="")
    assert audit_verify().intact  # a plausible legacy chain on its own
    verify_fails(f"record {chain[-1].pk} has another hash than the anchor outside the database recorded")


def test_an_unkeyed_record_after_a_keyed_one_is_reported(chain):
    superuser_disables_triggers()
    rechain_with_sha256(from_id=chain[-1].pk, key_id="")
    verify_fails(f"record {chain[-1].pk} .*legacy unkeyed hash after the chain became keyed")


def test_legacy_records_before_the_first_keyed_one_still_verify(chain, coordinator1, site1):
    superuser_disables_triggers()
    rechain_with_sha256(from_id=chain[0].pk, key_id="")  # as a database migrated from before the keyed chain
    screened(coordinator1, site1)
    assert AuditRecord.objects.exclude(key_id="").exists()
    assert audit_verify().intact


def test_a_rotated_key_keeps_old_records_verifiable(chain, coordinator1, site1, settings):
    old = settings.AUDIT_HMAC_KEY_ID
    settings.AUDIT_HMAC_KEYRING = {**settings.AUDIT_HMAC_KEYRING, "2027": b"n" * 40}
    settings.AUDIT_HMAC_KEY_ID = "2027"
    screened(coordinator1, site1)
    assert set(AuditRecord.objects.values_list("key_id", flat=True)) == {old, "2027"}
    assert audit_verify().intact
    settings.AUDIT_HMAC_KEYRING = {"2027": b"n" * 40}
    report = audit_verify()
    assert report.record_id == chain[0].pk
    assert f"its key {old!r} is not in the keyring" in report.problem


def test_a_forged_anchor_line_is_reported(chain):
    call_command("verify_audit")
    lines = anchor_lines()
    lines[-1]["last_id"] = 1  # edited without the key: its signature no longer matches
    anchor_log_path().write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    verify_fails("the last anchor .* signature does not match")


def test_a_broken_chain_alerts_every_data_manager_once_and_shows_on_healthz(chain, datamanager, site2):
    other_manager = make_user("datamanager2", {site2: Role.DATA_MANAGER})
    call_command("verify_audit")
    assert Client().get("/healthz").json()["audit"]["intact"] is True
    superuser_disables_triggers()
    delete_newest(2)
    for _ in range(2):
        with pytest.raises(CommandError):
            call_command("verify_audit")
    alerts = Alert.objects.filter(kind="audit_broken")
    assert sorted(alerts.values_list("user__username", flat=True)) == ["datamanager", "datamanager2"]
    assert alerts.filter(user=other_manager).get().text.startswith("The audit trail's hash chain is broken: records")
    audit = Client().get("/healthz").json()["audit"]
    assert audit["intact"] is False
    assert audit["last_verified"]


def test_the_beat_anchors_each_minute_only_a_chain_that_extends_the_last_anchor(chain, coordinator1, site1):
    assert audit_anchor_task() is True
    screened(coordinator1, site1)
    assert audit_anchor_task() is True
    first, second = anchor_lines()
    assert second["last_id"] > first["last_id"]
    assert second["source"] == "beat"
    superuser_disables_triggers()
    delete_newest(1)
    assert audit_anchor_task() is False
    assert len(anchor_lines()) == 2  # the shortened head is never anchored
    assert Alert.objects.filter(kind="audit_broken").exists() is False  # no data manager in this test
    assert audit_verify_task() is False


def test_the_beat_check_finds_a_record_altered_after_the_anchor(chain, coordinator1, site1):
    audit_check(full=False, source="beat")
    screened(coordinator1, site1)
    newest = AuditRecord.objects.order_by("-id").first()
    superuser_disables_triggers()
    AuditRecord.objects.filter(pk=newest.pk).update(new_value="forged")
    report = audit_check(full=False, source="beat")
    assert report.record_id == newest.pk


def test_verify_audit_is_on_the_beat_every_hour_and_anchoring_every_minute(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["audit-verify"] == {"task": "trial.tasks.audit_verify_task", "schedule": 3600.0}
    assert schedule["audit-anchor"] == {"task": "trial.tasks.audit_anchor_task", "schedule": 60.0}
