from django.core.management.base import BaseCommand, CommandError

from trial.anchors import anchor_log_path, audit_check


class Command(BaseCommand):
    help = (
        "Verify the whole audit chain (keyed hashes, links) against the last anchor outside the database; "
        "'ok' and a new anchor of the verified head, or the first problem (exit status 1, data managers alerted)."
    )

    def handle(self, *args: object, **options: object) -> None:
        try:
            report = audit_check(full=True, source="verify")
        except OSError as exc:  # the anchor folder: missing, full or not writable
            raise CommandError(f"the anchor log under AUDIT_ANCHOR_DIR cannot be written: {exc}") from None
        if not report.intact:
            raise CommandError(f"audit trail broken: {report.problem}")
        head = report.head
        self.stdout.write(f"ok\n{head.count} records up to record {head.last_id}; head anchored in {anchor_log_path()}")
