"""The metadata and administrative parts of the ODM file: Study (with one MetaDataVersion per protocol version)
and AdminData (the sites as Locations, and the users the audit trail names).

Small, so written as whole strings; every text from the protocol or the database goes through `escape`.
"""

from collections.abc import Iterator, Sequence

from reports.exports import escape
from reports.exports.metadata import CodeList, EventMeta, FormMeta, ItemMeta, StudyMeta, plain, unit_oid
from reports.selectors import AuditUser
from trial.models import Site, VisitKind

LANGUAGES = ("en", "zh-Hans")
COMMON = "common"  # the kind of the SAFETY event
LOG_EVENT_KIND = "log"


def translated(element: str, english: str, chinese: str = "") -> str:
    """An ODM element of TranslatedText: English, and Simplified Chinese when the protocol gives it."""
    texts = [(LANGUAGES[0], english)] + ([(LANGUAGES[1], chinese)] if chinese else [])
    inner = "".join(f'<TranslatedText xml:lang="{lang}">{escape.text(text)}</TranslatedText>' for lang, text in texts)
    return f"<{element}>{inner}</{element}>"


def location_oid(site_number: int) -> str:
    return f"LOC.{site_number:02d}"


def user_oid(user_id: int | None) -> str:
    return f"USR.{user_id}" if user_id is not None else "USR.system"


def study(versions: Sequence[StudyMeta]) -> Iterator[str]:
    """The Study element of one protocol code, with every version of it."""
    latest = versions[-1].protocol
    code = escape.attr(latest.code)
    yield f'<Study OID="{code}"><GlobalVariables>'
    yield f"<StudyName>{escape.text(latest.code)}</StudyName>"
    yield f"<StudyDescription>{escape.text(latest.title)}</StudyDescription>"
    yield f"<ProtocolName>{escape.text(latest.code)}</ProtocolName></GlobalVariables>"
    yield "<BasicDefinitions>"
    for unit in sorted({unit for meta in versions for unit in meta.units}):
        opening = f'<MeasurementUnit OID="{escape.attr(unit_oid(unit))}" Name="{escape.attr(unit)}">'
        yield f"{opening}{translated('Symbol', unit)}</MeasurementUnit>"
    yield "</BasicDefinitions>"
    for meta in versions:
        yield from metadata_version(meta)
    yield "</Study>"


def metadata_version(meta: StudyMeta) -> Iterator[str]:
    protocol = meta.protocol
    name = escape.attr(f"{protocol.code} protocol version {protocol.version}")
    described = escape.attr(f"Protocol file sha256 {protocol.sha256}, loaded {protocol.loaded_at:%Y-%m-%d}")
    yield f'<MetaDataVersion OID="{meta.oid}" Name="{name}" Description="{described}">'
    yield "<Protocol>"
    for order, event in enumerate(meta.events, start=1):
        mandatory = _event_mandatory(event)
        yield f'<StudyEventRef StudyEventOID="{event.oid}" OrderNumber="{order}" Mandatory="{mandatory}"/>'
    yield "</Protocol>"
    for event in meta.events:
        yield _event_def(meta, event)
    for form in meta.forms:
        yield _form_def(form)
    for form in meta.forms:
        yield _item_group_def(form)
    for form in meta.forms:
        yield from (_item_def(item) for item in form.items)
    for codelist in meta.codelists:
        yield _codelist(codelist)
    for form in meta.forms:
        yield from (_method_def(item) for item in form.items if item.formula)
    yield "</MetaDataVersion>"


def _event_mandatory(event: EventMeta) -> str:
    # Survival contacts may be made by telephone, or not at all once the participant has died; many participants
    # have no adverse event and no death report, and a log may be empty.
    return "No" if event.kind in (VisitKind.FOLLOW_UP, COMMON, LOG_EVENT_KIND) else "Yes"


def _event_def(meta: StudyMeta, event: EventMeta) -> str:
    refs = "".join(
        f'<FormRef FormOID="{form.oid}" OrderNumber="{order}" Mandatory="{"No" if form.arm_codes else "Yes"}"/>'
        for order, form in enumerate(meta.forms_at(event.code), start=1)
    )
    if event.kind == LOG_EVENT_KIND:
        return _log_event_def(meta, event)
    category = f"Day {event.day}" if event.day is not None else "Before day 0"
    kind = "Scheduled"
    if event.kind == COMMON:  # records of any time: adverse events, the death report
        category, kind = "Any time", "Common"
    return (
        f'<StudyEventDef OID="{event.oid}" Name="{escape.attr(event.name)}" Repeating="No" Type="{kind}" '
        f'Category="{category}">{translated("Description", event.name, event.name_zh)}{refs}</StudyEventDef>'
    )


def _log_event_def(meta: StudyMeta, event: EventMeta) -> str:
    """The LOGS event: not tied to the schedule; its forms' item groups repeat, one per log row."""
    refs = "".join(
        f'<FormRef FormOID="{form.oid}" OrderNumber="{order}" Mandatory="No"/>'
        for order, form in enumerate(meta.forms_at(event.code), start=1)
    )
    description = translated("Description", event.name, event.name_zh)
    return (
        f'<StudyEventDef OID="{event.oid}" Name="{escape.attr(event.name)}" Repeating="No" Type="Unscheduled" '
        f'Category="Participant logs">{description}{refs}</StudyEventDef>'
    )


def _form_def(form: FormMeta) -> str:
    description = translated("Description", form.name, form.name_zh)
    return (
        f'<FormDef OID="{form.oid}" Name="{escape.attr(form.name)}" Repeating="No">{description}'
        f'<ItemGroupRef ItemGroupOID="{form.group_oid}" Mandatory="Yes"/></FormDef>'
    )


def _item_group_def(form: FormMeta) -> str:
    refs = []
    for order, item in enumerate(form.items, start=1):
        method = f' MethodOID="{_method_oid(item)}"' if item.formula else ""
        mandatory = "Yes" if item.required else "No"
        refs.append(f'<ItemRef ItemOID="{item.oid}" OrderNumber="{order}" Mandatory="{mandatory}"{method}/>')
    repeating = "Yes" if form.repeating else "No"
    return (
        f'<ItemGroupDef OID="{form.group_oid}" Name="{escape.attr(form.name)}" Repeating="{repeating}">'
        f"{''.join(refs)}</ItemGroupDef>"
    )


def _item_def(item: ItemMeta) -> str:
    digits = f' SignificantDigits="{item.decimals}"' if item.odm_type == "float" and item.decimals is not None else ""
    comment = f' Comment="{escape.attr("Derived: " + item.formula)}"' if item.formula else ""
    parts = [
        f'<ItemDef OID="{item.oid}" Name="{escape.attr(item.code)}" DataType="{item.odm_type}" '
        f'Length="{item.length}"{digits}{comment}>',
        translated("Question", item.label, item.label_zh),
    ]
    if item.unit:
        parts.append(f'<MeasurementUnitRef MeasurementUnitOID="{escape.attr(unit_oid(item.unit))}"/>')
    parts += _range_checks(item)
    if item.codelist is not None:
        parts.append(f'<CodeListRef CodeListOID="{escape.attr(item.codelist.oid)}"/>')
    parts.append("</ItemDef>")
    return "".join(parts)


def _range_checks(item: ItemMeta) -> list[str]:
    """Hard range: a value outside is refused at entry. Soft (reference range): saved and flagged."""
    bounds = (
        ("GE", "Hard", item.hard_min),
        ("LE", "Hard", item.hard_max),
        ("GE", "Soft", item.reference_low),
        ("LE", "Soft", item.reference_high),
    )
    return [
        f'<RangeCheck Comparator="{comparator}" SoftHard="{kind}"><CheckValue>{plain(bound)}</CheckValue></RangeCheck>'
        for comparator, kind, bound in bounds
        if bound is not None
    ]


def _codelist(codelist: CodeList) -> str:
    items = "".join(
        f'<CodeListItem CodedValue="{escape.attr(choice.code)}" OrderNumber="{order}">'
        f"{translated('Decode', choice.label or choice.code, choice.label_zh)}</CodeListItem>"
        for order, choice in enumerate(codelist.choices, start=1)
    )
    opening = f'<CodeList OID="{escape.attr(codelist.oid)}" Name="{escape.attr(codelist.name)}" DataType="text">'
    return f"{opening}{items}</CodeList>"


def _method_oid(item: ItemMeta) -> str:
    return f"MT.{item.form}.{item.code}"


_COMPUTED = translated(
    "Description", "Computed by the EDC from other items; never typed.", "由系统根据其他项目计算，不可录入。"
)


def _method_def(item: ItemMeta) -> str:
    return (
        f'<MethodDef OID="{_method_oid(item)}" Name="{escape.attr(item.code)}" Type="Computation">{_COMPUTED}'
        f'<FormalExpression Context="protocol file formula">{escape.text(item.formula)}</FormalExpression>'
        "</MethodDef>"
    )


def admin_data(study_oid: str, versions: Sequence[StudyMeta], sites: Sequence[Site], users: Sequence[AuditUser]) -> str:
    """The people the audit trail names, then the sites; Chinese names kept beside the English ones."""
    parts = [f'<AdminData StudyOID="{escape.attr(study_oid)}">']
    for user in users:
        display = escape.text(user.full_name or user.username)
        parts.append(
            f'<User OID="{user_oid(user.user_id)}"><LoginName>{escape.text(user.username)}</LoginName>'
            f"<DisplayName>{display}</DisplayName></User>"
        )
    for site in sites:
        name = f"{site.name} ({site.name_zh})" if site.name_zh else site.name
        refs = "".join(
            f'<MetaDataVersionRef StudyOID="{escape.attr(study_oid)}" MetaDataVersionOID="{meta.oid}" '
            f'EffectiveDate="{meta.protocol.loaded_at:%Y-%m-%d}"/>'
            for meta in versions
        )
        opening = f'<Location OID="{location_oid(site.number)}" Name="{escape.attr(name)}" LocationType="Site">'
        parts.append(f"{opening}{refs}</Location>")
    parts.append("</AdminData>")
    return "".join(parts)
