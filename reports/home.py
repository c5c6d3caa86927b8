"""The home page: each user's worklist, one section per role they hold, every count a link to the list behind it
and every row a link to where the work is done.

The worklists come from the layer that owns their data (trial/worklists.py, capture/worklists.py,
safety/worklists.py); this module, in the top layer, only puts them together. Each list shows its first rows and a
count; the page runs a fixed number of SQL queries for each role, whatever the number of participants.
"""

import datetime
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from capture import inbox_selectors
from capture import worklists as capture_lists
from capture.models import SiteSummary
from reports.models import RunState
from reports.runs import runs_visible
from safety import worklists as safety_lists
from trial import access, overview
from trial import selectors as trial_selectors
from trial import worklists as trial_lists
from trial.access import Action
from trial.anchors import audit_status
from trial.models import Role
from trial.worklists import SHOWN_ON_HOME, WorkList, capped_count

ROLE_LISTS: dict[str, list[WorkList]] = {
    Role.COORDINATOR: [
        trial_lists.VISITS_TO_DO,
        capture_lists.INCOMPLETE_FORMS,
        capture_lists.QUERIES_TO_ANSWER,
        trial_lists.CANDIDATES,
    ],
    Role.MONITOR: [capture_lists.QUERIES_TO_CLOSE, capture_lists.FORMS_AWAITING_SDV],
    Role.INVESTIGATOR: [
        capture_lists.VISITS_TO_SIGN,
        capture_lists.CASEBOOKS_TO_SIGN,
        safety_lists.EVENTS_TO_SIGN,
        safety_lists.PROPOSALS,
        safety_lists.SERIOUS_ON_THE_CLOCK,
    ],
    Role.DATA_MANAGER: [capture_lists.FORMS_TO_LOCK, capture_lists.QUERIES_OVER_30_DAYS],
    Role.SPONSOR: [],
}


@dataclass(frozen=True)
class ShownList:
    worklist: WorkList
    count: int
    rows: list
    url: str
    more: bool = False  # the list is longer than `count` (COUNT_CAP)


@dataclass(frozen=True)
class Section:
    role: str
    label: str
    lists: list[ShownList]


def shown(worklist: WorkList, user: object, now: datetime.datetime) -> ShownList:
    """The list's first rows and its count up to COUNT_CAP (two queries, each bounded whatever the list's length:
    the rows by the order's index, the count over at most COUNT_CAP + 1 rows)."""
    items = worklist.items(user, now=now)
    rows = list(items[:SHOWN_ON_HOME])
    count, more = capped_count(items)
    return ShownList(worklist=worklist, count=count, rows=rows, url=worklist.url(), more=more)


def sections(user: object, now: datetime.datetime) -> list[Section]:
    held = set(access.site_roles(user).values())
    return [
        Section(role=role, label=role.label, lists=[shown(worklist, user, now) for worklist in ROLE_LISTS[role]])
        for role in Role
        if role in held
    ]


# --- What is not a list --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteCount:
    number: int
    count: int
    url: str


def by_site(worklist: WorkList, user: object, now: datetime.datetime, site_path: str) -> list[SiteCount]:
    """The list's count at each site that has any, each linking to the list narrowed to that site (one query)."""
    counts = (
        worklist.items(user, now=now)
        .order_by()
        .values_list(f"{site_path}__number")
        .annotate(count=Count("pk"))
        .order_by(f"{site_path}__number")
    )
    return [SiteCount(number=number, count=count, url=worklist.url(site=number)) for number, count in counts]


def monitor_context(user: object, now: datetime.datetime) -> dict:
    return {
        "sdv_by_site": by_site(capture_lists.FORMS_AWAITING_SDV, user, now, "visit__participant__site"),
        "ageing": capture_lists.query_ageing(user, now=now),
        "sdv_progress": inbox_selectors.sdv_by_site(user),
    }


def data_manager_context() -> dict:
    status = audit_status()
    verified = status.get("last_verified")
    return {
        "audit": {
            "verified_at": datetime.datetime.fromisoformat(verified) if verified else None,
            "intact": status.get("intact"),
        }
    }


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    point: overview.EnrolmentPoint


CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 600, 220, 30


def enrolment_chart(points: list[overview.EnrolmentPoint]) -> dict:
    """Coordinates of the cumulative enrolment line and of the target line, for a server-drawn SVG (no script)."""
    top = max([overview.ENROLMENT_TARGET, *(point.cumulative for point in points)])
    inner_width, inner_height = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD
    step = inner_width / max(len(points) - 1, 1)

    def y_of(value: int) -> float:
        return round(CHART_PAD + inner_height * (1 - value / top), 1)

    placed = [ChartPoint(x=round(CHART_PAD + i * step, 1), y=y_of(p.cumulative), point=p) for i, p in enumerate(points)]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "pad": CHART_PAD,
        "right": CHART_WIDTH - CHART_PAD,
        "bottom": CHART_HEIGHT - CHART_PAD,
        "target_y": y_of(overview.ENROLMENT_TARGET),
        "points": placed,
        "polyline": " ".join(f"{point.x},{point.y}" for point in placed),
    }


def sponsor_context(user: object, now: datetime.datetime) -> dict:
    site_ids = access.site_ids(user, Action.REPORT)
    points = overview.enrolment_by_month(site_ids)
    sdv = inbox_selectors.sdv_of_sites(site_ids)
    entered = sum(row.progress.entered for row in sdv)
    verified = sum(row.progress.verified for row in sdv)
    latest = (
        runs_visible(user).filter(state=RunState.DONE).order_by("-finished_at", "-pk").first() if site_ids else None
    )
    return {
        "target": overview.ENROLMENT_TARGET,
        "enrolled": points[-1].cumulative if points else 0,
        "enrolment": points,
        "chart": enrolment_chart(points),
        "completion": overview.visit_completion(site_ids, today=timezone.localdate(now)),
        # From the site summaries (capture/summaries.py), kept in the query services' transactions.
        "open_queries": SiteSummary.objects.filter(site_id__in=site_ids).aggregate(n=Sum("queries_open"))["n"] or 0,
        "sdv_percent": verified * 100 // entered if entered else None,
        "serious": shown(safety_lists.SERIOUS_EVENTS, user, now),
        "latest_report": latest,
    }


@login_required
@require_http_methods(["GET"])
def home(request: HttpRequest) -> HttpResponse:
    user, now = request.user, timezone.now()
    today = timezone.localdate(now)
    role_sections = sections(user, now)
    held = {section.role for section in role_sections}
    rows, arms = trial_selectors.dashboard(user, today=today)
    context = {
        "sections": role_sections,
        "rows": rows,
        "arms": arms,
        "today": today,
        "now": now,
        "entry_site_ids": access.site_ids(user, Action.ENTER_DATA),
        "monitor": monitor_context(user, now) if Role.MONITOR in held else None,
        "data_manager": data_manager_context() if Role.DATA_MANAGER in held else None,
        "sponsor": sponsor_context(user, now) if Role.SPONSOR in held else None,
    }
    return render(request, "reports/home/home.html", context)
