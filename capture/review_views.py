"""The data review pages: queries and their threads, source data verification, signatures and locks.

Thin: objects are reached through trial.access and capture.page_selectors (another site's is 404, a role without
the action 403), every write is a capture.review service, and its domain errors come back on the page as
messages beside the input, never a 500. A successful write sends the browser back to the page the action was
taken from (POST-redirect-GET), at the item, query, signature or lock it concerns.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from capture import page_selectors, records, review
from capture.definitions import FormSpec
from capture.errors import OpenQueriesError, QueryTransitionError
from capture.forms import in_language
from capture.models import Lock, Query
from capture.review_forms import (
    LockForm,
    QueryMessageForm,
    QueryRaiseForm,
    RecordQueryRaiseForm,
    ReleaseForm,
    SignForm,
    VerifyForm,
)
from capture.selectors import visit_form_summaries
from capture.visits import form_or_404, visit_or_404
from trial import access
from trial.access import Action
from trial.errors import InvalidInput
from trial.models import Participant, Visit

# The query steps: the service, and what the page says once it is done.
QUERY_STEPS: dict[str, tuple[Callable[..., Query], str]] = {
    "answer": (review.query_answer, gettext_lazy("The query was answered.")),
    "close": (review.query_close, gettext_lazy("The query was closed.")),
    "reopen": (review.query_reopen, gettext_lazy("The query was re-opened.")),
}


def _permissions(request: HttpRequest, participant: Participant) -> page_selectors.ReviewPermissions:
    return page_selectors.review_permissions(request.user, participant.site_id)


def _status(form: object) -> int:
    return 400 if form.errors else 200


# --- Queries -------------------------------------------------------------------------------------------------


def query_home(query: Query) -> str:
    """Where a query is shown: at its item or in its form's queries on the form page, on the visit page, or on the
    page of its record (its own page, should the record's kind be no longer registered)."""
    if query.on_record:
        kind = records.find(query.record_type)
        if kind is None:
            return reverse("review:query", args=[query.pk])
        return kind.url(query.record_id) + f"#query-{query.pk}"
    form = query.form or (query.item.form if query.item_id else None)
    if form is None:
        return reverse("capture:visit", args=[query.visit_id]) + "#visit-queries"
    anchor = f"item-{query.item.code}" if query.item_id else "form-queries"
    return reverse("capture:form", args=[query.visit_id, form.code]) + f"#{anchor}"


@login_required
@require_http_methods(["GET", "POST"])
def query_raise(request: HttpRequest, visit_id: int) -> HttpResponse:
    """Raise a query on an item, a form or the visit (the pages post here; a refused one is shown here)."""
    visit = visit_or_404(request.user, visit_id, Action.RAISE_QUERY)
    initial = {"form": request.GET.get("form", ""), "item": request.GET.get("item", "")}
    form = QueryRaiseForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            query = review.query_raise(
                user=request.user,
                visit_id=visit.pk,
                message=data["message"],
                form_code=data["form"],
                item_code=data["item"],
            )
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        else:
            messages.success(request, _("The query was raised; the site will answer it."))
            return redirect(query_home(query))
    target = page_selectors.query_target(visit, form["form"].value() or "", form["item"].value() or "")
    context = {"visit": visit, "participant": visit.participant, "form": form, "target": target}
    return render(request, "capture/review/query_raise.html", context, status=_status(form))


@login_required
@require_http_methods(["GET", "POST"])
def record_query_raise(request: HttpRequest, record_type: str, record_id: int) -> HttpResponse:
    """Raise a query on a record that is not an item of a visit (an adverse event), or on one of its fields."""
    form = RecordQueryRaiseForm(request.POST or None, initial={"field_code": request.GET.get("field", "")})
    target = page_selectors.record_target_or_404(
        request.user, record_type, record_id, form["field_code"].value() or "", Action.RAISE_QUERY
    )
    if request.method == "POST" and form.is_valid():
        try:
            query = review.query_raise_on_record(
                user=request.user,
                record_type=record_type,
                record_id=record_id,
                message=form.cleaned_data["message"],
                field_code=form.cleaned_data["field_code"],
            )
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        else:
            messages.success(request, _("The query was raised; the site will answer it."))
            return redirect(query_home(query))
    context = {"record": target, "participant": target.participant, "form": form}
    return render(request, "capture/review/record_query_raise.html", context, status=_status(form))


@login_required
@require_http_methods(["GET"])
def query_detail(request: HttpRequest, query_id: int) -> HttpResponse:
    """One query with its whole thread and the steps the user may take."""
    query = page_selectors.query_or_404(request.user, query_id)
    return _query_page(request, query, QueryMessageForm())


@login_required
@require_POST
def query_step(request: HttpRequest, query_id: int, step: str) -> HttpResponse:
    """Answer, close or re-open a query; a refused step is shown on the query's page with the message kept."""
    query = page_selectors.query_or_404(request.user, query_id)
    form = QueryMessageForm(request.POST)
    if form.is_valid():
        service, done = QUERY_STEPS[step]
        try:
            service(user=request.user, query_id=query.pk, message=form.cleaned_data["message"])
        except (InvalidInput, QueryTransitionError) as refused:
            form.add_domain_errors(refused.errors)
        else:
            messages.success(request, str(done))
            return redirect(query_home(query))
    return _query_page(request, query, form, step=step)


def _query_page(request: HttpRequest, query: Query, form: QueryMessageForm, *, step: str = "") -> HttpResponse:
    may = _permissions(request, query.participant)
    context = {
        "query": query,
        "visit": query.visit,
        "participant": query.participant,
        "form": form,
        "step": step,
        "steps": page_selectors.query_steps(query, may),
        "home": query_home(query),
        "may": may,
    }
    return render(request, "capture/review/query.html", context, status=_status(form))


# --- Source data verification --------------------------------------------------------------------------------


@login_required
@require_POST
def verify(request: HttpRequest, visit_id: int, form_code: str) -> HttpResponse:
    """Mark the selected items of a form (or all of them) as verified against the source documents."""
    visit = visit_or_404(request.user, visit_id)
    spec = form_or_404(visit, form_code)
    access.require(request.user, Action.VERIFY, visit.participant.site_id)
    form = VerifyForm(request.POST, spec=spec)
    if form.is_valid():
        try:
            count = review.items_verify(
                user=request.user, visit_id=visit.pk, form_code=spec.code, item_codes=form.item_codes()
            )
        except InvalidInput as invalid:
            messages.error(request, " ".join(m for errors in invalid.errors.values() for m in errors))
        else:
            messages.success(request, _verified_message(count))
    else:
        messages.error(request, " ".join(m for errors in form.errors.values() for m in errors))
    return redirect(reverse("capture:form", args=[visit.pk, spec.code]) + "#verification")


def _verified_message(count: int) -> str:
    if not count:
        return _("Nothing new was verified: those items were verified before, or hold no value.")
    return ngettext("%(count)d item verified.", "%(count)d items verified.", count) % {"count": count}


# --- Signatures ----------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def visit_sign(request: HttpRequest, visit_id: int) -> HttpResponse:
    """The investigator signs the visit's data, entering their password again."""
    visit = visit_or_404(request.user, visit_id, Action.SIGN)
    form = SignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            review.visit_sign(
                user=request.user, visit_id=visit.pk, password=form.cleaned_data["password"], request=request
            )
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        else:
            messages.success(request, _("You signed visit %(visit)s.") % {"visit": visit.definition.code})
            return redirect(reverse("capture:visit", args=[visit.pk]) + "#signatures")
    context = {
        "visit": visit,
        "participant": visit.participant,
        "form": form,
        "meaning": review.SIGNATURE_MEANING,
        "forms": visit_form_summaries(visit),
    }
    return render(request, "capture/review/sign.html", context, status=_status(form))


@login_required
@require_http_methods(["GET", "POST"])
def casebook_sign(request: HttpRequest, participant_id: int) -> HttpResponse:
    """The investigator signs the participant's whole casebook as it stands."""
    participant = access.participant_or_404(request.user, participant_id, Action.SIGN)
    form = SignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            review.casebook_sign(
                user=request.user,
                participant_id=participant.pk,
                password=form.cleaned_data["password"],
                request=request,
            )
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        else:
            messages.success(request, _("You signed the casebook."))
            return redirect(reverse("review:participant", args=[participant.pk]) + "#signatures")
    context = {"participant": participant, "form": form, "meaning": review.SIGNATURE_MEANING}
    return render(request, "capture/review/sign.html", context, status=_status(form))


# --- Locks ---------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def participant_review(request: HttpRequest, participant_id: int) -> HttpResponse:
    """The participant's signatures and locks: where the casebook is signed and the participant locked."""
    participant = access.participant_or_404(request.user, participant_id)
    context = {
        "participant": participant,
        "review": page_selectors.participant_review(participant),
        "may": _permissions(request, participant),
    }
    return render(request, "capture/review/participant.html", context)


@dataclass(frozen=True)
class LockScope:
    """What a lock covers: the participant, one visit, or one form of a visit."""

    participant: Participant
    visit: Visit | None = None
    spec: FormSpec | None = None

    @property
    def home(self) -> str:
        return _locks_url(
            self.participant.pk, self.visit.pk if self.visit else None, self.spec.code if self.spec else ""
        )

    @property
    def name(self) -> str:
        subject = self.participant.subject_id or self.participant.screening_number
        if self.spec is not None:
            form = in_language(self.spec.definition.name, self.spec.definition.name_zh)
            return _("%(form)s of visit %(visit)s of %(subject)s") % {
                "form": form,
                "visit": self.visit.definition.code,
                "subject": subject,
            }
        if self.visit is not None:
            return _("Visit %(visit)s of %(subject)s") % {"visit": self.visit.definition.code, "subject": subject}
        return _("All data of %(subject)s") % {"subject": subject}


@login_required
@require_http_methods(["GET", "POST"])
def participant_lock(request: HttpRequest, participant_id: int) -> HttpResponse:
    participant = access.participant_or_404(request.user, participant_id, Action.LOCK)
    return _lock_page(request, LockScope(participant=participant))


@login_required
@require_http_methods(["GET", "POST"])
def visit_lock(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request.user, visit_id, Action.LOCK)
    return _lock_page(request, LockScope(participant=visit.participant, visit=visit))


@login_required
@require_http_methods(["GET", "POST"])
def form_lock(request: HttpRequest, visit_id: int, form_code: str) -> HttpResponse:
    visit = visit_or_404(request.user, visit_id)
    spec = form_or_404(visit, form_code)
    access.require(request.user, Action.LOCK, visit.participant.site_id)
    return _lock_page(request, LockScope(participant=visit.participant, visit=visit, spec=spec))


def _lock_page(request: HttpRequest, scope: LockScope) -> HttpResponse:
    """Lock with a reason; with queries still open, say how many and ask to confirm (409 until confirmed)."""
    form = LockForm(request.POST or None)
    open_queries = None
    if request.method == "POST" and form.is_valid():
        try:
            review.lock_set(
                user=request.user,
                participant_id=scope.participant.pk,
                visit_id=scope.visit.pk if scope.visit else None,
                form_code=scope.spec.code if scope.spec else "",
                reason=form.cleaned_data["reason"],
                confirm_open_queries=form.cleaned_data["confirm_open_queries"],
            )
        except OpenQueriesError as error:
            open_queries = error
        except InvalidInput as invalid:
            form.add_domain_errors(invalid.errors)
        else:
            messages.success(request, _("Locked: %(scope)s.") % {"scope": scope.name})
            return redirect(scope.home)
    context = {"scope": scope, "participant": scope.participant, "form": form, "open_queries": open_queries}
    status = 409 if open_queries else _status(form)
    return render(request, "capture/review/lock.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def lock_release(request: HttpRequest, lock_id: int) -> HttpResponse:
    """Release a lock, with the reason: the data become editable again unless another lock covers them."""
    lock = page_selectors.lock_or_404(request.user, lock_id)
    access.require(request.user, Action.LOCK, lock.participant.site_id)
    form = ReleaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            review.lock_release(user=request.user, lock_id=lock.pk, reason=form.cleaned_data["reason"])
        except (InvalidInput, QueryTransitionError) as refused:
            form.add_domain_errors(refused.errors)
        else:
            messages.success(request, _("The lock was released."))
            return redirect(_lock_home(lock))
    context = {"lock": lock, "participant": lock.participant, "form": form, "home": _lock_home(lock)}
    return render(request, "capture/review/lock_release.html", context, status=_status(form))


def _lock_home(lock: Lock) -> str:
    return _locks_url(lock.participant_id, lock.visit_id, lock.form.code if lock.form_id else "")


def _locks_url(participant_id: int, visit_id: int | None, form_code: str) -> str:
    """The page that shows the locks of a scope: the form page, the visit page, or the participant's review."""
    if form_code:
        return reverse("capture:form", args=[visit_id, form_code]) + "#locks"
    if visit_id:
        return reverse("capture:visit", args=[visit_id]) + "#locks"
    return reverse("review:participant", args=[participant_id]) + "#locks"
