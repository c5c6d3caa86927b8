"""Adverse events keep their participant's subject ID, so the listings walk the events' own index in subject order
(safety/models.py says why)."""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from safety import tallies as app_tallies
from trial import tallies

FILL = (
    "UPDATE safety_adverseevent SET subject_id = coalesce("
    "(SELECT p.subject_id FROM trial_participant p WHERE p.id = safety_adverseevent.participant_id), '')"
)


def reinstall_sqlite_triggers(apps: object, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """SQLite adds the column by making the table again, and the tally triggers (0004) go with the old one."""
    if schema_editor.connection.vendor == "sqlite":
        tallies.uninstall(schema_editor, app_tallies.SOURCES)
        tallies.install(schema_editor, app_tallies.SOURCES)
        tallies.rebuild(app_tallies.SOURCES)


class Migration(migrations.Migration):
    dependencies = [
        ("safety", "0005_notification_newest"),
        ("trial", "0015_audit_lean_indexes_chain_head"),
    ]

    operations = [
        migrations.AddField(
            model_name="adverseevent",
            name="subject_id",
            field=models.CharField(default="", editable=False, max_length=16),
            preserve_default=False,
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
        migrations.RunPython(reinstall_sqlite_triggers, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="adverseevent",
            index=models.Index(fields=["subject_id", "number"], name="ae_subject_order"),
        ),
    ]
