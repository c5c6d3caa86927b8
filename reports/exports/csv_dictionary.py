"""The data dictionary of the CSV export: a row for every column of every dataset.

Items say what the protocol says of them (labels in English and Chinese, type, unit, decimals, hard and
reference ranges, whether required, the formula of a derived item, the code list and its choices, the visits
and arms it is collected at); the columns the export adds (subject, site, ...) say what they hold.
"""

from collections.abc import Iterator

from reports.exports.csv_safety import SAFETY_COLUMNS
from reports.exports.logs import dictionary_columns
from reports.exports.metadata import ItemMeta, StudyMeta, plain
from reports.exports.record_meta import SAFETY_EVENT

COLUMNS = (
    "protocol_version",
    "dataset",
    "column",
    "label",
    "label_zh",
    "group",
    "type",
    "unit",
    "decimals",
    "hard_min",
    "hard_max",
    "reference_low",
    "reference_high",
    "required",
    "derived_from",
    "codelist",
    "choices",
    "visits",
    "arms",
)
ALL_DATASETS = "*"
LAB_DATASET = "LAB_LONG"
SITES_DATASET = "SITES"
SITE_COLUMNS = ("site", "name", "name_zh", "city", "province", "principal_investigator")
# (dataset, column, label, label_zh, type) of the columns that are not items.
BOOLEAN_SPELLING = "Every column of type boolean holds true or false (lower case); empty when not recorded"
ADDED_COLUMNS = (
    (ALL_DATASETS, ALL_DATASETS, BOOLEAN_SPELLING, "所有布尔型列取值为 true 或 false（小写）；未记录时为空", "boolean"),
    (ALL_DATASETS, "subject", "Subject number", "受试者编号", "text"),
    (ALL_DATASETS, "site", "Site number (see SITES)", "中心编号", "text"),
    (ALL_DATASETS, "arm", "Arm code (as ENROL.ARM)", "治疗组代码", "text"),
    (ALL_DATASETS, "visit", "Visit code; SCREENING before day 0", "访视代码", "text"),
    (ALL_DATASETS, "visit_date", "Date of the visit (SCREEN: of screening; ENROL: of enrolment)", "访视日期", "date"),
    (ALL_DATASETS, "missing", "Wide datasets: items without a value and why, as ITEM=reason", "缺失项目及原因", "text"),
    (
        ALL_DATASETS,
        ALL_DATASETS,
        "Every text cell that begins with =, +, -, @, a tab or a carriage return is written with a leading "
        "apostrophe (') so that a spreadsheet shows it as text and never runs it as a formula; remove that "
        "apostrophe to read the value as entered. Numbers, negative ones included, are written as they are.",
        "所有以 =、+、-、@、制表符或回车开头的文本单元格前加一个撇号（'），使电子表格将其显示为文本而不作为公式执行；"
        "去掉该撇号即为录入的原值。数字（包括负数）按原样写出。",
        "text",
    ),
    (SITES_DATASET, "name", "Site name", "中心名称（英文）", "text"),
    (SITES_DATASET, "name_zh", "Site name in Chinese", "中心名称", "text"),
    (SITES_DATASET, "city", "City", "城市", "text"),
    (SITES_DATASET, "province", "Province", "省份", "text"),
    (SITES_DATASET, "principal_investigator", "Principal investigator", "主要研究者", "text"),
    (LAB_DATASET, "sample_date", "Date of sample (the panel's LBDAT)", "采样日期", "date"),
    (LAB_DATASET, "form", "Form (laboratory panel) code", "表单代码", "text"),
    (LAB_DATASET, "item", "Item (test) code", "项目代码", "text"),
    (LAB_DATASET, "unit", "Unit of the value", "单位", "text"),
    (LAB_DATASET, "reference_low", "Lower limit of the reference range", "参考范围下限", "decimal"),
    (LAB_DATASET, "reference_high", "Upper limit of the reference range", "参考范围上限", "decimal"),
    (LAB_DATASET, "value", "Value as entered (numbers without trailing zeros)", "结果", "text"),
    (LAB_DATASET, "flag", "Flags of the value: high, low, rule, window; ';'-separated", "标记", "text"),
    (LAB_DATASET, "missing_reason", "Why the value is missing", "缺失原因", "choice"),
)


def dictionary(versions: list[StudyMeta]) -> Iterator[list[str]]:
    yield list(COLUMNS)
    for dataset, column, label, label_zh, data_type in (*ADDED_COLUMNS, *SAFETY_COLUMNS, *dictionary_columns(versions)):
        yield ["", dataset, column, label, label_zh, "", data_type, *[""] * (len(COLUMNS) - 7)]
    for meta in versions:
        for form in meta.forms:
            if SAFETY_EVENT in form.event_codes:
                continue  # AE.csv's columns are SAFETY_COLUMNS; the death report is in the ODM file
            for item in form.items:
                yield _item_row(meta, form.code, form.event_codes, form.arm_codes, item)


def _item_row(meta: StudyMeta, dataset: str, events: tuple, arms: tuple, item: ItemMeta) -> list[str]:
    codelist = item.codelist
    choices = "; ".join(f"{c.code}={c.label}/{c.label_zh}" for c in codelist.choices) if codelist else ""
    return [
        str(meta.protocol.version),
        dataset,
        item.code,
        item.label,
        item.label_zh,
        item.group,
        item.data_type,
        item.unit,
        "" if item.decimals is None else str(item.decimals),
        plain(item.hard_min),
        plain(item.hard_max),
        plain(item.reference_low),
        plain(item.reference_high),
        "true" if item.required else "false",
        item.formula,
        codelist.name if codelist else "",
        choices,
        " ".join(events),
        " ".join(arms),
    ]
