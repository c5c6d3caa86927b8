"""The safety API's views: each reaches its event through the services and calls one service."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from capture.review_api import NOT_FOUND, forbidden
from safety import api_selectors, services, survival
from safety.api.schema import (
    CONFIRM_EXAMPLE,
    CONFLICT_EXAMPLE,
    CREATE_EXAMPLE,
    DEATH_EXAMPLE,
    DISMISS_EXAMPLE,
    EVENT_EXAMPLE,
    FIELD_ERRORS,
    FIELD_ERRORS_EXAMPLE,
    LOCKED,
    SERIOUS_EXAMPLE,
    SURVIVAL_EXAMPLE,
    write_responses,
)
from safety.api.serializers import (
    INPUT_FIELDS,
    AdverseEventConfirmSerializer,
    AdverseEventCreateSerializer,
    AdverseEventDetailSerializer,
    AdverseEventDismissSerializer,
    AdverseEventFilterSerializer,
    AdverseEventSerializer,
    AdverseEventSignSerializer,
    AdverseEventUpdateSerializer,
    AdverseEventVersionSerializer,
    DeathReportInputSerializer,
    DeathReportSerializer,
    SurvivalFilterSerializer,
    SurvivalSerializer,
    parsed,
)
from safety.models import (
    AdverseEvent,
    DeathReport,
)
from safety.rules import AdverseEventInput
from safety.selectors import death_report_of
from safety.tallies import ADVERSE_EVENTS
from trial import access
from trial.access import Action
from trial.api import TrialAccessPermission
from trial.tallies import Tally

# --- Views -------------------------------------------------------------------------------------------------


class SafetyViewSet(viewsets.GenericViewSet):
    permission_classes = [TrialAccessPermission]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    lookup_value_regex = r"\d+"
    # {viewset action: the trial Action it needs}; a write not named here is refused.
    write_actions: dict[str, Action] = {}

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "now": timezone.now()}

    def query_filters(self, serializer_class: type[serializers.Serializer]) -> dict:
        return parsed(serializer_class, self.request.query_params).validated_data


@extend_schema(tags=["adverse-events"])
@extend_schema_view(
    list=extend_schema(
        summary="Adverse events at the user's sites",
        description=(
            "By site, subject and number; paginated (`limit`, `offset`). `?status=proposed` lists the lab "
            "grading's proposals awaiting the investigator; `?overdue=true` the serious events whose expedited "
            "notices are still unsent 24 hours on."
        ),
        parameters=[AdverseEventFilterSerializer],
    ),
    retrieve=extend_schema(
        summary="An adverse event with its lab origin, review state and expedited notices",
        responses={200: AdverseEventDetailSerializer, 404: NOT_FOUND},
    ),
)
class AdverseEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, SafetyViewSet):
    """The adverse event log of the participants at the user's sites. Another site's event does not exist."""

    write_actions = {
        "create": Action.ENTER_DATA,
        "update": Action.ENTER_DATA,
        "partial_update": Action.ENTER_DATA,
        "confirm": Action.ASSESS_SAFETY,
        "dismiss": Action.ASSESS_SAFETY,
        "verify": Action.VERIFY,
        "sign": Action.SIGN,
    }

    def get_queryset(self) -> QuerySet[AdverseEvent]:
        if self.action == "list":
            return self._filtered(api_selectors.adverse_events_listed(self.request.user))
        return api_selectors.adverse_events_detailed(self.request.user)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return AdverseEventSerializer if self.action == "list" else AdverseEventDetailSerializer

    def tally_count(self) -> int | None:
        """The list's total from the site tallies (trial/tallies.py) when it is narrowed by site and status alone."""
        filters = self.query_filters(AdverseEventFilterSerializer)
        if set(filters) - {"site", "status"}:
            return None
        tally = Tally(access.site_ids(self.request.user), site_number=filters.get("site"))
        return tally.total(ADVERSE_EVENTS.name, detail=filters.get("status"))

    def _filtered(self, queryset: QuerySet[AdverseEvent]) -> QuerySet[AdverseEvent]:
        filters = self.query_filters(AdverseEventFilterSerializer)
        lookups = {
            "participant": "participant_id",
            "subject": "subject_id",
            "site": "participant__site__number",
            "grade": "grade",
            "serious": "serious",
            "status": "status",
            "source": "source",
        }
        queryset = queryset.filter(**{lookups[name]: value for name, value in filters.items() if name in lookups})
        if "overdue" in filters:
            overdue = api_selectors.overdue_filter(timezone.now())
            queryset = queryset.filter(overdue) if filters["overdue"] else queryset.exclude(overdue)
        return queryset

    def present(self, event: AdverseEvent, status_code: int = status.HTTP_200_OK) -> Response:
        """The event as a read shows it, read again with what the serializer needs."""
        fresh = self.get_queryset().get(pk=event.pk)
        return Response(self.get_serializer(fresh).data, status=status_code)

    @extend_schema(
        summary="Report an adverse event",
        description=(
            "The site (coordinator or investigator) reports an event of an enrolled participant. Every broken "
            "rule of the AE form is **400 keyed by field** and nothing is saved. A serious (or grade 4, or "
            "fatal) event starts the 24-hour clock: `expedited_at` is set and one notice per recipient is queued. "
            "A participant not among the user's sites is 404; a role that may not enter data 403; a participant "
            "whose data are locked 423."
        ),
        request=AdverseEventCreateSerializer,
        responses=write_responses(201, "enter data", conflict=False),
        examples=[CREATE_EXAMPLE, EVENT_EXAMPLE, FIELD_ERRORS_EXAMPLE],
    )
    def create(self, request: Request) -> Response:
        data = parsed(AdverseEventCreateSerializer, request.data)
        event = services.adverse_event_report(
            user=request.user, participant_id=data.validated_data["participant"], data=data.event_input()
        )
        return self.present(event, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Correct or follow up a reported event (every field)",
        description=(
            "Replaces the assessed fields: one left out is emptied. `version` and `reason` are required; a "
            "change after source data verification is marked, and a change voids the investigator's signature. "
            "Becoming serious queues the expedited notices. A proposal is confirmed or dismissed instead (400). "
            "A stale `version` is **409** with `current_version`; locked data 423."
        ),
        request=AdverseEventUpdateSerializer,
        responses=write_responses(200, "enter data"),
        examples=[EVENT_EXAMPLE, FIELD_ERRORS_EXAMPLE, CONFLICT_EXAMPLE],
    )
    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        event = services.adverse_event_or_404(request.user, int(pk), Action.ENTER_DATA)
        data = parsed(AdverseEventUpdateSerializer, request.data, partial=partial)
        changed = services.adverse_event_update(
            user=request.user,
            event_id=event.pk,
            version=data.validated_data["version"],
            data=data.event_input(current_input(event) if partial else None),
            reason=data.validated_data.get("reason", ""),
        )
        return self.present(changed)

    @extend_schema(
        summary="Correct or follow up a reported event (the fields given)",
        description=(
            "As PUT, but a field left out keeps its value. `version` and `reason` are required; a change "
            "after source data verification is marked, and a change voids the investigator's signature."
        ),
        request=AdverseEventUpdateSerializer,
        responses=write_responses(200, "enter data"),
        examples=[SERIOUS_EXAMPLE, EVENT_EXAMPLE, FIELD_ERRORS_EXAMPLE, CONFLICT_EXAMPLE],
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)

    @extend_schema(
        summary="Confirm a lab proposal as an adverse event",
        description=(
            "The investigator assesses the abnormality the CTCAE grading proposed: the fields given replace the "
            "proposal's (term, body system and onset are proposed; grade, relationship, action and outcome must "
            "be given), and it becomes a reported event. Any role but the investigator's is 403; an event that "
            "is not a proposal 400."
        ),
        request=AdverseEventConfirmSerializer,
        responses=write_responses(200, "assess safety"),
        examples=[CONFIRM_EXAMPLE, EVENT_EXAMPLE, FIELD_ERRORS_EXAMPLE, CONFLICT_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str) -> Response:
        event = services.adverse_event_or_404(request.user, int(pk), Action.ASSESS_SAFETY)
        data = parsed(AdverseEventConfirmSerializer, request.data, partial=True)
        confirmed = services.adverse_event_confirm(
            user=request.user,
            event_id=event.pk,
            version=data.validated_data["version"],
            data=data.event_input(current_input(event)),
        )
        return self.present(confirmed)

    @extend_schema(
        summary="Dismiss a lab proposal",
        description=(
            "The investigator judges the abnormality not an adverse event; the reason is required (400 keyed "
            "`reason`). Any role but the investigator's is 403; an event that is not a proposal 400."
        ),
        request=AdverseEventDismissSerializer,
        responses=write_responses(200, "assess safety"),
        examples=[DISMISS_EXAMPLE, CONFLICT_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str) -> Response:
        event = services.adverse_event_or_404(request.user, int(pk), Action.ASSESS_SAFETY)
        data = parsed(AdverseEventDismissSerializer, request.data).validated_data
        dismissed = services.adverse_event_dismiss(
            user=request.user, event_id=event.pk, version=data["version"], reason=data["reason"]
        )
        return self.present(dismissed)

    @extend_schema(
        summary="Verify a reported event against the source",
        description=(
            "Source data verification by the monitor; a later change marks `changed_since_verification`. Any "
            "role but the monitor's is 403; a proposal or dismissed event 400."
        ),
        request=AdverseEventVersionSerializer,
        responses=write_responses(200, "verify data", locked=False),
        examples=[CONFLICT_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str) -> Response:
        event = services.adverse_event_or_404(request.user, int(pk), Action.VERIFY)
        data = parsed(AdverseEventVersionSerializer, request.data).validated_data
        return self.present(services.adverse_event_verify(user=request.user, event_id=event.pk, **data))

    @extend_schema(
        summary="Sign a reported event",
        description=(
            "The investigator signs the assessment, entering their password again (21 CFR 11.200); a wrong "
            "password is 400 keyed `password`. A later change voids the signature. Any role but the "
            "investigator's is 403."
        ),
        request=AdverseEventSignSerializer,
        responses=write_responses(200, "sign", locked=False),
        examples=[CONFLICT_EXAMPLE],
    )
    @action(detail=True, methods=["post"])
    def sign(self, request: Request, pk: str) -> Response:
        event = services.adverse_event_or_404(request.user, int(pk), Action.SIGN)
        data = parsed(AdverseEventSignSerializer, request.data).validated_data
        return self.present(services.adverse_event_sign(user=request.user, event_id=event.pk, request=request, **data))


def current_input(event: AdverseEvent) -> AdverseEventInput:
    """The event's assessed fields as they stand: what a partial change starts from."""
    return AdverseEventInput(**{name: getattr(event, name) for name in INPUT_FIELDS})


@extend_schema(tags=["survival"])
@extend_schema_view(
    list=extend_schema(
        summary="Survival of the enrolled participants at the user's sites",
        description=(
            "Derived, never typed: time from enrolment to the death (`died`), or to the last day known alive "
            "(`censored`), from the death reports, the survival follow-up contacts and the visits. By site and "
            "subject; paginated (`limit`, `offset`)."
        ),
        parameters=[SurvivalFilterSerializer],
        examples=[SURVIVAL_EXAMPLE],
    )
)
class SurvivalViewSet(mixins.ListModelMixin, SafetyViewSet):
    serializer_class = SurvivalSerializer

    def tally_count(self) -> int:
        """The followed participants of the user's sites (of a site, of an arm), from the site tallies."""
        filters = self.query_filters(SurvivalFilterSerializer)
        tally = Tally(access.site_ids(self.request.user), site_number=filters.get("site"))
        arms = [filters["arm"]] if "arm" in filters else None
        return tally.participants(statuses=survival.FOLLOWED_STATUSES, arm_codes=arms, enrolled=True)

    def list(self, request: Request) -> Response:
        filters = self.query_filters(SurvivalFilterSerializer)
        followed = api_selectors.survival_followed(
            request.user, site_number=filters.get("site"), arm_code=filters.get("arm")
        )
        # A page of participants first, then the survival of that page alone: the work does not grow with the trial.
        page = api_selectors.survival_rows(self.paginate_queryset(followed))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


@extend_schema(tags=["survival"])
class DeathReportView(APIView):
    """A participant's death report: one per participant, reported by the site."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        summary="A participant's death report",
        responses={200: DeathReportSerializer, 404: OpenApiResponse(description="No such participant, or no death.")},
    )
    def get(self, request: Request, participant_id: int) -> Response:
        report = death_report_of(access.participant_or_404(request.user, participant_id))
        if report is None:
            raise Http404(_("No death is reported for this participant."))
        return Response(DeathReportSerializer(report).data)

    @extend_schema(
        summary="Report a participant's death",
        description=(
            "The site (coordinator or investigator) records the death: the participant's status becomes died, "
            "their schedule ends (visits after the death that hold no data are removed) and the survival rows "
            "show the event. The latest reported fatal adverse event is linked. A date in the future, before "
            "enrolment or before a reported event's onset, an empty cause or a relationship not of the choices is "
            "400 keyed by field; a death already reported 400; a role that may not enter data 403; another "
            "site's participant 404; locked data 423."
        ),
        request=DeathReportInputSerializer,
        responses={
            201: DeathReportSerializer,
            400: FIELD_ERRORS,
            403: forbidden("enter data"),
            404: NOT_FOUND,
            423: LOCKED,
        },
        examples=[DEATH_EXAMPLE],
    )
    def post(self, request: Request, participant_id: int) -> Response:
        participant = access.participant_or_404(request.user, participant_id, Action.ENTER_DATA)
        data = parsed(DeathReportInputSerializer, request.data).validated_data
        services.death_report(user=request.user, participant_id=participant.pk, **data)
        report = DeathReport.objects.select_related("participant", "adverse_event", "reported_by").get(
            participant=participant
        )
        return Response(DeathReportSerializer(report).data, status=status.HTTP_201_CREATED)
