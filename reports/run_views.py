"""The report pages: the runs the user may see, with a form to ask for one; each run's row, which htmx polls while
the run is queued or running; the download; the retry of a failed run; and the data manager's schedules.

Thin: runs are reached through reports.runs (a role that may report nowhere is 403, a run covering a site the user
may not report on 404), every write is one service, and its domain errors come back on the page, never a 500.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reports import runs, schedules
from reports.models import ReportKind
from reports.run_forms import ReportRequestForm, ScheduleForm
from trial.errors import DomainError, InvalidInput

RUNS_PER_PAGE = 25


@login_required
@require_http_methods(["GET", "POST"])
def runs_page(request: HttpRequest) -> HttpResponse:
    runs.require_reporter(request.user)
    form = ReportRequestForm(request.POST or None, sites=list(runs.report_sites(request.user)))
    if request.method == "POST" and form.is_valid():
        try:
            run = runs.report_request(
                user=request.user, kind=form.cleaned_data["kind"], site_numbers=form.cleaned_data["sites"]
            )
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        else:
            text = _("%(report)s was requested; it is being generated.") % {"report": run.get_kind_display()}
            messages.success(request, text)
            return redirect("reports:runs")
    page = Paginator(runs.runs_listed(request.user), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "may_schedule": schedules.may_edit_schedules(request.user)}
    return render(request, "reports/runs.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def run_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One run's row: htmx asks for it every second while the run is queued or running."""
    return render(request, "reports/run_row.html", {"run": runs.run_or_404(request.user, pk)})


@login_required
@require_GET
def download(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        run, content = runs.report_download(user=request.user, run_id=pk)
    except DomainError as error:
        messages.error(request, str(error))
        return redirect("reports:runs")
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{run.filename}"'
    response["Content-Length"] = str(len(content))
    return response


@login_required
@require_POST
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        run = runs.report_retry(user=request.user, run_id=pk)
    except DomainError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("%(report)s is being generated again.") % {"report": run.get_kind_display()})
    return redirect("reports:runs")


@login_required
@require_GET
def schedules_page(request: HttpRequest) -> HttpResponse:
    schedules.require_schedule_editor(request.user)
    labels = dict(ReportKind.choices)
    rows = [(task, labels.get(schedules.schedule_kind(task), "")) for task in schedules.report_schedules()]
    return render(request, "reports/run_schedules.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def schedule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    task = schedules.schedule_or_404(request.user, pk)
    crontab = task.crontab
    initial = {
        "minute": crontab.minute,
        "hour": crontab.hour,
        "day_of_week": crontab.day_of_week,
        "day_of_month": crontab.day_of_month,
        "timezone": str(crontab.timezone),
        "enabled": task.enabled,
    }
    form = ScheduleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            schedules.report_schedule_update(user=request.user, schedule_id=task.pk, **form.cleaned_data)
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        else:
            messages.success(request, _("The schedule “%(name)s” was saved.") % {"name": task.name})
            return redirect("reports:schedules")
    status = 400 if form.errors else 200
    return render(request, "reports/run_schedule_edit.html", {"task": task, "form": form}, status=status)
