"""The CSV export: read back with the csv module, it holds exactly the data entered, and the dictionary names
every column."""

import csv
import io
import itertools
import zipfile

import pytest

from capture.services import form_save
from reports.exports.csv_export import csv_export
from reports.selectors import export_scope
from tests.factories import make_user
from tests.reports.export_data import LOT, correct_alt, enter_participant, read_zip, stored
from trial.models import ItemDefinition, Role

pytestmark = pytest.mark.django_db

VISIT_FORMS = ["CLIN", "SYMPT", "LIVER", "KIDNEY", "LIPGLU", "CYTO", "HEPAT", "INFUS", "SURV", "EOS"]
KEY = ["subject", "site", "arm", "visit", "visit_date"]


@pytest.fixture
def entered(coordinator1, coordinator2, site1, site2):
    first = enter_participant(coordinator1, site1, arm="MSC")
    correct_alt(coordinator1, first, alt="310", reason="Transcription error")
    second = enter_participant(coordinator2, site2, arm="CONV", alt="45")
    return {1: first, 2: second}


def export(user: object, site: int | None = None) -> dict[str, list[dict[str, str]]]:
    """{dataset: rows as dicts}, read back with the csv module."""
    files = read_zip(b"".join(csv_export(scope=export_scope(user, site))))
    return {
        name.removesuffix(".csv"): list(csv.DictReader(io.StringIO(text, newline=""))) for name, text in files.items()
    }


def wide_values(datasets: dict, subject_id: str) -> dict[tuple[str, str, str], str]:
    """{(visit, form, item): value, or "<reason>" when missing} of one subject in the wide datasets."""
    values = {}
    for form in VISIT_FORMS:
        for row in datasets[form]:
            if row["subject"] != subject_id:
                continue
            for code, value in row.items():
                if code not in KEY and code != "missing" and value != "":
                    values[(row["visit"], form, code)] = value
            for missing in row["missing"].split():
                code, _eq, reason = missing.partition("=")
                values[(row["visit"], form, code)] = f"<{reason}>"
    return values


def test_the_archive_holds_every_dataset(entered, datamanager):
    datasets = export(datamanager)
    assert set(datasets) == {
        "data_dictionary",
        "SITES",
        "SCREEN",
        "ELIG",
        "IE",
        "ENROL",
        "LAB_LONG",
        "AE",
        "SURVIVAL",
        "CM",
        "MH",
        "DV",
        *VISIT_FORMS,
    }


def test_wide_datasets_read_back_equal_to_the_entered_data(entered, datamanager):
    datasets = export(datamanager)
    for entry in entered.values():
        participant = entry.participant
        assert wide_values(datasets, participant.subject_id) == stored(participant)
    (liver,) = [row for row in datasets["LIVER"] if row["subject"] == entered[1].participant.subject_id]
    m0 = entered[1].m0
    assert {key: liver[key] for key in KEY} == {
        "subject": entered[1].participant.subject_id,
        "site": "01",
        "arm": "MSC",
        "visit": "M0",
        "visit_date": m0.target_date.isoformat(),
    }
    assert (liver["ALT"], liver["ALB"], liver["PREALB"], liver["missing"]) == ("310", "42.5", "", "PREALB=not_done")
    assert list(datasets["LIVER"][0])[:13] == [
        *KEY,
        "LBDAT",
        "ALT",
        "AST",
        "ALB",
        "PREALB",
        "BILI",
        "BILDIR",
        "missing",
    ]


def test_chinese_and_awkward_free_text_survive(entered, datamanager):
    datasets = export(datamanager)
    sites = {row["site"]: row for row in datasets["SITES"]}
    assert sites["01"]["name_zh"] == "中国人民解放军第三〇二医院"
    assert sites["02"]["name_zh"] == "兰州大学第一医院"
    (infusion,) = datasets["INFUS"]
    participant = entered[1].participant
    assert infusion["REACTDSC"] == stored(participant)[("M0", "INFUS", "REACTDSC")]
    assert "轻度发热" in infusion["REACTDSC"] and "\n" in infusion["REACTDSC"]
    assert infusion["LOT"] == LOT


def test_files_carry_the_byte_order_mark_for_excel(entered, datamanager):
    content = b"".join(csv_export(scope=export_scope(datamanager)))
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in archive.namelist():
            assert archive.read(name).startswith("\ufeff".encode()), name


def test_the_long_lab_dataset_has_a_row_per_value_with_unit_range_and_flag(entered, datamanager):
    datasets = export(datamanager)
    subject_id = entered[1].participant.subject_id
    rows = {(row["form"], row["item"]): row for row in datasets["LAB_LONG"] if row["subject"] == subject_id}
    assert set(rows) == {("LIVER", code) for code in ("ALT", "AST", "ALB", "PREALB", "BILI", "BILDIR")}
    alt = rows[("LIVER", "ALT")]
    assert alt["visit"] == "M0" and alt["sample_date"] == entered[1].m0.target_date.isoformat()
    assert (alt["value"], alt["unit"], alt["reference_low"], alt["reference_high"], alt["flag"]) == (
        "310",
        "U/L",
        "9",
        "50",
        "high",
    )
    assert (rows[("LIVER", "PREALB")]["value"], rows[("LIVER", "PREALB")]["missing_reason"]) == ("", "not_done")
    assert rows[("LIVER", "ALB")]["flag"] == ""


def test_a_visits_lab_rows_follow_the_protocols_item_order_whatever_order_the_database_returns(
    entered, datamanager, monkeypatch
):
    """The database returns a visit's values in no particular order (value_queryset(by_item=False)); the export
    puts them in item order itself, here even when they come reversed."""
    from reports import selectors

    def reversed_within_visits(queryset, chunk_size=selectors.CHUNK):
        rows = queryset.iterator(chunk_size=chunk_size)
        visits = itertools.groupby(rows, key=lambda row: row[:2])
        return (row for _visit, values in visits for row in sorted(values, key=lambda row: -row[2]))

    expected = export(datamanager)
    monkeypatch.setattr(selectors, "read_ahead", reversed_within_visits)
    datasets = export(datamanager)
    assert datasets == expected
    subject_id = entered[1].participant.subject_id
    lab_rows = datasets["LAB_LONG"]
    items = [
        row["item"] for row in lab_rows if (row["subject"], row["visit"], row["form"]) == (subject_id, "M0", "LIVER")
    ]
    order = ItemDefinition.objects.filter(form__code="LIVER").order_by("pk").values_list("code", flat=True)
    assert items == [code for code in order if code in items] and len(items) > 1


def test_screening_and_enrolment_have_a_row_per_participant(entered, datamanager):
    datasets = export(datamanager)
    participant = entered[2].participant
    (screen,) = [row for row in datasets["SCREEN"] if row["subject"] == participant.subject_id]
    assert (screen["BILI"], screen["ALB"], screen["INR"], screen["HEPENC"]) == ("40", "30", "1.5", "none")
    (enrolment,) = [row for row in datasets["ENROL"] if row["subject"] == participant.subject_id]
    assert (enrolment["site"], enrolment["ARM"], enrolment["SEX"]) == ("02", "CONV", "M")
    assert enrolment["ENRLDAT"] == participant.enrolment_date.isoformat()
    assert enrolment["AGE"] == str(participant.age_on(participant.enrolment_date))


def test_the_data_dictionary_names_every_column(entered, datamanager):
    files = read_zip(b"".join(csv_export(scope=export_scope(datamanager))))
    datasets = export(datamanager)
    dictionary = {(row["dataset"], row["column"]): row for row in datasets["data_dictionary"]}
    for item in ItemDefinition.objects.select_related("form"):
        assert (item.form.code, item.code) in dictionary
    for name, text in files.items():
        if name != "data_dictionary.csv":
            dataset = name.removesuffix(".csv")
            for column in next(csv.reader(io.StringIO(text))):
                assert (dataset, column) in dictionary or ("*", column) in dictionary, (dataset, column)
    alt = dictionary[("LIVER", "ALT")]
    assert (alt["label_zh"], alt["unit"], alt["hard_max"], alt["reference_low"], alt["required"]) == (
        "丙氨酸氨基转移酶",
        "U/L",
        "10000",
        "9",
        "true",
    )
    assert dictionary[("CLIN", "ASCITES")]["choices"].startswith("none=None/无; mild=Mild/轻度")
    assert dictionary[("LIPGLU", "NONHDL")]["derived_from"] == "CHOL - HDL"
    assert dictionary[("INFUS", "LOT")]["arms"] == "MSC"


def test_numbers_are_written_as_entered(coordinator1, site1, datamanager):
    """The database formats the numbers (SQLite and PostgreSQL alike): no exponent, no trailing zeros."""
    entry = enter_participant(coordinator1, site1, arm="CONV")
    kidney = {"LBDAT": entry.m0.target_date.isoformat(), "BUN": "0.05", "URATE": "100", "CREAT": "0"}
    form_save(user=coordinator1, visit_id=entry.m0.pk, form_code="KIDNEY", version=0, values=kidney)
    hepatitis = {"HBVDNA": "10000000000", "HCVRNA": "1.5"}
    form_save(user=coordinator1, visit_id=entry.m0.pk, form_code="HEPAT", version=0, values=hepatitis, partial=True)
    datasets = export(datamanager)
    (row,) = datasets["KIDNEY"]
    assert (row["BUN"], row["URATE"], row["CREAT"]) == ("0.05", "100", "0")
    (row,) = datasets["HEPAT"]
    assert (row["HBVDNA"], row["HCVRNA"]) == ("10000000000", "1.5")


def test_a_site_1_data_manager_sees_site_1_only(entered, site1):
    manager = make_user("manager-site1", {site1: Role.DATA_MANAGER})
    datasets = export(manager)
    subjects = {row["subject"] for rows in datasets.values() if rows and "subject" in rows[0] for row in rows}
    assert subjects == {entered[1].participant.subject_id}
    assert [row["site"] for row in datasets["SITES"]] == ["01"]
    assert {row["site"] for row in datasets["ENROL"]} == {"01"}


def test_one_site_on_request(entered, datamanager):
    datasets = export(datamanager, site=2)
    assert {row["subject"] for row in datasets["LIVER"]} == {entered[2].participant.subject_id}
    assert datasets["INFUS"] == []  # the site 2 participant is in the conventional arm


def test_an_empty_trial_gives_every_dataset_with_its_columns(datamanager):
    files = read_zip(b"".join(csv_export(scope=export_scope(datamanager))))
    assert files["LIVER.csv"].splitlines()[0].startswith("subject,site,arm,visit,visit_date,LBDAT,ALT")
    assert len(files["LAB_LONG.csv"].splitlines()) == 1


def test_adverse_events_and_survival_are_datasets_of_the_scope(entered, coordinator1, coordinator2, datamanager, site1):
    from safety import services
    from tests.safety.conftest import ae_input

    first, second = entered[1].participant, entered[2].participant
    services.adverse_event_report(user=coordinator1, participant_id=first.pk, data=ae_input(term="发热 fever"))
    services.adverse_event_report(user=coordinator2, participant_id=second.pk, data=ae_input(grade=2))
    datasets = export(datamanager)
    by_subject = {row["subject"]: row for row in datasets["AE"]}
    assert by_subject[first.subject_id]["term"] == "发热 fever"
    assert (by_subject[second.subject_id]["grade"], by_subject[second.subject_id]["status"]) == ("2", "reported")
    assert {row["subject"] for row in datasets["SURVIVAL"]} == {first.subject_id, second.subject_id}
    assert all(row["died"] == "false" and row["censored"] == "true" for row in datasets["SURVIVAL"])
    site1_only = make_user("dm1", {site1: Role.DATA_MANAGER})
    assert [row["subject"] for row in export(site1_only)["AE"]] == [first.subject_id]
    dictionary = {(row["dataset"], row["column"]) for row in datasets["data_dictionary"]}
    assert {("AE", "relationship"), ("SURVIVAL", "censored")} <= dictionary


def _statements(user: object) -> tuple[int, bytes]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        archive = b"".join(csv_export(scope=export_scope(user)))
    return len(queries), archive


def test_the_export_costs_the_same_statements_whatever_the_number_of_participants(
    entered, coordinator1, site1, datamanager, monkeypatch
):
    """Survival (a derivation over three tables) streams side by side too: with a chunk of two participants, the
    export of six costs no more statements than the export of two, and its rows are survival_of's."""
    from reports.exports import csv_safety
    from safety.survival import survival_of
    from tests.factories import enrolled
    from trial.models import Participant

    monkeypatch.setattr(csv_safety, "SURVIVAL_CHUNK", 2)
    _statements(datamanager)  # the first export reads the protocol's definitions into the process's caches
    few, _archive = _statements(datamanager)
    for days_ago in (30, 60, 90, 120):
        enrolled(coordinator1, site1, arm="MSC", days_ago=days_ago)
    many, archive = _statements(datamanager)
    assert many == few
    rows = list(csv.DictReader(io.StringIO(read_zip(archive)["SURVIVAL.csv"], newline="")))
    expected = survival_of(Participant.objects.filter(subject_id__isnull=False))
    assert [(row["subject"], row["end"], row["died"]) for row in rows] == [
        (s.subject_id, s.end.isoformat(), "true" if s.died else "false") for s in expected
    ]
    assert len(rows) == 6


def test_the_values_read_ahead_are_the_iterators_rows_in_one_statement(entered, datamanager, django_assert_num_queries):
    """On PostgreSQL a thread fetches the next chunk while the export writes this one (selectors.read_ahead):
    the same rows in the same order as the queryset's iterator, from one statement, counted like any other."""
    from reports.selectors import consistent_reads, read_ahead, value_queryset

    queryset = value_queryset(export_scope(datamanager), flags=True)
    expected = list(queryset.iterator(chunk_size=7))
    with consistent_reads(), django_assert_num_queries(1):
        assert list(read_ahead(queryset, chunk_size=7)) == expected
    assert len(expected) > 14


def test_a_visits_values_come_in_one_row(entered, datamanager, monkeypatch, django_assert_num_queries):
    """The ODM export reads a row per visit (selectors.visit_values): the values a row per value gives, each with its
    text and missing reason at the same place in every array, whether the database puts them in arrays
    (PostgreSQL, read ahead VISIT_CHUNK visits at a time; one here, so the visits cross chunks) or the reader groups
    them (SQLite)."""
    import contextlib
    from itertools import groupby
    from operator import itemgetter

    from reports import selectors

    monkeypatch.setattr(selectors, "VISIT_CHUNK", 1)
    scope = export_scope(datamanager)
    by_value = list(selectors.value_queryset(scope))
    expected = [(key, [row[2:] for row in rows]) for key, rows in groupby(by_value, itemgetter(0, 1))]
    with selectors.consistent_reads(), django_assert_num_queries(1):
        rows = selectors.visit_values(scope)
        with contextlib.closing(rows):
            got = [((p, d), sorted(zip(*columns, strict=True))) for p, d, *columns in rows]
    assert got == expected
    assert len({participant for (participant, _definition), _values in expected}) == 2
    assert all(len(values) > 10 for _key, values in expected)


def test_a_reader_that_stops_early_leaves_no_thread_behind(entered, datamanager):
    """A download given up half-way: the thread stops, its cursor closes and the connection serves the next query."""
    import threading

    from capture.models import ItemValue
    from reports.selectors import consistent_reads, read_ahead, value_queryset

    queryset = value_queryset(export_scope(datamanager), flags=True)
    with consistent_reads():
        rows = read_ahead(queryset, chunk_size=3)
        first = next(rows)
        rows.close()
        assert first == next(queryset.iterator(chunk_size=3))
    assert not [thread for thread in threading.enumerate() if thread.name == "export-read-ahead"]
    assert ItemValue.objects.count() > 0
