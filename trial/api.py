"""The REST API of the trial app: sites, participants (screening, enrolment) and visits.

A thin door to the same services as the pages: serializers only parse and present, viewsets build every
queryset from `trial.access` and hand writes to `trial.services`, whose domain errors `trial.api_errors` turns
into HTTP statuses.
"""

import datetime

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trial import access, services, tokens
from trial.access import Action
from trial.models import (
    Ascites,
    Diagnosis,
    Encephalopathy,
    Participant,
    ParticipantStatus,
    Screening,
    Sex,
    Site,
    Visit,
    VisitKind,
    VisitState,
)
from trial.tallies import VISITS, Tally
from trial.validators import InputSerializer

# --- Permissions -------------------------------------------------------------------------------------------


class TrialAccessPermission(permissions.BasePermission):
    """Deny by default. Reads need a login (the querysets scope them); a write only the action its view names.

    A write on one object is checked again on the object (`access.participant_or_404`), so another site's
    object answers 404 before any 403.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        required = getattr(view, "write_actions", {}).get(getattr(view, "action", None))
        if required is None:
            return False
        return bool(view.detail) or access.can_anywhere(request.user, required)


# --- Serializers: output -----------------------------------------------------------------------------------


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "number", "name", "name_zh", "city", "province", "principal_investigator", "time_zone"]


class ScreeningSummarySerializer(serializers.ModelSerializer):
    failed_criteria = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Screening
        fields = ["screening_date", "child_pugh_points", "child_pugh_class", "eligible", "failed_criteria"]
        read_only_fields = fields


class VisitSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="definition.code", read_only=True)
    name = serializers.CharField(source="definition.name", read_only=True)
    kind = serializers.ChoiceField(source="definition.kind", choices=VisitKind.choices, read_only=True)
    state = serializers.SerializerMethodField()

    class Meta:
        model = Visit
        fields = [
            "id",
            "participant",
            "code",
            "name",
            "kind",
            "target_date",
            "window_start",
            "window_end",
            "visit_date",
            "progress",
            "state",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=VisitState.choices))
    def get_state(self, visit: Visit) -> str:
        return visit.state_on(self.context.get("today") or timezone.localdate())


class ParticipantSerializer(serializers.ModelSerializer):
    site = serializers.IntegerField(source="site.number", read_only=True, help_text="Site number.")
    arm = serializers.CharField(source="arm.code", read_only=True, allow_null=True, help_text="Arm code.")
    enrolled_by = serializers.CharField(
        source="enrolled_by.username", read_only=True, allow_null=True, help_text="Username of who enrolled."
    )
    screen_failure_reasons = serializers.ListField(child=serializers.CharField(), read_only=True)
    screening = ScreeningSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = Participant
        fields = [
            "id",
            "site",
            "screening_number",
            "subject_id",
            "initials",
            "sex",
            "date_of_birth",
            "status",
            "screen_failure_reasons",
            "arm",
            "enrolment_date",
            "enrolled_by",
            "enrolled_at",
            "screening",
        ]
        read_only_fields = fields


class ParticipantDetailSerializer(ParticipantSerializer):
    visits = VisitSerializer(many=True, read_only=True)

    class Meta(ParticipantSerializer.Meta):
        fields = [*ParticipantSerializer.Meta.fields, "visits"]
        read_only_fields = fields


# --- Serializers: input (types only; the services hold the rules) -------------------------------------------


class VisibleSiteField(serializers.SlugRelatedField):
    """A site given by its number, looked up among the user's sites: any other number reads as unknown."""

    default_error_messages = {
        "does_not_exist": _("You have no site with number {value}."),
        "invalid": _("Give the site's number."),
    }

    def __init__(self, **kwargs: object) -> None:
        # The queryset only tells the schema the field's type; lookups go through get_queryset().
        super().__init__(slug_field="number", queryset=Site.objects.none(), **kwargs)

    def get_queryset(self) -> QuerySet[Site]:
        return access.sites(self.context["request"].user)


class ScreeningInputSerializer(InputSerializer):
    site = VisibleSiteField(help_text="Number of the site (one of yours); any other number is a 400 on `site`.")
    initials = serializers.CharField()
    sex = serializers.ChoiceField(choices=Sex.choices)
    date_of_birth = serializers.DateField()
    screening_date = serializers.DateField()
    consent_date = serializers.DateField(allow_null=True, help_text="Date of written informed consent; null if none.")
    icf_version = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=16,
        help_text="The consent form version signed; omitted: the version in force on the consent date.",
    )
    diagnosis = serializers.ChoiceField(choices=Diagnosis.choices)
    total_bilirubin = serializers.DecimalField(max_digits=7, decimal_places=1, help_text="umol/L")
    albumin = serializers.DecimalField(max_digits=5, decimal_places=1, help_text="g/L")
    inr = serializers.DecimalField(max_digits=4, decimal_places=2)
    ascites = serializers.ChoiceField(choices=Ascites.choices)
    encephalopathy = serializers.ChoiceField(choices=Encephalopathy.choices)
    answers = serializers.DictField(
        child=serializers.BooleanField(), help_text="{criterion code: true/false} for every criterion that is asked."
    )

    def screening_input(self) -> services.ScreeningInput:
        fields = {name: value for name, value in self.validated_data.items() if name != "site"}
        return services.ScreeningInput(**fields)


class EnrolmentInputSerializer(InputSerializer):
    arm = serializers.CharField(help_text="Code of the arm the investigator chose: MSC or CONV.")
    enrolment_date = serializers.DateField(help_text="Day 0 of the visit schedule.")


class ParticipantFilterSerializer(InputSerializer):
    site = serializers.IntegerField(required=False, min_value=1, help_text="Site number.")
    status = serializers.ChoiceField(choices=ParticipantStatus.choices, required=False)


class VisitFilterSerializer(InputSerializer):
    participant = serializers.IntegerField(required=False, min_value=1, help_text="Participant id.")


# --- Views -------------------------------------------------------------------------------------------------


class TokenIssuedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it back as `Authorization: Token <token>`; shown only this once.")
    key = serializers.CharField(help_text="The token's first characters: its name in the token list.")
    expiry = serializers.DateTimeField(help_text="When it ends unless used before (each use pushes this on).")
    expires_at_latest = serializers.DateTimeField(help_text="When it ends however much it is used.")


class TokenSerializer(serializers.Serializer):
    key = serializers.CharField(source="token_key", help_text="The token's first characters.")
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField(help_text="When it ends unless used before.")
    expires_at_latest = serializers.SerializerMethodField(help_text="When it ends however much it is used.")
    current = serializers.SerializerMethodField(help_text="True for the token this request was sent with.")

    def get_expires_at_latest(self, token: object) -> datetime.datetime:
        return tokens.latest_expiry(token)

    def get_current(self, token: object) -> bool:
        return getattr(self.context["request"].auth, "pk", None) == token.pk


TOKEN_ISSUED_EXAMPLE = OpenApiExample(
    "Issued",
    response_only=True,
    status_codes=["200"],
    value={
        "token": "3f9c2a1b7d4e8f60a5b2c9d1e7f3a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8",
        "key": "3f9c2a1b7d4e8f6",
        "expiry": "2026-03-02T16:00:00Z",
        "expires_at_latest": "2026-03-09T08:00:00Z",
    },
)
TOKEN_REQUEST_EXAMPLE = OpenApiExample(
    "Credentials", request_only=True, value={"username": "coordinator1", "password": "my-password"}
)
TOKEN_REFUSED_EXAMPLE = OpenApiExample(
    "Wrong credentials",
    response_only=True,
    status_codes=["400"],
    value={"non_field_errors": ["Unable to log in with provided credentials."]},
)
TOKENS_EXAMPLE = OpenApiExample(
    "Two tokens",
    response_only=True,
    status_codes=["200"],
    value=[
        {
            "key": "3f9c2a1b7d4e8f6",
            "created": "2026-03-02T08:00:00Z",
            "expiry": "2026-03-02T16:00:00Z",
            "expires_at_latest": "2026-03-09T08:00:00Z",
            "current": True,
        }
    ],
)


@extend_schema(
    tags=["auth"],
    summary="Exchange a username and password for an API token",
    description=(
        "Send the token back as `Authorization: Token <token>`. It ends after `API_TOKEN_IDLE_HOURS` (8) without "
        "use and at the latest `API_TOKEN_MAX_DAYS` (7) after it was issued; a password change, a deactivation "
        "and a logout end it sooner. Wrong credentials answer 400; five failures lock the account (django-axes)."
    ),
    request=AuthTokenSerializer,
    responses={200: TokenIssuedSerializer, 400: OpenApiResponse(description="Wrong username or password.")},
    examples=[TOKEN_REQUEST_EXAMPLE, TOKEN_ISSUED_EXAMPLE, TOKEN_REFUSED_EXAMPLE],
)
class TokenObtainView(APIView):
    """Checks the password through `authenticate` (so django-axes counts failures and refuses a locked account)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []

    def post(self, request: Request) -> Response:
        credentials = AuthTokenSerializer(data=request.data, context={"request": request})
        credentials.is_valid(raise_exception=True)
        token, clear = tokens.api_token_create(user=credentials.validated_data["user"])
        body = {"token": clear, "key": token.token_key, "expiry": token.expiry}
        body["expires_at_latest"] = tokens.latest_expiry(token)
        return Response(TokenIssuedSerializer(body).data)


@extend_schema(tags=["auth"])
class TokenViewSet(viewsets.GenericViewSet):
    """The user's own API tokens: list them, revoke one. Another user's token does not exist here (404)."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = TokenSerializer
    pagination_class = None
    lookup_field = "token_key"
    lookup_url_kwarg = "key"
    lookup_value_regex = r"[0-9a-f]{1,64}"

    def get_queryset(self) -> QuerySet:
        return tokens.api_tokens(self.request.user)

    @extend_schema(summary="The user's API tokens in force", examples=[TOKENS_EXAMPLE])
    def list(self, request: Request) -> Response:
        return Response(self.get_serializer(self.get_queryset(), many=True).data)

    @extend_schema(
        summary="Revoke one of the user's API tokens",
        responses={204: None, 404: OpenApiResponse(description="The user has no token with this key.")},
    )
    def destroy(self, request: Request, key: str) -> Response:
        if not tokens.api_token_revoke(user=request.user, key=key):
            raise Http404
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    tags=["auth"],
    summary="Log out: revoke the token this request was sent with",
    description="With a session instead of a token, every token of the user ends, as a logout from the pages does.",
    request=None,
    responses={204: None},
)
class TokenLogoutView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        if request.auth is not None and hasattr(request.auth, "token_key"):
            tokens.api_token_revoke(user=request.user, key=request.auth.token_key)
        else:
            tokens.api_tokens_revoke_all(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    tags=["auth"],
    summary="Log out everywhere: revoke every token of the user",
    request=None,
    responses={204: None},
)
class TokenLogoutAllView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def post(self, request: Request) -> Response:
        tokens.api_tokens_revoke_all(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TrialViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [TrialAccessPermission]
    lookup_value_regex = r"\d+"
    # {viewset action: the trial Action it needs}; a write not named here is refused.
    write_actions: dict[str, Action] = {}

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "today": timezone.localdate()}

    def query_filters(self, serializer_class: type[serializers.Serializer]) -> dict:
        filters = serializer_class(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return filters.validated_data


@extend_schema(tags=["sites"])
class SiteViewSet(TrialViewSet):
    """The sites the user holds a membership at."""

    serializer_class = SiteSerializer

    def get_queryset(self) -> QuerySet[Site]:
        return access.sites(self.request.user)


SCREENING_EXAMPLE = OpenApiExample(
    "Eligible candidate",
    request_only=True,
    value={
        "site": 1,
        "initials": "ZW",
        "sex": "M",
        "date_of_birth": "1980-03-14",
        "screening_date": "2025-11-18",
        "consent_date": "2025-11-18",
        "diagnosis": "decompensated",
        "total_bilirubin": "40.0",
        "albumin": "30.0",
        "inr": "1.50",
        "ascites": "mild",
        "encephalopathy": "none",
        "answers": {"IN5": True, **{f"EX{n}": False for n in range(1, 10)}},
    },
)
ENROLMENT_EXAMPLE = OpenApiExample(
    "Enrol in the UC-MSC arm", request_only=True, value={"arm": "MSC", "enrolment_date": "2025-11-20"}
)
FIELD_ERRORS = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Refused input: {field: [messages]}, with `non_field_errors` for what concerns no one field.",
)


@extend_schema(tags=["participants"])
@extend_schema_view(list=extend_schema(parameters=[ParticipantFilterSerializer]))
class ParticipantViewSet(TrialViewSet):
    """Screened participants at the user's sites. Another site's participant does not exist (404)."""

    write_actions = {"screening": Action.SCREEN, "enrol": Action.ENROL}

    def get_queryset(self) -> QuerySet[Participant]:
        queryset = access.participants(self.request.user).select_related("site", "arm", "enrolled_by", "screening")
        if self.action == "list":
            return self._filtered(queryset)
        return queryset.prefetch_related(
            Prefetch("visits", queryset=Visit.objects.select_related("definition").order_by("target_date"))
        )

    def tally_count(self) -> int:
        """The list's total from the site tallies (trial/tallies.py): its filters are what they count."""
        filters = self.query_filters(ParticipantFilterSerializer)
        tally = Tally(access.site_ids(self.request.user), site_number=filters.get("site"))
        return tally.participants(statuses=[filters["status"]] if "status" in filters else None)

    def _filtered(self, queryset: QuerySet[Participant]) -> QuerySet[Participant]:
        filters = self.query_filters(ParticipantFilterSerializer)
        if "site" in filters:
            queryset = queryset.filter(site__number=filters["site"])
        if "status" in filters:
            queryset = queryset.filter(status=filters["status"])
        return queryset

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return ParticipantSerializer if self.action == "list" else ParticipantDetailSerializer

    @extend_schema(
        summary="Screen a candidate",
        description=(
            "Records the screening CRF and decides eligibility (Child-Pugh from the protocol's table). An "
            "ineligible candidate is kept as a screen failure with the reasons, and still answers 201. A `site` "
            "the user has no membership at answers **400 on the `site` field** (never 404 or 403, so it tells "
            "nothing about other sites); a role that may not screen there (monitor, data manager, sponsor) 403."
        ),
        request=ScreeningInputSerializer,
        responses={
            201: ParticipantDetailSerializer,
            400: FIELD_ERRORS,
            403: OpenApiResponse(description="The user's role may not screen at this site."),
        },
        examples=[SCREENING_EXAMPLE],
    )
    @action(detail=False, methods=["post"], parser_classes=[JSONParser])
    def screening(self, request: Request) -> Response:
        serializer = ScreeningInputSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        participant = services.participant_screen(
            user=request.user, site=serializer.validated_data["site"], data=serializer.screening_input()
        )
        return Response(self._present(participant.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Enrol an eligible candidate",
        description=(
            "Enrols the participant in the chosen arm, gives the subject id and lays out the visit schedule "
            "from `enrolment_date` (day 0). A candidate who is not eligible answers 400 with the reason."
        ),
        request=EnrolmentInputSerializer,
        responses={
            200: ParticipantDetailSerializer,
            400: FIELD_ERRORS,
            403: OpenApiResponse(description="The user's role may not enrol at this participant's site."),
            404: OpenApiResponse(description="No such participant among the user's sites."),
        },
        examples=[ENROLMENT_EXAMPLE],
    )
    @action(detail=True, methods=["post"], parser_classes=[JSONParser])
    def enrol(self, request: Request, pk: str) -> Response:
        participant = access.participant_or_404(request.user, int(pk), Action.ENROL)
        serializer = EnrolmentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.participant_enrol(
            user=request.user,
            participant=participant,
            arm_code=serializer.validated_data["arm"],
            enrolment_date=serializer.validated_data["enrolment_date"],
        )
        return Response(self._present(participant.pk))

    def _present(self, pk: int) -> dict:
        participant = self.get_queryset().get(pk=pk)
        return ParticipantDetailSerializer(participant, context=self.get_serializer_context()).data


@extend_schema(tags=["visits"])
@extend_schema_view(list=extend_schema(parameters=[VisitFilterSerializer]))
class VisitViewSet(TrialViewSet):
    """Scheduled visits of the participants at the user's sites, with their windows and state today."""

    serializer_class = VisitSerializer

    def get_queryset(self) -> QuerySet[Visit]:
        queryset = access.visits(self.request.user).select_related("definition")
        if self.action == "list":
            filters = self.query_filters(VisitFilterSerializer)
            if "participant" in filters:
                queryset = queryset.filter(participant_id=filters["participant"])
        return queryset

    def tally_count(self) -> int | None:
        """Every visit at the user's sites: their site tallies' total (trial/tallies.py); one participant's, counted."""
        if "participant" in self.query_filters(VisitFilterSerializer):
            return None
        return Tally(access.site_ids(self.request.user)).total(VISITS.name)
