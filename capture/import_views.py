"""Pages of the bulk lab import. Thin: the file, the preview and the writes are capture/lab_import.py's."""

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods

from capture import lab_import as imports
from capture.lab_import import COLUMNS, LAB_FORMS, MAX_BYTES, MAX_ROWS
from capture.models import LabImport, LabImportState
from trial import access
from trial.access import Action
from trial.errors import InvalidInput
from trial.forms import DomainErrorsMixin, SiteChoiceField
from trial.models import Site

RECENT = 10


class LabImportForm(DomainErrorsMixin, forms.Form):
    site = SiteChoiceField(label=gettext_lazy("Site"), queryset=Site.objects.none())
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy("One laboratory's results, saved from Excel as CSV (UTF-8 or GB18030)."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def __init__(self, *args: object, sites: QuerySet[Site], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        first_two = list(sites[:2])
        self.only_site = first_two[0] if len(first_two) == 1 else None
        if self.only_site is not None:
            self.fields["site"].widget = forms.HiddenInput()
            self.fields["site"].initial = self.only_site.pk
            self.fields["site"].required = False
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True  # the page's form tag carries the token
        self.helper.add_input(Submit("submit", gettext_lazy("Upload and preview")))

    def clean_site(self) -> Site | None:
        # With one site there is nothing to choose: a request without the hidden field still means that site.
        return self.cleaned_data.get("site") or self.only_site


def _require_data_entry(request: HttpRequest) -> None:
    if not access.can_anywhere(request.user, Action.ENTER_DATA):
        raise PermissionDenied(_("Your role does not allow entering data."))


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    _require_data_entry(request)
    form = LabImportForm(
        request.POST or None, request.FILES or None, sites=access.sites(request.user, Action.ENTER_DATA)
    )
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            lab_import = imports.lab_import_upload(
                user=request.user,
                site=form.cleaned_data["site"],
                file_name=upload.name,
                data=upload.read(MAX_BYTES + 1),  # one byte more than allowed tells a file that is too large
            )
        except InvalidInput as exc:
            form.add_domain_errors(exc.errors)
        else:
            return redirect("lab_import:preview", pk=lab_import.pk)
    context = {
        "form": form,
        "recent": imports.lab_imports(request.user).select_related("site").order_by("-uploaded_at")[:RECENT],
        "columns": COLUMNS,
        "lab_forms": LAB_FORMS,
        "conversions": imports.conversion_table(),
        "max_rows": MAX_ROWS,
        "max_megabytes": MAX_BYTES // 2**20,
    }
    return render(request, "capture/import_upload.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def preview(request: HttpRequest, pk: int) -> HttpResponse:
    _require_data_entry(request)
    lab_import = access.get_or_404(imports.lab_imports(request.user).select_related("site"), pk=pk)
    if request.method == "POST":
        _decide(request, lab_import)
        return redirect("lab_import:preview", pk=lab_import.pk)
    if lab_import.state != LabImportState.PENDING:
        return render(request, "capture/import_result.html", {"lab_import": lab_import})
    context = {
        "lab_import": lab_import,
        "preview": imports.lab_import_preview(user=request.user, lab_import=lab_import),
        "reason": imports.import_reason(lab_import),
    }
    return render(request, "capture/import_preview.html", context)


def _decide(request: HttpRequest, lab_import: LabImport) -> None:
    action = request.POST.get("action")
    try:
        if action == "confirm":
            outcome = imports.lab_import_apply(user=request.user, lab_import=lab_import)
            _report_outcome(request, outcome)
        elif action == "discard":
            imports.lab_import_discard(user=request.user, lab_import=lab_import)
            messages.info(request, _("The import was discarded; nothing of it was written."))
        else:
            messages.error(request, _("Choose to confirm or to discard the import."))
    except InvalidInput as exc:
        for field_messages in exc.errors.values():
            for message in field_messages:
                messages.error(request, message)


def _report_outcome(request: HttpRequest, outcome: dict) -> None:
    written, failed = len(outcome["written"]), len(outcome["failed"])
    saved = ngettext("%(count)d form saved.", "%(count)d forms saved.", written) % {"count": written}
    if failed:
        refused = ngettext(
            "%(count)d form could not be saved: see below.", "%(count)d forms could not be saved: see below.", failed
        ) % {"count": failed}
        messages.warning(request, f"{saved} {refused}")
    else:
        messages.success(request, saved)
