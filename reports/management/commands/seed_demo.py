from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from capture import demo as capture_demo
from capture.logs import demo as log_demo
from reports import demo as reports_demo
from safety import demo as safety_demo
from trial import background
from trial import demo as trial_demo

# The command lives in the app at the top of the dependency chain, so it may call every app's demo module.


class Command(BaseCommand):
    help = "Load the protocol and create demo users, participants and visit data (refused unless DEBUG or --force)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Seed even though DEBUG is off.")

    def handle(self, *args: object, force: bool, **options: object) -> None:
        if not (settings.DEBUG or force):
            raise CommandError("Demo accounts share a known password: refused unless DEBUG is on or --force is given.")
        users, created = trial_demo.seed(password=settings.DEMO_PASSWORD)
        if created:
            coordinators = {number: users[f"coordinator{number}"] for number in range(1, 7)}
            forms = capture_demo.fill(users_by_site=coordinators)
            logs = log_demo.fill(users_by_site=coordinators)
            reviewed = capture_demo.review(users=users)
            # Without a broker the saves' gradings run on this process's worker thread: finished before the
            # safety demo decides the proposals they make.
            background.drain()
            safety = safety_demo.seed(users=users)
            background.drain()  # the SAE notices
            self.stdout.write(
                f"Created {created} demo participants, {forms} filled forms, {reviewed['queries']} monitor queries "
                f"and {reviewed['verified_forms']} verified forms; {safety['reported']} adverse events reported, "
                f"{safety['proposed']} lab proposals waiting, {safety['serious']} serious, {safety['deaths']} death; "
                f"{logs['CM']} medications, {logs['MH']} medical history rows, {logs['DV']} protocol deviations."
            )
        else:
            self.stdout.write("Demo participants already present; left as they are.")
        reports = reports_demo.seed(users=users)
        background.drain()
        self.stdout.write(
            f"Report schedules: {reports['schedules']} installed; report runs: {reports['runs']} generated to download."
        )
        roles = {demo.username: demo.role for demo in trial_demo.DEMO_USERS}
        for username in users:
            self.stdout.write(f"  {username:<15} {roles[username]:<13} password: {settings.DEMO_PASSWORD}")
