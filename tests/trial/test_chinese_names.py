"""Protocol text in Chinese: the headings items stand under, item labels in messages, the demo's staff names."""

import importlib

import pytest
from django.apps import apps
from django.utils import translation

from capture.checks import ParseError, parse
from tests.factories import enrolled
from trial.demo import DEMO_USERS
from trial.models import ItemDefinition
from trial.system_text import system_text, system_user_label

pytestmark = pytest.mark.usefixtures("zh_catalog")

fill = importlib.import_module("trial.migrations.0009_chinese_itemdefinition_group_zh").fill_group_zh


def test_every_heading_of_the_protocol_has_its_chinese(protocol):
    items = ItemDefinition.objects.filter(form__protocol=protocol).exclude(group="")
    assert items.exists()
    assert list(items.filter(group_zh="").values_list("group", flat=True).distinct()) == []
    assert set(items.filter(group="Sample").values_list("group_zh", flat=True)) == {"样本"}


def test_the_migration_fills_the_headings_of_versions_loaded_before(protocol):
    items = ItemDefinition.objects.filter(form__protocol=protocol)
    items.update(group_zh="")
    items.filter(form__code="LIVER", code="ALT").update(
        group_zh="kept"
    )  # a heading a version already has is left alone
    fill(apps, None)
    assert set(items.filter(form__code="LIVER", code="ALB").values_list("group_zh", flat=True)) == {"蛋白"}
    assert set(items.filter(form__code="LIVER", code="ALT").values_list("group_zh", flat=True)) == {"kept"}


def test_the_form_page_shows_the_headings_in_the_users_language(client, coordinator1, site1):
    m0 = enrolled(coordinator1, site1).visits.get(definition__code="M0")
    client.force_login(coordinator1)
    chinese = client.get(f"/visits/{m0.pk}/forms/LIVER/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    english = client.get(f"/visits/{m0.pk}/forms/LIVER/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert ">酶学</legend>" in chinese and ">胆红素</legend>" in chinese
    assert ">Enzymes</legend>" in english and "酶学" not in english


@pytest.mark.parametrize(("language", "label"), [("en", "Albumin (ALB)"), ("zh-hans", "白蛋白")])
def test_an_entry_error_names_the_item_in_the_users_language(protocol, language, label):
    albumin = ItemDefinition.objects.get(form__protocol=protocol, form__code="LIVER", code="ALB")
    with translation.override(language), pytest.raises(ParseError) as error:
        parse(albumin, "forty")
    assert str(error.value).startswith((f"{label}: ", f"{label}："))


def test_the_demo_staff_have_chinese_names_surname_first():
    names = [user.first_name + user.last_name for user in DEMO_USERS]
    assert all(name and all("\u4e00" <= char <= "\u9fff" for char in name) for name in names)
    assert next(u.first_name for u in DEMO_USERS if u.username == "investigator1") == "李汉伟"


def test_the_systems_reasons_and_name_read_in_chinese_and_a_persons_as_written():
    with translation.override("zh-hans"):
        assert system_text("Signed data changed") == "已签名的数据被修改"
        assert system_text("Signed data changed by me") == "Signed data changed by me"
        assert system_user_label("system") == system_user_label("") == "系统"
        assert system_user_label("coordinator1") == "coordinator1"
    assert system_text("derived") == "derived"
