"""Queries on records that are not items of a visit: the query names its participant, and a visit or a record.

The participant is added nullable and filled from the visit here; 0005 makes it required. Two migrations, because
PostgreSQL refuses to alter a table in the transaction that updated its foreign keys ("pending trigger events").
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def participant_from_visit(apps: object, schema_editor: object) -> None:
    Query = apps.get_model("capture", "Query")
    Visit = apps.get_model("trial", "Visit")
    participant = Visit.objects.filter(pk=OuterRef("visit_id")).values("participant_id")[:1]
    Query.objects.filter(participant__isnull=True).update(participant_id=Subquery(participant))


class Migration(migrations.Migration):
    dependencies = [
        ("capture", "0003_review"),
        ("trial", "0003_item_in_window"),
    ]

    operations = [
        migrations.AddField(
            model_name="query",
            name="participant",
            field=models.ForeignKey(
                null=True,
                help_text="Whose data the query is about: the visit's participant, or the record's.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="queries",
                to="trial.participant",
            ),
        ),
        migrations.AlterField(
            model_name="query",
            name="visit",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="queries",
                to="trial.visit",
            ),
        ),
        migrations.AddField(
            model_name="query",
            name="record_type",
            field=models.CharField(
                blank=True, help_text="The kind of record of a query not on a visit, as registered.", max_length=32
            ),
        ),
        migrations.AddField(
            model_name="query",
            name="record_id",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="query",
            name="field_code",
            field=models.CharField(
                blank=True,
                help_text="The record's field the query is about; blank for the whole record.",
                max_length=32,
            ),
        ),
        # Backwards there is nothing to undo: the column goes with the field.
        migrations.RunPython(participant_from_visit, migrations.RunPython.noop, elidable=False),
    ]
