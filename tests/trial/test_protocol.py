from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from trial.models import Arm, FormDefinition, ItemDefinition, Protocol, Site, VisitDefinition
from trial.protocol_file import DEFAULT_PATH
from trial.services import protocol_load

PANELS = {
    "LIVER": {"ALB", "ALT", "AST", "PREALB", "BILI", "BILDIR"},
    "KIDNEY": {"BUN", "URATE", "CREAT"},
    "LIPGLU": {"CHOL", "HDL", "LDL", "TRIG", "VLDL", "NONHDL", "GLUC"},
    "CYTO": {
        "IL1B",
        "IL4",
        "IL6",
        "IL8",
        "IL10",
        "IL12P40",
        "IL15",
        "IL17A",
        "TNFA",
        "TNFB",
        "IFNG",
        "CCL5",
        "TGFB1",
        "XCL1",
        "CRP",
    },
    "HEPAT": {"HBSAG", "HBVDNA", "HCVAB", "HCVRNA"},
    "CLIN": {"INR", "ASCITES", "HEPENC", "WEIGHT", "CPSCORE", "MELD"},
    "SYMPT": {"ABDDIST", "APPETITE", "DEBIL", "LLEDEMA"},
    "INFUS": {"INFDAT", "CELLDOSE", "VOLUME", "LOT", "REACT"},
    "SURV": {"CONTDAT", "VITAL", "LKADAT"},
    "EOS": {"EOSDAT", "EOSREAS"},
    "SCREEN": {"BILI", "ALB", "INR", "ASCITES", "HEPENC"},
}


def test_every_crf_of_the_record_is_defined(protocol):
    for form_code, expected in PANELS.items():
        codes = set(
            ItemDefinition.objects.filter(form__protocol=protocol, form__code=form_code).values_list("code", flat=True)
        )
        assert expected <= codes, form_code


def test_lab_units_are_si(protocol):
    units = dict(
        ItemDefinition.objects.filter(
            form__protocol=protocol, form__code__in=["LIVER", "KIDNEY", "LIPGLU"]
        ).values_list("code", "unit")
    )
    assert units["ALB"] == "g/L" and units["BILI"] == "umol/L" and units["ALT"] == "U/L"
    assert units["CREAT"] == "umol/L" and units["GLUC"] == "mmol/L" and units["CHOL"] == "mmol/L"


def test_numeric_lab_items_have_hard_ranges_and_derived_items_are_not_required(protocol):
    items = ItemDefinition.objects.filter(form__protocol=protocol, data_type="decimal")
    for item in items:
        if item.derived:
            assert not item.required, item
        else:
            assert item.hard_min is not None and item.hard_max is not None, item
    nonhdl = items.get(form__code="LIPGLU", code="NONHDL")
    assert nonhdl.derived == "CHOL - HDL"


def test_arms_visits_and_arm_limited_forms(protocol):
    assert list(Arm.objects.filter(protocol=protocol).values_list("code", flat=True)) == ["CONV", "MSC"]
    assert list(VisitDefinition.objects.filter(protocol=protocol).values_list("code", "day")) == [
        ("M0", 0),
        ("M3", 91),
        ("M6", 182),
        ("M9", 273),
        ("M12", 365),
        ("FU18", 547),
        ("FU24", 730),
        ("FU30", 912),
        ("FU36", 1095),
    ]
    infusion = FormDefinition.objects.get(protocol=protocol, code="INFUS")
    assert infusion.applies_to(visit_code="M9", arm_code="MSC")
    assert not infusion.applies_to(visit_code="M9", arm_code="CONV")
    assert not infusion.applies_to(visit_code="M12", arm_code="MSC")
    assert FormDefinition.objects.get(protocol=protocol, code="LIVER").applies_to(visit_code="M3", arm_code="CONV")


def test_six_sites_with_their_investigators(protocol):
    sites = dict(Site.objects.values_list("number", "principal_investigator"))
    assert len(sites) == 6
    assert sites[1].startswith("Hanwei Li") and sites[6].startswith("Liming Wang")
    assert Site.objects.get(number=5).name_zh == "同济大学附属同济医院"


def test_loading_again_is_idempotent(protocol):
    again, created = protocol_load()
    assert (again, created) == (protocol, False)
    assert Protocol.objects.count() == 1


def test_a_changed_file_is_a_new_version(protocol, tmp_path: Path):
    amended = tmp_path / "amended.yaml"
    amended.write_text(DEFAULT_PATH.read_text().replace("planned_enrolment: 320", "planned_enrolment: 330"))
    new, created = protocol_load(path=amended)
    assert created and new.version == protocol.version + 1
    assert new.form_definitions.count() == protocol.form_definitions.count()
    assert protocol.form_definitions.exists()  # the old version's definitions stay for the data tied to them


def test_a_broken_file_is_refused_with_a_message(protocol, tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(DEFAULT_PATH.read_text().replace("type: decimal", "type: decimall", 1))
    with pytest.raises(CommandError, match="unknown type 'decimall'"):
        call_command("load_protocol", str(broken))
    assert Protocol.objects.count() == 1
