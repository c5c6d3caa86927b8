import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction

from tests.factories import enrolled, screened
from trial.audit import GENESIS_HASH, audit_verify
from trial.models import AuditRecord, Site


def _drop_triggers() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER trial_auditrecord_no_update ON trial_auditrecord")
        else:
            cursor.execute("DROP TRIGGER trial_auditrecord_no_update")


def test_chain_links_each_record_to_the_previous(coordinator1, site1):
    enrolled(coordinator1, site1)
    records = list(AuditRecord.objects.order_by("id"))
    assert records[0].previous_hash == GENESIS_HASH
    assert all(later.previous_hash == earlier.hash for earlier, later in zip(records, records[1:], strict=False))
    assert audit_verify().intact


@pytest.mark.parametrize(
    "statement",
    ["UPDATE trial_auditrecord SET new_value = 'forged'", "DELETE FROM trial_auditrecord"],
)
def test_database_refuses_update_and_delete(coordinator1, site1, statement):
    screened(coordinator1, site1)
    count = AuditRecord.objects.count()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditRecord.objects.count() == count
    assert not AuditRecord.objects.filter(new_value="forged").exists()


def test_verify_audit_reports_ok(coordinator1, site1, capsys):
    screened(coordinator1, site1)
    call_command("verify_audit")
    assert capsys.readouterr().out.splitlines()[0] == "ok"


def test_verify_audit_finds_a_row_altered_with_the_triggers_dropped(coordinator1, site1):
    screened(coordinator1, site1)
    target = AuditRecord.objects.filter(item_code="albumin").get()
    _drop_triggers()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE trial_auditrecord SET new_value = '45.0' WHERE id = %s", [target.pk])
    with pytest.raises(CommandError, match=f"broken: record {target.pk} "):
        call_command("verify_audit")


def test_verify_audit_finds_a_removed_row(coordinator1, site1):
    screened(coordinator1, site1)
    records = list(AuditRecord.objects.order_by("id"))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER trial_auditrecord_no_delete ON trial_auditrecord")
        else:
            cursor.execute("DROP TRIGGER trial_auditrecord_no_delete")
        cursor.execute("DELETE FROM trial_auditrecord WHERE id = %s", [records[3].pk])
    assert audit_verify().record_id == records[4].pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain(protocol):
    from tests.factories import make_user
    from trial.models import Role

    sites = list(Site.objects.order_by("number")[:4])
    users = [make_user(f"coordinator-race-{s.number}", {s: Role.COORDINATOR}) for s in sites]
    errors = []

    def enrol_three(user: object, site: Site) -> None:
        try:
            for _ in range(3):
                enrolled(user, site)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=enrol_three, args=(u, s)) for u, s in zip(users, sites, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert audit_verify().intact
    assert AuditRecord.objects.values("previous_hash").distinct().count() == AuditRecord.objects.count()
