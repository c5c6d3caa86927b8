"""The Chinese of each item's heading (`group_zh`), filled in for the protocol versions already loaded.

Headings are protocol text: a new protocol version reads them from the file's `group_names_zh`; the versions
loaded before the field existed get the same mapping, so their forms read in Chinese too.
"""

from pathlib import Path

import yaml
from django.db import migrations, models

PROTOCOL_FILE = Path(__file__).resolve().parent.parent / "protocols" / "nct01573923.yaml"


def fill_group_zh(apps: object, schema_editor: object) -> None:
    names = (yaml.safe_load(PROTOCOL_FILE.read_text(encoding="utf-8")) or {}).get("group_names_zh") or {}
    ItemDefinition = apps.get_model("trial", "ItemDefinition")
    for group, name_zh in names.items():
        ItemDefinition.objects.filter(group=group, group_zh="").update(group_zh=name_zh)


class Migration(migrations.Migration):
    dependencies = [("trial", "0008_home_worklist_indexes")]

    operations = [
        migrations.AddField(
            model_name="itemdefinition",
            name="group_zh",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.RunPython(fill_group_zh, migrations.RunPython.noop),
    ]
