from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial.demo import DEMO_USERS, seed


class Command(BaseCommand):
    help = "Load the protocol and create demo users and participants (refused unless DEBUG or --force)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Seed even though DEBUG is off.")

    def handle(self, *args: object, force: bool, **options: object) -> None:
        if not (settings.DEBUG or force):
            raise CommandError("Demo accounts share a known password: refused unless DEBUG is on or --force is given.")
        usernames, created = seed(password=settings.DEMO_PASSWORD)
        if created:
            self.stdout.write(f"Created {created} demo participants.")
        else:
            self.stdout.write("Demo participants already present; left as they are.")
        roles = {demo.username: demo.role for demo in DEMO_USERS}
        for username in usernames:
            self.stdout.write(f"  {username:<15} {roles[username]:<13} password: {settings.DEMO_PASSWORD}")
