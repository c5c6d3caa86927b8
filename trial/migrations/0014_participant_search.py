"""The participant search (trial.selectors.participant_search: subject id or screening number containing the text,
or initials equal to it) through indexes on PostgreSQL: trigram indexes for the two "contains", a plain one for the
initials, on the same upper-cased expressions Django's icontains and iexact compare. Without them every search reads
every participant of the user's sites. pg_trgm is a trusted extension: the database's owner may create it. SQLite
(the embedded default) has no such index and needs none at its size."""

from django.db import migrations

INDEXES = {
    "participant_subject_trgm": "USING gin (upper((subject_id)::text) gin_trgm_ops)",
    "participant_screening_trgm": "USING gin (upper((screening_number)::text) gin_trgm_ops)",
    "participant_initials_upper": "(upper((initials)::text))",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON trial_participant {definition}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("trial", "0013_visit_not_started_window_start")]

    operations = [migrations.RunPython(create, drop)]
