from django.core.management.base import BaseCommand

from reports.schedules import crontab_text, report_schedules_install


class Command(BaseCommand):
    help = (
        "Install the default report schedules on Celery beat (weekly trial summary, Mondays 06:00 Asia/Shanghai; "
        "monthly safety report, the 1st 06:00). Idempotent: a schedule already there is left as it is."
    )

    def handle(self, *args: object, **options: object) -> None:
        for task, created in report_schedules_install():
            state = "installed" if created else "already installed, left as it is"
            self.stdout.write(
                f"{task.name}: {state}; crontab {crontab_text(task)}{'' if task.enabled else ', disabled'}"
            )
