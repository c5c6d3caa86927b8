"""The data-review inboxes: the site's queries to answer, the monitor's list of every query, and SDV progress.

Thin: the lists come from capture/inbox_selectors.py, built on capture.review.queries_visible and trial/access.py.
A role that does not work on queries (the sponsor, who never reads query text) is refused with 403.
"""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from capture import inbox_selectors as selectors
from capture.models import QueryOrigin, QueryState
from trial.models import Site
from trial.pagination import CountedPaginator
from trial.templatetags.trial_tags import localized

PAGE_SIZE = 50


def _site_choices(sites: list[Site]) -> list[tuple[str, str]]:
    return [
        ("", _("All sites")),
        *((str(site.number), f"{site.number:02d} {localized(site, 'name')}") for site in sites),
    ]


def _style(form: forms.Form) -> None:
    for field in form.fields.values():
        is_select = isinstance(field.widget, forms.Select)
        field.widget.attrs["class"] = "form-select form-select-sm" if is_select else "form-control form-control-sm"


class SiteFilterForm(forms.Form):
    """Narrows a page to one of the sites the user reviews; its choices come from a list already read."""

    site = forms.TypedChoiceField(label=gettext_lazy("Site"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args: object, sites: list[Site], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = _site_choices(sites)
        _style(self)

    def valid_data(self) -> dict[str, object]:
        """The fields that are valid; an invalid one (say, another site's number) narrows nothing."""
        self.is_valid()
        return self.cleaned_data


class QueryFilterForm(SiteFilterForm):
    state = forms.ChoiceField(
        label=gettext_lazy("State"), required=False, choices=[("", gettext_lazy("All states")), *QueryState.choices]
    )
    older_than = forms.IntegerField(
        label=gettext_lazy("Older than (days)"), required=False, min_value=0, max_value=36500
    )
    newer_than = forms.IntegerField(
        label=gettext_lazy("At most (days old)"), required=False, min_value=0, max_value=36500
    )
    form = forms.CharField(label=gettext_lazy("Form"), required=False, max_length=16)
    participant = forms.CharField(label=gettext_lazy("Participant (subject ID)"), required=False, max_length=16)
    origin = forms.ChoiceField(
        label=gettext_lazy("Origin"), required=False, choices=[("", gettext_lazy("Any origin")), *QueryOrigin.choices]
    )

    def filters(self) -> selectors.QueryFilters:
        data = self.valid_data()
        return selectors.QueryFilters(
            site_number=data.get("site"),
            state=data.get("state") or "",
            older_than_days=data.get("older_than"),
            newer_than_days=data.get("newer_than"),
            form_code=data.get("form") or "",
            subject_id=data.get("participant") or "",
            origin=data.get("origin") or "",
        )


def _require_entry(request: HttpRequest) -> None:
    if not selectors.entry_site_ids(request.user):
        raise PermissionDenied(_("Only site staff who enter data answer queries."))


def _require_review(request: HttpRequest) -> None:
    if not selectors.review_site_ids(request.user):
        raise PermissionDenied(_("Only monitors and data managers review queries and verification."))


@login_required
@require_http_methods(["GET"])
def mine(request: HttpRequest) -> HttpResponse:
    _require_entry(request)
    state = request.GET.get("state", "")
    counts = selectors.my_query_counts(request.user)
    total = selectors.my_queries_total(counts, state)
    queryset = selectors.my_queries(request.user, state=state)
    page = CountedPaginator(queryset, PAGE_SIZE, total=total).get_page(request.GET.get("page"))
    context = {
        "counts": counts,
        "state": state if state in QueryState.values else "",
        "page": page,
        "rows": selectors.query_rows(page.object_list, now=timezone.now()),
    }
    return render(request, "capture/inbox_mine.html", context)


@login_required
@require_http_methods(["GET"])
def queries(request: HttpRequest) -> HttpResponse:
    _require_review(request)
    sites = selectors.review_sites(request.user)
    filter_form = QueryFilterForm(request.GET, sites=sites)
    now = timezone.now()
    filters = filter_form.filters()
    queryset = selectors.review_queries(request.user, filters=filters, now=now)
    total = selectors.review_queries_total(sites, filters)
    page = CountedPaginator(queryset, PAGE_SIZE, total=total).get_page(request.GET.get("page"))
    context = {"filter_form": filter_form, "page": page, "rows": selectors.query_rows(page.object_list, now=now)}
    return render(request, "capture/inbox_queries.html", context)


@login_required
@require_http_methods(["GET"])
def sdv(request: HttpRequest) -> HttpResponse:
    _require_review(request)
    site_rows = selectors.sdv_by_site(request.user)
    filter_form = SiteFilterForm(request.GET, sites=[row.subject for row in site_rows])
    site_number = filter_form.valid_data().get("site")
    participants = selectors.sdv_participants(request.user, site_number=site_number)
    total = selectors.sdv_participants_total(request.user, site_number=site_number)
    page = CountedPaginator(participants, PAGE_SIZE, total=total).get_page(request.GET.get("page"))
    context = {
        "site_rows": site_rows,
        "filter_form": filter_form,
        "page": page,
        "rows": selectors.sdv_rows(page.object_list),
    }
    return render(request, "capture/inbox_sdv.html", context)
