"""The API's exception handler: domain errors become HTTP statuses with field-level messages, never a 500.

InvalidInput and EligibilityError answer 400 shaped like a serializer's errors ({field: [messages]}, the
"__all__" key renamed to DRF's non-field key), so a client reads every refusal the same way. A domain error whose
class names another `http_status` (a stale form save: 409) answers {"detail": message, **error.api_details()};
the class says so itself, so trial needs no import of the apps that raise it. AccessDenied is a PermissionDenied
(403) and Http404 a 404; DRF's own handler already maps those two.
"""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from trial.errors import DomainError


def domain_error_detail(exc: DomainError) -> dict[str, list[str]]:
    """The error's messages keyed by field, with "__all__" under DRF's non-field key."""
    return {
        (api_settings.NON_FIELD_ERRORS_KEY if field == "__all__" else field): [str(m) for m in messages]
        for field, messages in exc.errors.items()
    }


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError) and exc.http_status != status.HTTP_400_BAD_REQUEST:
        set_rollback()
        return Response({"detail": str(exc), **exc.api_details()}, status=exc.http_status)
    if isinstance(exc, DomainError):
        exc = exceptions.ValidationError(domain_error_detail(exc))
    return drf_exception_handler(exc, context)
