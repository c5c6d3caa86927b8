"""The one check of an electronic signature's password (21 CFR 11.200, 11.300(d)): every signature of any app
(visit, casebook, adverse event; page or API) passes through `signature_password_check`.

A wrong password counts as a failed login in django-axes' lockout (by account: AXES_FAILURE_LIMIT failures in a
row lock it for AXES_COOLOFF_MINUTES, for signing and for login alike), is written to the audit trail (who, what
they tried to sign, when, the client's address) and alerts the site's data managers at once.
"""

from dataclasses import dataclass

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from trial.alerts import alert_raise, data_managers
from trial.audit import AuditEntry, audit_write
from trial.errors import InvalidInput
from trial.models import Participant

ALERT_KIND = "signature_failure"
REFUSED_ACTION = "sign_refused"


class SignatureRefused(InvalidInput):
    """A wrong signature password, or an account locked out: nothing was signed."""


@dataclass(frozen=True)
class SignatureTarget:
    """What the user tried to sign, as the audit trail and the alert name it."""

    object_type: str
    object_id: str
    label: str
    participant: Participant
    form_code: str = ""


def signature_password_check(
    *, request: HttpRequest | None, user: object, password: str, target: SignatureTarget
) -> None:
    """Let the signature go on only if the account is not locked out and `password` is the user's; otherwise
    count the failure, record and alert it (committed, whatever becomes of the caller), and raise
    SignatureRefused. Call before the signature's own transaction. `request` is None only for in-process callers
    (the demo), which have no client."""
    request = request if request is not None else _in_process_request()
    credentials = {"username": user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        _record_refusal(request, user, target, locked=True)
        raise SignatureRefused(errors={"password": [_locked_message()]})
    if password and user.check_password(password):
        AxesProxyHandler.reset_attempts(username=user.get_username())
        return
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    locked = AxesProxyHandler.is_locked(request, credentials)
    _record_refusal(request, user, target, locked=locked)
    message = _locked_message() if locked else _("The password is not correct: the signature was not recorded.")
    raise SignatureRefused(errors={"password": [message]})


def _locked_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return _(
        "Too many wrong passwords: your account is locked for %(minutes)d minutes, for signing and for logging in. "
        "The signature was not recorded."
    ) % {"minutes": minutes}


@transaction.atomic
def _record_refusal(request: HttpRequest, user: object, target: SignatureTarget, *, locked: bool) -> None:
    address = getattr(request, "axes_ip_address", None) or "unknown"
    why = "account locked out" if locked else "wrong password"
    audit_write(
        user=user,
        participant=target.participant,
        entries=[
            AuditEntry(
                target.object_type,
                target.object_id,
                REFUSED_ACTION,
                target.form_code,
                "",
                "",
                target.label,
                f"{why}; client {address}",
            )
        ],
    )
    values = {"user": user.get_username(), "target": target.label, "address": address}
    if locked:
        text = _(
            "Account %(user)s is locked out after wrong signature passwords (signing %(target)s from %(address)s)."
        )
    else:
        text = _("%(user)s entered a wrong signature password signing %(target)s from %(address)s.")
    alert_raise(users=data_managers(site_id=target.participant.site_id), kind=ALERT_KIND, text=text % values)


def _in_process_request() -> HttpRequest:
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    request.path = request.path_info = "in-process"
    return request
