import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from tests.factories import enrolled
from trial import access
from trial.access import Action
from trial.errors import AccessDenied


def test_each_user_sees_only_their_sites(coordinator1, coordinator2, monitor, sponsor, outsider):
    assert list(access.sites(coordinator1).values_list("number", flat=True)) == [1]
    assert list(access.sites(coordinator2).values_list("number", flat=True)) == [2]
    assert list(access.sites(monitor).values_list("number", flat=True)) == [1, 2, 3]
    assert access.sites(sponsor).count() == 6
    assert not access.sites(outsider).exists()
    assert not access.sites(AnonymousUser()).exists()


def test_participants_are_scoped_by_site(coordinator1, coordinator2, site1, site2, monitor, outsider):
    mine = enrolled(coordinator1, site1)
    theirs = enrolled(coordinator2, site2)
    assert list(access.participants(coordinator1)) == [mine]
    assert list(access.participants(coordinator2)) == [theirs]
    assert set(access.participants(monitor)) == {mine, theirs}
    assert not access.participants(outsider).exists()
    assert access.visits(coordinator1).count() == 9
    assert not access.visits(coordinator1).filter(participant=theirs).exists()


def test_another_sites_participant_is_404_not_403(coordinator1, coordinator2, site2):
    theirs = enrolled(coordinator2, site2)
    with pytest.raises(Http404):
        access.participant_or_404(coordinator1, theirs.pk)


def test_a_visible_participant_with_a_forbidden_action_is_403(coordinator1, site1, sponsor):
    participant = enrolled(coordinator1, site1)
    assert access.participant_or_404(sponsor, participant.pk) == participant
    with pytest.raises(AccessDenied):
        access.participant_or_404(sponsor, participant.pk, Action.ENTER_DATA)


@pytest.mark.parametrize(
    ("role_fixture", "allowed"),
    [
        ("coordinator1", {Action.VIEW, Action.SCREEN, Action.ENROL, Action.ENTER_DATA}),
        (
            "investigator1",
            {
                Action.VIEW,
                Action.SCREEN,
                Action.ENROL,
                Action.ENTER_DATA,
                Action.SIGN,
                Action.ASSESS_SAFETY,
                Action.PRINT_SAE,
            },
        ),
        ("monitor", {Action.VIEW, Action.RAISE_QUERY, Action.VERIFY, Action.PRINT_SAE}),
        (
            "datamanager",
            {
                Action.VIEW,
                Action.RAISE_QUERY,
                Action.LOCK,
                Action.REPORT,
                Action.EXPORT,
                Action.SPONSOR_CAUSALITY,
                Action.PRINT_SAE,
            },
        ),
        ("sponsor", {Action.VIEW, Action.REPORT, Action.EXPORT, Action.PRINT_SAE}),
        ("outsider", set()),
    ],
)
def test_role_actions_at_site_1(request, site1, role_fixture, allowed):
    user = request.getfixturevalue(role_fixture)
    assert {action for action in Action if access.can(user, action, site1)} == allowed


def test_require_denies_by_default(outsider, site1):
    with pytest.raises(AccessDenied):
        access.require(outsider, Action.VIEW, site1)


def test_memberships_are_read_once_per_user_object(coordinator1, site1, django_assert_num_queries):
    access.forget(coordinator1)
    with django_assert_num_queries(1):
        for _ in range(5):
            access.can(coordinator1, Action.VIEW, site1)
            access.site_ids(coordinator1, Action.SCREEN)
