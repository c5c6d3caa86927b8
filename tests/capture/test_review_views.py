"""The data review pages (queries, source data verification, signatures, locks) as each role sees them."""

import re
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from capture.definitions import visit_forms
from capture.models import FormInstance, ItemValue, Lock, Query, QueryEvent, QueryState, Signature
from capture.review import lock_set, query_answer, query_raise
from capture.services import form_save
from tests.factories import PASSWORD, enrolled
from trial.models import AuditRecord, Visit

pytestmark = pytest.mark.django_db

ROLES = ["coordinator1", "investigator1", "coordinator2", "monitor", "datamanager", "sponsor", "outsider"]
# What each role may do on the review pages, by site number; a site not named is one the role cannot see.
ALLOWED = {
    "coordinator1": {1: {"view", "answer"}},
    "investigator1": {1: {"view", "answer", "sign"}},
    "coordinator2": {2: {"view", "answer"}},
    "monitor": {1: {"view", "raise", "verify"}, 2: {"view", "raise", "verify"}},
    "datamanager": {1: {"view", "raise", "lock"}, 2: {"view", "raise", "lock"}},
    "sponsor": {1: {"view"}, 2: {"view"}},
    "outsider": {},
}
LIVER = {"ALT": "30", "AST": "30", "ALB": "42", "PREALB": "250", "BILI": "15", "BILDIR": "5"}
LIVER_ENTERED = 7  # LBDAT and the six values
SHANGHAI = ZoneInfo("Asia/Shanghai")


def liver_saved(user: object, visit: Visit, version: int = 0, reason: str = "", **changes: str) -> None:
    values = {"LBDAT": visit.target_date.isoformat(), **LIVER, **changes}
    form_save(
        user=user, visit_id=visit.pk, form_code="LIVER", version=version, values=values, reason=reason, complete=True
    )


def liver_version(visit: Visit) -> int:
    return FormInstance.objects.get(visit=visit, definition__code="LIVER").version


def complete_visit(user: object, visit: Visit) -> None:
    """Every form of the visit complete: the liver panel with values, the others with every item 'not done'."""
    liver_saved(user, visit)
    for spec in visit_forms(visit):
        if spec.code != "LIVER":
            missing = {item.code: "not_done" for item in spec.entered}
            form_save(user=user, visit_id=visit.pk, form_code=spec.code, version=0, missing=missing, complete=True)


def writes() -> tuple[int, ...]:
    """Everything a review action writes."""
    return (
        Query.objects.count(),
        QueryEvent.objects.count(),
        Signature.objects.count(),
        Lock.objects.filter(released_at__isnull=True).count(),
        ItemValue.objects.filter(verified_at__isnull=False).count(),
        AuditRecord.objects.count(),
    )


def form_url(visit: Visit, form: str = "LIVER") -> str:
    return reverse("capture:form", args=[visit.pk, form])


def visit_url(visit: Visit) -> str:
    return reverse("capture:visit", args=[visit.pk])


def shanghai(moment: object) -> str:
    return timezone.localtime(moment, SHANGHAI).strftime("%Y-%m-%d %H:%M")


def block(content: str, element_id: str) -> str:
    """The page from the element with `element_id` on, far enough to hold what that element shows."""
    start = content.index(f'id="{element_id}"')
    return content[start : start + 6000]


def thread(content: str, query: Query) -> str:
    return re.search(rf'id="query-{query.pk}".*?</ol>', content, re.S).group(0)


@pytest.fixture
def m3_site2(coordinator2, site2) -> Visit:
    return enrolled(coordinator2, site2, arm="MSC", days_ago=100).visits.get(definition__code="M3")


@pytest.fixture
def alt_query(coordinator1, monitor, m3) -> Query:
    liver_saved(coordinator1, m3)
    return query_raise(user=monitor, visit_id=m3.pk, form_code="LIVER", item_code="ALT", message="ALT 30 on source?")


# --- Access: every page and action as each role of site 1 and site 2 -------------------------------------------


@pytest.fixture
def sites(coordinator1, coordinator2, monitor, datamanager, m3, m3_site2) -> dict[int, dict[str, object]]:
    """Per site: a participant, its M3 with the liver panel saved, a query on ALT and a lock of the KIDNEY form."""
    objects = {}
    for number, (coordinator, visit) in {1: (coordinator1, m3), 2: (coordinator2, m3_site2)}.items():
        liver_saved(coordinator, visit)
        query = query_raise(user=monitor, visit_id=visit.pk, form_code="LIVER", item_code="ALT", message="Check")
        lock = lock_set(
            user=datamanager, participant_id=visit.participant_id, visit_id=visit.pk, form_code="KIDNEY", reason="Done"
        )
        objects[number] = {"visit": visit, "participant": visit.participant, "query": query, "lock": lock}
    return objects


def page_urls(objects: dict[str, object]) -> dict[str, tuple[str, str]]:
    """{name: (url, the action it needs)} of every review page reached by GET."""
    visit, participant, query, lock = objects["visit"], objects["participant"], objects["query"], objects["lock"]
    return {
        "participant": (reverse("review:participant", args=[participant.pk]), "view"),
        "query": (reverse("review:query", args=[query.pk]), "view"),
        "query_raise": (reverse("review:query_raise", args=[visit.pk]), "raise"),
        "visit_sign": (reverse("review:visit_sign", args=[visit.pk]), "sign"),
        "casebook_sign": (reverse("review:casebook_sign", args=[participant.pk]), "sign"),
        "participant_lock": (reverse("review:participant_lock", args=[participant.pk]), "lock"),
        "visit_lock": (reverse("review:visit_lock", args=[visit.pk]), "lock"),
        "form_lock": (reverse("review:form_lock", args=[visit.pk, "LIVER"]), "lock"),
        "lock_release": (reverse("review:lock_release", args=[lock.pk]), "lock"),
    }


def actions(objects: dict[str, object]) -> list[tuple[str, str, dict[str, str]]]:
    """[(url, the action it needs, a body that would do it)] of every review action, in an order that works."""
    visit, participant, query, lock = objects["visit"], objects["participant"], objects["query"], objects["lock"]
    confirm = {"reason": "Reviewed", "confirm_open_queries": "1"}
    return [
        (reverse("review:verify", args=[visit.pk, "LIVER"]), "verify", {"whole": "1"}),
        (reverse("review:query_raise", args=[visit.pk]), "raise", {"form": "LIVER", "item": "AST", "message": "AST?"}),
        (reverse("review:query_answer", args=[query.pk]), "answer", {"message": "Checked: 30."}),
        (reverse("review:query_close", args=[query.pk]), "raise", {"message": ""}),
        (reverse("review:query_reopen", args=[query.pk]), "raise", {"message": "Please look again."}),
        (reverse("review:visit_sign", args=[visit.pk]), "sign", {"password": PASSWORD}),
        (reverse("review:casebook_sign", args=[participant.pk]), "sign", {"password": PASSWORD}),
        (reverse("review:lock_release", args=[lock.pk]), "lock", {"reason": "Reopened for a correction"}),
        (reverse("review:form_lock", args=[visit.pk, "LIVER"]), "lock", confirm),
        (reverse("review:visit_lock", args=[visit.pk]), "lock", confirm),
        (reverse("review:participant_lock", args=[participant.pk]), "lock", confirm),
    ]


def expected(role: str, number: int, action: str) -> int | None:
    """404 for a site the role cannot see, 403 for an action its role lacks there; None when it may."""
    if number not in ALLOWED[role]:
        return 404
    return None if action in ALLOWED[role][number] else 403


@pytest.mark.parametrize("role", ROLES)
def test_review_pages_answer_404_for_another_site_and_403_without_the_action(request, as_user, sites, role):
    client = as_user(request.getfixturevalue(role))
    for number, objects in sites.items():
        for name, (url, action) in page_urls(objects).items():
            assert client.get(url).status_code == (expected(role, number, action) or 200), (name, number)


@pytest.mark.parametrize("role", ROLES)
def test_review_actions_are_refused_to_other_sites_and_roles_and_write_nothing(request, as_user, sites, role):
    client = as_user(request.getfixturevalue(role))
    for number, objects in sites.items():
        for url, action, body in actions(objects):
            refusal = expected(role, number, action)
            before = writes()
            status = client.post(url, body).status_code
            if refusal:
                assert status == refusal, (url, number)
                assert writes() == before, url
            else:
                assert status not in (403, 404, 500), (url, number)


def test_anonymous_is_sent_to_log_in(client, sites):
    for url, _action in page_urls(sites[1]).values():
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_participant_page_links_to_signatures_and_locks(as_user, sponsor, participant):
    content = as_user(sponsor).get(reverse("trial:participant_detail", args=[participant.pk])).content.decode()
    assert f'href="{reverse("review:participant", args=[participant.pk])}"' in content


# --- Queries: the state machine through the pages ---------------------------------------------------------------


def test_monitor_raises_a_query_on_an_item_and_the_site_sees_its_thread(as_user, coordinator1, monitor, m3):
    liver_saved(coordinator1, m3)
    client = as_user(monitor)
    page = client.get(form_url(m3)).content.decode()
    assert 'id="raise-ALT"' in page and 'form="raise-ALT"' in page  # a small form per row

    response = client.post(
        reverse("review:query_raise", args=[m3.pk]), {"form": "LIVER", "item": "ALT", "message": "ALT 30 on source?"}
    )
    assert response.status_code == 302
    assert response.url == form_url(m3) + "#item-ALT"
    query = Query.objects.get()
    assert (query.item.code, query.form.code, query.state, query.created_by) == ("ALT", "LIVER", "open", monitor)

    content = as_user(coordinator1).get(form_url(m3)).content.decode()
    row = re.search(r'id="item-ALT".*?id="item-AST"', content, re.S).group(0)
    assert "ALT 30 on source?" in row and "Query: Open" in row
    raised = query.events.get()
    event = re.search(r'data-event="raised">(.*?)</li>', row, re.S).group(1)
    assert shanghai(raised.at) in event and "monitor" in event and "Raised: " in event and "ALT 30 on source?" in event
    assert f'formaction="{reverse("review:query_answer", args=[query.pk])}"' in row  # the site may answer
    assert reverse("review:query_close", args=[query.pk]) not in row
    assert f'id="query-form-{query.pk}"' in content.split('id="crf-form"')[0]  # not nested in the entry form


def test_full_query_state_machine_through_the_pages(as_user, client, coordinator1, monitor, alt_query):
    query, m3 = alt_query, alt_query.visit
    step = {name: reverse(f"review:query_{name}", args=[query.pk]) for name in ("answer", "close", "reopen")}

    def post(user: object, name: str, message: str = "") -> object:
        client.force_login(user)
        return client.post(step[name], {"message": message})

    def state() -> str:
        query.refresh_from_db()
        return query.state

    # Open: the site answers; the monitor may not re-open an open query.
    refused = post(monitor, "reopen", "Again")
    assert refused.status_code == 400 and "A query that is open cannot be re-opened." in refused.content.decode()
    assert state() == QueryState.OPEN
    answered = post(coordinator1, "answer", "Checked: the report says 30.")
    assert answered.status_code == 302 and answered.url == form_url(m3) + "#item-ALT"
    assert state() == QueryState.ANSWERED
    # Answered: the site may add to its answer; the site may not close.
    assert post(coordinator1, "close").status_code == 403
    assert post(coordinator1, "answer", "The lab confirmed it.").status_code == 302
    # Re-opening needs a message, and the page keeps the text of a refused step.
    empty = post(monitor, "reopen", "   ")
    assert empty.status_code == 400 and "Write a message." in empty.content.decode()
    assert state() == QueryState.ANSWERED
    assert post(monitor, "reopen", "The report attached says 36.").status_code == 302
    assert state() == QueryState.OPEN
    # Closing takes an optional message.
    assert post(monitor, "close").status_code == 302
    assert state() == QueryState.CLOSED and query.closed_by == monitor
    # Closed: nobody answers it or closes it again; the monitor may re-open it.
    before = QueryEvent.objects.count()
    late = post(coordinator1, "answer", "Late answer")
    assert late.status_code == 400
    assert "A query that is closed cannot be answered." in late.content.decode()
    assert "Late answer" in late.content.decode()  # what was typed is kept
    twice = post(monitor, "close")
    assert twice.status_code == 400 and "A query that is closed cannot be closed." in twice.content.decode()
    assert QueryEvent.objects.count() == before
    assert post(monitor, "reopen", "One more check").status_code == 302

    kinds = ["raised", "answered", "answered", "reopened", "closed", "reopened"]
    assert list(query.events.values_list("kind", flat=True)) == kinds
    client.force_login(coordinator1)
    content = client.get(form_url(m3)).content.decode()
    assert re.findall(r'data-event="(\w+)"', thread(content, query)) == kinds
    assert "The report attached says 36." in content and "One more check" in content
    detail = client.get(reverse("review:query", args=[query.pk])).content.decode()
    assert re.findall(r'data-event="(\w+)"', detail) == kinds


def test_a_closed_query_stays_on_the_page_folded_and_can_be_reopened(as_user, monitor, alt_query):
    client = as_user(monitor)
    client.post(reverse("review:query_close", args=[alt_query.pk]), {"message": "Source agrees."})
    content = client.get(form_url(alt_query.visit)).content.decode()
    row = re.search(r'id="item-ALT".*?id="item-AST"', content, re.S).group(0)
    assert '<details class="closed-query' in row and "Closed query: ALT 30 on source?" in row
    assert "Query: Closed" in row and "Source agrees." in row
    assert f'formaction="{reverse("review:query_reopen", args=[alt_query.pk])}"' in row
    assert f'formaction="{reverse("review:query_close", args=[alt_query.pk])}"' not in row


def test_queries_on_a_form_and_on_a_visit(as_user, coordinator1, datamanager, m3):
    client = as_user(datamanager)
    raise_url = reverse("review:query_raise", args=[m3.pk])
    on_form = client.post(raise_url, {"form": "CYTO", "message": "Is the whole panel from one sample?"})
    assert on_form.status_code == 302 and on_form.url == form_url(m3, "CYTO") + "#form-queries"
    on_visit = client.post(raise_url, {"message": "Visit date missing from the notes."})
    assert on_visit.status_code == 302 and on_visit.url == visit_url(m3) + "#visit-queries"
    form_query, visit_query = Query.objects.order_by("pk")
    assert (form_query.form.code, form_query.item) == ("CYTO", None)
    assert (visit_query.form, visit_query.item) == (None, None)

    site = as_user(coordinator1)
    cyto = site.get(form_url(m3, "CYTO")).content.decode()
    assert "Is the whole panel from one sample?" in block(cyto, "form-queries")
    visit_page = site.get(visit_url(m3)).content.decode()
    assert "Visit date missing from the notes." in block(visit_page, "visit-queries")
    answered = site.post(reverse("review:query_answer", args=[visit_query.pk]), {"message": "Added."})
    assert answered.url == visit_url(m3) + "#visit-queries"
    assert Query.objects.get(pk=visit_query.pk).state == QueryState.ANSWERED


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"form": "LIVER", "item": "ALT", "message": ""}, "Write a message."),
        ({"form": "LIVER", "item": "NOPE", "message": "?"}, "NOPE is not an item of this form."),
        ({"form": "NOPE", "message": "?"}, "NOPE is not collected at this visit."),
        ({"item": "ALT", "message": "?"}, "Name the form of the item."),
    ],
)
def test_a_refused_query_is_explained_and_writes_nothing(as_user, monitor, m3, body, message):
    before = writes()
    response = as_user(monitor).post(reverse("review:query_raise", args=[m3.pk]), body)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert writes() == before


def test_raise_page_names_the_item(as_user, monitor, m3):
    content = as_user(monitor).get(reverse("review:query_raise", args=[m3.pk]), {"form": "LIVER", "item": "ALT"})
    assert "Alanine aminotransferase (ALT)" in block(content.content.decode(), "query-target")


def test_automatic_query_shows_its_edit_check_and_can_be_answered(as_user, coordinator1, m3):
    liver_saved(coordinator1, m3, BILDIR="20")  # above total bilirubin: an automatic query
    query = Query.objects.get()
    client = as_user(coordinator1)
    content = client.get(form_url(m3)).content.decode()
    assert 'data-event="check"' in thread(content, query) and "Raised by an edit check" in thread(content, query)
    assert client.post(reverse("review:query_answer", args=[query.pk]), {"message": "As reported."}).status_code == 302
    assert Query.objects.get().state == QueryState.ANSWERED


# --- Source data verification -----------------------------------------------------------------------------------


def sdv_cell(client: object, visit: Visit, form: str = "LIVER") -> str:
    content = client.get(visit_url(visit)).content.decode()
    return re.search(rf'data-sdv="{form}">(.*?)</td>', content, re.S).group(1)


def test_monitor_verifies_selected_items_then_the_whole_form(as_user, coordinator1, monitor, m3):
    liver_saved(coordinator1, m3)
    client = as_user(monitor)
    page = client.get(form_url(m3)).content.decode()
    assert len(re.findall(r'type="checkbox" form="verify-form" name="items"', page)) == LIVER_ENTERED
    assert "Verify selected" in page and "Verify whole form" in page
    assert sdv_cell(client, m3).strip() == f"0 / {LIVER_ENTERED}"

    verify_url = reverse("review:verify", args=[m3.pk, "LIVER"])
    response = client.post(verify_url, {"items": ["ALT", "AST"]}, follow=True)
    assert "2 items verified." in response.content.decode()
    content = response.content.decode()
    today = timezone.localtime(timezone.now(), SHANGHAI).strftime("%Y-%m-%d")
    assert f"Verified by monitor on {today}" in block(content, "sdv-ALT")
    assert 'id="verify-ALT"' not in content and 'id="verify-ALB"' in content
    assert sdv_cell(client, m3).strip() == f"2 / {LIVER_ENTERED}"

    response = client.post(verify_url, {"whole": "1"}, follow=True)
    assert f"{LIVER_ENTERED - 2} items verified." in response.content.decode()
    assert 'name="items"' not in response.content.decode() and "Every item that holds a value is verified." in (
        response.content.decode()
    )
    assert sdv_cell(client, m3).strip() == f"{LIVER_ENTERED} / {LIVER_ENTERED}"
    assert ItemValue.objects.filter(visit=m3, verified_by=monitor).count() == LIVER_ENTERED


def test_verify_without_a_selection_or_values_says_so(as_user, coordinator1, monitor, m3):
    client = as_user(monitor)
    verify_url = reverse("review:verify", args=[m3.pk, "LIVER"])
    nothing_chosen = client.post(verify_url, {}, follow=True).content.decode()
    assert "Select the items to verify, or verify the whole form." in nothing_chosen
    empty_form = client.post(verify_url, {"whole": "1"}, follow=True).content.decode()
    assert "Nothing new was verified" in empty_form
    unknown = client.post(verify_url, {"items": ["NOPE"]}, follow=True).content.decode()
    assert "NOPE is not one of the available choices." in unknown
    assert not ItemValue.objects.filter(verified_at__isnull=False).exists()


def test_a_change_after_verification_shows_changed_since_verification(as_user, coordinator1, monitor, m3):
    liver_saved(coordinator1, m3)
    as_user(monitor).post(reverse("review:verify", args=[m3.pk, "LIVER"]), {"whole": "1"})
    liver_saved(coordinator1, m3, version=liver_version(m3), reason="Lab re-run", ALT="36")

    client = as_user(monitor)
    content = client.get(form_url(m3)).content.decode()
    changed = block(content, "sdv-ALT")
    assert 'data-sdv="changed"' in changed and "Changed since verification" in changed
    assert 'id="verify-ALT"' in content  # it can be verified again
    assert 'data-sdv="verified"' in block(content, "sdv-AST")
    cell = sdv_cell(client, m3)
    assert f"{LIVER_ENTERED - 1} / {LIVER_ENTERED}" in cell and "1 changed" in cell
    # The coordinator sees it too.
    assert "Changed since verification" in as_user(coordinator1).get(form_url(m3)).content.decode()


# --- Signatures -------------------------------------------------------------------------------------------------


def test_investigator_signs_a_complete_visit_with_the_password(as_user, coordinator1, investigator1, m3):
    client = as_user(investigator1)
    visit_page = client.get(visit_url(m3)).content.decode()
    sign_url = reverse("review:visit_sign", args=[m3.pk])
    assert f'href="{sign_url}"' in visit_page
    page = client.get(sign_url).content.decode()
    assert "I confirm that the data are accurate and complete." in page and 'type="password"' in page

    incomplete = client.post(sign_url, {"password": PASSWORD})
    assert incomplete.status_code == 400
    assert "Every form must be complete before signing" in incomplete.content.decode()
    complete_visit(coordinator1, m3)
    wrong = client.post(sign_url, {"password": "not-my-password"})
    assert wrong.status_code == 400
    assert re.search(r'data-error-for="password">The password is not correct', wrong.content.decode())
    assert 'value="not-my-password"' not in wrong.content.decode()
    assert not Signature.objects.exists()

    signed = client.post(sign_url, {"password": PASSWORD})
    assert signed.status_code == 302 and signed.url == visit_url(m3) + "#signatures"
    signature = Signature.objects.get()
    assert (signature.visit, signature.signed_by, signature.voided_at) == (m3, investigator1, None)
    content = client.get(visit_url(m3)).content.decode()
    line = re.search(r'data-signature="\d+".*?</li>', content, re.S).group(0)
    assert 'data-voided="false"' in line and "investigator1" in line and shanghai(signature.signed_at) in line
    assert "I confirm that the data are accurate and complete." in line


def test_a_signature_voided_by_a_change_is_shown_struck_through(as_user, coordinator1, investigator1, m3):
    complete_visit(coordinator1, m3)
    as_user(investigator1).post(reverse("review:visit_sign", args=[m3.pk]), {"password": PASSWORD})
    liver_saved(coordinator1, m3, version=liver_version(m3), reason="Lab re-run", ALT="36")

    content = as_user(investigator1).get(visit_url(m3)).content.decode()
    signature = Signature.objects.get()
    line = re.search(r'data-signature="\d+".*?</li>', content, re.S).group(0)
    assert 'data-voided="true"' in line and "<s>" in line
    assert f"voided on {shanghai(signature.voided_at)} because signed data changed" in line


def test_casebook_is_signed_from_the_participants_review_page(as_user, investigator1, participant):
    client = as_user(investigator1)
    review_page = client.get(reverse("review:participant", args=[participant.pk])).content.decode()
    sign_url = reverse("review:casebook_sign", args=[participant.pk])
    assert f'href="{sign_url}"' in review_page
    assert client.post(sign_url, {"password": ""}).status_code == 400
    assert not Signature.objects.exists()
    response = client.post(sign_url, {"password": PASSWORD}, follow=True)
    assert "You signed the casebook." in response.content.decode()
    assert "Whole casebook" in block(response.content.decode(), "signatures")
    assert Signature.objects.get().visit is None


# --- Locks ------------------------------------------------------------------------------------------------------


def test_locked_form_shows_no_inputs_to_anyone_and_a_save_is_423(
    as_user, coordinator1, investigator1, datamanager, monitor, participant, m3
):
    liver_saved(coordinator1, m3)
    lock_url = reverse("review:form_lock", args=[m3.pk, "LIVER"])
    response = as_user(datamanager).post(lock_url, {"reason": "Interim analysis"})
    assert response.status_code == 302 and response.url == form_url(m3) + "#locks"
    lock = Lock.objects.get()
    for user in (coordinator1, investigator1, datamanager, monitor):
        content = as_user(user).get(form_url(m3)).content.decode()
        banner = block(content, "locked-banner")
        assert "Locked: nobody can change the data of this form" in banner
        assert "Locked by datamanager on" in banner and "Interim analysis" in banner
        assert 'id="crf-form"' not in content and 'name="ALT"' not in content and 'name="version"' not in content
    visit_page = as_user(coordinator1).get(visit_url(m3)).content.decode()
    liver_row = re.search(r'<tr data-form="LIVER">.*?</tr>', visit_page, re.S).group(0)
    assert "Locked" in liver_row and "Enter data" not in liver_row

    before = (ItemValue.objects.count(), AuditRecord.objects.count())
    data = {"version": "1", "LBDAT": m3.target_date.isoformat(), **LIVER, "ALT": "99", "reason": "Correction"}
    refused = as_user(coordinator1).post(form_url(m3), data)
    assert refused.status_code == 423
    assert "These data are locked by the data manager" in block(refused.content.decode(), "locked-error")
    assert 'name="ALT"' not in refused.content.decode()
    assert (ItemValue.objects.count(), AuditRecord.objects.count()) == before

    release_url = reverse("review:lock_release", args=[lock.pk])
    no_reason = as_user(datamanager).post(release_url, {"reason": ""})
    assert no_reason.status_code == 400 and "Give the reason." in no_reason.content.decode()
    released = as_user(datamanager).post(release_url, {"reason": "Analysis done"})
    assert released.status_code == 302 and released.url == form_url(m3) + "#locks"
    assert as_user(coordinator1).post(form_url(m3), data).status_code == 302
    again = as_user(datamanager).post(release_url, {"reason": "twice"})
    assert again.status_code == 400 and "This lock was already released." in again.content.decode()


def test_the_api_refuses_locked_data_with_423(coordinator1, datamanager, participant, m3):
    liver_saved(coordinator1, m3)
    lock_set(user=datamanager, participant_id=participant.pk, reason="Final")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=coordinator1)[1]}")
    body = {"version": 1, "values": {"LBDAT": str(m3.target_date), **LIVER, "ALT": "99"}, "reason": "x"}
    response = api.put(f"/api/v1/visits/{m3.pk}/forms/LIVER/", body, format="json")
    assert response.status_code == 423
    assert "locked" in response.json()["detail"]
    assert ItemValue.objects.get(visit=m3, item__code="ALT").number == 30


def test_locking_with_open_queries_asks_for_confirmation(as_user, datamanager, participant, alt_query):
    m3 = alt_query.visit
    client = as_user(datamanager)
    lock_url = reverse("review:visit_lock", args=[m3.pk])
    asked = client.post(lock_url, {"reason": "Visit reviewed"})
    assert asked.status_code == 409
    content = asked.content.decode()
    assert "1 query on these data is not closed." in block(content, "open-queries")
    assert 'name="confirm_open_queries" value="1"' in content and "Lock anyway" in content
    assert "Visit reviewed" in content  # the reason is kept
    assert not Lock.objects.exists()

    locked = client.post(lock_url, {"reason": "Visit reviewed", "confirm_open_queries": "1"})
    assert locked.status_code == 302 and locked.url == visit_url(m3) + "#locks"
    lock = Lock.objects.get()
    assert (lock.visit, lock.form, lock.reason) == (m3, None, "Visit reviewed")
    visit_page = client.get(visit_url(m3)).content.decode()
    assert "Locked by datamanager on" in block(visit_page, "locks")
    assert reverse("review:lock_release", args=[lock.pk]) in block(visit_page, "locks")
    assert 'id="lock-visit"' not in visit_page


def test_participant_lock_from_the_review_page(as_user, coordinator1, datamanager, participant, m3):
    client = as_user(datamanager)
    review_page = client.get(reverse("review:participant", args=[participant.pk])).content.decode()
    lock_url = reverse("review:participant_lock", args=[participant.pk])
    assert f'href="{lock_url}"' in review_page
    response = client.post(lock_url, {"reason": "Database lock"}, follow=True)
    assert "Locked: All data of" in response.content.decode()
    assert "Database lock" in block(response.content.decode(), "locks")
    # A form not yet started is locked too.
    content = as_user(coordinator1).get(form_url(m3, "SYMPT")).content.decode()
    assert 'id="locked-banner"' in content and 'id="crf-form"' not in content


def test_a_lock_reason_too_long_to_keep_is_a_field_error(as_user, datamanager, participant):
    lock_url = reverse("review:participant_lock", args=[participant.pk])
    response = as_user(datamanager).post(lock_url, {"reason": "x" * 301})
    assert response.status_code == 400 and 'data-error-for="reason"' in response.content.decode()
    assert not Lock.objects.exists()


# --- Query counts -----------------------------------------------------------------------------------------------

# User and memberships (the session comes from the cache), then the page's own reads.
FORM_PAGE_QUERIES = 8  # + visit, form instance, values with their verifier, queries, their events, locks
VISIT_PAGE_QUERIES = 10  # + visit, form instances, open query counts, verification counts, locks, signatures,
# the visit's queries and their events


@pytest.fixture
def queried_m3(coordinator1, monitor, m3) -> Visit:
    """M3's liver panel with five queries on its items, each answered, so with two events or more."""
    liver_saved(coordinator1, m3)
    for code in ("ALT", "AST", "ALB", "ALT", "BILI"):
        query = query_raise(user=monitor, visit_id=m3.pk, form_code="LIVER", item_code=code, message=f"{code}?")
        query_answer(user=coordinator1, query_id=query.pk, message="Checked.")
    return m3


@pytest.mark.parametrize("role", ["coordinator1", "monitor", "datamanager"])
def test_form_page_query_count_is_the_same_with_0_or_5_queries(
    request, as_user, coordinator1, participant, queried_m3, role, django_assert_num_queries
):
    m0 = participant.visits.get(definition__code="M0")
    liver_saved(coordinator1, m0)  # the same panel, without queries
    client = as_user(request.getfixturevalue(role))
    client.get(form_url(m0))  # the protocol's definitions are read once per process
    for visit, queries in ((m0, 0), (queried_m3, 5)):
        with django_assert_num_queries(FORM_PAGE_QUERIES):
            response = client.get(form_url(visit))
        threads = [query for _group, rows in response.context["groups"] for row in rows for query in row.queries]
        assert len(threads) == queries
    assert response.content.decode().count('data-event="answered"') == 5


def test_visit_page_query_count_is_the_same_with_or_without_review_data(
    as_user, coordinator1, investigator1, monitor, datamanager, participant, queried_m3, django_assert_num_queries
):
    m0 = participant.visits.get(definition__code="M0")
    query_raise(user=monitor, visit_id=queried_m3.pk, message="Visit notes?")
    as_user(monitor).post(reverse("review:verify", args=[queried_m3.pk, "LIVER"]), {"whole": "1"})
    lock_set(user=datamanager, participant_id=participant.pk, visit_id=queried_m3.pk, confirm_open_queries=True)
    Signature.objects.create(
        participant=participant, visit=queried_m3, signed_by=investigator1, signed_at=timezone.now(), meaning="x"
    )
    client = as_user(coordinator1)
    client.get(visit_url(m0))
    for visit in (m0, queried_m3):
        with django_assert_num_queries(VISIT_PAGE_QUERIES):
            assert client.get(visit_url(visit)).status_code == 200
