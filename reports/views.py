"""The exports page: where data managers and the sponsor download the trial's data, for all their sites or one.

Thin: the sites come from trial/access.py; the links go to the export API, which checks, records and streams.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from trial import access
from trial.access import Action


@login_required
@require_http_methods(["GET"])
def exports(request: HttpRequest) -> HttpResponse:
    sites = list(access.sites(request.user, Action.EXPORT).order_by("number"))
    if not sites:
        raise PermissionDenied(_("Your role does not allow exporting trial data."))
    return render(request, "reports/exports.html", {"sites": sites})
