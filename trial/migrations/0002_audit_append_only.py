"""The database itself refuses to change or remove an audit record, whoever asks."""

from django.db import migrations

POSTGRESQL_FORWARD = """
CREATE OR REPLACE FUNCTION trial_auditrecord_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'audit records are append-only: ' || TG_OP || ' refused',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER trial_auditrecord_no_update BEFORE UPDATE ON trial_auditrecord
    FOR EACH ROW EXECUTE FUNCTION trial_auditrecord_refuse_change();
CREATE TRIGGER trial_auditrecord_no_delete BEFORE DELETE ON trial_auditrecord
    FOR EACH ROW EXECUTE FUNCTION trial_auditrecord_refuse_change();
"""
POSTGRESQL_REVERSE = """
DROP TRIGGER IF EXISTS trial_auditrecord_no_update ON trial_auditrecord;
DROP TRIGGER IF EXISTS trial_auditrecord_no_delete ON trial_auditrecord;
DROP FUNCTION IF EXISTS trial_auditrecord_refuse_change();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER trial_auditrecord_no_update BEFORE UPDATE ON trial_auditrecord
       BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused'); END;""",
    """CREATE TRIGGER trial_auditrecord_no_delete BEFORE DELETE ON trial_auditrecord
       BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE refused'); END;""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS trial_auditrecord_no_update;",
    "DROP TRIGGER IF EXISTS trial_auditrecord_no_delete;",
]


def forward(apps: object, schema_editor: object) -> None:
    statements = [POSTGRESQL_FORWARD] if schema_editor.connection.vendor == "postgresql" else SQLITE_FORWARD
    for statement in statements:
        schema_editor.execute(statement)


def reverse(apps: object, schema_editor: object) -> None:
    statements = [POSTGRESQL_REVERSE] if schema_editor.connection.vendor == "postgresql" else SQLITE_REVERSE
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("trial", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
