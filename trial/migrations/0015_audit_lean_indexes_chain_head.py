"""The audit trail's appends, cheaper for the database (every save writes one row per changed item):

- four indexes fewer to update per row: the participant's own index (the (participant, form, item) index serves the
  same lookups), the user's and the site's (nothing reads the trail by them), and, on PostgreSQL, the LIKE index that
  `unique=True` adds beside the hash's unique index; the hash stays unique, as a named constraint. The foreign keys
  all stay;
- on PostgreSQL, `trial_audit_chain_head(key)`: the chain's advisory lock and then its head, in one call
  (trial/audit.py). Its two statements stay two: a VOLATILE function takes a new snapshot for each statement, so the
  head is read after the lock is held, as it was when they were sent one by one.

SQLite rebuilds the table to change a column, and its triggers go with the old table: they are made again, as
in 0005.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

CHAIN_HEAD = """
CREATE OR REPLACE FUNCTION trial_audit_chain_head(lock_key bigint) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN (SELECT hash FROM trial_auditrecord ORDER BY id DESC LIMIT 1);
END;
$$
"""
SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS trial_auditrecord_no_update BEFORE UPDATE ON trial_auditrecord
       BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused'); END;""",
    """CREATE TRIGGER IF NOT EXISTS trial_auditrecord_no_delete BEFORE DELETE ON trial_auditrecord
       BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE refused'); END;""",
]


def forward(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CHAIN_HEAD)
    else:
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)


def reverse(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS trial_audit_chain_head(bigint)")
    else:
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("trial", "0014_participant_search"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditrecord",
            name="hash",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name="auditrecord",
            name="participant",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="trial.participant",
            ),
        ),
        migrations.AlterField(
            model_name="auditrecord",
            name="site",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="trial.site",
            ),
        ),
        migrations.AlterField(
            model_name="auditrecord",
            name="user",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="auditrecord",
            constraint=models.UniqueConstraint(fields=("hash",), name="audit_hash_unique"),
        ),
        migrations.RunPython(forward, reverse),
    ]
