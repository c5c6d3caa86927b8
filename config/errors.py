"""Error pages in the site's layout, with the menu, a plain explanation and a way back.

Django renders its default 400 and 500 pages without the request, so the menu could not show who is logged in;
these views render with it. A 500 may come from the database itself (the menu reads the user's roles): then the
page falls back to a plain one rather than failing a second time.
"""

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

PLAIN_500 = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Server error</title></head>"
    "<body><h1>Server error (500)</h1><p>Something went wrong on our side; it has been logged. "
    "Your last change may not have been saved: please check it, then try again.</p>"
    "<p><a href='/'>Back to your home page</a></p></body></html>"
)


def _explanations() -> dict[int, tuple[str, str]]:
    return {
        400: (_("The request could not be understood"), _("The address or the data sent were not valid.")),
        403: (
            _("You may not do this"),
            _("Your role at this site does not allow this page or action. Ask your data manager if you need it."),
        ),
        404: (
            _("Page not found"),
            _("There is nothing here, or it belongs to a site you do not work at."),
        ),
        500: (
            _("Server error"),
            _(
                "Something went wrong on our side; it has been logged. Your last change may not have been saved: "
                "please check it, then try again."
            ),
        ),
    }


def render_error(request: HttpRequest, status: int, *, detail: str = "", template: str = "") -> HttpResponse:
    """The error page for `status` in the site's layout."""
    title, explanation = _explanations()[status]
    if request.path.startswith("/api/"):
        # The API's clients read JSON, as from every other refusal of the API.
        return JsonResponse({"detail": title}, status=status)
    context = {"status": status, "error_title": title, "explanation": explanation, "detail": detail}
    body = loader.get_template(template or f"{status}.html").render(context, request)
    return HttpResponse(body, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # The services' refusals say what the role may not do ("Your role does not allow screening candidates.").
    return render_error(request, 403, detail=str(exception or ""))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render_error(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    try:
        return render_error(request, 500)
    except Exception:  # the layout itself failed (database down): never fail twice
        logger.exception("The 500 page could not be rendered in the layout; a plain one was sent")
        return HttpResponse(PLAIN_500, status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent from a page that is too old (or a session that ended meanwhile): say so, and how to go on."""
    title = _("This form has expired")
    explanation = _(
        "The page was open too long, or you were logged out meanwhile, so it could not be sent safely. "
        "Nothing was saved: go back, reload the page and enter the change again."
    )
    context = {"status": 403, "error_title": title, "explanation": explanation}
    body = loader.get_template("403_csrf.html").render(context, request)
    return HttpResponse(body, status=403)
