"""API tokens that end (21 CFR 11.300): django-rest-knox tokens, stored only as a hash.

A token expires after `API_TOKEN_IDLE_HOURS` without use (each use pushes its expiry on, knox's AUTO_REFRESH) and
at the latest `API_TOKEN_MAX_DAYS` after it was issued, however busy (knox's AUTO_REFRESH_MAX_TTL, and checked
again here on the issue time, so that a lifetime shortened later applies to tokens already out). A password change,
a deactivation of the account and an explicit logout revoke the user's tokens.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from knox.settings import knox_settings

# A token is named to its owner by its key: its first characters, which knox keeps in clear to look it up.
KEY_LENGTH = 15


class ExpiringTokenAuthentication(TokenAuthentication):
    """knox's token authentication, with the absolute lifetime enforced on the issue time.

    knox also deletes every other expired token of the user on each request (one more query per request); here a
    request checks only its own token, and expired ones are refused (and deleted) when they are next shown.
    """

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        if token_expired(auth_token):
            auth_token.delete()
            return True
        return False


def token_expired(token: AuthToken, now: datetime.datetime | None = None) -> bool:
    now = now or timezone.now()
    if token.expiry is not None and token.expiry <= now:
        return True
    lifetime = knox_settings.AUTO_REFRESH_MAX_TTL
    return lifetime is not None and token.created + lifetime <= now


def latest_expiry(token: AuthToken) -> datetime.datetime | None:
    """When the token ends however busy it is."""
    lifetime = knox_settings.AUTO_REFRESH_MAX_TTL
    return token.created + lifetime if lifetime is not None else token.expiry


def api_tokens(user: object) -> QuerySet[AuthToken]:
    """The user's tokens still in force, newest first."""
    now = timezone.now()
    tokens = AuthToken.objects.filter(user=user, expiry__gt=now)
    lifetime = knox_settings.AUTO_REFRESH_MAX_TTL
    if lifetime is not None:
        tokens = tokens.filter(created__gt=now - lifetime)
    return tokens.order_by("-created")


@transaction.atomic
def api_token_create(*, user: object) -> tuple[AuthToken, str]:
    """Issue a token to a user who has just proved who they are; the clear text is shown once, never stored."""
    return AuthToken.objects.create(user=user, expiry=settings.REST_KNOX["TOKEN_TTL"])


@transaction.atomic
def api_token_revoke(*, user: object, key: str) -> int:
    """The user revokes one of their own tokens, named by its key (its first characters); how many ended (0 or 1).

    Another user's token answers 0, as if it did not exist."""
    deleted, _by_model = AuthToken.objects.filter(user=user, token_key=(key or "").strip()[:KEY_LENGTH]).delete()
    return deleted


@transaction.atomic
def api_tokens_revoke_all(*, user: object) -> int:
    """Every token of the user ends: at logout, a password change or a deactivation of the account."""
    deleted, _by_model = AuthToken.objects.filter(user=user).delete()
    return deleted


def revoke_on_credentials_change(sender: type, instance: object, raw: bool = False, **kwargs: object) -> None:
    """pre_save of the user: a new password or a deactivation ends every token issued before it.

    A signal, not a service, because passwords also change outside this app (the admin, `changepassword`).
    """
    update_fields = kwargs.get("update_fields")
    if raw or instance.pk is None or (update_fields is not None and not {"password", "is_active"} & set(update_fields)):
        return
    before = type(instance).objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
        AuthToken.objects.filter(user_id=instance.pk).delete()
