"""Compile every locale/*/LC_MESSAGES/*.po to .mo with polib, so no GNU gettext is needed on the machine."""

from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand


def catalogs() -> list[Path]:
    """The .po files under every LOCALE_PATHS folder, sorted."""
    found: set[Path] = set()
    for locale_path in settings.LOCALE_PATHS:
        found.update(Path(locale_path).glob("*/LC_MESSAGES/*.po"))
    return sorted(found)


def compile_catalog(po_path: Path) -> Path:
    """Write the .mo beside the .po. Fuzzy and untranslated entries are left out, as msgfmt does."""
    mo_path = po_path.with_suffix(".mo")
    polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
    return mo_path


class Command(BaseCommand):
    help = "Compile the translation catalogs (.po to .mo) without GNU gettext."

    def handle(self, *args: object, **options: object) -> None:
        for po_path in catalogs():
            mo_path = compile_catalog(po_path)
            translated = len(polib.pofile(str(po_path)).translated_entries())
            self.stdout.write(f"{mo_path.relative_to(settings.BASE_DIR)}: {translated} messages")
