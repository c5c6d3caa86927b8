"""The trial's pages. Thin: reads come from trial/selectors.py (built on trial/access.py), writes from services."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from trial import access, selectors
from trial.access import Action
from trial.consent import icf_versions, participant_protocol_current, participant_reconsent, participants_to_reconsent
from trial.errors import EligibilityError, InvalidInput
from trial.forms import EnrolmentForm, ParticipantFilterForm, ReconsentForm, ScreeningForm
from trial.models import ParticipantStatus, VisitState
from trial.pagination import CountedPaginator
from trial.services import participant_enrol, participant_screen
from trial.worklists import site_filter

PAGE_SIZE = 50


@login_required
@require_http_methods(["GET"])
def participant_list(request: HttpRequest) -> HttpResponse:
    filter_form = ParticipantFilterForm(
        request.GET, sites=access.sites(request.user), statuses=ParticipantStatus.choices
    )
    filters = filter_form.filters()
    participants = selectors.participant_list(request.user, **filters)
    total = selectors.participant_total(
        request.user,
        site_id=filters["site_id"],
        statuses=(filters["status"],) if filters["status"] else None,
        search=filters["search"],
    )
    page = CountedPaginator(participants, PAGE_SIZE, total=total).get_page(request.GET.get("page"))
    if filters["search"] and page.paginator.count == 1 and not request.htmx:
        # The header's search found the one participant asked for: go straight to them.
        return redirect("trial:participant_detail", pk=page.object_list[0].pk)
    context = {"filter_form": filter_form, "page": page, "today": timezone.localdate()}
    return render(request, "trial/participant_list.html", context)


@login_required
@require_http_methods(["GET"])
def matrix(request: HttpRequest) -> HttpResponse:
    filter_form = ParticipantFilterForm(request.GET, sites=access.sites(request.user))
    filters = filter_form.filters()
    participants = selectors.matrix_participants(request.user, site_id=filters["site_id"], search=filters["search"])
    total = selectors.participant_total(
        request.user, site_id=filters["site_id"], statuses=selectors.ON_SCHEDULE, search=filters["search"]
    )
    page = CountedPaginator(participants, PAGE_SIZE, total=total).get_page(request.GET.get("page"))
    today = timezone.localdate()
    columns = selectors.visit_columns()
    rows = selectors.matrix_rows(list(page.object_list), columns, today=today)
    context = {
        "filter_form": filter_form,
        "page": page,
        "columns": columns,
        "rows": rows,
        "states": VisitState.choices,
        "today": today,
    }
    return render(request, "trial/matrix.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def screen(request: HttpRequest) -> HttpResponse:
    if not access.can_anywhere(request.user, Action.SCREEN):
        raise PermissionDenied(_("Your role does not allow screening candidates."))
    form = ScreeningForm(
        request.POST or None, sites=access.sites(request.user, Action.SCREEN), criteria=selectors.asked_criteria()
    )
    if request.method == "POST" and form.is_valid():
        try:
            participant = participant_screen(
                user=request.user, site=form.cleaned_data["site"], data=form.screening_input()
            )
        except InvalidInput as exc:
            form.add_domain_errors(exc.errors)
        else:
            _report_screening(request, participant)
            return redirect("trial:participant_detail", pk=participant.pk)
    return render(request, "trial/screen.html", {"form": form})


def _report_screening(request: HttpRequest, participant: object) -> None:
    if participant.status == ParticipantStatus.ELIGIBLE:
        messages.success(request, _("%(number)s screened: eligible.") % {"number": participant.screening_number})
    else:
        messages.warning(request, _("%(number)s screened: screen failure.") % {"number": participant.screening_number})


@login_required
@require_http_methods(["GET"])
def participant_detail(request: HttpRequest, pk: int) -> HttpResponse:
    participant = selectors.participant_detail(request.user, pk)
    context = {
        "participant": participant,
        "visits": selectors.participant_visits(participant),
        "failures": selectors.screen_failures(participant),
        "can_enrol": participant.status == ParticipantStatus.ELIGIBLE
        and access.can(request.user, Action.ENROL, participant.site_id),
        "today": timezone.localdate(),
    }
    return render(request, "trial/participant_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest, pk: int) -> HttpResponse:
    participant = access.participant_or_404(request.user, pk, Action.ENROL)
    if participant.status != ParticipantStatus.ELIGIBLE:
        messages.error(request, _("Only an eligible candidate can be enrolled."))
        return redirect("trial:participant_detail", pk=participant.pk)
    form = EnrolmentForm(request.POST or None, arms=list(participant.protocol.arms.all()))
    if request.method == "POST" and form.is_valid():
        try:
            participant = participant_enrol(
                user=request.user,
                participant=participant,
                arm_code=form.cleaned_data["arm"],
                enrolment_date=form.cleaned_data["enrolment_date"],
            )
        except (InvalidInput, EligibilityError) as exc:
            form.add_domain_errors(exc.errors)
        else:
            messages.success(
                request,
                _("%(number)s enrolled as %(subject)s.")
                % {"number": participant.screening_number, "subject": participant.subject_id},
            )
            return redirect("trial:participant_detail", pk=participant.pk)
    return render(request, "trial/enrol.html", {"participant": participant, "form": form})


@login_required
@require_http_methods(["GET"])
def reconsent_list(request: HttpRequest) -> HttpResponse:
    """The coordinator's list of participants on study who signed an outdated consent form version, of one of the
    user's sites if asked, paginated: a fixed number of SQL queries at any size."""
    filter_form, site_ids = site_filter(request, access.sites(request.user))
    current, outdated = participants_to_reconsent(request.user, site_ids=site_ids)
    page = Paginator(outdated, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "current": current,
        "filter_form": filter_form,
        "page": page,
        "participants": page.object_list,
        "today": timezone.localdate(),
    }
    return render(request, "trial/reconsent_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def reconsent(request: HttpRequest, pk: int) -> HttpResponse:
    """Record that a participant signed the consent form version an amendment brought."""
    participant = access.participant_or_404(request.user, pk, Action.ENTER_DATA)
    versions = [entry.version for entry in icf_versions(participant_protocol_current())]
    initial = {"icf_version": versions[-1] if versions else "", "consent_date": timezone.localdate()}
    form = ReconsentForm(request.POST or None, initial=initial, versions=versions)
    if request.method == "POST" and form.is_valid():
        try:
            participant_reconsent(
                user=request.user,
                participant_id=participant.pk,
                icf_version=form.cleaned_data["icf_version"],
                consent_date=form.cleaned_data["consent_date"],
            )
        except InvalidInput as exc:
            form.add_domain_errors(exc.errors)
        else:
            messages.success(
                request,
                _("%(participant)s re-consented to version %(version)s.")
                % {"participant": participant, "version": form.cleaned_data["icf_version"]},
            )
            return redirect("trial:participant_detail", pk=participant.pk)
    status = 400 if form.errors else 200
    return render(request, "trial/reconsent.html", {"participant": participant, "form": form}, status=status)
