"""Adverse events keep their participant's subject ID, so the listings walk the events' own index in subject order
(safety/models.py says why)."""

from django.db import migrations, models

from safety import tallies as app_tallies
from trial import tallies

FILL = (
    "UPDATE safety_adverseevent SET subject_id = coalesce("
    "(SELECT p.subject_id FROM trial_participant p WHERE p.id = safety_adverseevent.participant_id), '')"
)


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
        tallies.after_sqlite_remake(app_tallies.SOURCES),  # SQLite remade the table without the triggers of 0004
        migrations.AddIndex(
            model_name="adverseevent",
            index=models.Index(fields=["subject_id", "number"], name="ae_subject_order"),
        ),
    ]
