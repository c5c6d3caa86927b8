"""The safety API's serializers: they parse and present; safety.rules and the services hold the rules."""

from __future__ import annotations

from dataclasses import replace

from django.db import models
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.fields import empty

from capture.review_api import username
from safety import api_selectors
from safety.models import (
    ActionTaken,
    AdverseEvent,
    AdverseEventSource,
    AdverseEventStatus,
    BodySystem,
    DeathReport,
    Outcome,
    Relationship,
    SaeNotification,
    SeriousCriterion,
)
from safety.rules import AdverseEventInput
from safety.selectors import NoticeState
from trial.validators import TEXT_MAX, InputSerializer

# --- Fields with schema components of their own --------------------------------------------------------------
# drf-spectacular names an inline enum after its property; "status" and "source" already name other choice sets.


def choice_field(choices: type[models.TextChoices], component: str) -> type[serializers.ChoiceField]:
    """A field of one of `choices`, named `component` in the schema."""

    @extend_schema_field({"type": "string", "enum": choices.values}, component_name=component)
    class Field(serializers.ChoiceField):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(choices=choices.choices, **kwargs)

    return Field


def code_field(choices: type[models.TextChoices], component: str) -> type[serializers.CharField]:
    """A code of `choices` or "" (not yet assessed). The schema lists the codes; the AE rules check them, so a
    wrong code reads like every other broken rule (400 keyed by the field)."""

    @extend_schema_field({"type": "string", "enum": [*choices.values, ""]}, component_name=component)
    class Field(serializers.CharField):
        pass

    return Field


StatusField = choice_field(AdverseEventStatus, "AdverseEventStatusEnum")
SourceField = choice_field(AdverseEventSource, "AdverseEventSourceEnum")
NoticeStateField = code_field(NoticeState, "NoticeStateEnum")
BodySystemField = code_field(BodySystem, "BodySystemEnum")
RelationshipField = code_field(Relationship, "RelationshipEnum")
ActionTakenField = code_field(ActionTaken, "ActionTakenEnum")
OutcomeField = code_field(Outcome, "OutcomeEnum")
SeriousCriterionField = code_field(SeriousCriterion, "SeriousCriterionEnum")


@extend_schema_field({"type": "string", "enum": ["alive", "dead", "lost"]}, component_name="VitalStatusEnum")
class VitalStatusField(serializers.CharField):
    pass


NUMBER = {"max_digits": 20, "decimal_places": 6, "normalize_output": True}


class QueryBooleanField(serializers.BooleanField):
    """true/false in a query string; left out, no filter (DRF's BooleanField would read it as false)."""

    default_empty_html = empty


# --- Serializers: output -----------------------------------------------------------------------------------


class AdverseEventSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True, help_text="AE-001, AE-002... within the participant.")
    subject_id = serializers.CharField(source="participant.subject_id", read_only=True)
    site = serializers.IntegerField(source="participant.site.number", read_only=True, help_text="Site number.")
    status = StatusField(read_only=True)
    source = SourceField(read_only=True)
    body_system = BodySystemField(read_only=True, help_text="MedDRA system organ class.")
    relationship = RelationshipField(read_only=True, help_text="To the study treatment; empty on a proposal.")
    action_taken = ActionTakenField(read_only=True)
    outcome = OutcomeField(read_only=True)
    serious_criteria = serializers.ListField(child=SeriousCriterionField(), read_only=True)
    expedited = serializers.BooleanField(read_only=True, help_text="Reported and serious, grade 4 or fatal.")
    notice_state = serializers.SerializerMethodField(
        help_text="The expedited notices: sent, pending, overdue (one unsent 24 hours after `expedited_at`), "
        "none (no recipient); empty if not expedited.",
    )
    lab_visit_code = serializers.CharField(
        source="lab_visit.definition.code", read_only=True, allow_null=True, help_text="Null unless graded from lab."
    )
    lab_value = serializers.DecimalField(**NUMBER, read_only=True, allow_null=True)
    verified = serializers.SerializerMethodField(help_text="Source data verified by a monitor.")
    signed = serializers.SerializerMethodField(help_text="Signed by the investigator; a change voids it.")

    class Meta:
        model = AdverseEvent
        fields = [
            "id",
            "label",
            "participant",
            "subject_id",
            "site",
            "status",
            "source",
            "term",
            "body_system",
            "onset_date",
            "end_date",
            "grade",
            "relationship",
            "action_taken",
            "outcome",
            "serious",
            "serious_criteria",
            "description",
            "expedited",
            "expedited_at",
            "notice_state",
            "lab_visit",
            "lab_visit_code",
            "lab_item_code",
            "lab_value",
            "ctcae_term",
            "ctcae_grade",
            "ctcae_criterion",
            "verified",
            "changed_since_verification",
            "signed",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "participant": {"help_text": "Participant id."},
            "grade": {"help_text": "The protocol's scale, 0-4; null on a proposal."},
            "version": {"help_text": "Send it back with the next change."},
            "lab_visit": {"help_text": "Id of the visit whose lab value the grading read."},
        }

    @extend_schema_field(NoticeStateField)
    def get_notice_state(self, event: AdverseEvent) -> str:
        return api_selectors.event_notice_state(event, self.context["now"])

    def get_verified(self, event: AdverseEvent) -> bool:
        return event.verified_at is not None

    def get_signed(self, event: AdverseEvent) -> bool:
        return event.signed_at is not None


class SaeNotificationSerializer(serializers.ModelSerializer):
    user = username("user", "The recipient's username; null for the sponsor's safety contact without an account.")
    overdue = serializers.SerializerMethodField(help_text="Still unsent 24 hours after it was queued.")

    class Meta:
        model = SaeNotification
        fields = ["role", "user", "created_at", "sent_at", "attempts", "overdue"]
        read_only_fields = fields
        extra_kwargs = {
            "role": {"help_text": "investigator, monitor, or sponsor_safety (the sponsor's safety contact)."},
            "created_at": {"help_text": "When the notice was queued."},
        }

    def get_overdue(self, notification: SaeNotification) -> bool:
        return api_selectors.notification_overdue(notification, self.context["now"])


class AdverseEventDetailSerializer(AdverseEventSerializer):
    created_by = username("created_by", "Username; null for a proposal of the lab grading.")
    updated_by = username("updated_by", "Username; null until someone changed it.")
    decided_by = username("decided_by", "The investigator who confirmed or dismissed the proposal.")
    verified_by = username("verified_by", "The monitor.")
    signed_by = username("signed_by", "The investigator.")
    notifications = SaeNotificationSerializer(many=True, read_only=True, help_text="The expedited notices.")

    class Meta(AdverseEventSerializer.Meta):
        fields = [
            *AdverseEventSerializer.Meta.fields,
            "created_by",
            "updated_by",
            "decided_at",
            "decided_by",
            "dismiss_reason",
            "verified_at",
            "verified_by",
            "signed_at",
            "signed_by",
            "notifications",
        ]
        read_only_fields = fields


class SurvivalSerializer(InputSerializer):
    participant = serializers.IntegerField(source="survival.participant_id", help_text="Participant id.")
    subject_id = serializers.CharField(source="survival.subject_id")
    site = serializers.IntegerField(source="site_number", help_text="Site number.")
    arm = serializers.CharField(source="survival.arm_code", help_text="Arm code.")
    start = serializers.DateField(source="survival.start", help_text="Enrolment (day 0).")
    end = serializers.DateField(source="survival.end", help_text="The death, or the last day known alive.")
    days = serializers.IntegerField(source="survival.days")
    months = serializers.FloatField(source="survival.months", help_text="Days / 30.4375, to 2 decimals.")
    died = serializers.BooleanField(source="survival.died", help_text="The event: died on `end`.")
    censored = serializers.BooleanField(source="survival.censored", help_text="Alive when last known, on `end`.")
    vital_status = VitalStatusField(source="survival.vital_status", help_text="As last known; lost = to follow-up.")
    death_report_missing = serializers.BooleanField(
        source="survival.death_report_missing", help_text="A survival contact recorded the death; no death report."
    )


class DeathReportSerializer(serializers.ModelSerializer):
    subject_id = serializers.CharField(source="participant.subject_id", read_only=True)
    relationship = RelationshipField(read_only=True, help_text="Of the death to the study treatment.")
    adverse_event_label = serializers.CharField(
        source="adverse_event.label", read_only=True, allow_null=True, help_text="The fatal adverse event, if any."
    )
    reported_by = username("reported_by", "Username of who reported the death.")

    class Meta:
        model = DeathReport
        fields = [
            "participant",
            "subject_id",
            "death_date",
            "cause",
            "relationship",
            "autopsy",
            "adverse_event",
            "adverse_event_label",
            "reported_at",
            "reported_by",
        ]
        read_only_fields = fields
        extra_kwargs = {"adverse_event": {"help_text": "Id of the reported adverse event with a fatal outcome."}}


# --- Serializers: input (types only; safety.rules holds the rules) ------------------------------------------

OUTPUT_FIELDS = frozenset(AdverseEventDetailSerializer.Meta.fields)


class AdverseEventFieldsSerializer(InputSerializer):
    """The assessed fields of the AE form (`safety.rules.AdverseEventInput`).

    Only types are checked here; `safety.rules` checks what is required, the codes and the dates, and answers
    every broken rule at once, keyed by field. A key that is neither an input field nor one of the event's
    (read-only) fields is refused, so a misspelt field is never silently ignored.
    """

    term = serializers.CharField(default="", allow_blank=True, help_text="The event as reported; at most 200.")
    body_system = BodySystemField(default="", allow_blank=True, help_text="MedDRA system organ class.")
    onset_date = serializers.DateField(default=None, allow_null=True, help_text="On or after enrolment.")
    end_date = serializers.DateField(default=None, allow_null=True, help_text="Null while the event is ongoing.")
    grade = serializers.IntegerField(default=None, allow_null=True, help_text="The protocol's scale, 0-4.")
    relationship = RelationshipField(default="", allow_blank=True, help_text="To the UC-MSC infusion.")
    action_taken = ActionTakenField(default="", allow_blank=True)
    outcome = OutcomeField(default="", allow_blank=True)
    serious = serializers.BooleanField(default=False)
    serious_criteria = serializers.ListField(
        child=SeriousCriterionField(), default=list, help_text="At least one when serious; 'fatal' iff fatal."
    )
    description = serializers.CharField(default="", allow_blank=True, max_length=TEXT_MAX)

    def validate(self, attrs: dict) -> dict:
        unknown = sorted(set(self.initial_data) - set(self.fields) - OUTPUT_FIELDS)
        if unknown:
            raise serializers.ValidationError({name: [_("Unknown field.")] for name in unknown})
        return attrs

    def event_input(self, base: AdverseEventInput | None = None) -> AdverseEventInput:
        """`base` (empty by default) with the given fields."""
        given = {name: value for name, value in self.validated_data.items() if name in INPUT_FIELDS}
        return replace(base or AdverseEventInput(), **given)


INPUT_FIELDS = frozenset(AdverseEventInput.field_names())


class VersionRequired:
    """`version` is required even in a partial body (a PATCH, a confirmation)."""

    def validate(self, attrs: dict) -> dict:
        if attrs.get("version") is None:
            raise serializers.ValidationError({"version": [self.fields["version"].error_messages["required"]]})
        return super().validate(attrs)


def version_field() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, help_text="The event's `version` the request was built on.")


class AdverseEventCreateSerializer(AdverseEventFieldsSerializer):
    """A new adverse event of a participant: the participant's id and the assessed fields."""

    participant = serializers.IntegerField(min_value=1, help_text="Id of the participant (one of your sites').")


class AdverseEventUpdateSerializer(VersionRequired, AdverseEventFieldsSerializer):
    """A change of a reported event: the assessed fields (all with PUT, those given with PATCH), the `version` it
    was built on and the reason."""

    version = version_field()
    reason = serializers.CharField(
        default="", allow_blank=True, max_length=TEXT_MAX, help_text="Reason for the change; required."
    )


class AdverseEventConfirmSerializer(VersionRequired, AdverseEventFieldsSerializer):
    """The investigator's assessment of a lab proposal: the fields given replace the proposal's."""

    version = version_field()


class AdverseEventDismissSerializer(InputSerializer):
    version = version_field()
    reason = serializers.CharField(
        default="", allow_blank=True, max_length=300, help_text="Why it is not an adverse event; required."
    )


class AdverseEventVersionSerializer(InputSerializer):
    version = version_field()


class AdverseEventSignSerializer(InputSerializer):
    version = version_field()
    password = serializers.CharField(
        allow_blank=True, trim_whitespace=False, style={"input_type": "password"}, help_text="The signer's password."
    )


class DeathReportInputSerializer(InputSerializer):
    """The death report form. Types only: the service checks the date, the cause and the relationship."""

    death_date = serializers.DateField(default=None, allow_null=True, help_text="On or after enrolment; not later.")
    cause = serializers.CharField(default="", allow_blank=True, max_length=300)
    relationship = RelationshipField(default="", allow_blank=True, help_text="Of the death to the study treatment.")
    autopsy = serializers.BooleanField(default=False)


class AdverseEventFilterSerializer(InputSerializer):
    participant = serializers.IntegerField(required=False, min_value=1, help_text="Participant id.")
    subject = serializers.CharField(required=False, help_text="Subject ID, such as 01-003.")
    site = serializers.IntegerField(required=False, min_value=1, help_text="Site number.")
    grade = serializers.IntegerField(required=False, min_value=0, max_value=4, help_text="The protocol's grade.")
    serious = QueryBooleanField(required=False)
    status = serializers.ChoiceField(
        choices=AdverseEventStatus.choices, required=False, help_text="`proposed` lists the lab grading's proposals."
    )
    source = serializers.ChoiceField(choices=AdverseEventSource.choices, required=False)
    overdue = QueryBooleanField(
        required=False, help_text="true: expedited over 24 hours ago with a notice unsent; false: the others."
    )


class SurvivalFilterSerializer(InputSerializer):
    site = serializers.IntegerField(required=False, min_value=1, help_text="Site number.")
    arm = serializers.CharField(required=False, help_text="Arm code: MSC or CONV.")


def parsed(
    serializer_class: type[serializers.Serializer], data: object, *, partial: bool = False
) -> serializers.Serializer:
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer
