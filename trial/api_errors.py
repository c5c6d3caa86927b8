"""The API's exception handler: domain errors become HTTP statuses with field-level messages, never a 500.

InvalidInput and EligibilityError answer 400 shaped like a serializer's errors ({field: [messages]}, the
"__all__" key renamed to DRF's non-field key), so a client reads every refusal the same way. AccessDenied is a
PermissionDenied (403) and Http404 a 404; DRF's own handler already maps those two.
"""

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from trial.errors import DomainError


def domain_error_detail(exc: DomainError) -> dict[str, list[str]]:
    """The error's messages keyed by field, with "__all__" under DRF's non-field key."""
    return {
        (api_settings.NON_FIELD_ERRORS_KEY if field == "__all__" else field): [str(m) for m in messages]
        for field, messages in exc.errors.items()
    }


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        exc = exceptions.ValidationError(domain_error_detail(exc))
    return drf_exception_handler(exc, context)
