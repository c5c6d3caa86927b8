import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("capture", "0004_query_record"),
    ]

    operations = [
        migrations.AlterField(
            model_name="query",
            name="participant",
            field=models.ForeignKey(
                help_text="Whose data the query is about: the visit's participant, or the record's.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="queries",
                to="trial.participant",
            ),
        ),
        migrations.AddIndex(
            model_name="query",
            index=models.Index(fields=["record_type", "record_id"], name="capture_que_record__b4b816_idx"),
        ),
        migrations.AddConstraint(
            model_name="query",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("field_code", ""), ("record_id__isnull", True), ("record_type", ""), ("visit__isnull", False)),
                    models.Q(
                        ("form__isnull", True),
                        ("item__isnull", True),
                        ("record_id__isnull", False),
                        ("visit__isnull", True),
                        models.Q(("record_type", ""), _negated=True),
                    ),
                    _connector="OR",
                ),
                name="query_on_a_visit_or_a_record",
            ),
        ),
    ]
