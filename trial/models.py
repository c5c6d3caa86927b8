"""The trial's definitions (loaded from the protocol file), its sites, people, participants and visits."""

import datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


def age_on(born: datetime.date, day: datetime.date) -> int:
    """Age in whole years on `day`, as a birthday counts it."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


class Role(models.TextChoices):
    COORDINATOR = "coordinator", _("Site coordinator")
    INVESTIGATOR = "investigator", _("Investigator")
    MONITOR = "monitor", _("Monitor")
    DATA_MANAGER = "data_manager", _("Data manager")
    SPONSOR = "sponsor", _("Sponsor")


class Protocol(models.Model):
    """One version of the protocol file. A changed file is a new version; data keep the version they used."""

    code = models.CharField(max_length=32)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64)
    definition = models.JSONField(help_text="The parsed protocol file, kept whole for rules without a table.")
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="protocol_code_version_unique"),
            models.UniqueConstraint(fields=["code", "sha256"], name="protocol_code_sha256_unique"),
        ]
        ordering = ["code", "-version"]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"

    @property
    def child_pugh_table(self) -> dict:
        return self.definition["eligibility"]["child_pugh"]

    @property
    def age_range(self) -> tuple[int, int]:
        age = self.definition["eligibility"]["age"]
        return age["min"], age["max"]


class Arm(models.Model):
    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="arms")
    code = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    name_zh = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["protocol", "code"], name="arm_protocol_code_unique")]
        ordering = ["protocol", "order"]

    def __str__(self) -> str:
        return self.name


class VisitKind(models.TextChoices):
    VISIT = "visit", _("Clinic visit")
    FOLLOW_UP = "follow_up", _("Survival follow-up contact")


class VisitDefinition(models.Model):
    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="visit_definitions")
    code = models.CharField(max_length=16)
    name = models.CharField(max_length=100)
    name_zh = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=16, choices=VisitKind.choices)
    day = models.PositiveIntegerField(help_text="Target day counted from enrolment (day 0).")
    window_before = models.PositiveIntegerField()
    window_after = models.PositiveIntegerField()
    order = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["protocol", "code"], name="visitdef_protocol_code_unique")]
        ordering = ["protocol", "order"]

    def __str__(self) -> str:
        return self.code


class FormDefinition(models.Model):
    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="form_definitions")
    code = models.CharField(max_length=16)
    name = models.CharField(max_length=100)
    name_zh = models.CharField(max_length=100, blank=True)
    order = models.PositiveSmallIntegerField()
    visit_codes = models.JSONField(default=list, help_text="Visits at which the form is collected.")
    arm_codes = models.JSONField(default=list, help_text="Arms the form applies to; empty means every arm.")
    checks = models.JSONField(default=list, help_text="Cross-item edit checks from the protocol file.")
    repeating = models.BooleanField(
        default=False, help_text="A log form: its rows repeat per participant (capture.LogRow), not per visit."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["protocol", "code"], name="formdef_protocol_code_unique")]
        ordering = ["protocol", "order"]

    def __str__(self) -> str:
        return self.code

    def applies_to(self, *, visit_code: str, arm_code: str | None) -> bool:
        if visit_code not in self.visit_codes:
            return False
        return not self.arm_codes or arm_code in self.arm_codes


class DataType(models.TextChoices):
    DECIMAL = "decimal", _("Number")
    INTEGER = "integer", _("Whole number")
    TEXT = "text", _("Text")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Choice")
    BOOLEAN = "boolean", _("Yes/no")


class ItemDefinition(models.Model):
    form = models.ForeignKey(FormDefinition, on_delete=models.PROTECT, related_name="items")
    code = models.CharField(max_length=16)
    label = models.CharField(max_length=200)
    label_zh = models.CharField(max_length=200, blank=True)
    group = models.CharField(max_length=100, blank=True, help_text="Heading the item stands under, as on the report.")
    group_zh = models.CharField(max_length=100, blank=True)
    order = models.PositiveSmallIntegerField()
    data_type = models.CharField(max_length=16, choices=DataType.choices)
    unit = models.CharField(max_length=32, blank=True)
    decimals = models.PositiveSmallIntegerField(null=True, blank=True)
    hard_min = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    hard_max = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    reference_low = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    reference_high = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    required = models.BooleanField(default=False)
    choices = models.JSONField(default=list, blank=True, help_text="[[code, label, label_zh], ...] for choice items.")
    derived = models.CharField(max_length=200, blank=True, help_text="Formula of a computed item; never typed.")
    in_window = models.BooleanField(default=False, help_text="A date that must fall inside the visit window.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["form", "code"], name="itemdef_form_code_unique")]
        ordering = ["form", "order"]

    def __str__(self) -> str:
        return f"{self.form.code}.{self.code}"

    @property
    def shown_label(self) -> str:
        """The label in the active language: the protocol file's Chinese on a page in Chinese, when it gives one."""
        return self.label_zh if self.label_zh and (get_language() or "").startswith("zh") else self.label


class CriterionKind(models.TextChoices):
    INCLUSION = "inclusion", _("Inclusion")
    EXCLUSION = "exclusion", _("Exclusion")


class EligibilityCriterion(models.Model):
    """One inclusion or exclusion criterion of the record. Computed criteria name the rule that decides them."""

    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="criteria")
    kind = models.CharField(max_length=16, choices=CriterionKind.choices)
    code = models.CharField(max_length=16)
    text = models.CharField(max_length=300)
    text_zh = models.CharField(max_length=300, blank=True)
    computed = models.CharField(max_length=32, blank=True, help_text="consent, age or child_pugh; empty = asked.")
    order = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["protocol", "code"], name="criterion_protocol_code_unique")]
        ordering = ["protocol", "order"]

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"


class Site(models.Model):
    number = models.PositiveSmallIntegerField(unique=True)
    name = models.CharField(max_length=200)
    name_zh = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    province = models.CharField(max_length=100)
    principal_investigator = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="Asia/Shanghai")

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number:02d} {self.name}"


class SiteTally(models.Model):
    """One delta of a site's tally of a kind of row (trial/tallies.py): the tally is the sum of its rows. Written
    by the database's triggers only; read through `trial.tallies.Tally`."""

    # The index holds n too, so a read of the tallies reads the index alone. No foreign key constraint: a delta is
    # a plain insert that checks and locks nothing (sites are never deleted).
    site = models.ForeignKey(Site, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    kind = models.CharField(max_length=64)
    n = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["site", "kind", "n"], name="sitetally_site_kind")]

    def __str__(self) -> str:
        return f"site {self.site_id} {self.kind} {self.n:+d}"


class SiteMembership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "site"], name="membership_user_site_unique")]

    def __str__(self) -> str:
        return f"{self.user} at {self.site.number:02d} as {self.role}"


class ParticipantStatus(models.TextChoices):
    ELIGIBLE = "eligible", _("Screened, eligible")
    SCREEN_FAILED = "screen_failed", _("Screen failure")
    ENROLLED = "enrolled", _("Enrolled")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    COMPLETED = "completed", _("Completed")
    DIED = "died", _("Died")


class Sex(models.TextChoices):
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")


class Participant(models.Model):
    """A screened person. Identified in the EDC by numbers and initials only, never by name."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="participants")
    protocol = models.ForeignKey(Protocol, on_delete=models.PROTECT, related_name="participants")
    screening_number = models.CharField(max_length=16, unique=True)
    subject_id = models.CharField(max_length=16, unique=True, null=True, blank=True)
    initials = models.CharField(max_length=4)
    sex = models.CharField(max_length=1, choices=Sex.choices)
    date_of_birth = models.DateField()
    status = models.CharField(max_length=16, choices=ParticipantStatus.choices)
    screen_failure_reasons = models.JSONField(default=list, blank=True)
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, null=True, blank=True, related_name="participants")
    enrolment_date = models.DateField(null=True, blank=True, help_text="Day 0 of the visit schedule.")
    enrolled_at = models.DateTimeField(null=True, blank=True)
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    death_date = models.DateField(
        null=True, blank=True, help_text="Set by the death report: no visit after it takes data."
    )
    icf_version = models.CharField(
        max_length=16, blank=True, help_text="The informed consent form version last signed (screening, re-consent)."
    )
    icf_date = models.DateField(null=True, blank=True, help_text="When that version was signed.")

    class Meta:
        # By site and screening number: a screening number starts with its site's number (S01-, S02-...), so its
        # unique index (or the site's, below) walks participants, and their visits, in that order without sorting
        # them all or joining the sites.
        ordering = ["screening_number"]
        indexes = [
            models.Index(fields=["site", "status"]),
            models.Index(fields=["site", "screening_number"], name="participant_site_screening_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="enrolled") | models.Q(arm__isnull=False, enrolment_date__isnull=False),
                name="participant_enrolled_has_arm_and_date",
            ),
        ]

    def __str__(self) -> str:
        return self.subject_id or self.screening_number

    @property
    def label(self) -> str:
        return f"{self} ({self.initials})"

    def age_on(self, day: datetime.date) -> int:
        return age_on(self.date_of_birth, day)


class ConsentKind(models.TextChoices):
    INITIAL = "initial", _("Consent at screening")
    RECONSENT = "reconsent", _("Re-consent to a new version")


class ConsentRecord(models.Model):
    """One signature of an informed consent form version: at screening, then at each re-consent."""

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="consents")
    kind = models.CharField(max_length=12, choices=ConsentKind.choices)
    icf_version = models.CharField(max_length=16)
    consent_date = models.DateField()
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["participant", "consent_date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "icf_version"], name="consent_once_per_version"),
        ]

    def __str__(self) -> str:
        return f"{self.participant} ICF {self.icf_version} on {self.consent_date}"


class Ascites(models.TextChoices):
    NONE = "none", _("None")
    MILD = "mild", _("Mild")
    MODERATE_SEVERE = "moderate_severe", _("Moderate to severe")


class Encephalopathy(models.TextChoices):
    NONE = "none", _("None")
    GRADE_1_2 = "grade_1_2", _("Grade 1-2")
    GRADE_3_4 = "grade_3_4", _("Grade 3-4")


class Diagnosis(models.TextChoices):
    COMPENSATED = "compensated", _("Compensated cirrhosis")
    DECOMPENSATED = "decompensated", _("Decompensated cirrhosis")
    NONE = "none", _("No clinical diagnosis of cirrhosis")


class Screening(models.Model):
    """The screening CRF: the criteria answers and the values the Child-Pugh score is computed from."""

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="screening")
    screening_date = models.DateField()
    consent_date = models.DateField(null=True, blank=True)
    icf_version = models.CharField(max_length=16, blank=True, help_text="The consent form version signed.")
    diagnosis = models.CharField(max_length=16, choices=Diagnosis.choices)
    total_bilirubin = models.DecimalField(max_digits=7, decimal_places=1, help_text="umol/L")
    albumin = models.DecimalField(max_digits=5, decimal_places=1, help_text="g/L")
    inr = models.DecimalField(max_digits=4, decimal_places=2)
    ascites = models.CharField(max_length=16, choices=Ascites.choices)
    encephalopathy = models.CharField(max_length=16, choices=Encephalopathy.choices)
    answers = models.JSONField(help_text="{criterion code: true/false} for the criteria that are asked.")
    child_pugh_points = models.PositiveSmallIntegerField()
    child_pugh_class = models.CharField(max_length=1)
    eligible = models.BooleanField()
    failed_criteria = models.JSONField(default=list)
    screened_at = models.DateTimeField(auto_now_add=True)
    screened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"Screening of {self.participant}"

    @property
    def child_pugh_inputs(self) -> dict[str, Decimal | str]:
        return {
            "bilirubin": self.total_bilirubin,
            "albumin": self.albumin,
            "inr": self.inr,
            "ascites": self.ascites,
            "encephalopathy": self.encephalopathy,
        }


class VisitProgress(models.TextChoices):
    NOT_STARTED = "not_started", _("Not started")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETE = "complete", _("Complete")
    MISSED = "missed", _("Missed")


class VisitState(models.TextChoices):
    """What a visit cell shows: its progress once data exist, else where today falls against its window."""

    NOT_DUE = "not_due", _("Not due")
    DUE = "due", _("Due")
    OVERDUE = "overdue", _("Overdue")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETE = "complete", _("Complete")
    MISSED = "missed", _("Missed")


class Visit(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="visits")
    definition = models.ForeignKey(VisitDefinition, on_delete=models.PROTECT, related_name="visits")
    target_date = models.DateField()
    window_start = models.DateField()
    window_end = models.DateField()
    visit_date = models.DateField(null=True, blank=True, help_text="The day the visit actually took place.")
    progress = models.CharField(max_length=16, choices=VisitProgress.choices, default=VisitProgress.NOT_STARTED)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "definition"], name="visit_participant_definition_unique"),
            models.CheckConstraint(
                condition=models.Q(window_start__lte=models.F("target_date"))
                & models.Q(target_date__lte=models.F("window_end")),
                name="visit_target_inside_window",
            ),
        ]
        ordering = ["participant", "target_date"]
        # The visits to do and to sign (trial/worklists.py, capture/worklists.py): the earliest window end first.
        indexes = [
            models.Index(fields=["window_end"], name="visit_window_end_idx"),
            # The visits still to do (trial/worklists.py visits_to_do), by window end: a small part of the table
            # once the trial is under way, so the list does not walk past every completed visit.
            models.Index(
                fields=["window_end", "id"],
                condition=models.Q(progress__in=["not_started", "in_progress"]),
                name="visit_open_window_end",
            ),
            # The sites table's visits due and overdue (trial/selectors.py): not started, window open by today. The
            # future visits of the schedule are most of those not started; this reads only the opened windows.
            models.Index(
                fields=["window_start"],
                condition=models.Q(progress="not_started"),
                name="visit_not_started_window_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant} {self.definition.code}"

    def state_on(self, today: datetime.date) -> str:
        if self.progress != VisitProgress.NOT_STARTED:
            return VisitState(self.progress)
        if today < self.window_start:
            return VisitState.NOT_DUE
        if today <= self.window_end:
            return VisitState.DUE
        return VisitState.OVERDUE


class AuditRecord(models.Model):
    """One change of trial data. Append-only: the app's database role may only INSERT and SELECT it, and
    triggers refuse UPDATE, DELETE and TRUNCATE.

    Each row's hash is an HMAC (under the key named by `key_id`, kept outside the database) of its own content and
    the previous row's hash, so an altered or removed row breaks the chain from that point on, and the chain's head
    is anchored outside the database (`manage.py verify_audit`). Rows written before the keyed chain have an empty
    `key_id` and a plain SHA-256 hash, accepted only before the first keyed row.
    """

    at = models.DateTimeField()
    # Every save appends a row per changed item, and each index is one more write per row: the user and the site
    # have none (nothing reads the trail by them; a site or account is never deleted, only made inactive), and the
    # participant none of its own (the (participant, form, item) index below serves every lookup by participant).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+", db_index=False
    )
    username = models.CharField(max_length=150, help_text="Kept as written, should the account be renamed.")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, null=True, related_name="+", db_index=False)
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, null=True, related_name="+", db_index=False)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    action = models.CharField(max_length=32)
    form_code = models.CharField(max_length=16, blank=True)
    item_code = models.CharField(max_length=32, blank=True)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    reason = models.TextField(blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=32, blank=True, default="", help_text="The HMAC key's id; empty: legacy.")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["participant", "form_code", "item_code"]),
        ]
        # A constraint rather than unique=True: the field's unique would add, on PostgreSQL, a second index for
        # LIKE on the hash, which nothing runs and every appended row paid for.
        constraints = [models.UniqueConstraint(fields=["hash"], name="audit_hash_unique")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.action} {self.object_type}:{self.object_id}"


class Alert(models.Model):
    """An in-app alert to one user (the bell in the navigation bar): a broken audit chain, a wrong signature
    password. Raised by `trial.alerts.alert_raise`, the one way any app alerts a user in the app."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32)
    text = models.CharField(max_length=500)
    link = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.user}: {self.text}"
