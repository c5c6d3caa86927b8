import pytest
import yaml
from django.urls import reverse

from capture import records
from tests.factories import enrolled
from trial import access
from trial.models import Participant
from trial.protocol_file import DEFAULT_PATH
from trial.services import protocol_load


@pytest.fixture
def participant(coordinator1, site1):
    """Enrolled 100 days ago in the MSC arm: M0 is past, M3 (day 91 +/- 14) is inside its window."""
    return enrolled(coordinator1, site1, arm="MSC", days_ago=100)


@pytest.fixture
def m3(participant):
    return participant.visits.select_related("definition").get(definition__code="M3")


def numeric_form(code: str, size: int) -> dict:
    """A protocol-file form of `size` required numeric items, for measuring how costs grow with items."""
    return {
        "code": code,
        "name": f"{size}-item panel",
        "visits": ["M0", "M3", "M6", "M9", "M12"],
        "items": [
            {
                "code": f"X{n:02d}",
                "label": f"Analyte {n}",
                "type": "decimal",
                "unit": "U/L",
                "hard": [0, 1000],
                "reference": [10, 50],
                "required": True,
            }
            for n in range(size)
        ],
    }


@pytest.fixture
def sized_protocol(protocol, tmp_path):
    """The protocol amended with a 45-, a 10- and a 5-item numeric panel, loaded as the current version."""
    definition = yaml.safe_load(DEFAULT_PATH.read_text())
    definition["forms"] += [numeric_form("P45", 45), numeric_form("P10", 10), numeric_form("P5", 5)]
    path = tmp_path / "sized.yaml"
    path.write_text(yaml.safe_dump(definition, allow_unicode=True))
    return protocol_load(path=path)[0]


NOTE = "participant_note"
NOTE_FIELDS = {"initials": "Initials", "date_of_birth": "Date of birth"}


def note_labels(ids: list[int]) -> dict[int, str]:
    """One read for many notes, as a registered kind of record's `labels` should be."""
    numbers = Participant.objects.filter(pk__in=ids).values_list("pk", "screening_number")
    return {pk: f"Note on {number}" for pk, number in numbers}


@pytest.fixture
def participant_note(db):
    """A kind of record of the tests' own, registered as the safety app registers its adverse events: a
    participant stands for a record of the participant that is not an item of a visit. A double of the registry's
    contract: reached through trial.access, labelled in one read, linked without one."""
    kind = records.register(
        NOTE,
        label=lambda pk: note_labels([pk])[pk],
        url=lambda pk: reverse("trial:participant_detail", args=[pk]),
        participant_for=access.participant_or_404,
        fields=lambda: dict(NOTE_FIELDS),
        labels=note_labels,
    )
    yield kind
    records.unregister(NOTE)
