"""The pages of log forms: a participant's logs with their rows, a new row, one row (its values, corrections
with a reason, queries, source data verification, removal, history).

Thin, as capture/views.py: every participant and row is reached through trial.access (another site's answers
404) and every write is a capture.logs.services call whose domain errors become field-level messages.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from capture import page_selectors, records
from capture.definitions import FormSpec
from capture.errors import LockedError, StaleVersionError
from capture.logs.forms import LogRowForm, initial_of
from capture.logs.selectors import (
    log_form_or_404,
    log_row_or_404,
    participant_logs,
    row_current,
    rows_with_values,
)
from capture.logs.services import RECORD_TYPE, log_row_create, log_row_remove, log_row_update, log_values_verify
from capture.models import Lock, LogRow, Query
from trial import access
from trial.access import Action
from trial.errors import InvalidInput
from trial.models import AuditRecord


@login_required
@require_http_methods(["GET"])
def participant_logs_page(request: HttpRequest, participant_id: int) -> HttpResponse:
    participant = access.participant_or_404(request.user, participant_id)
    context = {
        "participant": participant,
        "logs": [
            (log, [(row, row_current(row, log.spec)) for row in log.rows]) for log in participant_logs(participant)
        ],
        "may_enter": access.can(request.user, Action.ENTER_DATA, participant.site_id),
    }
    return render(request, "capture/logs/participant_logs.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def log_row_add(request: HttpRequest, participant_id: int, form_code: str) -> HttpResponse:
    participant = access.participant_or_404(request.user, participant_id, Action.ENTER_DATA)
    spec = log_form_or_404(participant, form_code)
    form = LogRowForm(request.POST or None, spec=spec)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            values, missing = form.entries()
            try:
                result = log_row_create(
                    user=request.user,
                    participant_id=participant.pk,
                    form_code=spec.code,
                    values=values,
                    missing=missing,
                )
            except InvalidInput as invalid:
                form.add_domain_errors(invalid.errors)
            except LockedError as locked:
                form.add_error(None, str(locked))
                status = locked.http_status
            else:
                messages.success(request, _("Row %(key)d of %(form)s saved.") % _named(result.row, spec))
                return redirect("capture:participant_logs", participant_id=participant.pk)
    context = {"participant": participant, "spec": spec, "form": form, "row": None}
    return render(request, "capture/logs/log_row.html", context, status=status)


def _named(row: LogRow, spec: FormSpec) -> dict[str, object]:
    return {"key": row.repeat_key, "form": spec.code}


@login_required
@require_http_methods(["GET", "POST"])
def log_row(request: HttpRequest, row_id: int) -> HttpResponse:
    row = log_row_or_404(request.user, row_id)
    spec = log_form_or_404(row.participant, row.definition.code)
    row = rows_with_values(LogRow.objects.filter(pk=row.pk)).select_related("participant__site").get()
    if request.method == "POST":
        return _correct(request, row, spec)
    form = LogRowForm(initial=initial_of(row), spec=spec) if _may_change(request, row) else None
    return _row_page(request, row, spec, form)


def _may_change(request: HttpRequest, row: LogRow) -> bool:
    return not row.removed and access.can(request.user, Action.ENTER_DATA, row.participant.site_id)


def _correct(request: HttpRequest, row: LogRow, spec: FormSpec) -> HttpResponse:
    access.require(request.user, Action.ENTER_DATA, row.participant.site_id)
    form = LogRowForm(request.POST, spec=spec)
    if not form.is_valid():
        return _row_page(request, row, spec, form, status=400)
    values, missing = form.entries()
    try:
        log_row_update(
            user=request.user,
            row_id=row.pk,
            version=form.cleaned_data["version"] or 0,
            values=values,
            missing=missing,
            reason=form.cleaned_data["reason"],
        )
    except (InvalidInput, StaleVersionError, LockedError) as error:
        if isinstance(error, InvalidInput):
            form.add_domain_errors(error.errors)
        else:
            form.add_error(None, str(error))
        status = 400 if isinstance(error, InvalidInput) else error.http_status
        return _row_page(request, row, spec, form, status=status)
    messages.success(request, _("Row %(key)d of %(form)s saved.") % _named(row, spec))
    return redirect("capture:log_row", row_id=row.pk)


def _row_page(
    request: HttpRequest, row: LogRow, spec: FormSpec, form: LogRowForm | None, *, status: int = 200
) -> HttpResponse:
    participant = row.participant
    queries = records.describe(
        page_selectors.query_threads(Query.objects.filter(record_type=RECORD_TYPE, record_id=row.pk))
    )
    context = {
        "participant": participant,
        "spec": spec,
        "row": row,
        "form": form,
        "items": [
            (current, [query for query in queries if query.field_code == current.item.code])
            for current in row_current(row, spec)
        ],
        "row_queries": [q for q in queries if not q.field_code],
        "may": page_selectors.review_permissions(request.user, participant.site_id),
        "locked": Lock.objects.filter(participant=participant, visit=None, released_at=None).exists(),
        "history": [
            (record, spec.by_code.get(record.item_code))
            for record in AuditRecord.objects.filter(object_type=RECORD_TYPE, object_id=str(row.pk)).order_by("id")
        ],
        "record_type": RECORD_TYPE,
    }
    return render(request, "capture/logs/log_row.html", context, status=status)


@login_required
@require_http_methods(["POST"])
def log_row_remove_view(request: HttpRequest, row_id: int) -> HttpResponse:
    row = log_row_or_404(request.user, row_id, Action.ENTER_DATA)
    try:
        version = int(request.POST.get("version", ""))
        log_row_remove(user=request.user, row_id=row.pk, version=version, reason=request.POST.get("reason", ""))
    except ValueError:
        messages.error(request, _("The page was out of date or incomplete: open the form again."))
    except (InvalidInput, StaleVersionError, LockedError) as error:
        messages.error(request, "; ".join(_messages(error)))
    else:
        messages.success(request, _("The row was removed as entered in error."))
    return redirect("capture:log_row", row_id=row.pk)


def _messages(error: Exception) -> list[str]:
    if isinstance(error, InvalidInput):
        return [str(message) for messages_ in error.errors.values() for message in messages_]
    return [str(error)]


@login_required
@require_http_methods(["POST"])
def log_row_verify(request: HttpRequest, row_id: int) -> HttpResponse:
    row = log_row_or_404(request.user, row_id, Action.VERIFY)
    count = log_values_verify(user=request.user, row_id=row.pk)
    messages.success(request, _("Values verified against the source: %(count)d.") % {"count": count})
    return redirect("capture:log_row", row_id=row.pk)
