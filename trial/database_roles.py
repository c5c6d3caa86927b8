"""The database roles of least privilege (21 CFR Part 11, the audit trail's first line of defence).

The owner role owns the schema and runs the migrations; the application's role (web, worker, beat) reads and
writes the trial's tables but may only INSERT and SELECT the audit trail: no UPDATE, DELETE or TRUNCATE, and, not
owning it, no ALTER (so it cannot disable the triggers either). Neither is a superuser.
"""

from django.db import connection
from psycopg import sql

AUDIT_TABLE = "trial_auditrecord"


class RoleSetupError(Exception):
    """The roles cannot be set up as asked (not PostgreSQL, or a role that must not be a superuser is one)."""


def database_roles_create(*, owner: str, app: str, owner_password: str, app_password: str) -> None:
    """As a superuser: create (or update) the owner and app login roles, neither a superuser, and give the
    database and its public schema to the owner. Safe to run twice."""
    _require_postgresql()
    database = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        for role, password in ((owner, owner_password), (app, app_password)):
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            cursor.execute(
                sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD {}").format(
                    sql.SQL(verb), sql.Identifier(role), sql.Literal(password)
                )
            )
        cursor.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), sql.Identifier(owner)))
        cursor.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner)))
        cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
        cursor.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(app))
        )


def database_roles_grant(*, app: str) -> None:
    """As the owner, after every migration: the app role may read and write every table of the schema but only
    INSERT and SELECT the audit trail, and use the sequences. Refuses an app role that is a superuser or owns
    the audit table. Safe to run twice."""
    _require_postgresql()
    role = sql.Identifier(app)
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [app])
        row = cursor.fetchone()
        if row is None or row[0]:
            raise RoleSetupError(f"the app role {app!r} must exist and must not be a superuser")
        cursor.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s::regclass", [AUDIT_TABLE])
        if cursor.fetchone()[0] == app:
            raise RoleSetupError(f"the app role {app!r} must not own the audit table: run migrations as the owner")
        statements = [
            "GRANT USAGE ON SCHEMA public TO {role}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
            "REVOKE ALL ON {audit} FROM {role}",
            "GRANT SELECT, INSERT ON {audit} TO {role}",
            "REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {role}",
        ]
        for statement in statements:
            cursor.execute(sql.SQL(statement).format(role=role, audit=sql.Identifier(AUDIT_TABLE)))


def _require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise RoleSetupError("database roles are set up on PostgreSQL only")
