from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial import protocol_file
from trial.errors import InvalidInput
from trial.services import protocol_load


class Command(BaseCommand):
    help = "Load the protocol file into definition tables. Idempotent; a changed file becomes a new version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", type=Path, default=protocol_file.DEFAULT_PATH)

    def handle(self, *args: object, path: Path, **options: object) -> None:
        try:
            protocol, created = protocol_load(path=path)
        except (InvalidInput, OSError) as exc:
            raise CommandError(str(exc)) from exc
        state = "loaded as new version" if created else "unchanged, already loaded as"
        self.stdout.write(f"{protocol.code}: {state} v{protocol.version} ({protocol.sha256[:12]})")
