"""The scope of every statistic: the viewer's participants, as enrolled by the data cut-off.

What "at the cut-off" means, record by record (a record that changed after it cannot be seen as it was, short of
replaying the audit trail, so it is left out rather than shown with later data):
- a participant counts as screened once created, and as enrolled once enrolled (`enrolled_at`), by the cut-off;
- an item value counts if it was last saved (`updated_at`) by the cut-off;
- an adverse event counts if it was created, and (for a lab proposal) confirmed, by the cut-off;
- a lab grading counts if graded by the cut-off; a death if reported by the cut-off;
- a query is open at the cut-off if raised by then and not closed by then;
- a signature covers a visit if signed by the cut-off and not voided by then;
- a visit's state is `Visit.state_on(cut-off day)`: its recorded progress (current), else its window against the day;
- survival is censored at the cut-off day.
"""

import datetime

from django.db.models import QuerySet
from django.utils import timezone

from trial.models import Participant, Site
from trial.selectors import ON_SCHEDULE


def cutoff_day(cutoff: datetime.datetime) -> datetime.date:
    """The cut-off's calendar day in the trial's time zone."""
    return timezone.localdate(cutoff)


def enrolled(participants: QuerySet[Participant], cutoff: datetime.datetime) -> QuerySet[Participant]:
    """The participants of the scope enrolled by the cut-off (withdrawn, completed and deceased ones included)."""
    return participants.filter(status__in=ON_SCHEDULE, arm__isnull=False, enrolled_at__lte=cutoff)


def sites_of(participants: QuerySet[Participant]) -> list[Site]:
    """The sites of the participants in scope, in site order (one query)."""
    return list(Site.objects.filter(pk__in=participants.values("site_id")).order_by("number"))
