"""Security headers the whole site shares.

Trial data must not stay in a browser's or a proxy's cache after the user has gone (a shared ward computer), so
every response of the application says `Cache-Control: no-store`. Static files never reach this middleware
(whitenoise answers them before), so they keep their long cache lifetime.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers


class NoStoreMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "no-store" not in response.get("Cache-Control", ""):
            add_never_cache_headers(response)
        return response
