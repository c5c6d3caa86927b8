"""Worklists: what waits for a user's action, as a bounded queryset, and the one page that lists a worklist in full.

A WorkList names the action that does the work (its scope is the sites where the user may do it, from
trial/access.py), a selector that returns the items at given sites ordered on an indexed column, the table template
that shows its rows and the page that lists it in full. The home page (reports/home.py) shows the first few rows of
each and a count that links to that page, so the count and the page always come from the same queryset.
Counts stop at COUNT_CAP ("1,000+"): counting a list of a hundred thousand forms would cost time that grows with
the trial, and nobody works through more than the oldest thousand without narrowing the list by site first.
Each layer declares the worklists of the data it owns (trial here, capture/worklists.py, safety/worklists.py).
"""

import datetime
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from trial import access
from trial.access import Action
from trial.models import Participant, ParticipantStatus, Site, Visit, VisitProgress, VisitState
from trial.templatetags.trial_tags import localized

PAGE_SIZE = 50
SHOWN_ON_HOME = 10
COUNT_CAP = 1000  # a longer list is counted as "1,000+" and lists its first 1,000 items


def capped_count(queryset: QuerySet) -> tuple[int, bool]:
    """The list's length, at most COUNT_CAP, and whether it is longer: one COUNT over at most COUNT_CAP + 1 rows,
    so bounded work at any size."""
    count = queryset.order_by()[: COUNT_CAP + 1].count()
    return min(count, COUNT_CAP), count > COUNT_CAP


class CappedPaginator(Paginator):
    """Pages over the first COUNT_CAP items of a list; `more` says the list goes on beyond them."""

    @cached_property
    def _capped(self) -> tuple[int, bool]:
        return capped_count(self.object_list)

    @cached_property
    def count(self) -> int:
        return self._capped[0]

    @property
    def more(self) -> bool:
        return self._capped[1]


Selector = Callable[..., QuerySet]


@dataclass(frozen=True)
class WorkList:
    key: str
    title: str
    action: Action
    select: Selector  # select(site_ids, now=..., state=...) -> the items, ordered
    template: str  # a table of `rows`
    url_name: str  # the page that lists it in full
    url_query: dict[str, str] = field(default_factory=dict)
    states: tuple[tuple[str, str], ...] = ()  # optional narrowing of the list, passed to select as `state`

    def site_ids(self, user: object) -> list[int]:
        return access.site_ids(user, self.action)

    def items(self, user: object, *, now: datetime.datetime, state: str = "") -> QuerySet:
        return self.select(self.site_ids(user), now=now, state=state)

    def url(self, **query: object) -> str:
        params = {**self.url_query, **{key: value for key, value in query.items() if value not in (None, "")}}
        return reverse(self.url_name) + (f"?{urlencode(params)}" if params else "")


# --- The page of one worklist ----------------------------------------------------------------------------------


class WorkListFilter(forms.Form):
    """Narrows a worklist to one of the user's sites (by site number) or one state; invalid input narrows nothing."""

    site = forms.TypedChoiceField(label=_("Site"), required=False, coerce=int, empty_value=None)
    state = forms.ChoiceField(label=_("State"), required=False)

    def __init__(self, *args: object, sites: list[Site], states: tuple[tuple[str, str], ...], **kwargs: object):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [
            ("", _("All sites")),
            *((str(site.number), f"{site.number:02d} {localized(site, 'name')}") for site in sites),
        ]
        if states:
            self.fields["state"].choices = [("", _("All states")), *states]
        else:
            del self.fields["state"]
        for form_field in self.fields.values():
            form_field.widget.attrs["class"] = "form-select form-select-sm"

    def valid(self, name: str) -> object:
        self.is_valid()
        return self.cleaned_data.get(name) if name in self.fields else None


def site_filter(
    request: HttpRequest, sites: QuerySet[Site], states: tuple[tuple[str, str], ...] = ()
) -> tuple[WorkListFilter, list[int]]:
    """A list page's filter form over the given sites (and states), and the ids of the sites it leaves: the one
    chosen by `site=<number>`, or all of them."""
    choices = list(sites.order_by("number"))
    filter_form = WorkListFilter(request.GET, sites=choices, states=states)
    number = filter_form.valid("site")
    return filter_form, [site.pk for site in choices if number is None or site.number == number]


@login_required
@require_http_methods(["GET"])
def worklist_page(request: HttpRequest, worklist: WorkList) -> HttpResponse:
    """Every item of a worklist at the user's sites, paginated: a fixed number of SQL queries at any size."""
    if not access.can_anywhere(request.user, worklist.action):
        raise PermissionDenied(_("Your role does not do this work."))
    filter_form, site_ids = site_filter(request, access.sites(request.user, worklist.action), worklist.states)
    now = timezone.now()
    queryset = worklist.select(site_ids, now=now, state=filter_form.valid("state") or "")
    page = CappedPaginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "worklist": worklist,
        "filter_form": filter_form,
        "page": page,
        "rows": page.object_list,
        "count_cap": COUNT_CAP,
        "now": now,
        "today": timezone.localdate(now),
    }
    return render(request, "trial/worklist.html", context)


# --- The trial's own worklists ---------------------------------------------------------------------------------


TO_DO = (VisitState.DUE, VisitState.OVERDUE, VisitState.IN_PROGRESS)
VISIT_STATES = tuple((state.value, state.label) for state in TO_DO)


def visits_to_do(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[Visit]:
    """Visits of enrolled participants that are due today, overdue or in progress, the earliest window end first."""
    today = timezone.localdate(now)
    not_started = Q(progress=VisitProgress.NOT_STARTED)
    conditions = {
        VisitState.DUE: not_started & Q(window_start__lte=today, window_end__gte=today),
        VisitState.OVERDUE: not_started & Q(window_end__lt=today),
        VisitState.IN_PROGRESS: Q(progress=VisitProgress.IN_PROGRESS),
    }
    wanted = conditions[state] if state in conditions else reduce(operator.or_, conditions.values())
    return (
        Visit.objects.filter(wanted, participant__site_id__in=site_ids, participant__status=ParticipantStatus.ENROLLED)
        .select_related("participant__site", "definition")
        .order_by("window_end", "pk")
    )


def candidates_to_enrol(site_ids: list[int], *, now: datetime.datetime, state: str = "") -> QuerySet[Participant]:
    """Candidates found eligible at screening and not yet enrolled, those screened first at the top."""
    return (
        Participant.objects.filter(site_id__in=site_ids, status=ParticipantStatus.ELIGIBLE)
        .select_related("site")
        .order_by("pk")
    )


VISITS_TO_DO = WorkList(
    key="visits",
    title=_("Visits due, overdue and in progress"),
    action=Action.ENTER_DATA,
    select=visits_to_do,
    template="trial/worklists/_visits.html",
    url_name="trial:work_visits",
    states=VISIT_STATES,
)
CANDIDATES = WorkList(
    key="candidates",
    title=_("Candidates awaiting enrolment"),
    action=Action.ENROL,
    select=candidates_to_enrol,
    template="trial/worklists/_candidates.html",
    url_name="trial:work_candidates",
)
