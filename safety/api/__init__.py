"""The REST API of the adverse event log and of survival: a thin door to `safety.services`.

Serializers only parse and present; every event is reached through `safety.services.adverse_events_visible`
(another site's event is 404, a role without the action 403) and every write is one service, whose domain errors
`trial.api_errors` turns into HTTP statuses: InvalidInput 400 keyed by field, StaleVersionError 409 with
`current_version`, LockedError 423.

The lab grading's proposals are the events with `status=proposed`: list them with `?status=proposed`, and the
investigator confirms (`confirm/`) or dismisses (`dismiss/`) each.
"""

from safety.api.views import AdverseEventViewSet, DeathReportView, SurvivalViewSet

__all__ = ["AdverseEventViewSet", "DeathReportView", "SurvivalViewSet"]
