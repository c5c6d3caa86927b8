from django.core.management.base import BaseCommand

from capture import summaries
from capture.models import SiteSummary
from trial import tallies


class Command(BaseCommand):
    help = (
        "Recompute every summary counter (SDV counts of forms, participants and sites; queries by state; queries' "
        "last activity) and every site tally (trial/tallies.py) from the data, set-based. For data loaded outside "
        "the services (COPY with the triggers off)."
    )

    def handle(self, *args: object, **options: object) -> None:
        summaries.rebuild()
        tallies.rebuild()
        sites = SiteSummary.objects.count()
        self.stdout.write(f"ok: summaries and tallies rebuilt for {sites} sites")
