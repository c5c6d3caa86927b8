"""The services of report runs: asking for a PDF report, generating it on a worker, retrying a failed one,
downloading one, and the scheduled run that Celery beat starts.

A run covers the sites its requester could report on when asking (its scope), as the data stood at its cut-off.
Who may see a run: a user who may REPORT at every site of its scope; for anyone else it does not exist (404),
and a role that may report nowhere is refused outright (403). Every request, generation, failure, retry, download
and emailed notice is written to the audit trail.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from functools import partial

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from reports.models import ReportKind, ReportRun, RunState
from trial import access
from trial.access import ROLE_ACTIONS, Action
from trial.audit import AuditEntry, audit_write
from trial.background import enqueue, enqueue_after_commit
from trial.errors import AccessDenied, DomainError, InvalidInput
from trial.models import Participant, Role, Site, SiteMembership
from trial.services import protocol_current
from trial.validators import date_problem

log = logging.getLogger(__name__)


class ReportNotAvailable(DomainError):
    """The run has no file to give: not generated yet, failed, or its file is missing or altered."""

    http_status = 409


# --- Reads ---------------------------------------------------------------------------------------------------


def report_sites(user: object) -> QuerySet[Site]:
    return access.sites(user, Action.REPORT).order_by("number")


def require_reporter(user: object) -> None:
    """Refuse (403) a user whose role allows reports at no site."""
    if not access.can_anywhere(user, Action.REPORT):
        raise AccessDenied(_("Your role does not allow reports."))


def runs_visible(user: object) -> QuerySet[ReportRun]:
    """The runs whose every site the user may report on: a run covering one more site does not exist for them."""
    allowed = access.site_ids(user, Action.REPORT)
    if not allowed:
        return ReportRun.objects.none()
    return ReportRun.objects.exclude(sites__in=Site.objects.exclude(pk__in=allowed).values("pk"))


def runs_listed(user: object) -> QuerySet[ReportRun]:
    """The visible runs, newest first, with what a list shows of them, in a number of queries that stays put."""
    return (
        runs_visible(user)
        .select_related("requested_by")
        .prefetch_related(Prefetch("sites", queryset=Site.objects.order_by("number")))
        .order_by("-requested_at", "-id")
    )


def run_or_404(user: object, run_id: int) -> ReportRun:
    require_reporter(user)
    return access.get_or_404(runs_listed(user), pk=run_id)


# --- Asking for a report -------------------------------------------------------------------------------------


@transaction.atomic
def report_request(
    *,
    user: object,
    kind: str,
    site_numbers: Sequence[int] = (),
    cutoff: datetime.datetime | None = None,
) -> ReportRun:
    """The sponsor or a data manager asks for a PDF report on the sites they may report on (all of them, or those
    named), as the data stood at the cut-off (now, unless an earlier moment is given). A worker generates it."""
    if kind not in ReportKind.values:
        raise InvalidInput(errors={"kind": [_("Choose one of the reports offered.")]})
    sites = _requested_sites(user, site_numbers)
    now = timezone.now()
    if cutoff is not None and date_problem(cutoff.date(), happened=False):
        raise InvalidInput(errors={"cutoff": [date_problem(cutoff.date(), happened=False)]})
    if cutoff is not None and cutoff > now:
        raise InvalidInput(errors={"cutoff": [_("The data cut-off cannot be in the future.")]})
    run = ReportRun.objects.create(
        kind=kind,
        # The report is written in the language of the page it was asked from.
        parameters={"sites": sorted(set(site_numbers)), "language": translation.get_language() or ""},
        cutoff=cutoff or now,
        requested_by=user,
        requested_at=now,
    )
    run.sites.set(sites)
    described = f"{kind}; sites {','.join(str(site.number) for site in sites)}; cutoff {run.cutoff.isoformat()}"
    audit_write(user=user, entries=[AuditEntry("report_run", str(run.pk), "request", new_value=described)])
    generate_after_commit(run.pk)
    return run


def _requested_sites(user: object, site_numbers: Sequence[int]) -> list[Site]:
    sites = list(report_sites(user))
    if not sites:
        raise AccessDenied(_("Your role does not allow reports."))
    if not site_numbers:
        return sites
    by_number = {site.number: site for site in sites}
    refused = sorted(set(site_numbers) - by_number.keys())
    if refused:
        # The same answer for a site that does not exist: the refusal tells nothing about other sites.
        numbers = ", ".join(str(number) for number in refused)
        raise AccessDenied(_("Your role does not allow reports on site %(sites)s.") % {"sites": numbers})
    return [by_number[number] for number in sorted(set(site_numbers))]


GENERATE_TASK = "reports.tasks.report_generate_task"


def generate_after_commit(run_id: int) -> None:
    enqueue_after_commit(GENERATE_TASK, run_id, on_failure=partial(_not_started, run_id))


def _enqueue(run_id: int) -> None:
    """Hand the run to a worker now. If the broker cannot take it, the run fails saying so, and may be retried."""
    enqueue(GENERATE_TASK, run_id, on_failure=partial(_not_started, run_id))


def _not_started(run_id: int, error: BaseException) -> None:
    # The broker down, or an in-process run failing past its own handling.
    ReportRun.objects.filter(pk=run_id, state__in=[RunState.QUEUED, RunState.RUNNING]).update(
        state=RunState.FAILED,
        error=_("The task queue could not be reached; retry when the workers are back."),
        finished_at=timezone.now(),
    )


# --- Generating it (the worker's part) -------------------------------------------------------------------------


def report_generate(*, run_id: int, task_id: str = "") -> bool:
    """Build the run's PDF and store it with its SHA-256; True if this call built it.

    Not one transaction: the claim, each step of progress and the outcome commit on their own, so that the page
    sees the bar move. A failure is recorded on the run with its reason, to be retried; only a lost database
    connection propagates, for the task to retry it.
    """
    if not _claim(run_id, task_id):
        return False
    run = ReportRun.objects.get(pk=run_id)
    try:
        content = _build(run)
        return _store(run, content)
    except (OperationalError, InterfaceError):
        raise
    except Exception as error:
        _fail(run, error)
        return False


def _claim(run_id: int, task_id: str) -> bool:
    """Take a queued run. A redelivered task (its worker was lost, or it is retried) takes back its own run, so a
    duplicate never builds a run another task holds."""
    takeable = Q(state=RunState.QUEUED)
    if task_id:
        takeable |= Q(state=RunState.RUNNING, task_id=task_id)
    claimed = ReportRun.objects.filter(takeable, pk=run_id).update(
        state=RunState.RUNNING,
        task_id=task_id,
        started_at=timezone.now(),
        attempts=F("attempts") + 1,
        progress=0,
        step="",
        error="",
    )
    return claimed == 1


def _build(run: ReportRun) -> bytes:
    from reports.pdf import REPORTS  # reportlab and the report classes: only where a report is built

    with translation.override(run.parameters.get("language") or settings.LANGUAGE_CODE):
        report = REPORTS[run.kind](
            participants=Participant.objects.filter(site__in=run.sites.all()),
            cutoff=run.cutoff,
            generated_by=run.requested_by.get_username() if run.requested_by_id else _("Schedule (Celery beat)"),
            protocol=protocol_current(),
        )
        return report.build(progress=partial(_progress, run.pk))


def _progress(run_id: int, percent: int, step: str) -> None:
    ReportRun.objects.filter(pk=run_id, state=RunState.RUNNING).update(
        progress=max(0, min(100, int(percent))), step=str(step)[:200]
    )


def _store(run: ReportRun, content: bytes) -> bool:
    digest = hashlib.sha256(content).hexdigest()
    run.file.save(run.filename, ContentFile(content), save=False)
    with transaction.atomic():
        stored = ReportRun.objects.filter(pk=run.pk, state=RunState.RUNNING, task_id=run.task_id).update(
            state=RunState.DONE,
            file=run.file.name,
            size=len(content),
            sha256=digest,
            progress=100,
            finished_at=timezone.now(),
        )
        if stored:
            entry = AuditEntry("report_run", str(run.pk), "generate", new_value=f"sha256 {digest}; {len(content)} B")
            audit_write(user=None, entries=[entry])
    if not stored:  # retried meanwhile as stalled: the other attempt's file is the run's
        run.file.delete(save=False)
    return bool(stored)


def _fail(run: ReportRun, error: Exception) -> None:
    log.error("Report run %s failed", run.pk, exc_info=error)
    reason = _failure_reason(error)
    with transaction.atomic():
        failed = ReportRun.objects.filter(pk=run.pk, state=RunState.RUNNING, task_id=run.task_id).update(
            state=RunState.FAILED, error=reason, finished_at=timezone.now()
        )
        if failed:
            audit_write(user=None, entries=[AuditEntry("report_run", str(run.pk), "fail", new_value=reason)])


def _failure_reason(error: Exception) -> str:
    if isinstance(error, SoftTimeLimitExceeded):
        seconds = settings.CELERY_TASK_SOFT_TIME_LIMIT
        return _("It took longer than %(seconds)s seconds and was stopped.") % {"seconds": seconds}
    if isinstance(error, DomainError):
        return str(error)
    if isinstance(error, OSError):
        # The reason without the server's paths.
        reason = error.strerror or type(error).__name__
        return _("The report file could not be stored: %(reason)s.") % {"reason": reason}
    return _("The report could not be generated (%(error)s).") % {"error": f"{type(error).__name__}: {error}"[:500]}


# --- Retrying and downloading ----------------------------------------------------------------------------------


@transaction.atomic
def report_retry(*, user: object, run_id: int) -> ReportRun:
    """Generate a failed run again, with the same scope and cut-off; so too a run whose worker was lost (running
    for longer than a task may live)."""
    run = run_or_404(user, run_id)
    stale = timezone.now() - datetime.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    retried = (
        ReportRun.objects.filter(pk=run.pk)
        .filter(Q(state=RunState.FAILED) | Q(state=RunState.RUNNING, started_at__lt=stale))
        .update(state=RunState.QUEUED, progress=0, step="", error="", task_id="", finished_at=None)
    )
    if not retried:
        raise InvalidInput(_("Only a failed run can be retried."))
    audit_write(user=user, entries=[AuditEntry("report_run", str(run.pk), "retry", old_value=run.error)])
    generate_after_commit(run.pk)
    return run_or_404(user, run.pk)


def report_download(*, user: object, run_id: int) -> tuple[ReportRun, bytes]:
    """The run's PDF, for a user who may report on every site it covers; who downloaded it and when is audited.
    A file that no longer matches its recorded SHA-256 is not given out."""
    run = run_or_404(user, run_id)
    if run.state != RunState.DONE:
        raise ReportNotAvailable(_("This report has no file: it is %(state)s.") % {"state": run.get_state_display()})
    try:
        with run.file.open("rb") as stored:
            content = stored.read()
    except OSError:
        raise ReportNotAvailable(_("The file of this report is missing; ask for the report again.")) from None
    if hashlib.sha256(content).hexdigest() != run.sha256:
        raise ReportNotAvailable(_("The file of this report was altered since it was generated; it is not given out."))
    with transaction.atomic():
        audit_write(user=user, entries=[AuditEntry("report_run", str(run.pk), "download", new_value=run.sha256)])
    return run, content


# --- Scheduled runs ----------------------------------------------------------------------------------------------


def scheduled_report(*, kind: str, trigger: str | None = None) -> ReportRun:
    """What Celery beat starts: a run of every site as the data stand now, generated at once, then the sponsor is
    emailed a link to it (never the file). `trigger`, the beat firing's task id, makes a retried firing go on with
    its own run instead of starting a second."""
    if kind not in ReportKind.values:
        raise InvalidInput(errors={"kind": [f"Unknown report kind {kind!r}."]})
    run = _scheduled_run(kind, trigger)
    report_generate(run_id=run.pk, task_id=trigger or "")
    notify_after_commit(run.pk)
    return ReportRun.objects.get(pk=run.pk)


@transaction.atomic
def _scheduled_run(kind: str, trigger: str | None) -> ReportRun:
    if trigger and (existing := ReportRun.objects.filter(trigger=trigger).first()):
        return existing
    now = timezone.now()
    run = ReportRun.objects.create(kind=kind, parameters={"sites": []}, cutoff=now, requested_at=now, trigger=trigger)
    run.sites.set(Site.objects.all())
    audit_write(user=None, entries=[AuditEntry("report_run", str(run.pk), "schedule", new_value=kind)])
    return run


def notify_after_commit(run_id: int) -> None:
    enqueue_after_commit("reports.tasks.report_notify_task", run_id)


@transaction.atomic
def report_notify(*, run_id: int) -> bool:
    """Email the sponsor a link to a finished scheduled run (or why it failed), once; True if this call sent it."""
    run = ReportRun.objects.select_for_update(no_key=True).filter(pk=run_id, notified_at=None).first()
    if run is None or run.active:
        return False
    recipients = [user.email for user in sponsors_of(run)]
    if recipients:
        _email(run, recipients)
    run.notified_at = timezone.now()
    run.save(update_fields=["notified_at"])
    entry = AuditEntry("report_run", str(run.pk), "notify", new_value=", ".join(recipients) or "-")
    audit_write(user=None, entries=[entry])
    return True


def sponsors_of(run: ReportRun) -> list[object]:
    """Active users with the sponsor role who may report on every site of the run (so the link opens for them)."""
    scope = set(run.sites.values_list("pk", flat=True))
    reporting: dict[int, set[int]] = defaultdict(set)
    memberships = SiteMembership.objects.filter(user__is_active=True, user__memberships__role=Role.SPONSOR)
    for user_id, site_id, role in memberships.values_list("user_id", "site_id", "role").distinct():
        if Action.REPORT in ROLE_ACTIONS[role]:
            reporting[user_id].add(site_id)
    chosen = [user_id for user_id, sites in reporting.items() if scope <= sites]
    return list(get_user_model().objects.filter(pk__in=chosen).exclude(email="").order_by("pk"))


def _email(run: ReportRun, recipients: list[str]) -> None:
    base = settings.SITE_URL.rstrip("/")
    cutoff = timezone.localtime(run.cutoff).strftime("%Y-%m-%d %H:%M %Z")
    if run.state == RunState.DONE:
        subject = _("[NCT01573923] %(report)s is ready") % {"report": run.get_kind_display()}
        lines = [
            _("The scheduled %(report)s of NCT01573923 is ready (data cut-off %(cutoff)s, all sites).")
            % {"report": run.get_kind_display(), "cutoff": cutoff},
            "",
            _("Download it (after logging in): %(url)s") % {"url": base + reverse("reports:download", args=[run.pk])},
            _("SHA-256 of the file: %(sha256)s") % {"sha256": run.sha256},
        ]
    else:
        subject = _("[NCT01573923] %(report)s could not be generated") % {"report": run.get_kind_display()}
        lines = [
            _("The scheduled %(report)s of NCT01573923 could not be generated: %(error)s")
            % {"report": run.get_kind_display(), "error": run.error},
            "",
            _("Retry it from the reports page: %(url)s") % {"url": base + reverse("reports:runs")},
        ]
    message = EmailMessage(subject=subject, body="\n".join(lines), to=recipients, headers={"X-EDC-Report": str(run.pk)})
    message.send(fail_silently=False)
