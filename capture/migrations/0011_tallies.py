"""Install the triggers that keep each site's tallies of this app's tables (trial/tallies.py), and count them."""

from django.db import migrations

from capture import tallies as app_tallies
from trial import tallies


def install(apps, schema_editor):
    tallies.install(schema_editor, app_tallies.SOURCES)
    tallies.rebuild(app_tallies.SOURCES)


def uninstall(apps, schema_editor):
    tallies.uninstall(schema_editor, app_tallies.SOURCES)


class Migration(migrations.Migration):
    dependencies = [
        ('capture', '0010_signature_newest'),
        ("trial", "0012_sitetally"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
