"""Safety pages: a participant's adverse event log, the adverse event form, one event's page with the actions of
each role, the site safety dashboard, the sponsor's listing across sites, the death report and the in-app
notifications.

Thin: reads come from safety/selectors.py (built on trial/access.py: another site's object is 404, a role without
the action 403), every write is one safety.services function, and its domain errors come back on the page beside
the input (400), as a conflict (409) or as the lock's message (423), never a 500.
"""

import csv
import datetime
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from capture.errors import LockedError, StaleVersionError
from capture.page_selectors import queries_of_record
from safety import selectors, services
from safety.forms import AdverseEventForm, DeathReportForm, DismissForm, SignForm, SiteFilterForm, VersionForm
from safety.models import AdverseEvent, AdverseEventStatus, Notification, SeriousCriterion
from safety.records import RECORD_TYPE
from safety.sae.selectors import sae_panel
from trial import access
from trial.access import Action
from trial.alerts import alert_unread, alerts_mark_read, alerts_of
from trial.errors import DomainError, InvalidInput
from trial.models import Participant, ParticipantStatus
from trial.pagination import CountedPaginator

# The participants whose adverse events are recorded: from enrolment on, through death or completion.
ON_STUDY = (ParticipantStatus.ENROLLED, ParticipantStatus.DIED, ParticipantStatus.COMPLETED)
LISTING_PAGE_SIZE = 100


def _status(form: object) -> int:
    return 400 if form is not None and form.errors else 200


@dataclass(frozen=True)
class EventPermissions:
    """What the user's role at the event's site allows on its pages. Only what to offer: the services check again."""

    enter: bool
    assess: bool
    verify: bool
    sign: bool
    sponsor_causality: bool = False
    print_sae: bool = False
    raise_query: bool = False
    answer: bool = False  # the names capture's query thread template reads


def _permissions(request: HttpRequest, site_id: int) -> EventPermissions:
    user = request.user
    return EventPermissions(
        enter=access.can(user, Action.ENTER_DATA, site_id),
        assess=access.can(user, Action.ASSESS_SAFETY, site_id),
        verify=access.can(user, Action.VERIFY, site_id),
        sign=access.can(user, Action.SIGN, site_id),
        sponsor_causality=access.can(user, Action.SPONSOR_CAUSALITY, site_id),
        print_sae=access.can(user, Action.PRINT_SAE, site_id),
        raise_query=access.can(user, Action.RAISE_QUERY, site_id),
        answer=access.can(user, Action.ENTER_DATA, site_id),
    )


# --- A participant's adverse event log ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def participant_adverse_events(request: HttpRequest, participant_id: int) -> HttpResponse:
    log = selectors.adverse_event_log(request.user, participant_id)
    may = _permissions(request, log.participant.site_id)
    context = {
        "log": log,
        "participant": log.participant,
        "may": may,
        "may_report_event": may.enter and log.participant.status in ON_STUDY,
    }
    return render(request, "safety/participant_log.html", context)


# --- The adverse event form: report, correct, confirm a proposal --------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def adverse_event_report(request: HttpRequest, participant_id: int) -> HttpResponse:
    """The site reports an adverse event of the participant."""
    participant = access.participant_or_404(request.user, participant_id, Action.ENTER_DATA)
    form = AdverseEventForm(request.POST or None, kind=AdverseEventForm.REPORT, protocol=participant.protocol)
    locked = ""
    if request.method == "POST" and form.is_valid():
        try:
            event = services.adverse_event_report(
                user=request.user, participant_id=participant.pk, data=form.event_input()
            )
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        except LockedError as error:
            locked = str(error)
        else:
            messages.success(request, _("%(event)s was reported.") % {"event": event.label} + _expedited_note(event))
            return redirect("safety:adverse_event", pk=event.pk)
    return _form_page(request, participant, form, locked=locked)


@login_required
@require_http_methods(["GET", "POST"])
def adverse_event_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Correct or follow up a reported event: every change with its reason."""
    event = selectors.adverse_event_or_404(request.user, pk, Action.ENTER_DATA)
    if event.status != AdverseEventStatus.REPORTED:
        messages.info(request, _("A proposal from the lab grading is confirmed or dismissed by the investigator."))
        return redirect("safety:adverse_event", pk=event.pk)
    return _assessment(request, event, AdverseEventForm.UPDATE)


@login_required
@require_http_methods(["GET", "POST"])
def adverse_event_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    """The investigator confirms a lab proposal as an adverse event, assessing it."""
    event = selectors.adverse_event_or_404(request.user, pk, Action.ASSESS_SAFETY)
    if event.status != AdverseEventStatus.PROPOSED:
        status = event.get_status_display()
        messages.info(request, _("This proposal was already decided (%(status)s).") % {"status": status})
        return redirect("safety:adverse_event", pk=event.pk)
    return _assessment(request, event, AdverseEventForm.CONFIRM)


def _proposal_initial(event: AdverseEvent) -> dict[str, object]:
    """What the lab grading already tells: the CTCAE term, its body system, and the sample date as the onset.
    The grade, relationship and outcome are the investigator's to choose, so none is preselected."""
    return {
        "version": event.version,
        "term": event.ctcae_term,
        "body_system": event.body_system,
        "onset_date": event.onset_date,
    }


def _assessment(request: HttpRequest, event: AdverseEvent, kind: str) -> HttpResponse:
    initial = AdverseEventForm.initial_of(event) if kind == AdverseEventForm.UPDATE else _proposal_initial(event)
    protocol = event.participant.protocol
    form = AdverseEventForm(request.POST or None, kind=kind, protocol=protocol, initial=initial)
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, event.participant, form, event=event)
    service = services.adverse_event_update if kind == AdverseEventForm.UPDATE else services.adverse_event_confirm
    arguments = {"reason": form.cleaned_data["reason"]} if kind == AdverseEventForm.UPDATE else {}
    try:
        saved = service(
            user=request.user,
            event_id=event.pk,
            version=form.cleaned_data["version"],
            data=form.event_input(),
            **arguments,
        )
    except StaleVersionError as conflict:
        # Keep every entry; the next save is built on the version stored now, which the page shows beside them.
        form = AdverseEventForm(
            _with_version(request.POST, conflict.current_version), kind=kind, protocol=protocol, initial=initial
        )
        form.is_valid()
        current = selectors.adverse_event_or_404(request.user, event.pk)
        return _form_page(request, event.participant, form, event=current, conflict=str(conflict))
    except InvalidInput as invalid:
        form.add_domain_errors(invalid.errors)
        return _form_page(request, event.participant, form, event=event)
    except LockedError as error:
        return _form_page(request, event.participant, None, event=event, locked=str(error))
    if kind == AdverseEventForm.CONFIRM:
        text = _("%(event)s was confirmed as an adverse event.") % {"event": saved.label}
    elif saved.version == event.version:
        text = _("Nothing was changed.")
    else:
        text = _("%(event)s was changed (version %(version)d).") % {"event": saved.label, "version": saved.version}
    messages.success(request, text + _expedited_note(saved, before=event))
    return redirect("safety:adverse_event", pk=saved.pk)


def _expedited_note(event: AdverseEvent, before: AdverseEvent | None = None) -> str:
    if event.expedited_at is None or (before is not None and before.expedited_at is not None):
        return ""
    return " " + _("It needs expedited reporting: the investigators, monitors and safety contact are being notified.")


def _with_version(data: QueryDict, version: int) -> QueryDict:
    data = data.copy()
    data["version"] = str(version)
    return data


def _form_page(
    request: HttpRequest,
    participant: Participant,
    form: AdverseEventForm | None,
    *,
    event: AdverseEvent | None = None,
    conflict: str = "",
    locked: str = "",
) -> HttpResponse:
    context = {
        "participant": participant,
        "event": event,
        "form": form,
        "kind": form.kind if form is not None else "",
        "conflict": conflict,
        "locked_error": locked,
        "serious_choices": SeriousCriterion.choices,
    }
    status = 409 if conflict else 423 if locked else _status(form)
    return render(request, "safety/adverse_event_form.html", context, status=status)


# --- One event: its page and the decisions on it -----------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def adverse_event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = selectors.adverse_event_or_404(request.user, pk)
    return _detail_page(request, event)


def _detail_page(
    request: HttpRequest,
    event: AdverseEvent,
    *,
    dismiss_form: DismissForm | None = None,
    sign_form: SignForm | None = None,
    refused: str = "",
    status: int = 200,
) -> HttpResponse:
    initial = {"version": event.version}
    context = {
        "event": event,
        "participant": event.participant,
        "detail": selectors.adverse_event_detail(event, now=timezone.now()),
        "may": _permissions(request, event.participant.site_id),
        "dismiss_form": dismiss_form or DismissForm(initial=initial),
        "sign_form": sign_form or SignForm(initial=initial),
        "refused": refused,
        "serious_choices": SeriousCriterion.choices,
        "queries": queries_of_record(request.user, RECORD_TYPE, event.pk),
        "record_type": RECORD_TYPE,
        "sae": sae_panel(event),
    }
    return render(request, "safety/adverse_event.html", context, status=status)


@login_required
@require_POST
def adverse_event_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    """The investigator judges a lab proposal not an adverse event, with the reason."""
    event = selectors.adverse_event_or_404(request.user, pk, Action.ASSESS_SAFETY)
    form = DismissForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, event, dismiss_form=form, status=400)
    try:
        services.adverse_event_dismiss(
            user=request.user,
            event_id=event.pk,
            version=form.cleaned_data["version"],
            reason=form.cleaned_data["reason"],
        )
    except DomainError as refused:
        return _refused(request, event, refused, dismiss_form=form)
    messages.success(request, _("%(event)s was dismissed: it is not an adverse event.") % {"event": event.label})
    return redirect("safety:adverse_event", pk=event.pk)


@login_required
@require_POST
def adverse_event_sign(request: HttpRequest, pk: int) -> HttpResponse:
    """The investigator signs the event's assessment with their password."""
    event = selectors.adverse_event_or_404(request.user, pk, Action.SIGN)
    form = SignForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, event, sign_form=form, status=400)
    try:
        services.adverse_event_sign(
            user=request.user,
            event_id=event.pk,
            version=form.cleaned_data["version"],
            password=form.cleaned_data["password"],
            request=request,
        )
    except DomainError as refused:
        return _refused(request, event, refused, sign_form=form)
    messages.success(request, _("You signed %(event)s.") % {"event": event.label})
    return redirect("safety:adverse_event", pk=event.pk)


@login_required
@require_POST
def adverse_event_verify(request: HttpRequest, pk: int) -> HttpResponse:
    """The monitor has checked the event against the source documents."""
    event = selectors.adverse_event_or_404(request.user, pk, Action.VERIFY)
    form = VersionForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, event, refused=_("The page was out of date: open it again."), status=400)
    try:
        services.adverse_event_verify(user=request.user, event_id=event.pk, version=form.cleaned_data["version"])
    except DomainError as refused:
        return _refused(request, event, refused)
    messages.success(request, _("%(event)s was verified against the source.") % {"event": event.label})
    return redirect("safety:adverse_event", pk=event.pk)


def _refused(request: HttpRequest, event: AdverseEvent, refused: DomainError, **forms: object) -> HttpResponse:
    """The event's page as it is now, with why the action was refused: beside the field, or above the actions."""
    fresh = selectors.adverse_event_or_404(request.user, event.pk)
    form = next(iter(forms.values()), None)
    if isinstance(refused, InvalidInput) and form is not None and set(refused.errors) & set(form.fields):
        form.add_domain_errors(refused.errors)
        return _detail_page(request, fresh, **forms, status=400)
    return _detail_page(request, fresh, refused=str(refused), status=refused.http_status)


# --- Death --------------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def death_report(request: HttpRequest, participant_id: int) -> HttpResponse:
    """Record a participant's death: their schedule ends and later visits take no more data."""
    participant = access.participant_or_404(request.user, participant_id, Action.ENTER_DATA)
    report = selectors.death_report_of(participant)
    form = None if report else DeathReportForm(request.POST or None)
    locked = ""
    if request.method == "POST" and form is not None and form.is_valid():
        try:
            report = services.death_report(user=request.user, participant_id=participant.pk, **form.report_input())
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        except LockedError as error:
            locked = str(error)
        else:
            messages.success(
                request,
                _("The death of %(subject)s on %(date)s was recorded; visits after it take no more data.")
                % {"subject": participant, "date": report.death_date.isoformat()},
            )
            return redirect("safety:participant_adverse_events", participant_id=participant.pk)
    context = {"participant": participant, "form": form, "report": report, "locked_error": locked}
    status = 423 if locked else _status(form)
    return render(request, "safety/death_report.html", context, status=status)


# --- The site safety dashboard and the sponsor's listing -----------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def dashboard(request: HttpRequest) -> HttpResponse:
    sites = selectors.dashboard_sites(request.user)
    if not sites:
        raise PermissionDenied(_("You are not a member of any site."))
    filter_form = SiteFilterForm(request.GET, sites=sites)
    now = timezone.now()
    context = {
        "filter_form": filter_form,
        "board": selectors.safety_dashboard(request.user, site_id=filter_form.site_id(), now=now),
        "may_list": bool(selectors.listing_site_ids(request.user)),
        "overdue_after_hours": int(selectors.OVERDUE_AFTER.total_seconds() // 3600),
        "dashboard_rows": selectors.DASHBOARD_ROWS,
    }
    return render(request, "safety/dashboard.html", context)


def _listing_sites(request: HttpRequest, action: Action = Action.VIEW) -> list:
    sites = selectors.listing_sites(request.user, action)
    if not sites:
        raise PermissionDenied(_("The safety listing across sites is for the sponsor, data managers and monitors."))
    return sites


@login_required
@require_http_methods(["GET"])
def listing(request: HttpRequest) -> HttpResponse:
    """Every reported adverse event across the user's sites, coded: no free text that could identify anyone."""
    sites = _listing_sites(request)
    filter_form = SiteFilterForm(request.GET, sites=sites)
    site_ids = [site.pk for site in sites]
    events = selectors.listing_events(site_ids, site_id=filter_form.site_id())
    total = selectors.listing_total(site_ids, site_id=filter_form.site_id())
    page = CountedPaginator(events, LISTING_PAGE_SIZE, total=total).get_page(request.GET.get("page"))
    context = {
        "filter_form": filter_form,
        "page": page,
        "rows": selectors.listing_rows(page.object_list, now=timezone.now()),
        "may_export": bool(selectors.listing_site_ids(request.user, Action.EXPORT)),
    }
    return render(request, "safety/listing.html", context)


LISTING_CSV_COLUMNS = [
    "subject_id",
    "site",
    "arm",
    "ae_number",
    "body_system",
    "ctcae_term",
    "grade",
    "serious",
    "serious_criteria",
    "relationship",
    "outcome",
    "onset_date",
    "end_date",
    "expedited_at_utc",
    "notification_state",
]


@login_required
@require_http_methods(["GET"])
def listing_csv(request: HttpRequest) -> HttpResponse:
    """The same listing as a CSV file of codes, for the sites where the user may export."""
    sites = _listing_sites(request, Action.EXPORT)
    filter_form = SiteFilterForm(request.GET, sites=sites)
    rows = selectors.safety_listing([site.pk for site in sites], site_id=filter_form.site_id(), now=timezone.now())
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="nct01573923-safety-listing-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(LISTING_CSV_COLUMNS)
    for row in rows:
        writer.writerow(_csv_row(row))
    return response


def _csv_row(row: selectors.ListingRow) -> list[object]:
    expedited = row.expedited_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if row.expedited_at else ""
    return [
        row.subject_id,
        f"{row.site_number:02d}",
        row.arm_code,
        row.label,
        row.body_system,
        row.ctcae_term,
        "" if row.grade is None else row.grade,
        "Y" if row.serious else "N",
        ";".join(row.serious_criteria),
        row.relationship,
        row.outcome,
        row.onset_date.isoformat(),
        row.end_date.isoformat() if row.end_date else "",
        expedited,
        row.notice_state,
    ]


# --- In-app notifications -----------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def notifications(request: HttpRequest) -> HttpResponse:
    """The user's notifications (the in-app alerts first, then the safety notices), those unread marked; seeing
    them here marks them read."""
    rows = selectors.notifications_of(request.user)
    unread = [row.pk for row in rows if row.read_at is None]
    _mark_read(request.user, unread)
    alerts = alerts_of(request.user)
    unread_alerts = [alert.pk for alert in alerts if alert.read_at is None]
    alerts_mark_read(user=request.user, ids=unread_alerts)
    context = {"rows": rows, "unread": set(unread), "alerts": alerts, "unread_alerts": set(unread_alerts)}
    return render(request, "safety/notifications.html", context)


def _mark_read(user: object, ids: list[int]) -> None:
    # Not trial data (no audit): a conditional UPDATE of the user's own rows, safe to run twice.
    if ids:
        Notification.objects.filter(user=user, pk__in=ids, read_at__isnull=True).update(read_at=timezone.now())


@require_http_methods(["GET"])
def notification_badge(request: HttpRequest) -> HttpResponse:
    """The navigation bar's unread count of safety notices and in-app alerts (an htmx fragment, fetched after the
    page loads): one query, and none on the page itself. Without a session, nothing to swap in (204) rather than
    the login page."""
    if not request.user.is_authenticated:
        return HttpResponse(status=204)
    count = selectors.unread_count(request.user, alerts=alert_unread(request.user))
    return render(request, "safety/_notification_badge.html", {"count": count})
