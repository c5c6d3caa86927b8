"""Safety data: the adverse event log, lab gradings, expedited SAE notifications, death reports."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from trial.models import Participant, Visit


class AdverseEventStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed by lab grading")
    REPORTED = "reported", _("Reported")
    DISMISSED = "dismissed", _("Dismissed")


class AdverseEventSource(models.TextChoices):
    SITE = "site", _("Reported by the site")
    LAB = "lab", _("Lab grading (CTCAE v5.0)")


class Relationship(models.TextChoices):
    UNRELATED = "unrelated", _("Unrelated")
    UNLIKELY = "unlikely", _("Unlikely")
    POSSIBLE = "possible", _("Possible")
    PROBABLE = "probable", _("Probable")
    DEFINITE = "definite", _("Definite")


class ActionTaken(models.TextChoices):
    NONE = "none", _("None")
    INFUSION_INTERRUPTED = "infusion_interrupted", _("Infusion interrupted")
    INFUSION_DELAYED = "infusion_delayed", _("Infusion delayed")
    TREATMENT_WITHDRAWN = "treatment_withdrawn", _("Study treatment withdrawn")
    MEDICATION = "medication", _("Medication given")
    HOSPITALISATION = "hospitalisation", _("Hospitalisation")
    OTHER = "other", _("Other")


class Outcome(models.TextChoices):
    RECOVERED = "recovered", _("Recovered")
    RECOVERING = "recovering", _("Recovering")
    NOT_RECOVERED = "not_recovered", _("Not recovered")
    RECOVERED_WITH_SEQUELAE = "sequelae", _("Recovered with sequelae")
    FATAL = "fatal", _("Fatal")
    UNKNOWN = "unknown", _("Unknown")


class SeriousCriterion(models.TextChoices):
    """The record's definition of a serious adverse event, plus hospitalisation (ICH E2A)."""

    FATAL = "fatal", _("Fatal")
    LIFE_THREATENING = "life_threatening", _("Life-threatening")
    DISABLING = "disabling", _("Permanently disabling")
    TUMOUR = "tumour", _("Tumour, particularly hepatocellular carcinoma")
    HOSPITALISATION = "hospitalisation", _("Requires or prolongs hospitalisation")


class BodySystem(models.TextChoices):
    """MedDRA system organ classes: a coded category the sponsor listing shows instead of the free-text term."""

    BLOOD = "blood", _("Blood and lymphatic system disorders")
    CARDIAC = "cardiac", _("Cardiac disorders")
    EAR = "ear", _("Ear and labyrinth disorders")
    ENDOCRINE = "endocrine", _("Endocrine disorders")
    EYE = "eye", _("Eye disorders")
    GASTROINTESTINAL = "gastrointestinal", _("Gastrointestinal disorders")
    GENERAL = "general", _("General disorders and administration site conditions")
    HEPATOBILIARY = "hepatobiliary", _("Hepatobiliary disorders")
    IMMUNE = "immune", _("Immune system disorders")
    INFECTIONS = "infections", _("Infections and infestations")
    INJURY = "injury", _("Injury, poisoning and procedural complications")
    INVESTIGATIONS = "investigations", _("Investigations")
    METABOLISM = "metabolism", _("Metabolism and nutrition disorders")
    MUSCULOSKELETAL = "musculoskeletal", _("Musculoskeletal and connective tissue disorders")
    NEOPLASMS = "neoplasms", _("Neoplasms benign, malignant and unspecified")
    NERVOUS = "nervous", _("Nervous system disorders")
    PSYCHIATRIC = "psychiatric", _("Psychiatric disorders")
    RENAL = "renal", _("Renal and urinary disorders")
    RESPIRATORY = "respiratory", _("Respiratory, thoracic and mediastinal disorders")
    SKIN = "skin", _("Skin and subcutaneous tissue disorders")
    VASCULAR = "vascular", _("Vascular disorders")
    OTHER = "other", _("Other")


class AdverseEvent(models.Model):
    """One adverse event of a participant, not tied to a visit.

    Reported by the site, or proposed by the lab grading and then confirmed (reported) or dismissed by the
    investigator. `version` rises with every change, so an edit built on an older one is refused.
    """

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="adverse_events")
    number = models.PositiveIntegerField(help_text="AE-001, AE-002... within the participant.")
    status = models.CharField(max_length=16, choices=AdverseEventStatus.choices)
    source = models.CharField(max_length=8, choices=AdverseEventSource.choices)
    term = models.CharField(max_length=200)
    body_system = models.CharField(max_length=20, choices=BodySystem.choices)
    onset_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="Empty while the event is ongoing.")
    grade = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The protocol's 0-4 scale.")
    relationship = models.CharField(max_length=16, choices=Relationship.choices, blank=True)
    action_taken = models.CharField(max_length=24, choices=ActionTaken.choices, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    serious = models.BooleanField(default=False)
    serious_criteria = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    expedited_at = models.DateTimeField(
        null=True, blank=True, help_text="When it first met the expedited criteria (serious, grade 4 or fatal)."
    )
    # Lab grading: what the proposal came from.
    lab_visit = models.ForeignKey(Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    lab_item_code = models.CharField(max_length=32, blank=True)
    lab_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    ctcae_term = models.CharField(max_length=120, blank=True)
    ctcae_grade = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="CTCAE v5.0 grade of the lab value; 0 when only flagged."
    )
    ctcae_criterion = models.CharField(max_length=200, blank=True, help_text="The CTCAE cell the value fell in.")
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    dismiss_reason = models.CharField(max_length=300, blank=True)
    # Review, as on every CRF.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True, help_text="Source data verified by a monitor.")
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    changed_since_verification = models.BooleanField(default=False)
    signed_at = models.DateTimeField(null=True, blank=True, help_text="Signed by the investigator; voided by a change.")
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["participant", "number"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "number"], name="ae_participant_number_unique"),
            # The grading task may run twice for the same data: it can propose one event per visit, term and grade.
            models.UniqueConstraint(
                fields=["lab_visit", "ctcae_term", "ctcae_grade"],
                condition=Q(source="lab") & ~Q(status="dismissed"),
                name="ae_lab_once_per_visit_term_grade",
            ),
            models.UniqueConstraint(
                fields=["lab_visit", "ctcae_term"], condition=Q(status="proposed"), name="ae_one_open_proposal_per_term"
            ),
            models.CheckConstraint(
                condition=Q(grade__isnull=True) | Q(grade__lte=4), name="ae_grade_on_protocol_scale"
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("onset_date")),
                name="ae_ends_after_onset",
            ),
            models.CheckConstraint(
                condition=~Q(status="reported") | (Q(grade__isnull=False) & ~Q(relationship="") & ~Q(outcome="")),
                name="ae_reported_is_assessed",
            ),
            models.CheckConstraint(
                condition=~Q(status="dismissed") | ~Q(dismiss_reason=""), name="ae_dismissed_has_reason"
            ),
            models.CheckConstraint(
                condition=~Q(source="lab") | (Q(lab_visit__isnull=False) & ~Q(ctcae_term="")),
                name="ae_lab_has_origin",
            ),
        ]
        indexes = [models.Index(fields=["status", "serious"])]

    def __str__(self) -> str:
        return f"{self.participant} {self.label}"

    @property
    def label(self) -> str:
        return f"AE-{self.number:03d}"

    @property
    def expedited(self) -> bool:
        """Needs expedited reporting: serious, grade 4, or fatal."""
        return self.status == AdverseEventStatus.REPORTED and (
            self.serious or self.grade == 4 or self.outcome == Outcome.FATAL
        )


class LabGrading(models.Model):
    """The CTCAE v5.0 grading of one lab value of one visit, as the grading task last computed it."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="+")
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="lab_gradings")
    item_code = models.CharField(max_length=32)
    term = models.CharField(max_length=120)
    value = models.DecimalField(max_digits=20, decimal_places=6)
    uln = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    lln = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    baseline = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    grade = models.PositiveSmallIntegerField(help_text="0 below grade 1, or a value only flagged.")
    flagged = models.BooleanField(default=False)
    criterion = models.CharField(max_length=200)
    form_version = models.PositiveIntegerField(help_text="The form version the grading read.")
    graded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["visit", "item_code", "term"], name="labgrading_visit_item_term_unique")
        ]
        indexes = [models.Index(fields=["participant", "term"])]

    def __str__(self) -> str:
        return f"{self.visit} {self.item_code} grade {self.grade}"


class NotificationChannel(models.TextChoices):
    EMAIL = "email", _("Email")


class SaeNotification(models.Model):
    """One recipient's expedited notice of a serious adverse event: created with the SAE, sent by the task."""

    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="notifications")
    recipient = models.CharField(max_length=200, help_text="user:<id>, or email:<address> for a contact.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=32)
    created_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the recipient was notified.")
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["adverse_event", "id"]
        constraints = [
            models.UniqueConstraint(fields=["adverse_event", "recipient"], name="saenotification_once_per_recipient")
        ]
        indexes = [models.Index(fields=["sent_at"])]

    def __str__(self) -> str:
        return f"{self.adverse_event} -> {self.recipient}"


class Notification(models.Model):
    """An in-app message to one user (the bell in the navigation bar)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="safety_notifications")
    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, null=True, related_name="+")
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.user}: {self.text}"


class DeathReport(models.Model):
    """A participant's death: ends their schedule and closes further visit entry."""

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="death_report")
    death_date = models.DateField()
    cause = models.CharField(max_length=300)
    relationship = models.CharField(max_length=16, choices=Relationship.choices)
    autopsy = models.BooleanField(default=False)
    adverse_event = models.ForeignKey(
        AdverseEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="The fatal AE."
    )
    reported_at = models.DateTimeField()
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"Death of {self.participant} on {self.death_date}"


class FormGrading(models.Model):
    """How far the lab grading has read one lab form: a form whose version is ahead of `graded_version` is due.

    The periodic sweep finds such forms, so a save whose task never reached the broker is still graded.
    """

    form = models.OneToOneField("capture.FormInstance", on_delete=models.PROTECT, related_name="grading")
    graded_version = models.PositiveIntegerField()
    graded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.form_id} graded at version {self.graded_version}"
