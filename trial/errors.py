"""Domain errors. Views turn them into field-level messages, the API into HTTP statuses; never a 500."""

from django.core.exceptions import PermissionDenied


class DomainError(Exception):
    """A refused action. `errors` maps a field (or "__all__") to its messages.

    The API answers `http_status`: 400 (field-level messages) unless a subclass's refusal is not about the input,
    as a stale save (409) is; such an answer carries `detail` and the subclass's `api_details()`.
    """

    http_status: int = 400

    def __init__(self, message: str = "", *, errors: dict[str, list[str]] | None = None) -> None:
        self.errors = errors or {"__all__": [message]}
        super().__init__(message or "; ".join(m for msgs in self.errors.values() for m in msgs))

    def api_details(self) -> dict[str, object]:
        """JSON-safe facts, beside the message, that let a client recover (none by default)."""
        return {}


class InvalidInput(DomainError):
    """Values that break a rule of the protocol (a hard range, a date order, a missing answer)."""


class EligibilityError(DomainError):
    """The candidate does not meet the protocol's criteria, or is not in a state that allows enrolment."""


class AccessDenied(PermissionDenied):
    """The user may see the object but not do this to it (for objects they may not see, answer 404)."""
