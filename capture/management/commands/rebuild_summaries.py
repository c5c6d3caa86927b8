from django.core.management.base import BaseCommand

from capture import summaries
from capture.models import SiteSummary


class Command(BaseCommand):
    help = (
        "Recompute every summary counter (SDV counts of forms, participants and sites; queries by state; queries' "
        "last activity) from the data, set-based, in one transaction. For data loaded outside the services (COPY)."
    )

    def handle(self, *args: object, **options: object) -> None:
        summaries.rebuild()
        sites = SiteSummary.objects.count()
        self.stdout.write(f"ok: summaries rebuilt for {sites} sites")
