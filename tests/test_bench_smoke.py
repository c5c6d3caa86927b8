"""The benchmark dataset builder (bench/dataset.py) keeps up with the schema: a small dataset loaded through COPY
holds values the application accepts, a chain verify_audit accepts, pages that render, and sequences the services
can write after."""

import pytest
from django.db import connection
from django.test import Client

from bench import dataset
from capture.checks import ParseError, parse
from capture.models import FormInstance, ItemValue, Query
from capture.services import form_save
from safety.models import AdverseEvent
from trial.audit import audit_verify
from trial.models import AuditRecord, ItemDefinition, Participant, Site, Visit
from trial.tallies import Tally

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
SIZE = 60  # enough for every query state, adverse event kind and grade, screen failures, a withdrawal, locks


@pytest.fixture
def built(protocol: object) -> dict:
    definitions = dataset.read_definitions()
    dataset.ensure_users(definitions)
    connection.ensure_connection()
    counts = dataset.populate(connection.connection, definitions, SIZE, strip=False)
    return {"definitions": definitions, "counts": counts}


def test_builder_loads_every_table_with_full_visits(built: dict) -> None:
    counts = built["counts"]
    assert Participant.objects.count() == SIZE
    assert Participant.objects.filter(status="screen_failed").count() == SIZE // 20
    assert Visit.objects.count() == 9 * (SIZE - SIZE // 20)
    assert all(counts[table] > 0 for table, _, _ in dataset.TABLES), counts
    # Every complete visit's forms hold every required item (about 310 values per participant in all).
    required = {}
    for item in ItemDefinition.objects.filter(required=True, derived=""):
        required.setdefault(item.form_id, set()).add(item.pk)
    stored: dict[int, set[int]] = {}
    for visit_id, item_id in ItemValue.objects.values_list("visit_id", "item_id"):
        stored.setdefault(visit_id, set()).add(item_id)
    instances = FormInstance.objects.values_list("visit_id", "definition_id")
    assert instances and all(required.get(form, set()) <= stored[visit] for visit, form in instances)
    assert 250 < ItemValue.objects.count() / (SIZE - SIZE // 20) < 400
    assert set(Query.objects.values_list("state", flat=True)) == {"open", "answered", "closed"}
    assert set(AdverseEvent.objects.values_list("status", flat=True)) == {"proposed", "dismissed", "reported"}
    assert set(AdverseEvent.objects.exclude(grade=None).values_list("grade", flat=True)) == {1, 2, 3, 4}
    # Loaded with the triggers on (strip=False), the site tallies counted every row.
    tally = Tally(Site.objects.values_list("pk", flat=True))
    assert tally.total("visit") == Visit.objects.count()
    assert tally.participants() == SIZE
    assert tally.total("ae", detail="proposed") == AdverseEvent.objects.filter(status="proposed").count()


def test_builder_values_are_what_the_application_accepts(built: dict) -> None:
    items = {item.pk: item for item in ItemDefinition.objects.all()}
    for value in ItemValue.objects.filter(missing_reason=""):
        item = items[value.item_id]
        if item.derived:
            continue
        try:
            typed = parse(item, value.display)
        except ParseError as error:  # pragma: no cover - the message names the bad value
            pytest.fail(f"{item}: {value.display!r} refused: {error}")
        assert typed.number == value.number and typed.date == value.date


def test_builder_chain_verifies_and_services_write_after_it(built: dict) -> None:
    assert audit_verify().problem is None
    participant = Participant.objects.get(subject_id="02-00001")  # not locked (every third completed one is)
    form = FormInstance.objects.filter(definition__code="LIVER", visit__participant=participant).first()
    values = dict(
        ItemValue.objects.filter(visit=form.visit, item__form__code="LIVER").values_list("item__code", "number")
    )
    entries = {code: f"{number.normalize():f}" for code, number in values.items() if number is not None}
    entries["LBDAT"] = form.visit.visit_date.isoformat()
    entries["ALT"] = "77"
    before = AuditRecord.objects.count()
    result = form_save(
        user=participant.enrolled_by,
        visit_id=form.visit_id,
        form_code="LIVER",
        version=form.version,
        values=entries,
        reason="typo",
    )
    assert result.form.version == form.version + 1 and AuditRecord.objects.count() > before
    assert audit_verify().problem is None


def test_builder_data_render_as_pages(built: dict) -> None:
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-datamanager"))
    for url in ("/matrix/", "/inbox/sdv/", "/inbox/queries/", "/safety/", "/safety/listing/", "/api/v1/queries/"):
        assert client.get(url).status_code == 200, url
