"""Demo reports: the default schedules installed, and one finished trial summary to download."""

from django.db import transaction

from reports import runs
from reports.models import ReportKind, ReportRun, RunState
from reports.schedules import report_schedules_install


def seed(*, users: dict[str, object]) -> dict[str, int]:
    """Idempotent: schedules already there are kept, and a finished run is made only when there is none."""
    installed = sum(created for _task, created in report_schedules_install())
    made = 0
    if not ReportRun.objects.filter(state=RunState.DONE).exists():
        # Built in-process before the commit hands the run to a worker (if a broker is configured at all): the
        # worker then finds it done, and a broker that is down cannot fail it.
        with transaction.atomic():
            run = runs.report_request(user=users["sponsor"], kind=ReportKind.TRIAL_SUMMARY)
            runs.report_generate(run_id=run.pk)
        made = ReportRun.objects.filter(pk=run.pk, state=RunState.DONE).count()
    return {"schedules": installed, "runs": made}
