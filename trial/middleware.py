"""A request whose path or query string holds a character no person types (a NUL, a control character) is refused.

The views and API filters validate their own parameters; this is the net under them for what a view reads
unvalidated (a page number, a filter the page ignores), so a NUL never reaches PostgreSQL, which refuses it with a
database error. The API answers 400 with the parameter's name as the field; a page answers a plain 400.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.translation import gettext as _

from trial.validators import text_problem


class HostileRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        errors = request_problems(request)
        if not errors:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse(errors, status=400)
        return HttpResponseBadRequest(" ".join(message for messages in errors.values() for message in messages))


def request_problems(request: HttpRequest) -> dict[str, list[str]]:
    """{parameter: [message]} for the query parameters (and "path" for the path) that hold a refused character."""
    problems = {}
    path_problem = text_problem(request.path, multiline=False)
    if path_problem:
        problems["path"] = [_("The address: %(problem)s") % {"problem": path_problem}]
    for name, values in request.GET.lists():
        problem = text_problem(name, multiline=False) or next(
            (found for value in values if (found := text_problem(value, multiline=False))), None
        )
        if problem:
            problems[_printable(name)] = [problem]
    return problems


def _printable(name: str) -> str:
    # The key is echoed back: keep it free of what it was refused for.
    return name if text_problem(name, multiline=False) is None else repr(name)
