"""Least privilege on PostgreSQL: the application's role, granted as `setup_database_roles --grant` grants it, may
INSERT and SELECT the audit trail and is refused UPDATE, DELETE, TRUNCATE and ALTER by privileges; the triggers
are the second line for a role that was granted more."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from tests.factories import screened
from trial.audit import audit_verify
from trial.database_roles import database_roles_grant
from trial.models import AuditRecord

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

APP_ROLE = "edc_test_app_role"
REFUSED = [
    "UPDATE trial_auditrecord SET new_value = 'forged'",
    "DELETE FROM trial_auditrecord",
    "TRUNCATE trial_auditrecord",
    "ALTER TABLE trial_auditrecord DISABLE TRIGGER USER",
    "ALTER TABLE trial_auditrecord ADD COLUMN note text",
    "DROP TRIGGER trial_auditrecord_no_update ON trial_auditrecord",
    "DROP TABLE trial_auditrecord",
]


def execute(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.fixture
def app_role(coordinator1, site1):
    """A login role like the app's, inside the test's transaction (CREATE ROLE rolls back with it)."""
    screened(coordinator1, site1)
    execute("SET CONSTRAINTS ALL IMMEDIATE")
    execute(f"CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER")
    database_roles_grant(app=APP_ROLE)
    yield APP_ROLE
    execute("RESET ROLE")


@pytest.mark.parametrize("statement", REFUSED)
def test_the_app_role_is_refused_by_privileges(app_role, statement):
    count = AuditRecord.objects.count()
    execute(f"SET ROLE {app_role}")
    with pytest.raises(DatabaseError, match="permission denied|must be owner"), transaction.atomic():
        execute(statement)
    execute("RESET ROLE")
    assert AuditRecord.objects.count() == count
    assert not AuditRecord.objects.filter(new_value="forged").exists()


def test_the_app_role_still_writes_trial_data_and_its_audit(app_role, coordinator1, site1):
    count = AuditRecord.objects.count()
    execute(f"SET ROLE {app_role}")
    screened(coordinator1, site1)
    assert AuditRecord.objects.count() > count
    execute("RESET ROLE")
    assert audit_verify().intact


@pytest.mark.parametrize("statement", REFUSED[:3])
def test_the_triggers_refuse_a_role_granted_more(app_role, statement):
    execute(f"GRANT UPDATE, DELETE, TRUNCATE ON trial_auditrecord TO {app_role}")
    execute(f"SET ROLE {app_role}")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        execute(statement)
    execute("RESET ROLE")


def test_grant_refuses_a_superuser_app_role(db):
    with pytest.raises(CommandError, match="must exist and must not be a superuser"):
        call_command("setup_database_roles", "--grant", "--app", connection.settings_dict["USER"])


def test_create_needs_the_passwords(db, monkeypatch):
    monkeypatch.delenv("DB_OWNER_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="DB_OWNER_PASSWORD must be set"):
        call_command("setup_database_roles", "--create")


def test_create_makes_login_roles_that_are_not_superusers(db, monkeypatch):
    monkeypatch.setenv("DB_OWNER_PASSWORD", "owner-password-123")
    monkeypatch.setenv("DB_APP_PASSWORD", "app-password-4567")
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [name])
        database_owner = cursor.fetchone()[0]
    call_command("setup_database_roles", "--create", "--owner", "edc_test_owner", "--app", "edc_test_app")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, rolsuper, rolcanlogin FROM pg_roles WHERE rolname LIKE 'edc_test_%%' ORDER BY rolname"
        )
        assert cursor.fetchall() == [("edc_test_app", False, True), ("edc_test_owner", False, True)]
        cursor.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [name])
        assert cursor.fetchone()[0] == "edc_test_owner"
        # Give the test database back before the roles vanish with the test's transaction.
        cursor.execute(f'ALTER DATABASE "{name}" OWNER TO "{database_owner}"')
        cursor.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
