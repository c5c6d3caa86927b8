"""Safety's answer to capture's form_saved signal: queue the lab grading for after the commit."""

from safety import lab
from trial.background import enqueue_after_commit


def form_saved_receiver(sender: object, *, form: object, form_code: str, visit: object, **kwargs: object) -> None:
    """A saved lab form is graded by a worker once the save is committed (nothing runs for a rolled-back save).

    No outbox row is written here: the form's version ahead of its FormGrading is the outbox, so the periodic
    sweep grades a form whose task never reached the broker.
    """
    if form_code in lab.graded_form_codes(visit.participant.protocol):
        enqueue_after_commit("safety.tasks.lab_grade_task", form.pk)
