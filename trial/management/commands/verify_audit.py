from django.core.management.base import BaseCommand, CommandError

from trial.audit import audit_verify


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; report the first broken link, or 'ok'."

    def handle(self, *args: object, **options: object) -> None:
        broken = audit_verify()
        if broken is not None:
            raise CommandError(
                f"audit trail broken at record {broken.pk} ({broken.at:%Y-%m-%d %H:%M:%S} UTC, "
                f"{broken.object_type}:{broken.object_id} {broken.action}): "
                "its hash or its link to the previous record does not match"
            )
        self.stdout.write("ok")
