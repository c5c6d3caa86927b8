"""Captured data: one form instance per participant x visit x form definition, and its typed item values."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from trial.models import FormDefinition, ItemDefinition, Visit


class FormState(models.TextChoices):
    NOT_STARTED = "not_started", _("Not started")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETE = "complete", _("Complete")


class FormInstance(models.Model):
    """A CRF of one visit. `version` rises with every save, so a save built on an older one is refused."""

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="forms")
    definition = models.ForeignKey(FormDefinition, on_delete=models.PROTECT, related_name="instances")
    state = models.CharField(max_length=16, choices=FormState.choices, default=FormState.NOT_STARTED)
    version = models.PositiveIntegerField(default=0)
    first_completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Kept in step with the Signature and Lock rows by the review services, so a save knows without a query.
    signed = models.BooleanField(default=False, help_text="A valid signature covers this form.")
    locked = models.BooleanField(default=False, help_text="An active lock covers this form.")
    # Source data verification of the form's entered values, kept in step by capture/summaries.py in the
    # transaction of every save and verification, so lists of forms filter and count without reading values.
    sdv_entered = models.PositiveIntegerField(default=0, help_text="Values a person entered (or gave a reason).")
    sdv_verified = models.PositiveIntegerField(default=0, help_text="Of those, verified against the source.")
    sdv_changed = models.PositiveIntegerField(default=0, help_text="Of those, changed since they were verified.")
    # Queries on the form or its items that are not closed (open or answered), kept in step the same way, so the
    # forms ready to lock are found through an index rather than by looking for queries form by form.
    queries_unresolved = models.PositiveIntegerField(default=0, help_text="Open or answered queries on the form.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["visit", "definition"], name="form_visit_definition_unique")]
        indexes = [
            # The worklists (capture/worklists.py) list forms of a state, the longest waiting first.
            models.Index(fields=["state", "first_completed_at"], name="form_state_completed_idx"),
            # The forms still awaiting verification: a small part of the table once monitoring keeps up.
            models.Index(
                fields=["visit"],
                condition=models.Q(sdv_verified__lt=models.F("sdv_entered")),
                name="form_awaiting_sdv",
            ),
            # The forms ready to lock (capture/worklists.py), oldest first: complete, signed, not locked, every
            # entered value verified, no unresolved query.
            models.Index(
                fields=["first_completed_at", "id"],
                condition=models.Q(
                    state="complete",
                    signed=True,
                    locked=False,
                    queries_unresolved=0,
                    first_completed_at__isnull=False,
                    sdv_verified__gte=models.F("sdv_entered"),
                ),
                name="form_ready_to_lock",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.visit} {self.definition.code}"


class MissingReason(models.TextChoices):
    NOT_DONE = "not_done", _("Not done")
    NOT_APPLICABLE = "not_applicable", _("Not applicable")
    UNKNOWN = "unknown", _("Unknown")


class Flag(models.TextChoices):
    """Why a saved value needs a second look. Hard-range breaches are never saved, so have no flag."""

    HIGH = "high", _("Above reference range")
    LOW = "low", _("Below reference range")
    RULE = "rule", _("Breaks a cross-item check")
    WINDOW = "window", _("Outside the visit window")


class TypedValue(models.Model):
    """A typed value of an item, or the reason it is missing, with its flags and source data verification: what a
    visit's item (ItemValue) and a log row's item (LogValue) hold alike."""

    number = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    text = models.TextField(blank=True, help_text="Text, choice codes, and 'true'/'false' for yes/no items.")
    date = models.DateField(null=True, blank=True)
    missing_reason = models.CharField(max_length=16, choices=MissingReason.choices, blank=True)
    flags = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True, help_text="Source data verified by a monitor.")
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    changed_since_verification = models.BooleanField(default=False)

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=models.Q(missing_reason="") | models.Q(number__isnull=True, text="", date__isnull=True),
                name="%(class)s_value_or_missing_reason",
            ),
        ]

    @property
    def display(self) -> str:
        if self.missing_reason:
            return f"({self.get_missing_reason_display()})"
        if self.number is not None:
            return format_number(self.number)
        if self.date is not None:
            return self.date.isoformat()
        return self.text


class ItemValue(TypedValue):
    """One item of one visit. Keyed by visit and item, so a bulk upsert needs no form instance id and derived items
    of one form can read items of another."""

    # An index of its own, although the (visit, item) unique index begins with the visit: without it, the planner
    # reads the survival list's values through the item's index (x17 at 10,000 participants, bench/lists.py).
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="item_values")
    item = models.ForeignKey(ItemDefinition, on_delete=models.PROTECT, related_name="values")

    class Meta(TypedValue.Meta):
        constraints = [
            models.UniqueConstraint(fields=["visit", "item"], name="itemvalue_visit_item_unique"),
            *TypedValue.Meta.constraints,
        ]

    def __str__(self) -> str:
        return f"{self.visit} {self.item.code}={self.display}"


def format_number(value: object) -> str:
    """A Decimal as typed, without the trailing zeros the column's scale adds."""
    return f"{value.normalize():f}"


class QueryState(models.TextChoices):
    OPEN = "open", _("Open")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")


class QueryOrigin(models.TextChoices):
    AUTOMATIC = "automatic", _("Raised by an edit check")
    MANUAL = "manual", _("Raised by a person")


class Query(models.Model):
    """A discrepancy note: on an item, a form or a whole visit, or on a record of the participant that is not an
    item of a visit (an adverse event), named by `record_type` and `record_id` (see capture/records.py).
    Automatic ones are raised and closed by the edit checks."""

    participant = models.ForeignKey(
        "trial.Participant",
        on_delete=models.PROTECT,
        related_name="queries",
        help_text="Whose data the query is about: the visit's participant, or the record's.",
    )
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="queries")
    item = models.ForeignKey(ItemDefinition, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    form = models.ForeignKey(
        FormDefinition,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The form of a query on a whole form, or of its item.",
    )
    record_type = models.CharField(
        max_length=32, blank=True, help_text="The kind of record of a query not on a visit, as registered."
    )
    record_id = models.PositiveIntegerField(null=True, blank=True)
    field_code = models.CharField(
        max_length=32, blank=True, help_text="The record's field the query is about; blank for the whole record."
    )
    origin = models.CharField(max_length=16, choices=QueryOrigin.choices)
    check_code = models.CharField(max_length=64, blank=True, help_text="The edit check that raised it.")
    state = models.CharField(max_length=16, choices=QueryState.choices, default=QueryState.OPEN)
    message = models.TextField()
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    last_activity_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The latest step of the thread (or the raising): the inboxes' order, kept by capture/summaries.py.",
    )

    class Meta:
        verbose_name_plural = "queries"
        constraints = [
            # An edit check raises one query per item until it is closed: re-saving never duplicates it.
            models.UniqueConstraint(
                fields=["visit", "item", "check_code"],
                condition=models.Q(origin="automatic") & ~models.Q(state="closed"),
                name="query_one_open_automatic_per_check",
            ),
            models.CheckConstraint(
                condition=models.Q(visit__isnull=False, record_type="", record_id__isnull=True, field_code="")
                | (
                    models.Q(visit__isnull=True, form__isnull=True, item__isnull=True, record_id__isnull=False)
                    & ~models.Q(record_type="")
                ),
                name="query_on_a_visit_or_a_record",
            ),
        ]
        indexes = [
            models.Index(fields=["visit", "state"]),
            models.Index(fields=["record_type", "record_id"]),
            models.Index(fields=["participant", "state"]),
            # The inboxes list newest activity first, a page at a time: read in this index's order.
            models.Index(models.F("last_activity_at").desc(), models.F("id").desc(), name="query_last_activity"),
            models.Index(fields=["created_at", "id"], name="query_created"),  # the API's list order
        ]

    def __str__(self) -> str:
        if self.record_type:
            return f"{self.record_type} {self.record_id} {self.field_code}: {self.message}"
        return f"{self.visit} {self.item.code if self.item else ''}: {self.message}"

    @property
    def on_record(self) -> bool:
        """On a record that is not an item of a visit (an adverse event), rather than on a visit's data."""
        return bool(self.record_type)


class LabImportState(models.TextChoices):
    PENDING = "pending", _("Awaiting confirmation")
    APPLIED = "applied", _("Applied")
    DISCARDED = "discarded", _("Discarded")


class LabImport(models.Model):
    """A CSV of one laboratory's results, kept as uploaded: previewed, then applied once or discarded.

    The rows are checked again when the import is applied, so what is written follows the data of that moment.
    """

    site = models.ForeignKey("trial.Site", on_delete=models.PROTECT, related_name="lab_imports")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()
    file_name = models.CharField(max_length=255)
    content = models.TextField(help_text="The file's text, decoded.")
    encoding = models.CharField(max_length=16, help_text="The encoding the file was decoded with.")
    sha256 = models.CharField(max_length=64, help_text="Of the file's bytes as uploaded.")
    state = models.CharField(max_length=16, choices=LabImportState.choices, default=LabImportState.PENDING)
    applied_at = models.DateTimeField(null=True, blank=True)
    discarded_at = models.DateTimeField(null=True, blank=True)
    outcome = models.JSONField(default=dict, blank=True, help_text="What applying it wrote and what it refused.")

    class Meta:
        indexes = [models.Index(fields=["site", "sha256"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(state="applied") | models.Q(applied_at__isnull=False),
                name="labimport_applied_has_time",
            ),
            models.CheckConstraint(
                condition=~models.Q(state="discarded") | models.Q(discarded_at__isnull=False),
                name="labimport_discarded_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.sha256[:12]})"


class QueryEventKind(models.TextChoices):
    RAISED = "raised", _("Raised")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")
    REOPENED = "reopened", _("Re-opened")
    AUTO_CLOSED = "auto_closed", _("Closed by a correction")


class QueryEvent(models.Model):
    """One step of a query's thread: who did what, when, with which message, and the state it left."""

    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=QueryEventKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField()
    text = models.TextField(blank=True)
    state_after = models.CharField(max_length=16, choices=QueryState.choices)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.query_id} {self.kind} {self.at:%Y-%m-%d}"


class Signature(models.Model):
    """An investigator's signature of one visit, or of the whole casebook (visit empty). Never deleted: a later
    change of signed data voids it, visibly."""

    participant = models.ForeignKey("trial.Participant", on_delete=models.PROTECT, related_name="signatures")
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="signatures")
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()
    meaning = models.CharField(max_length=300)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["participant", "voided_at"]),
            # The API's list, newest first: a page walks this index instead of sorting every signature.
            models.Index(fields=["-signed_at", "-id"], name="signature_newest_idx"),
        ]

    def __str__(self) -> str:
        scope = self.visit.definition.code if self.visit_id else "casebook"
        return f"{self.participant} {scope} {self.signed_at:%Y-%m-%d}"


class Lock(models.Model):
    """A data manager's lock of a participant, a visit or one form; released only with a reason."""

    participant = models.ForeignKey("trial.Participant", on_delete=models.PROTECT, related_name="locks")
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="locks")
    form = models.ForeignKey(FormDefinition, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    locked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    locked_at = models.DateTimeField()
    reason = models.CharField(max_length=300, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    release_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(form__isnull=True) | models.Q(visit__isnull=False), name="lock_form_needs_visit"
            ),
        ]
        indexes = [
            models.Index(fields=["participant", "released_at"]),
            # The API's list of locks, newest first: a page read in the index's order, not every lock sorted.
            models.Index(fields=["-locked_at", "-id"], name="lock_newest"),
        ]

    def __str__(self) -> str:
        return f"lock of {self.participant} {self.visit_id or ''} {self.form_id or ''}"


class LogRow(models.Model):
    """One row of a participant's log form (a medication, a condition, a protocol deviation).

    Rows repeat per participant rather than per visit: `repeat_key` numbers the rows of one log from 1 and never
    changes, so an export's ItemGroupRepeatKey stays stable. Rows are never deleted; a row entered in error is
    removed with a reason and stays visible in the trail. `version` rises with every save, as a visit form's.
    """

    participant = models.ForeignKey("trial.Participant", on_delete=models.PROTECT, related_name="log_rows")
    definition = models.ForeignKey(FormDefinition, on_delete=models.PROTECT, related_name="log_rows")
    repeat_key = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=FormState.choices, default=FormState.IN_PROGRESS)
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    first_completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True, help_text="Entered in error: removed, never deleted.")
    removed_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "definition", "repeat_key"], name="logrow_participant_form_key_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(removed_at__isnull=True) | ~models.Q(removed_reason=""),
                name="logrow_removed_has_reason",
            ),
        ]
        ordering = ["participant", "definition", "repeat_key"]

    def __str__(self) -> str:
        return f"{self.participant} {self.definition.code} #{self.repeat_key}"

    @property
    def removed(self) -> bool:
        return self.removed_at is not None


class LogValue(TypedValue):
    """One item of one log row, as ItemValue is for a visit."""

    row = models.ForeignKey(LogRow, on_delete=models.PROTECT, related_name="values")
    item = models.ForeignKey(ItemDefinition, on_delete=models.PROTECT, related_name="log_values")

    class Meta(TypedValue.Meta):
        constraints = [
            models.UniqueConstraint(fields=["row", "item"], name="logvalue_row_item_unique"),
            *TypedValue.Meta.constraints,
        ]

    def __str__(self) -> str:
        return f"{self.row} {self.item.code}={self.display}"


class SummaryCounts(models.Model):
    """Counts that pages show for many participants at once, kept in the transaction of every write that changes
    them (capture/summaries.py), so no page aggregates item values or queries.

    Plain integers, not positive ones: a site's counters move by an upsert whose proposed row holds the
    participant's differences, which may be negative, and the database checks that row before the conflict."""

    sdv_entered = models.IntegerField(default=0)
    sdv_verified = models.IntegerField(default=0)
    sdv_changed = models.IntegerField(default=0)
    queries_open = models.IntegerField(default=0)
    queries_answered = models.IntegerField(default=0)
    queries_closed = models.IntegerField(default=0)

    class Meta:
        abstract = True


class ParticipantSummary(SummaryCounts):
    """One participant's counts of entered, verified and changed values (SDV) and of queries by state."""

    participant = models.OneToOneField(
        "trial.Participant", on_delete=models.PROTECT, primary_key=True, related_name="capture_summary"
    )
    site = models.ForeignKey("trial.Site", on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"summary of participant {self.participant_id}"


class SiteSummary(SummaryCounts):
    """A site's counts: the sum of its participants' summaries."""

    site = models.OneToOneField(
        "trial.Site", on_delete=models.PROTECT, primary_key=True, related_name="capture_summary"
    )

    def __str__(self) -> str:
        return f"summary of site {self.site_id}"
