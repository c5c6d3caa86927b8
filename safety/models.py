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
    """ICH E2A's criteria of a serious adverse event, plus the protocol's own: any tumour."""

    FATAL = "fatal", _("Fatal")
    LIFE_THREATENING = "life_threatening", _("Life-threatening")
    HOSPITALISATION = "hospitalisation", _("Requires or prolongs hospitalisation")
    DISABLING = "disabling", _("Persistent or significant disability or incapacity")
    CONGENITAL_ANOMALY = "congenital_anomaly", _("Congenital anomaly or birth defect")
    MEDICALLY_IMPORTANT = "medically_important", _("Other medically important event")
    TUMOUR = "tumour", _("Tumour, particularly hepatocellular carcinoma")


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
    # The participant's subject ID, copied when the event is created: events are recorded for enrolled participants
    # only and a subject ID never changes once given. The listings are in subject order (the site's number leads the
    # ID), and with the ID here a page walks the events' own index instead of every participant of the trial, which
    # at 100,000 participants is the difference between 1 and 33,000 participants read for a site with no events.
    subject_id = models.CharField(max_length=16, editable=False)
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
        indexes = [
            models.Index(fields=["status", "serious"]),
            # The dashboard's first rows of each part, read in these indexes' order rather than sorted.
            models.Index(
                models.F("expedited_at").desc(),
                models.F("id").desc(),
                condition=Q(status="reported", expedited_at__isnull=False),
                name="ae_expedited_newest",
            ),
            models.Index(fields=["created_at", "id"], condition=Q(status="proposed"), name="ae_proposed_oldest"),
            # The listings' and the dashboard's subject order (subject_id above).
            models.Index(fields=["subject_id", "number"], name="ae_subject_order"),
        ]

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


class SaeReportKind(models.TextChoices):
    INITIAL = "initial", _("Initial report")
    FOLLOW_UP = "follow_up", _("Follow-up report")
    FINAL = "final", _("Final report")


class ChallengeResult(models.TextChoices):
    """CIOMS I boxes 20 and 21: did the reaction abate after stopping, reappear after reintroducing?"""

    YES = "yes", _("Yes")
    NO = "no", _("No")
    NOT_APPLICABLE = "na", _("Not applicable")
    UNKNOWN = "unknown", _("Unknown")


class SeriousAdverseEvent(models.Model):
    """What a serious adverse event's report holds beyond the AE form (ICH E2A, CIOMS I).

    The hospital stay, the narrative, tests and history, the suspect and concomitant medications, and the
    sponsor's causality assessment. Medications are lists of {"name", "dose", "route", "indication", "start_date",
    "end_date", "log_form_id"}: `log_form_id` binds an entry to a row of the concomitant medication log (a
    FormInstance of form CM) once that log exists; the study's UC-MSC is added to the suspect products from the
    infusion forms, not typed here.
    """

    adverse_event = models.OneToOneField(AdverseEvent, on_delete=models.PROTECT, related_name="sae")
    admission_date = models.DateField(null=True, blank=True)
    discharge_date = models.DateField(null=True, blank=True)
    narrative = models.TextField(blank=True)
    relevant_tests = models.TextField(blank=True)
    relevant_history = models.TextField(blank=True)
    suspect_medications = models.JSONField(default=list, blank=True)
    concomitant_medications = models.JSONField(default=list, blank=True)
    dechallenge = models.CharField(max_length=8, choices=ChallengeResult.choices, blank=True)
    rechallenge = models.CharField(max_length=8, choices=ChallengeResult.choices, blank=True)
    sponsor_relationship = models.CharField(max_length=16, choices=Relationship.choices, blank=True)
    sponsor_assessor = models.CharField(max_length=200, blank=True, help_text="The sponsor's safety physician.")
    sponsor_comment = models.TextField(blank=True)
    sponsor_assessed_at = models.DateTimeField(null=True, blank=True)
    sponsor_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField()
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(discharge_date__isnull=True)
                | (Q(admission_date__isnull=False) & Q(discharge_date__gte=models.F("admission_date"))),
                name="sae_discharged_after_admission",
            ),
            models.CheckConstraint(
                condition=Q(sponsor_relationship="") | ~Q(sponsor_assessor=""), name="sae_sponsor_assessor_named"
            ),
        ]

    def __str__(self) -> str:
        return f"SAE of {self.adverse_event_id}"


class SaeReport(models.Model):
    """One version of an SAE's expedited report: initial, follow-up 1..n, final, each sent to the recipients.

    `snapshot` holds the report's data as they stood when it was submitted; the CIOMS I form of this version is
    printed from it, so a later correction never changes what was sent.
    """

    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="sae_reports")
    sequence = models.PositiveIntegerField(help_text="0 for the initial report, then 1, 2...")
    kind = models.CharField(max_length=12, choices=SaeReportKind.choices)
    snapshot = models.JSONField()
    submitted_at = models.DateTimeField()
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["adverse_event", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["adverse_event", "sequence"], name="saereport_event_sequence_unique"),
            models.UniqueConstraint(fields=["adverse_event"], condition=Q(kind="final"), name="saereport_one_final"),
            models.CheckConstraint(
                condition=(Q(sequence=0) & Q(kind="initial")) | (Q(sequence__gt=0) & ~Q(kind="initial")),
                name="saereport_initial_first",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.adverse_event_id} {self.label}"

    @property
    def label(self) -> str:
        if self.kind == SaeReportKind.INITIAL:
            return str(_("Initial report"))
        if self.kind == SaeReportKind.FINAL:
            return str(_("Final report (follow-up %(number)s)") % {"number": self.sequence})
        return str(_("Follow-up %(number)s") % {"number": self.sequence})


class SaeNotification(models.Model):
    """One recipient's expedited notice of one version of an SAE report: queued with it, sent by the task."""

    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="notifications")
    report = models.ForeignKey(
        SaeReport,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
        help_text="Empty on notices queued before report versions existed.",
    )
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
            models.UniqueConstraint(
                fields=["adverse_event", "recipient"],
                condition=Q(report__isnull=True),
                name="saenotification_once_per_recipient",
            ),
            models.UniqueConstraint(fields=["report", "recipient"], name="saenotification_once_per_report_recipient"),
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
        # The bell's unread count, and the notifications page's newest first (a page, not every one of the user's).
        indexes = [
            models.Index(fields=["user", "read_at"]),
            models.Index(fields=["user", "-created_at", "-id"], name="notification_user_newest"),
        ]

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
