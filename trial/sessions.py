"""Idle sessions end: a session unused for SESSION_IDLE_SECONDS is logged out (21 CFR 11.300 style controls).

The last activity is written at most once a minute, so an active user's requests do not each write the session.
"""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

LAST_ACTIVITY = "last_activity"
REFRESH_SECONDS = 60


def mark_activity(sender: object, request: HttpRequest, user: object, **kwargs: object) -> None:
    """At login the session starts active (connected to user_logged_in)."""
    if request is not None and hasattr(request, "session"):
        request.session[LAST_ACTIVITY] = time.time()


class IdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            timed_out = self._timed_out(request)
            if timed_out is not None:
                return timed_out
        return self.get_response(request)

    @staticmethod
    def _timed_out(request: HttpRequest) -> HttpResponse | None:
        now = time.time()
        last = request.session.get(LAST_ACTIVITY)
        if last is not None and now - last > settings.SESSION_IDLE_SECONDS:
            logout(request)
            minutes = settings.SESSION_IDLE_SECONDS // 60
            messages.info(
                request, _("You were logged out after %(minutes)d minutes without activity.") % {"minutes": minutes}
            )
            return redirect_to_login(request.get_full_path())
        if last is None or now - last > REFRESH_SECONDS:
            request.session[LAST_ACTIVITY] = now
        return None
