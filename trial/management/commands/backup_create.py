"""Back up the database and the media files (generated reports) into a folder with a manifest."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial.backups import BackupError, backup_create


class Command(BaseCommand):
    help = "Write a backup (database dump, media archive, manifest of row counts and file SHA-256) under OUTPUT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", type=Path, help="The folder to write the backup folder into.")

    def handle(self, *args: object, output: Path, **options: object) -> None:
        try:
            target = backup_create(output=output)
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(str(target))
