from trial.errors import DomainError


class StaleVersionError(DomainError):
    """The form changed since the user loaded it; their save would overwrite someone else's."""

    http_status = 409

    def __init__(self, message: str, *, current_version: int) -> None:
        self.current_version = current_version
        super().__init__(message)

    def api_details(self) -> dict[str, object]:
        return {"current_version": self.current_version}


class LockedError(DomainError):
    """The data are locked by a data manager; nobody may change them until the lock is released."""

    http_status = 423


class QueryTransitionError(DomainError):
    """The query is not in a state that allows this step (answering a closed query, closing it twice...)."""


class OpenQueriesError(DomainError):
    """Locking would freeze data with queries still open; the data manager must confirm."""

    http_status = 409

    def __init__(self, message: str, *, open_queries: int) -> None:
        self.open_queries = open_queries
        super().__init__(message)

    def api_details(self) -> dict[str, object]:
        return {"open_queries": self.open_queries}
