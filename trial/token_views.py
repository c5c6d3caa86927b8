"""The user's API tokens on a page (list, revoke one), and the page logout that ends them with the session."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from trial import tokens


@login_required
@require_http_methods(["GET"])
def token_list(request: HttpRequest) -> HttpResponse:
    rows = [(token, tokens.latest_expiry(token)) for token in tokens.api_tokens(request.user)]
    return render(request, "trial/tokens.html", {"rows": rows})


@login_required
@require_http_methods(["POST"])
def token_revoke(request: HttpRequest, key: str) -> HttpResponse:
    if tokens.api_token_revoke(user=request.user, key=key):
        messages.success(request, _("The API token %(key)s… was revoked.") % {"key": key[:8]})
    else:
        messages.error(request, _("You have no API token %(key)s….") % {"key": key[:8]})
    return redirect("trial:tokens")


class LogoutView(auth_views.LogoutView):
    """An explicit logout ends the session and every API token of the user: the person has left the keyboard, and
    a token issued under their name must not outlive that. (A session that times out keeps the tokens.)"""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.user.is_authenticated:
            tokens.api_tokens_revoke_all(user=request.user)
        return super().post(request, *args, **kwargs)
