"""Who may see or do what: the single place every queryset and permission a user can reach is built from.

Deny by default. A user sees only the sites they hold a membership at, and at each site may do only what
their role there allows. An object of a site the user cannot see answers 404, never 403.
"""

from enum import StrEnum

from django.db import connection
from django.db.models import QuerySet
from django.http import Http404

from trial.errors import AccessDenied
from trial.models import Participant, Role, Site, SiteMembership, Visit


class Action(StrEnum):
    VIEW = "view"
    SCREEN = "screen"
    ENROL = "enrol"
    ENTER_DATA = "enter_data"
    RAISE_QUERY = "raise_query"
    VERIFY = "verify"
    SIGN = "sign"
    ASSESS_SAFETY = "assess_safety"  # confirm or dismiss a lab-proposed adverse event: the investigator's call
    LOCK = "lock"
    REPORT = "report"
    EXPORT = "export"
    # The sponsor's safety physician's causality of a serious adverse event, recorded for them by the data manager:
    # the sponsor's own accounts stay read-only.
    SPONSOR_CAUSALITY = "sponsor_causality"
    PRINT_SAE = "print_sae"  # the CIOMS I form of a serious adverse event


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.COORDINATOR: frozenset({Action.VIEW, Action.SCREEN, Action.ENROL, Action.ENTER_DATA}),
    Role.INVESTIGATOR: frozenset(
        {
            Action.VIEW,
            Action.SCREEN,
            Action.ENROL,
            Action.ENTER_DATA,
            Action.SIGN,
            Action.ASSESS_SAFETY,
            Action.PRINT_SAE,
        }
    ),
    Role.MONITOR: frozenset({Action.VIEW, Action.RAISE_QUERY, Action.VERIFY, Action.PRINT_SAE}),
    Role.DATA_MANAGER: frozenset(
        {
            Action.VIEW,
            Action.RAISE_QUERY,
            Action.LOCK,
            Action.REPORT,
            Action.EXPORT,
            Action.SPONSOR_CAUSALITY,
            Action.PRINT_SAE,
        }
    ),
    Role.SPONSOR: frozenset({Action.VIEW, Action.REPORT, Action.EXPORT, Action.PRINT_SAE}),
}

_CACHE_ATTR = "_trial_site_roles"


def site_roles(user: object) -> dict[int, str]:
    """{site id: role} for the user, read once per request and kept on the user object."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return {}
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        # Plain SQL: every request of a signed-in user reads it, and the ORM took longer to build it than to run it.
        with connection.cursor() as cursor:
            cursor.execute(_MEMBERSHIPS, [user.pk])
            cached = dict(cursor.fetchall())
        setattr(user, _CACHE_ATTR, cached)
    return cached


_MEMBERSHIPS = f"SELECT site_id, role FROM {SiteMembership._meta.db_table} WHERE user_id = %s"


def forget(user: object) -> None:
    """Drop the cached memberships (after they change)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def site_ids(user: object, action: Action = Action.VIEW) -> list[int]:
    return sorted(site_id for site_id, role in site_roles(user).items() if action in ROLE_ACTIONS[role])


def can(user: object, action: Action, site: Site | int) -> bool:
    site_id = site if isinstance(site, int) else site.pk
    role = site_roles(user).get(site_id)
    return role is not None and action in ROLE_ACTIONS[role]


def can_anywhere(user: object, action: Action) -> bool:
    return bool(site_ids(user, action))


def holds_role_everywhere(user: object, role: str) -> bool:
    """True if the user holds `role` at every site of the trial: what a trial-wide setting needs."""
    roles = site_roles(user)
    all_sites = set(Site.objects.values_list("pk", flat=True))
    return bool(all_sites) and all(roles.get(site_id) == role for site_id in all_sites)


def require(user: object, action: Action, site: Site | int) -> None:
    """Raise AccessDenied unless the user may do `action` at `site`."""
    if not can(user, action, site):
        raise AccessDenied(f"Your role does not allow this action ({action}) at this site.")


def sites(user: object, action: Action = Action.VIEW) -> QuerySet[Site]:
    return Site.objects.filter(pk__in=site_ids(user, action))


def participants(user: object, action: Action = Action.VIEW) -> QuerySet[Participant]:
    return Participant.objects.filter(site_id__in=site_ids(user, action))


def visits(user: object, action: Action = Action.VIEW) -> QuerySet[Visit]:
    return Visit.objects.filter(participant__site_id__in=site_ids(user, action))


def get_or_404(queryset: QuerySet, **lookup: object) -> object:
    """Fetch from an access-scoped queryset; what is out of scope does not exist for this user."""
    try:
        return queryset.get(**lookup)
    except queryset.model.DoesNotExist as exc:
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.") from exc


def participant_or_404(user: object, pk: int, action: Action = Action.VIEW) -> Participant:
    """The participant if the user can see it (else 404) and may do `action` to it (else 403)."""
    participant = get_or_404(participants(user).select_related("site", "arm", "protocol"), pk=pk)
    require(user, action, participant.site_id)
    return participant
