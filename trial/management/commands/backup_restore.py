"""Restore a PostgreSQL backup into an empty database and check it against its manifest."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial.backups import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup folder into an EMPTY PostgreSQL database (--database-url) and its media files "
        "(--media-root, default MEDIA_ROOT), then check every row count and file SHA-256 against the manifest. "
        "Run verify_audit against the restored database afterwards."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", type=Path, help="The backup folder (holding manifest.json).")
        parser.add_argument("--database-url", required=True, help="postgres://... of an empty database")
        parser.add_argument("--media-root", type=Path, default=None)

    def handle(
        self, *args: object, source: Path, database_url: str, media_root: Path | None, **options: object
    ) -> None:
        try:
            restored = backup_restore(
                source=source, database_url=database_url, media_root=media_root or Path(settings.MEDIA_ROOT)
            )
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"restored {restored.rows} rows in {restored.tables} tables and {restored.media_files} media files; "
            "every count and file matches the backup"
        )
