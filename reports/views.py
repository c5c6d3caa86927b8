"""The exports page: where data managers and the sponsor download the trial's data, for all their sites or one.

Thin: the sites come from trial/access.py; the links go to the export API, which checks, records and streams.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from capture.definitions import protocol_definition
from reports.pdf.cioms import CiomsReport
from safety.models import AdverseEvent, SaeReport
from safety.sae import snapshot
from safety.services import adverse_event_or_404
from trial import access
from trial.access import Action


@login_required
@require_http_methods(["GET"])
def exports(request: HttpRequest) -> HttpResponse:
    sites = list(access.sites(request.user, Action.EXPORT).order_by("number"))
    if not sites:
        raise PermissionDenied(_("Your role does not allow exporting trial data."))
    return render(request, "reports/exports.html", {"sites": sites})


@login_required
@require_http_methods(["GET"])
def sae_cioms(request: HttpRequest, pk: int) -> HttpResponse:
    """The CIOMS I form of a serious adverse event: a version sent (`?report=<n>`, default the latest), or, before
    any was sent, the report as it stands. Investigators, monitors, data managers and the sponsor of its site."""
    event = adverse_event_or_404(request.user, pk, Action.PRINT_SAE, related=("participant__protocol",))
    if not (event.serious or event.expedited_at):
        raise Http404(_("Only a serious adverse event has an SAE report."))
    reports = SaeReport.objects.filter(adverse_event=event).order_by("-sequence")
    chosen = request.GET.get("report", "")
    if chosen:
        if not chosen.isdigit():
            raise Http404(_("No such report version."))
        reports = reports.filter(sequence=int(chosen))
    report = reports.first()
    if chosen and report is None:
        raise Http404(_("No such report version."))
    pdf = _cioms_pdf(request, event, report)
    suffix = f"v{report.sequence}" if report else "draft"
    filename = f"CIOMS-{event.participant.subject_id or event.participant.screening_number}-{event.label}-{suffix}.pdf"
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _cioms_pdf(request: HttpRequest, event: AdverseEvent, report: SaeReport | None) -> bytes:
    if report is None:
        data = snapshot.build(event, protocol_definition=protocol_definition(event.participant.protocol))
        label, kind, day = _("Not yet sent"), "draft", timezone.localdate().isoformat()
    else:
        data, label, kind = report.snapshot, report.label, report.kind
        day = timezone.localtime(report.submitted_at).date().isoformat()
    user = request.user
    printed_by = user.get_full_name() or user.get_username()
    return CiomsReport(
        snapshot=data, report_label=label, report_kind=kind, report_date=day, printed_by=printed_by
    ).build()
