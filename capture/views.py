"""The data-entry pages: a visit's forms, one form's entry, the one-value check as it is typed, the audit trail.

Thin: every visit is reached through trial.access (another site's is 404), reads come from capture.selectors
and capture.page_selectors, and a save is capture.services.form_save, whose domain errors become field-level
messages (400), a conflict page (409) or, on locked data, the lock's message (423). The review actions the
pages offer post to capture.review_views.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from capture import page_selectors
from capture.definitions import FormSpec
from capture.errors import LockedError, StaleVersionError
from capture.forms import FormEntryForm, in_language, initial_entries, item_groups
from capture.page_selectors import FormReview
from capture.selectors import visit_form_summaries
from capture.services import FormSaveResult, form_save_locked, visit_for_entry
from capture.visits import form_or_404, next_form, visit_or_404
from trial import access
from trial.access import Action
from trial.errors import DomainError, InvalidInput
from trial.locking import atomic_with_retry
from trial.models import Visit


def _may_enter(request: HttpRequest, visit: Visit) -> bool:
    return access.can(request.user, Action.ENTER_DATA, visit.participant.site_id)


@login_required
@require_http_methods(["GET"])
def visit(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request.user, visit_id)
    review = page_selectors.visit_review(visit, visit_form_summaries(visit))
    context = {
        "visit": visit,
        "participant": visit.participant,
        "forms": review.forms,
        "may_enter": _may_enter(request, visit),
        "today": timezone.localdate(),
        "review": review,
        "may": page_selectors.review_permissions(request.user, visit.participant.site_id),
    }
    return render(request, "capture/visit.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def form_entry(request: HttpRequest, visit_id: int, form_code: str) -> HttpResponse:
    if request.method == "POST":
        try:
            response, saved = _save_locked(request, visit_id, form_code)
        except _Refused as refused:  # its transaction rolled back whole: nothing of it was written
            return _refused_page(request, refused)
        if saved is not None:  # told once, after the commit: a retried transaction does not tell twice
            _report_save(request, *saved)
        return response
    visit = visit_or_404(request.user, visit_id)
    spec = form_or_404(visit, form_code)
    review = page_selectors.form_review(visit, spec)
    form = None
    if _may_enter(request, visit):
        version = review.instance.version if review.instance else 0
        form = FormEntryForm(spec=spec, visit_id=visit.pk, initial=initial_entries(review.current, version))
    return _form_page(request, visit, spec, form, review)


Saved = tuple[Visit, FormSpec, FormSaveResult]


class _Refused(Exception):
    """The service refused the save: carried out of the save's transaction, which then rolls back whole, to the
    page that says why (drawn after the rollback)."""

    def __init__(self, visit: Visit, spec: FormSpec, form: FormEntryForm, error: DomainError) -> None:
        super().__init__(str(error))
        self.visit, self.spec, self.form, self.error = visit, spec, form, error


@atomic_with_retry
def _save_locked(request: HttpRequest, visit_id: int, form_code: str) -> tuple[HttpResponse, Saved | None]:
    # Locked here and handed to the service, which then need not read it again nor take a savepoint of its own;
    # the page's transaction is the outermost one, so a deadlock runs it again whole.
    visit = visit_for_entry(user=request.user, visit_id=visit_id)
    return _save(request, visit, form_or_404(visit, form_code))


def _save(request: HttpRequest, visit: Visit, spec: FormSpec) -> tuple[HttpResponse, Saved | None]:
    form = FormEntryForm(request.POST, spec=spec, visit_id=visit.pk)
    if not form.is_valid():
        return _form_page(request, visit, spec, form, status=400), None
    values, missing = form.entries()
    try:
        result = form_save_locked(
            user=request.user,
            visit=visit,
            form_code=spec.code,
            version=form.cleaned_data["version"],
            values=values,
            missing=missing,
            reason=form.cleaned_data["reason"],
            complete="complete" in request.POST,
        )
    except (StaleVersionError, InvalidInput, LockedError) as error:
        raise _Refused(visit, spec, form, error) from error
    following = next_form(visit, spec.code)
    if following is not None and request.POST.get("next") == following.code:
        return redirect("capture:form", visit_id=visit.pk, form_code=following.code), (visit, spec, result)
    return redirect("capture:visit", visit_id=visit.pk), (visit, spec, result)


def _refused_page(request: HttpRequest, refused: _Refused) -> HttpResponse:
    visit, spec, form, error = refused.visit, refused.spec, refused.form, refused.error
    if isinstance(error, StaleVersionError):
        # Keep every entry; the next save is built on the version now stored, which the page shows beside them.
        form = FormEntryForm(_with_version(request.POST, error.current_version), spec=spec, visit_id=visit.pk)
        form.is_valid()
        return _form_page(request, visit, spec, form, status=409, conflict=str(error))
    if isinstance(error, InvalidInput):
        form.add_domain_errors(error.errors)
        return _form_page(request, visit, spec, form, status=400)
    return _form_page(request, visit, spec, None, status=error.http_status, locked=str(error))


def _with_version(data: QueryDict, version: int) -> QueryDict:
    data = data.copy()
    data["version"] = str(version)
    return data


def _report_save(request: HttpRequest, visit: Visit, spec: FormSpec, result: FormSaveResult) -> None:
    text = _("%(form)s of %(visit)s saved (version %(version)d).") % {
        "form": in_language(spec.definition.name, spec.definition.name_zh),
        "visit": visit.definition.code,
        "version": result.form.version,
    }
    flagged = sum(1 for item in result.items.values() if item.flags)
    if flagged:
        text += " " + ngettext("%(count)d value is flagged.", "%(count)d values are flagged.", flagged) % {
            "count": flagged
        }
    if result.queries_opened:
        text += " " + ngettext(
            "%(count)d query was raised.", "%(count)d queries were raised.", result.queries_opened
        ) % {"count": result.queries_opened}
    messages.success(request, text)


def _form_page(
    request: HttpRequest,
    visit: Visit,
    spec: FormSpec,
    form: FormEntryForm | None,
    review: FormReview | None = None,
    *,
    status: int = 200,
    conflict: str = "",
    locked: str = "",
) -> HttpResponse:
    review = review or page_selectors.form_review(visit, spec)
    if review.locked:
        form = None  # locked data show no inputs to anyone
    instance = review.instance
    context = {
        "visit": visit,
        "participant": visit.participant,
        "spec": spec,
        "instance": instance,
        "form": form,
        "groups": item_groups(spec, review.current, review.queries, form),
        "ask_reason": bool(instance and instance.first_completed_at),
        "conflict": conflict,
        "review": review,
        "may": page_selectors.review_permissions(request.user, visit.participant.site_id),
        "locked_error": locked,
        "next_form": next_form(visit, spec.code) if form else None,
    }
    return render(request, "capture/form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def check_item(request: HttpRequest, visit_id: int, form_code: str, item_code: str) -> HttpResponse:
    """The flags of one value as it is typed (an htmx fragment). Writes nothing."""
    visit = visit_or_404(request.user, visit_id)
    access.require(request.user, Action.ENTER_DATA, visit.participant.site_id)
    spec = form_or_404(visit, form_code)
    item = page_selectors.entered_item_or_404(spec, item_code)
    data = request.POST if request.method == "POST" else request.GET
    check = page_selectors.item_check(visit, item, data.get(item_code, ""))
    context = {"item": item, "visit": visit, "flags": check.flags, "error": check.error}
    return render(request, "capture/_item_flags.html", context)


@login_required
@require_http_methods(["GET"])
def form_audit(request: HttpRequest, visit_id: int, form_code: str, item_code: str = "") -> HttpResponse:
    visit = visit_or_404(request.user, visit_id)
    spec = form_or_404(visit, form_code)
    item = page_selectors.item_or_404(spec, item_code) if item_code else None
    context = {
        "visit": visit,
        "participant": visit.participant,
        "spec": spec,
        "item": item,
        "lines": page_selectors.audit_lines(visit, spec, item_code),
    }
    return render(request, "capture/audit.html", context)
