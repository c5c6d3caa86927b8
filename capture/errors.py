from trial.errors import DomainError


class StaleVersionError(DomainError):
    """The form changed since the user loaded it; their save would overwrite someone else's."""

    http_status = 409

    def __init__(self, message: str, *, current_version: int) -> None:
        self.current_version = current_version
        super().__init__(message)

    def api_details(self) -> dict[str, object]:
        return {"current_version": self.current_version}
