"""Install the triggers that keep each site's tallies of this app's tables (trial/tallies.py), and count them."""

from django.db import migrations

from safety import tallies as app_tallies
from trial import tallies


class Migration(migrations.Migration):
    dependencies = [
        ('safety', '0003_scale_indexes'),
        ("trial", "0012_sitetally"),
    ]

    operations = [tallies.migration_operation(app_tallies.SOURCES)]
