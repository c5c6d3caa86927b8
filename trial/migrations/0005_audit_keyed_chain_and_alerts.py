"""The keyed audit chain (each record names its HMAC key), TRUNCATE refused too, and in-app alerts."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

POSTGRESQL_FORWARD = """
CREATE TRIGGER trial_auditrecord_no_truncate BEFORE TRUNCATE ON trial_auditrecord
    FOR EACH STATEMENT EXECUTE FUNCTION trial_auditrecord_refuse_change();
"""
POSTGRESQL_REVERSE = "DROP TRIGGER IF EXISTS trial_auditrecord_no_truncate ON trial_auditrecord;"
# SQLite rebuilds the table to add a column with a default, and its triggers go with the old table.
SQLITE_FORWARD = [
    """CREATE TRIGGER IF NOT EXISTS trial_auditrecord_no_update BEFORE UPDATE ON trial_auditrecord
       BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused'); END;""",
    """CREATE TRIGGER IF NOT EXISTS trial_auditrecord_no_delete BEFORE DELETE ON trial_auditrecord
       BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE refused'); END;""",
]


def forward(apps: object, schema_editor: object) -> None:
    statements = [POSTGRESQL_FORWARD] if schema_editor.connection.vendor == "postgresql" else SQLITE_FORWARD
    for statement in statements:
        schema_editor.execute(statement)


def reverse(apps: object, schema_editor: object) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_REVERSE)


class Migration(migrations.Migration):
    dependencies = [
        ("trial", "0004_participant_death_date"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="auditrecord",
            name="key_id",
            field=models.CharField(blank=True, default="", help_text="The HMAC key's id; empty: legacy.", max_length=32),
        ),
        migrations.RunPython(forward, reverse),
        migrations.CreateModel(
            name="Alert",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(max_length=32)),
                ("text", models.CharField(max_length=500)),
                ("link", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField()),
                ("read_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="alerts",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "indexes": [models.Index(fields=["user", "read_at"], name="trial_alert_user_id_0f95e8_idx")],
            },
        ),
    ]
