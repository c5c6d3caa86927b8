"""The SAE report's pages: its details, sending a follow-up or the final report, the sponsor's causality.

Thin: every write is one safety.sae.services function; another site's event is 404, a role without the action 403,
bad input 400 beside the field, a stale page 409, locked data 423.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from capture.errors import LockedError, StaleVersionError
from safety import selectors
from safety.models import AdverseEvent
from safety.sae import services
from safety.sae.forms import SaeDetailsForm, SaeReportForm, SponsorCausalityForm
from safety.sae.selectors import sae_panel
from trial.access import Action
from trial.errors import DomainError, InvalidInput


def _sae_event(request: HttpRequest, pk: int, action: Action) -> AdverseEvent:
    return selectors.adverse_event_or_404(request.user, pk, action)


def _page(request: HttpRequest, event: AdverseEvent, form: object, template: str, status: int, **extra: object):
    context = {"event": event, "participant": event.participant, "form": form, "sae": sae_panel(event), **extra}
    return render(request, template, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def sae_details(request: HttpRequest, pk: int) -> HttpResponse:
    """The site completes the SAE report: hospital stay, narrative, tests, history, medications."""
    event = _sae_event(request, pk, Action.ENTER_DATA)
    panel = sae_panel(event)
    if panel is None:
        messages.info(request, _("Only a serious adverse event has an SAE report."))
        return redirect("safety:adverse_event", pk=event.pk)
    if request.method == "GET":
        initial = SaeDetailsForm.initial_of(services.details_of(panel.row), panel.version)
        return _page(request, event, SaeDetailsForm(initial=initial), "safety/sae_details.html", 200)
    form = SaeDetailsForm(request.POST)
    status, refused = 400, ""
    if form.is_valid():
        try:
            services.sae_details_save(
                user=request.user,
                event_id=event.pk,
                version=form.cleaned_data["version"],
                data=form.details_input(),
                reason=form.cleaned_data["reason"],
            )
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        except (StaleVersionError, LockedError) as error:
            status, refused = error.http_status, str(error)
        else:
            messages.success(request, _("The SAE report of %(event)s was saved.") % {"event": event.label})
            return redirect("safety:adverse_event", pk=event.pk)
    return _page(request, event, form, "safety/sae_details.html", status, refused=refused)


@login_required
@require_POST
def sae_report_send(request: HttpRequest, pk: int) -> HttpResponse:
    """The investigator sends the next version of the SAE report (a follow-up, or the final report)."""
    event = _sae_event(request, pk, Action.ASSESS_SAFETY)
    form = SaeReportForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The page was out of date: open it again."))
        return redirect("safety:adverse_event", pk=event.pk)
    try:
        report = services.sae_report_submit(
            user=request.user,
            event_id=event.pk,
            sequence=form.cleaned_data["sequence"],
            final=form.cleaned_data["final"],
        )
    except DomainError as refused:
        messages.error(request, _refusal(refused))
        return redirect("safety:adverse_event", pk=event.pk)
    messages.success(
        request,
        _("%(report)s of %(event)s was sent: the recipients are being notified.")
        % {"report": report.label, "event": event.label},
    )
    return redirect("safety:adverse_event", pk=event.pk)


def _refusal(refused: DomainError) -> str:
    if isinstance(refused, InvalidInput) and refused.errors:
        return " ".join(str(message) for messages_ in refused.errors.values() for message in messages_)
    return str(refused)


@login_required
@require_http_methods(["GET", "POST"])
def sae_sponsor_causality(request: HttpRequest, pk: int) -> HttpResponse:
    """The data manager records the sponsor's safety physician's causality assessment."""
    event = _sae_event(request, pk, Action.SPONSOR_CAUSALITY)
    panel = sae_panel(event)
    if panel is None:
        messages.info(request, _("Only a serious adverse event has an SAE report."))
        return redirect("safety:adverse_event", pk=event.pk)
    if request.method == "GET":
        row = panel.row
        initial = {
            "version": panel.version,
            "relationship": row.sponsor_relationship if row else "",
            "assessor": row.sponsor_assessor if row else "",
            "comment": row.sponsor_comment if row else "",
        }
        return _page(request, event, SponsorCausalityForm(initial=initial), "safety/sae_sponsor.html", 200)
    form = SponsorCausalityForm(request.POST)
    status, refused = 400, ""
    if form.is_valid():
        try:
            services.sae_sponsor_causality_record(user=request.user, event_id=event.pk, **form.cleaned_data)
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        except (StaleVersionError, LockedError) as error:
            status, refused = error.http_status, str(error)
        else:
            messages.success(request, _("The sponsor's causality of %(event)s was recorded.") % {"event": event.label})
            return redirect("safety:adverse_event", pk=event.pk)
    return _page(request, event, form, "safety/sae_sponsor.html", status, refused=refused)
