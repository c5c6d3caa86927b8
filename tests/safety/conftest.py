import datetime

import pytest
from django.utils import timezone

from capture.models import FormInstance
from capture.services import form_save
from tests.factories import enrolled

LIVER_NORMAL = {"ALT": "30", "AST": "30", "ALB": "42", "PREALB": "200", "BILI": "15", "BILDIR": "5"}


@pytest.fixture
def participant(coordinator1, site1):
    """Enrolled 100 days ago in the MSC arm: M0 is past, M3 (day 91 +/- 14) is inside its window."""
    return enrolled(coordinator1, site1, arm="MSC", days_ago=100)


def visit_of(participant, code):
    return participant.visits.select_related("definition").get(definition__code=code)


def save_liver(user, visit, run_on_commit, **values):
    """Save the LIVER panel of a visit (normal values unless given) and run what the commit queues."""
    instance = FormInstance.objects.filter(visit=visit, definition__code="LIVER").first()
    sampled = max(visit.window_start, min(visit.target_date, timezone.localdate()))
    entries = {**LIVER_NORMAL, "LBDAT": sampled.isoformat(), **values}
    with run_on_commit(execute=True):
        return form_save(
            user=user,
            visit_id=visit.pk,
            form_code="LIVER",
            version=instance.version if instance else 0,
            values=entries,
            complete=False,
            reason="correction" if instance else "",
        )


def ae_input(**overrides):
    """A mild, unrelated, ongoing adverse event that began yesterday."""
    from safety.rules import AdverseEventInput

    data = {
        "term": "Nausea",
        "body_system": "gastrointestinal",
        "onset_date": timezone.localdate() - datetime.timedelta(days=1),
        "end_date": None,
        "grade": 1,
        "relationship": "unlikely",
        "action_taken": "none",
        "outcome": "not_recovered",
        "serious": False,
        "serious_criteria": [],
        "description": "",
    }
    data.update(overrides)
    return AdverseEventInput(**data)


SERIOUS = {"serious": True, "serious_criteria": ["hospitalisation"], "grade": 3}
